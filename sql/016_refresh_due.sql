-- When an access token is due for a refresh. Inside the refresh window
-- (REFRESH_WINDOW_SECONDS), as SPEC §8 says, with one exception: a token this
-- service obtained by a refresh, granted for less than twice the window, is
-- due once half its lifetime has passed. Without it, a provider that grants
-- tokens shorter than the window would have every read, every healthCheck
-- batch and every scheduler round refresh them again.
--
-- refreshed_expires_at is the expiry a refresh wrote (lib/tokens.c); every
-- other write of expires_at leaves it behind, so the exception holds only
-- while expires_at is still exactly what that refresh got from the provider,
-- and the lifetime is then known: from last_refreshed_at to that expiry.
ALTER TABLE public.integrations ADD COLUMN IF NOT EXISTS refreshed_expires_at timestamptz;

-- One SQL expression, STABLE: the planner inlines it, and the callers keep
-- their own index condition on expires_at beside it.
CREATE OR REPLACE FUNCTION intauth.refresh_due(expires_at timestamptz, refreshed_expires_at timestamptz,
                                               refreshed_at timestamptz,
                                               window_seconds double precision) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT expires_at <= now() + CASE
		WHEN expires_at = refreshed_expires_at AND refreshed_at IS NOT NULL
		THEN least(make_interval(secs => window_seconds), (expires_at - refreshed_at) / 2)
		ELSE make_interval(secs => window_seconds) END
$$;

GRANT EXECUTE ON FUNCTION intauth.refresh_due(timestamptz, timestamptz, timestamptz, double precision)
	TO authenticated, service_role;
