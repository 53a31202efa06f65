/* worker: runs the job queue (SPEC §9). A supervisor forks WORKER_CONCURRENCY
 * processes; each claims one due job at a time (FOR UPDATE SKIP LOCKED, with a
 * lease), runs it, records the outcome, and sleeps on LISTEN intauth_jobs with
 * a polling fallback when there is nothing to do. Process 0 also queues
 * refresh jobs for connections about to expire, so they stay alive without an
 * external cron. SIGTERM/SIGINT: no new claims; the job in hand is finished
 * (bounded by the outbound timeouts) and recorded; exit 0.
 *
 * WORKER_CONCURRENCY (2), WORKER_LEASE_SECONDS (the longest a job can run, plus
 * 30 s: 106 s with the default HTTP_TIMEOUT_MS), WORKER_POLL_MS (2000), WORKER_BACKOFF_BASE_MS (10000),
 * WORKER_SCHEDULE_SECONDS (30). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ia_app.h"
#include "ia_db.h"
#include "ia_jobs.h"
#include "ia_log.h"
#include "ia_metrics.h"

/* A job makes at most two provider calls (revoke_retry: the refresh token,
 * then the access token), each bounded by HTTP_TIMEOUT_MS. A lease must
 * outlast that, or it could run out under a job still in progress and another
 * worker would run the job a second time. */
#define JOB_MAX_PROVIDER_CALLS 2
/* ... and at most two statements of its own around them (bootstrap: load,
 * then save), each up to the statement timeout after a reconnect that may take
 * IA_DB_CONNECT_TIMEOUT_S */
#define JOB_MAX_STATEMENTS 2
/* how often a busy worker looks for a job whose worker died (ia_jobs_claim) */
#define RECLAIM_EVERY_SECONDS 5

typedef struct worker_conf {
	long lease_seconds;
	long poll_ms;
	long backoff_base_ms;
	long schedule_seconds;
} worker_conf;

static long conf_long(const ia_app *app, const char *name, long dflt, long min, long max)
{
	char msg[256];
	long n;

	if (ia_config_long(&app->cfg, name, dflt, min, max, &n, msg, sizeof msg)) {
		fprintf(stderr, "worker: %s\n", msg);
		return -1;
	}
	return n;
}

/* The LISTEN connection: separate from the job connection, which is inside a
 * transaction while a job runs. */
static PGconn *listen_connect(const ia_app *app)
{
	/* bounded like every connection: an unanswering server must not hold a
	 * worker (and a SIGTERM) in connect for ever */
	PGconn *c = ia_db_connect_plain(app->cfg.database_url);
	if (!c)
		return NULL;
	PGresult *res = PQexec(c, "LISTEN " IA_JOBS_CHANNEL);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* SIGTERM/SIGINT in a worker process: no new claims, and a wake-up through a
 * pipe that wait_for_work() polls, so a signal that lands between the stop
 * check and poll() does not wait out the whole poll interval. */
static volatile sig_atomic_t stopping;
static int wake_pipe[2] = { -1, -1 };

static void on_stop(int sig)
{
	int saved = errno;
	ssize_t n;

	(void)sig;
	stopping = 1;
	if (wake_pipe[1] >= 0) {
		n = write(wake_pipe[1], "x", 1);
		(void)n;   /* a full pipe already holds a wake-up */
	}
	errno = saved;
}

static int wake_pipe_open(void)
{
	if (pipe(wake_pipe) != 0)
		return -1;
	for (int i = 0; i < 2; i++)
		if (fcntl(wake_pipe[i], F_SETFL, O_NONBLOCK) != 0 ||
		    fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC) != 0)
			return -1;
	return 0;
}

static bool stop_now(void)
{
	/* ia_stop_requested(): a signal that came before on_stop was installed */
	return stopping || ia_stop_requested();
}

/* Sleeps until a notification, the timeout or a stop signal; true when
 * notified. The LISTEN connection is made before the claim that found nothing
 * (work()), so a job queued in between has notified it, or was committed
 * inside the debounce of a wake-up sent before it listened: work() lingers
 * after connecting too. */
static bool wait_for_work(PGconn **listen, long timeout_ms)
{
	struct pollfd pfd[2] = {
		{ .fd = wake_pipe[0], .events = POLLIN },
		{ .fd = *listen ? PQsocket(*listen) : -1, .events = POLLIN },   /* -1: ignored */
	};
	if (stop_now() || poll(pfd, 2, (int)timeout_ms) <= 0 ||
	    !(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
		return false;
	if (!PQconsumeInput(*listen)) {
		PQfinish(*listen);
		*listen = NULL;
		return false;
	}
	bool notified = false;
	PGnotify *n;
	while ((n = PQnotifies(*listen))) {
		notified = true;
		PQfreemem(n);
	}
	return notified;
}

static void work(ia_app *app, long index, void *ctx)
{
	const worker_conf *conf = ctx;
	PGconn *listen = NULL;
	time_t next_schedule = 0, next_reclaim = 0;
	/* after a wake-up, a claim or a new LISTEN: the programs send one
	 * wake-up per IA_DB_WAKE_DEBOUNCE_MS, so the queue is looked at again
	 * every IA_DB_WAKE_LINGER_STEP_MS for a while before the long poll */
	long long linger_until = 0;

	if (wake_pipe_open() != 0) {
		ia_log(IA_LOG_ERROR, "pipe_failed", "%s", strerror(errno));
		return;
	}
	ia_catch_stop_signals(on_stop);
	while (!stop_now()) {
		ia_err err = { 0 };
		if (index == 0 && time(NULL) >= next_schedule) {
			long queued = ia_jobs_schedule(app, &err);
			if (queued > 0)
				ia_log(IA_LOG_INFO, "refresh_scheduled", "%ld refresh jobs queued", queued);
			else if (queued < 0)
				ia_log(IA_LOG_WARN, "schedule_failed", "%s", err.code ? err.code : "error");
			long cleaned = ia_jobs_clean(app, &err);
			if (cleaned < 0)
				ia_log(IA_LOG_WARN, "clean_failed", "%s", err.code ? err.code : "error");
			next_schedule = time(NULL) + conf->schedule_seconds;
		}
		if (!listen && (listen = listen_connect(app)))
			linger_until = ia_db_monotonic_ms() + IA_DB_WAKE_LINGER_MS;
		bool expired_first = time(NULL) >= next_reclaim;
		if (expired_first)
			next_reclaim = time(NULL) + RECLAIM_EVERY_SECONDS;
		ia_job job;
		int claimed = ia_jobs_claim(app, conf->lease_seconds, expired_first, &job, &err);
		if (claimed < 0)
			ia_log(IA_LOG_WARN, "claim_failed", "%s", err.code ? err.code : "error");
		if (claimed <= 0) {
			bool lingering = ia_db_monotonic_ms() < linger_until;
			if (wait_for_work(&listen, lingering && conf->poll_ms > IA_DB_WAKE_LINGER_STEP_MS
							   ? IA_DB_WAKE_LINGER_STEP_MS : conf->poll_ms))
				linger_until = ia_db_monotonic_ms() + IA_DB_WAKE_LINGER_MS;
			continue;
		}
		linger_until = ia_db_monotonic_ms() + IA_DB_WAKE_LINGER_MS;
		char why[512];
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = ia_jobs_run(app, &job, why, sizeof why);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		ia_metrics_count(app->metrics, rc == 0 ? IA_JOB_SUCCEEDED : IA_JOB_FAILED);
		if (rc == 0)
			ia_log(IA_LOG_INFO, "job_succeeded", "job %s %s in %ld ms", job.id, job.kind, ms);
		else
			ia_log(IA_LOG_WARN, "job_failed", "job %s %s attempt %d/%d: %s", job.id, job.kind,
			       job.attempts, job.max_attempts, why);
		/* once more after a failure (the connection is made again): an
		 * outcome left unrecorded becomes a lease that runs out, and the
		 * job is run again, or called dead on its last attempt */
		if (ia_jobs_finish(app, &job, rc == 0, why, conf->backoff_base_ms, &err) &&
		    ia_jobs_finish(app, &job, rc == 0, why, conf->backoff_base_ms, &err))
			ia_log(IA_LOG_WARN, "finish_failed", "job %s: %s", job.id, err.code);
		ia_job_release(&job);
	}
	if (listen)
		PQfinish(listen);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	wake_pipe[0] = wake_pipe[1] = -1;
}

int main(void)
{
	ia_app app;
	worker_conf conf;
	long n;

	if (ia_app_init(&app, "worker") != 0)
		return 1;
	n = ia_worker_count(&app, "WORKER_CONCURRENCY", 2);
	long job_max_ms = JOB_MAX_PROVIDER_CALLS * app.cfg.http_timeout_ms;
	long db_max_ms = JOB_MAX_STATEMENTS * (IA_DB_STATEMENT_TIMEOUT_MS + IA_DB_CONNECT_TIMEOUT_S * 1000L);
	long lease_default = (job_max_ms + db_max_ms) / 1000 + 30;
	conf.lease_seconds = conf_long(&app, "WORKER_LEASE_SECONDS", lease_default, 5, 3600);
	conf.poll_ms = conf_long(&app, "WORKER_POLL_MS", 2000, 10, 60000);
	conf.backoff_base_ms = conf_long(&app, "WORKER_BACKOFF_BASE_MS", 10000, 1, 3600000);
	conf.schedule_seconds = conf_long(&app, "WORKER_SCHEDULE_SECONDS", 30, 1, 3600);
	if (conf.lease_seconds > 0 && conf.lease_seconds * 1000 <= job_max_ms) {
		fprintf(stderr, "worker: WORKER_LEASE_SECONDS (%ld) must exceed the longest a job can run:"
			" %d provider calls of HTTP_TIMEOUT_MS (%ld ms) each\n",
			conf.lease_seconds, JOB_MAX_PROVIDER_CALLS, app.cfg.http_timeout_ms);
		conf.lease_seconds = -1;
	}
	if (n < 0 || conf.lease_seconds < 0 || conf.poll_ms < 0 || conf.backoff_base_ms < 0 ||
	    conf.schedule_seconds < 0) {
		ia_app_release(&app);
		return 1;
	}
	ia_supervise(&app, n, work, &conf);
	ia_app_release(&app);
	return 0;
}
