#ifndef GENQ_REDIS_URL_H
#define GENQ_REDIS_URL_H

#include <stddef.h>

/* GENQ_REDIS_URL, one parser for config.c (validation at start) and redis.c
 * (the connection):
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]
 *       [?sentinel_password=...]
 *
 * The second names Sentinels (port 26379 unless given, at most
 * RDS_URL_MAX_SENTINELS) and the name of the primary they watch; the
 * credentials and db are the primary's, sentinel_password the Sentinels'
 * own (when they require one). User, passwords and master are
 * percent-decoded. Messages never echo the URL: it may carry credentials. */

#define RDS_URL_MAX_SENTINELS 16

typedef struct {
  char host[256];
  int port;
} rds_addr;

typedef struct {
  int sentinel;  /* 1: redis-sentinel:// */
  rds_addr node; /* redis://: the server */
  rds_addr sentinels[RDS_URL_MAX_SENTINELS];
  int nsentinels;
  char master[128];
  int db;
  char user[128];
  char password[512];
  int has_password;
  char sentinel_password[512];
  int has_sentinel_password;
} rds_url;

/* Returns 0, or -1 with a short reason in err ("redis url: bad port"). */
int rds_url_parse(rds_url *u, const char *url, char *err, size_t errlen);
/* Overwrites the passwords (call when done with u). */
void rds_url_wipe(rds_url *u);

#endif
