-- The due-row queries (healthCheck's SQL_CLAIM_DUE, the worker's refresh
-- scheduler) read integrations_expiring_idx; healthCheck's probe claim
-- (SQL_CLAIM_PROBES) reads integrations_probe_due_idx. Each index's predicate
-- now holds a clause only its own queries imply, so the planner cannot take
-- the other one. With the same predicate on both, a
-- table whose statistics had not yet seen a burst of new connections (before
-- autovacuum's ANALYZE) made both indexes look empty, and the due claim's
-- generic plan walked all of integrations_probe_due_idx in every batch:
-- 10,000 due rows took 17.4 s instead of 5.5 s, reading 22.6 million index
-- entries. Due rows always have an expiry (expires_at <= ... implies it);
-- probed rows are named by provider (the probe claim says provider <> '').
DROP INDEX IF EXISTS public.integrations_expiring_idx;
CREATE INDEX integrations_expiring_idx ON public.integrations (expires_at, id)
	WHERE status = 'connected' AND auth_type = 'oauth2' AND expires_at IS NOT NULL;
DROP INDEX IF EXISTS public.integrations_probe_due_idx;
CREATE INDEX integrations_probe_due_idx
	ON public.integrations (provider, (coalesce(last_health_check_at, created_at)))
	WHERE status = 'connected' AND auth_type = 'oauth2' AND provider <> '';
