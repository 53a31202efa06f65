-- When an access token is due for a refresh. Inside the refresh window
-- (REFRESH_WINDOW_SECONDS), as SPEC §8 says, with one exception: a token this
-- service has just obtained by a refresh, granted for less than twice the
-- window, is due once half its lifetime has passed. Without it, a provider
-- that grants tokens shorter than the window would have every read, every
-- healthCheck batch and every scheduler round refresh them again. Its
-- lifetime is known exactly: from the credential's write (updated_at) to
-- expires_at, when that write was the refresh (last_refreshed_at is taken in
-- the same transaction, after it). Tokens stored by a caller or a callback
-- keep the plain window: when the provider issued them is not known.
-- One SQL expression, STABLE: the planner inlines it, and the callers keep
-- their own index condition on expires_at beside it.
CREATE OR REPLACE FUNCTION intauth.refresh_due(expires_at timestamptz, written_at timestamptz,
                                               refreshed_at timestamptz,
                                               window_seconds double precision) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT expires_at <= now() + CASE
		WHEN refreshed_at >= written_at
		THEN least(make_interval(secs => window_seconds), (expires_at - written_at) / 2)
		ELSE make_interval(secs => window_seconds) END
$$;

GRANT EXECUTE ON FUNCTION intauth.refresh_due(timestamptz, timestamptz, timestamptz, double precision)
	TO authenticated, service_role;
