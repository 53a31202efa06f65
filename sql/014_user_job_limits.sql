-- A signed-in user may queue the jobs his own requests queue (sql/013), but
-- not without limit: one INSERT ... SELECT generate_series(1, 20000) through
-- the Data API put twenty thousand bootstrap jobs ahead of every other
-- tenant's webhooks in the claim order. His waiting jobs of those kinds are
-- capped; past the cap the insert fails with SQLSTATE IA429, which the
-- service answers as 429 rate_limited.

-- only jobs of the kinds a user may queue, and only while they wait or run:
-- the service's own jobs (one per webhook delivery) never enter this index
CREATE INDEX IF NOT EXISTS integration_sync_jobs_user_pending_idx
	ON public.integration_sync_jobs (user_id)
	WHERE status IN ('queued', 'running', 'failed') AND kind IN ('revoke_retry', 'bootstrap');

-- A trigger of its own beside sql/013's (which sets the queue's columns).
CREATE OR REPLACE FUNCTION intauth.user_job_cap() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	-- a disconnect while the provider is down queues one revoke_retry; a
	-- hundred waiting at once is no user's own doing
	IF (SELECT count(*) FROM (SELECT 1 FROM public.integration_sync_jobs j
	    WHERE j.user_id = NEW.user_id AND j.status IN ('queued', 'running', 'failed')
	    AND j.kind IN ('revoke_retry', 'bootstrap') LIMIT 100) waiting) >= 100 THEN
		RAISE EXCEPTION 'too many jobs are waiting for this user' USING ERRCODE = 'IA429';
	END IF;
	RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS integration_sync_jobs_user_cap ON public.integration_sync_jobs;
CREATE TRIGGER integration_sync_jobs_user_cap BEFORE INSERT ON public.integration_sync_jobs
	FOR EACH ROW WHEN (current_user = 'authenticated')
	EXECUTE FUNCTION intauth.user_job_cap();

-- Rows a user wrote before sql/013 with values no claim can take (attempts at
-- the integer maximum, a run_at of -infinity): each failed every claim that
-- reached it. They end here, dead, with the reason.
UPDATE public.integration_sync_jobs
	SET status = 'dead', finished_at = now(), locked_until = NULL, locked_by = NULL,
	    payload = payload - 'secret', updated_at = now(),
	    last_error = 'ended by migration 014: its attempts or run_at were out of range'
	WHERE status IN ('queued', 'failed', 'running')
	AND (attempts > 1000 OR max_attempts > 1000 OR run_at = '-infinity' OR locked_until = '-infinity');
