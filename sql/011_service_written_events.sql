-- Only the webhook route stores events, and it runs as the service. A
-- signed-in user who could insert into integration_events (the Data API
-- exposes what the authenticated role may do) could claim a (provider,
-- event_id) before the provider delivers it, and the real delivery would then
-- be answered as a duplicate and dropped. sql/003 no longer grants it; this
-- takes it back where an earlier sql/003 did.
REVOKE INSERT ON public.integration_events FROM authenticated;
