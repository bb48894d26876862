/*-------------------------------------------------------------------------
 *
 * fetch_thread.c
 *		  One helper thread per process, for work that touches no PostgreSQL
 *		  state: receiving and parsing the next export page (connection.c).
 *
 * The sync worker writes page N while page N+1 is received and parsed.  On
 * two cores that takes json-c's parse (a quarter of the worker's time) off
 * the critical path.  The rules that make a thread safe in a backend:
 *
 *	- the job calls nothing of PostgreSQL: no palloc, no elog, no latch.  It
 *	  uses malloc'd memory and libcurl/json-c objects that the main thread
 *	  does not touch until the job is over (connection.c keeps that promise);
 *	- every signal is blocked in the thread, so PostgreSQL's handlers
 *	  (cancel, terminate, latch) run on the main thread as always;
 *	- the main thread waits for the job on its latch and a pipe, servicing
 *	  interrupts; if an ERROR leaves the job running, the next use of the
 *	  connection stops it first (zd_fetch_thread_stop), and process exit does
 *	  too, so the job never runs into exit's teardown of libcurl.
 *
 * A job that is asked to stop checks zd_fetch_thread_stopping() at least
 * every 100 ms.
 *
 * The thread also frees the json-c tree of the page the main thread has
 * just finished with (a page's tree is thousands of small allocations;
 * freeing them one by one was a tenth of the worker's time).
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <json-c/json.h>

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include "zendesk_fdw.h"

static pthread_t fetch_tid;
static bool fetch_running = false;	/* main thread's view: a job to join */
static bool exit_hook_set = false;
static int	done_pipe[2] = {-1, -1};	/* the job writes a byte when over */
static pg_atomic_uint32 stop_requested;
static ZdFetchJob fetch_job;
static void *fetch_arg;
static bool fetch_used = false;	/* a job has run in this process */
static struct json_object *garbage = NULL;	/* for the next job to free */
static struct json_object *job_garbage = NULL;

static void *
fetch_thread_main(void *unused)
{
	char		c = 'x';
	ssize_t		rc;

	json_object_put(job_garbage);	/* NULL-safe */
	fetch_job(fetch_arg);
	do
		rc = write(done_pipe[1], &c, 1);
	while (rc < 0 && errno == EINTR);
	return NULL;
}

static void
drain_pipe(void)
{
	char		buf[16];

	while (read(done_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static void
stop_at_exit(int code, Datum arg)
{
	zd_fetch_thread_stop();
}

bool
zd_fetch_thread_start(ZdFetchJob job, void *arg)
{
	sigset_t	all;
	sigset_t	old;
	int			rc;

	if (fetch_running)
		return false;
	if (done_pipe[0] < 0)
	{
		if (pipe(done_pipe) != 0)
			return false;
		if (fcntl(done_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
			fcntl(done_pipe[0], F_SETFD, FD_CLOEXEC) != 0 ||
			fcntl(done_pipe[1], F_SETFD, FD_CLOEXEC) != 0)
		{
			close(done_pipe[0]);
			close(done_pipe[1]);
			done_pipe[0] = done_pipe[1] = -1;
			return false;
		}
		pg_atomic_init_u32(&stop_requested, 0);
	}
	if (!exit_hook_set)
	{
		on_proc_exit(stop_at_exit, (Datum) 0);
		exit_hook_set = true;
	}
	drain_pipe();
	pg_atomic_write_u32(&stop_requested, 0);
	fetch_job = job;
	fetch_arg = arg;
	job_garbage = garbage;
	garbage = NULL;

	/* the thread inherits this mask: no PostgreSQL handler ever runs there */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&fetch_tid, NULL, fetch_thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		json_object_put(job_garbage);
		job_garbage = NULL;
		return false;			/* the caller does the work itself */
	}
	fetch_running = true;
	fetch_used = true;
	return true;
}

void
zd_fetch_thread_free_json(struct json_object *tree)
{
	if (!fetch_used)
	{
		json_object_put(tree);
		return;
	}
	json_object_put(garbage);	/* at most one tree waits */
	garbage = tree;
}

bool
zd_fetch_thread_stopping(void)
{
	return pg_atomic_read_u32(&stop_requested) != 0;
}

void
zd_fetch_thread_wait(void)
{
	while (fetch_running)
	{
		int			rc;
		char		c;

		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
							   done_pipe[0], -1L, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if ((rc & WL_SOCKET_READABLE) && read(done_pipe[0], &c, 1) == 1)
		{
			pthread_join(fetch_tid, NULL);
			fetch_running = false;
		}
	}
}

void
zd_fetch_thread_stop(void)
{
	if (!fetch_running)
		return;
	pg_atomic_write_u32(&stop_requested, 1);
	/* not interruptible, but the job checks the flag every 100 ms */
	pthread_join(fetch_tid, NULL);
	drain_pipe();
	fetch_running = false;
}
