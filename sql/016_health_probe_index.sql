-- healthCheck probes the connections no refresh verifies, longest unchecked
-- first (lib/tokens.c SQL_CLAIM_PROBES): an index in that order keeps each
-- batch from scanning every connection.
CREATE INDEX IF NOT EXISTS integrations_unchecked_idx
	ON public.integrations ((coalesce(last_health_check_at, created_at)))
	WHERE status = 'connected' AND auth_type = 'oauth2';
