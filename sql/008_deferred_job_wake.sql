-- A NOTIFY inside a transaction holds PostgreSQL's database-wide notify lock
-- from its pre-commit until its commit record is flushed: every transaction
-- that queues a job would commit one at a time, and group commit of the write
-- routes is lost (webhook ingest ran at half the rate). intauth's programs
-- therefore say `intauth.defer_wake = on` in each request transaction and
-- NOTIFY after the commit, in a transaction of their own with asynchronous
-- commit (lib/db.c, IA_DB_WAKE_WORKERS). Anything else that queues jobs (an
-- operator's SQL, another service) still wakes the workers from here.
CREATE OR REPLACE FUNCTION intauth.notify_jobs() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	IF coalesce(current_setting('intauth.defer_wake', true), '') <> 'on' THEN
		PERFORM pg_notify('intauth_jobs', '');
	END IF;
	RETURN NULL;
END
$$;
