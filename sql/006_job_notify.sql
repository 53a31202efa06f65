-- Wake the workers when jobs are queued (LISTEN intauth_jobs); they also poll,
-- so a lost notification only delays a job.
CREATE OR REPLACE FUNCTION intauth.notify_jobs() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM pg_notify('intauth_jobs', '');
	RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS integration_sync_jobs_notify ON public.integration_sync_jobs;
CREATE TRIGGER integration_sync_jobs_notify
	AFTER INSERT ON public.integration_sync_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION intauth.notify_jobs();

-- `failed` is a job waiting for its retry; it is due like a queued one.
DROP INDEX IF EXISTS public.integration_sync_jobs_due_idx;
CREATE INDEX IF NOT EXISTS integration_sync_jobs_due2_idx
	ON public.integration_sync_jobs (run_at) WHERE status IN ('queued', 'failed');
-- "is a refresh already queued for this integration?"
CREATE INDEX IF NOT EXISTS integration_sync_jobs_pending_idx
	ON public.integration_sync_jobs (integration_id, kind)
	WHERE status IN ('queued', 'running', 'failed');
