/* prom_process.c — the standard process_* series of this process
 * (prom_write_process in prom.h), as Prometheus' client libraries name
 * them. Read on each scrape from the kernel: getrusage and getrlimit, and
 * /proc/self (statm, stat, fd) and /proc/stat's boot time, files the
 * kernel makes on the spot (no disk I/O). */
#include "prom.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The start time of this process in seconds since the epoch: field 22 of
 * /proc/self/stat (clock ticks since boot) and btime of /proc/stat. */
static int start_time(double *out) {
  char buf[1024];
  FILE *f = fopen("/proc/self/stat", "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) return -1;
  unsigned long long ticks = 0;
  /* after ") ": field 3 (state) ... field 22 (starttime) */
  if (sscanf(p + 2,
             "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
             &ticks) != 1)
    return -1;
  f = fopen("/proc/stat", "r");
  if (!f) return -1;
  unsigned long long btime = 0;
  int found = 0;
  char line[256];
  while (!found && fgets(line, sizeof line, f))
    found = sscanf(line, "btime %llu", &btime) == 1;
  fclose(f);
  long hz = sysconf(_SC_CLK_TCK);
  if (!found || hz <= 0) return -1;
  *out = (double)btime + (double)ticks / (double)hz;
  return 0;
}

static int open_fds(unsigned long long *out) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  unsigned long long n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  *out = n > 0 ? n - 1 : 0; /* not the descriptor of the listing itself */
  return 0;
}

void prom_write_process(prom_buf *b) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    prom_family(b, "process_cpu_seconds_total", "counter",
                "User and system CPU time spent in seconds.");
    prom_sample(b, "process_cpu_seconds_total", NULL, cpu);
  }
  unsigned long long vm_pages, rss_pages;
  FILE *f = fopen("/proc/self/statm", "r");
  int statm = f && fscanf(f, "%llu %llu", &vm_pages, &rss_pages) == 2;
  if (f) fclose(f);
  long page = sysconf(_SC_PAGESIZE);
  if (statm && page > 0) {
    prom_family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    prom_sample_u64(b, "process_resident_memory_bytes", NULL, rss_pages * (unsigned long long)page);
    prom_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    prom_sample_u64(b, "process_virtual_memory_bytes", NULL, vm_pages * (unsigned long long)page);
  }
  unsigned long long fds;
  if (open_fds(&fds) == 0) {
    prom_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    prom_sample_u64(b, "process_open_fds", NULL, fds);
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    prom_family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    prom_sample_u64(b, "process_max_fds", NULL, (unsigned long long)rl.rlim_cur);
  }
  double started;
  if (start_time(&started) == 0) {
    prom_family(b, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.");
    prom_sample(b, "process_start_time_seconds", NULL, started);
  }
}
