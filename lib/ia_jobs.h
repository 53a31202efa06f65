/* ia_jobs: the job queue in integration_sync_jobs (SPEC §9).
 *
 * A job is claimed with FOR UPDATE SKIP LOCKED and leased: status running,
 * locked_until = now() + lease, locked_by = a random claim token. Only the
 * holder of that token can finish it; a job whose lease ran out (its worker
 * died) is claimed again by anyone. Failures retry with exponential backoff
 * and jitter until max_attempts, then the job is `dead` with its last error.
 * Finished jobs are kept 7 days.
 */
#ifndef IA_JOBS_H
#define IA_JOBS_H

#include <stdbool.h>

#include "ia_app.h"
#include "ia_buf.h"
#include "ia_err.h"

typedef struct ia_job {
	char id[24];
	char kind[40];
	char integration_id[37];   /* "" when none */
	char user_id[37];          /* "" when none */
	char *payload;             /* JSON text, malloc'd */
	int attempts;              /* including this one */
	int max_attempts;
	char claim[33];            /* our lease token */
} ia_job;

void ia_job_release(ia_job *job);

/* Claims one due job, or one whose lease expired. expired_first: look for
 * an expired lease before the due jobs (the caller does so now and then: with
 * due jobs always waiting, a job whose worker died would otherwise never be
 * looked at). 1 claimed, 0 none, -1 error. */
int ia_jobs_claim(ia_app *app, long lease_seconds, bool expired_first, ia_job *job, ia_err *err);
/* Runs the job's kind. 0 done; -1 failed with a message in why (no secrets). */
int ia_jobs_run(ia_app *app, const ia_job *job, char *why, size_t why_size);
/* Records the outcome (only while we hold the lease). */
int ia_jobs_finish(ia_app *app, const ia_job *job, bool ok, const char *why, long backoff_base_ms,
		   ia_err *err);
/* Queues refresh jobs for connections about to expire that have none queued.
 * Returns jobs queued or -1. */
long ia_jobs_schedule(ia_app *app, ia_err *err);
/* Deletes finished jobs older than 7 days and OAuth states a day past their
 * expiry, a bounded batch of each per call. Returns rows deleted or -1. */
long ia_jobs_clean(ia_app *app, ia_err *err);

/* intauthctl jobs: queue state as text. */
int ia_jobs_report(ia_app *app, ia_buf *out, ia_err *err);
/* intauthctl jobs retry ID: a dead or failed job queued again with fresh attempts. */
int ia_jobs_retry(ia_app *app, const char *id, ia_err *err);

#endif
