-- The integration object of SPEC §5, built where the row is, so answers need no
-- re-encoding in C.

CREATE OR REPLACE FUNCTION intauth.ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

CREATE OR REPLACE FUNCTION intauth.integration_json(i public.integrations) RETURNS json
LANGUAGE sql STABLE
AS $$
	SELECT json_build_object(
		'id', i.id,
		'provider', i.provider,
		'connection', i.connection,
		'auth_type', i.auth_type,
		'status', i.status,
		'scopes', to_json(i.scopes),
		'expires_at', intauth.ts(i.expires_at),
		'metadata', i.metadata,
		'last_refreshed_at', intauth.ts(i.last_refreshed_at),
		'last_health_check_at', intauth.ts(i.last_health_check_at),
		'last_error', i.last_error,
		'created_at', intauth.ts(i.created_at),
		'updated_at', intauth.ts(i.updated_at))
$$;

GRANT EXECUTE ON FUNCTION intauth.ts(timestamptz), intauth.integration_json(public.integrations)
	TO authenticated, service_role;
