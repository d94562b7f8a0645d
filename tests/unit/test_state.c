/* worker/state.c: the worker's and a job's lifecycle moves. Every legal move
 * is made and logged; every other one is refused, logged as an error and
 * leaves the state as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

/* stderr (the log) into a buffer between capture() and captured() */
static FILE *capture_file;
static int saved_stderr = -1;
static char logged[16384];

static void capture(void) {
  fflush(stderr);
  capture_file = tmpfile();
  assert_non_null(capture_file);
  saved_stderr = dup(2);
  dup2(fileno(capture_file), 2);
}

static const char *captured(void) {
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  rewind(capture_file);
  size_t n = fread(logged, 1, sizeof(logged) - 1, capture_file);
  logged[n] = '\0';
  fclose(capture_file);
  return logged;
}

#define NW 5 /* worker states */
#define NJ 3 /* job endings */

static int worker_legal(int from, int to) {
  static const int moves[][2] = {
      {WORKER_RUNNING, WORKER_QUIET},    {WORKER_RUNNING, WORKER_DRAINING},
      {WORKER_QUIET, WORKER_DRAINING},   {WORKER_DRAINING, WORKER_GRACE_OVER},
      {WORKER_DRAINING, WORKER_CLOSING}, {WORKER_GRACE_OVER, WORKER_CLOSING},
  };
  for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
    if (moves[i][0] == from && moves[i][1] == to) return 1;
  return 0;
}

static void worker_moves_legal_and_illegal(void **state) {
  for (int from = 0; from < NW; from++) {
    for (int to = 0; to < NW; to++) {
      worker w = {.state = (worker_state)from};
      capture();
      int rc = state_worker_set(&w, (worker_state)to);
      const char *log = captured();
      if (from == to) { /* staying: no move, nothing logged */
        assert_int_equal(rc, 0);
        assert_int_equal(w.state, from);
        assert_string_equal(log, "");
      } else if (worker_legal(from, to)) {
        assert_int_equal(rc, 0);
        assert_int_equal(w.state, to);
        assert_non_null(strstr(log, "\"from\":\""));
        assert_null(strstr(log, "illegal"));
      } else {
        assert_int_equal(rc, -1);
        assert_int_equal(w.state, from);
        assert_non_null(strstr(log, "illegal worker state move refused"));
        assert_non_null(strstr(log, "\"level\":\"error\""));
      }
    }
  }
}

static void worker_shutdown_paths_are_logged(void **state) {
  worker w = {.state = WORKER_RUNNING, .inflight = 2, .jobs_done = 7};
  capture();
  assert_int_equal(state_worker_set(&w, WORKER_QUIET), 0);
  assert_int_equal(state_worker_set(&w, WORKER_DRAINING), 0);
  assert_int_equal(state_worker_set(&w, WORKER_GRACE_OVER), 0);
  w.inflight = 0;
  assert_int_equal(state_worker_set(&w, WORKER_CLOSING), 0);
  const char *log = captured();
  assert_non_null(strstr(log, "\"msg\":\"quiet: taking no new jobs; the ones in flight go on\""));
  assert_non_null(strstr(log, "\"msg\":\"stopping: taking no new jobs\""));
  assert_non_null(strstr(log, "\"from\":\"quiet\",\"to\":\"draining\",\"in_flight\":2"));
  assert_non_null(strstr(log, "\"msg\":\"grace period over: handing unfinished jobs back\""));
  assert_non_null(strstr(log, "\"msg\":\"stopped\""));
  assert_non_null(strstr(log, "\"from\":\"grace_over\",\"to\":\"closing\""));
  assert_non_null(strstr(log, "\"jobs_done\":7"));
  /* closing is the end: nothing leaves it */
  for (int to = 0; to < NW - 1; to++) {
    capture();
    assert_int_equal(state_worker_set(&w, (worker_state)to), -1);
    captured();
    assert_int_equal(w.state, WORKER_CLOSING);
  }
}

static void worker_move_out_of_range_is_refused(void **state) {
  worker w = {.state = WORKER_DRAINING};
  capture();
  assert_int_equal(state_worker_set(&w, (worker_state)NW), -1);
  assert_int_equal(state_worker_set(&w, (worker_state)-1), -1);
  assert_non_null(strstr(captured(), "\"to\":\"invalid\""));
  assert_int_equal(w.state, WORKER_DRAINING);
}

static void job_endings_legal_and_illegal(void **state) {
  log_init(NULL, LOG_DEBUG); /* a job's moves are logged at debug */
  for (int from = 0; from < NJ; from++) {
    for (int to = 0; to < NJ; to++) {
      wjob j = {.id = "0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b10", .ending = (job_ending)from};
      capture();
      int rc = state_job_set(&j, (job_ending)to);
      const char *log = captured();
      int legal = from == JOB_ENDING_NONE && to != JOB_ENDING_NONE;
      if (from == to) {
        assert_int_equal(rc, 0);
        assert_string_equal(log, "");
      } else if (legal) {
        assert_int_equal(rc, 0);
        assert_int_equal(j.ending, to);
        assert_non_null(strstr(log, "\"msg\":\"job ending\""));
        assert_non_null(strstr(log, "\"job_id\":\"0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b10\""));
      } else {
        assert_int_equal(rc, -1);
        assert_int_equal(j.ending, from);
        assert_non_null(strstr(log, "illegal job ending move refused"));
      }
    }
  }
  log_init(NULL, LOG_INFO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(worker_moves_legal_and_illegal),
      cmocka_unit_test(worker_shutdown_paths_are_logged),
      cmocka_unit_test(worker_move_out_of_range_is_refused),
      cmocka_unit_test(job_endings_legal_and_illegal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
