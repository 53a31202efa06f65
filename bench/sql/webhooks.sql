-- pgbench mirror of POST /functions/v1/webhooks/github: the statement and the
-- round trips the route sends (lib/events.c ia_event_receive -> lib/db.c
-- ia_db_run_one): BEGIN, set_config(role, claims), SQL_STORE_EVENT (the event
-- and its webhook job) and COMMIT in one pipeline, one round trip; the
-- statement prepared once per connection.
-- mirror-of: lib/events.c SQL_STORE_EVENT 429147896625
-- mirror-of: lib/db.c fn:wake_if_late a9350e4985f9
-- mirror-of: lib/db.c fn:run_pipelined a0a505a2efa9
-- mirror-of: lib/db.c "SELECT set_config('role', $1, true)" 6a35d0e4bb00
-- No wake-up: the route's (a NOTIFY after the COMMIT, IA_DB_WAKE_WORKERS) goes
-- out at most once per IA_DB_WAKE_DEBOUNCE_MS (50 ms) per process, under this
-- load one transaction in thirty or fewer.
-- scripts/bench runs it with -M prepared (the route prepares BEGIN, the
-- settings, COMMIT and the wake-up once per connection too) and -D role,
-- claims, provider, event_type, payload (the bench's delivery). The route binds a NULL webhook_id and body and '' for
-- the integration and the user: literals here (pgbench variables can't be
-- NULL or empty). The event id is a fresh random number per transaction (the
-- route's X-GitHub-Delivery).
\set eid random(1, 9000000000000000000)
\startpipeline
BEGIN;
SELECT set_config('role', :role, true), set_config('request.jwt.claims', :claims, true), set_config('intauth.defer_wake', 'on', true);
WITH e AS ( INSERT INTO public.integration_events (provider, event_id, webhook_id, integration_id,  user_id, event_type, payload, body) VALUES (:provider, :eid, NULL::uuid, nullif('', '')::uuid, nullif('', '')::uuid, nullif(:event_type, ''),  :payload::text::jsonb, NULL::text) ON CONFLICT (provider, event_id) DO NOTHING RETURNING id, integration_id, user_id), j AS ( INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, payload) SELECT 'webhook', e.integration_id, e.user_id, jsonb_build_object('event_id', e.id) FROM e) SELECT count(*)::text FROM e;
COMMIT;
\endpipeline
