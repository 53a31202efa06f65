-- healthCheck probes the connections no refresh verifies at the providers
-- that have a userinfo_url (lib/tokens.c SQL_CLAIM_PROBES). Keyed by provider
-- first, so the connections of providers it never probes are not read by
-- every run; within a provider the longest unchecked come first.
CREATE INDEX IF NOT EXISTS integrations_probe_due_idx
	ON public.integrations (provider, (coalesce(last_health_check_at, created_at)))
	WHERE status = 'connected' AND auth_type = 'oauth2';
