-- Jobs a signed-in user's request queues (a disconnect's revoke_retry) are
-- inserted as the authenticated role, and so could be by the user himself
-- through the Data API, with any column he likes: a row with attempts at the
-- integer maximum and run_at = '-infinity' came first in every claim and
-- failed it ("integer out of range"), stopping the queue for every tenant.
-- For that role only the job's kind (the ones its requests queue), its
-- integration and its payload (bounded) are the writer's to choose; the queue's
-- own columns take their defaults.
CREATE OR REPLACE FUNCTION intauth.user_queued_job() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.kind NOT IN ('revoke_retry', 'bootstrap') THEN
		RAISE EXCEPTION 'jobs of kind % are queued by the service only', NEW.kind
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF octet_length(NEW.payload::text) > 65536 THEN
		RAISE EXCEPTION 'job payload too large' USING ERRCODE = 'program_limit_exceeded';
	END IF;
	NEW.status := 'queued';
	NEW.attempts := 0;
	NEW.max_attempts := least(greatest(NEW.max_attempts, 1), 10);
	NEW.run_at := now();
	NEW.locked_until := NULL;
	NEW.locked_by := NULL;
	NEW.last_error := NULL;
	NEW.finished_at := NULL;
	NEW.created_at := now();
	NEW.updated_at := now();
	RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS integration_sync_jobs_user_queued ON public.integration_sync_jobs;
-- the WHEN clause: the service's own inserts (a job per webhook delivery)
-- never pay for the PL/pgSQL call
CREATE TRIGGER integration_sync_jobs_user_queued BEFORE INSERT ON public.integration_sync_jobs
	FOR EACH ROW WHEN (current_user = 'authenticated')
	EXECUTE FUNCTION intauth.user_queued_job();
