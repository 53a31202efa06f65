-- pgbench mirror of POST /functions/v1/getCredentials {"integration_id"}: the
-- statement and the round trips the route sends (lib/integrations.c
-- ia_credentials_fetch -> lib/db.c ia_db_query): BEGIN, set_config(role, the
-- service JWT's claims), the integration with its sealed credential and the
-- refresh check, COMMIT in one pipeline, one round trip; the statement
-- prepared once per connection. The decryption is the route's own work on top.
-- mirror-of: lib/integrations.c "SELECT intauth.integration_json(i)::text, i.status" 3c689b07b5f2
-- mirror-of: lib/db.c fn:run_pipelined a0a505a2efa9
-- mirror-of: lib/db.c "SELECT set_config('role', $1, true)" 6a35d0e4bb00
-- -M prepared, -D role, claims (the service token's payload), id, connection,
-- window. By integration_id: the route's FETCH_SQL("$2", "i.id = $1::uuid").
\startpipeline
BEGIN;
SELECT set_config('role', :role, true), set_config('request.jwt.claims', :claims, true), set_config('intauth.defer_wake', 'on', true);
SELECT intauth.integration_json(i)::text, i.status, i.auth_type, c.id, c.secret, i.user_id, i.provider, intauth.ts(i.expires_at), to_json(i.scopes)::text, (i.auth_type = 'oauth2' AND i.status = 'connected'  AND i.expires_at <= now() + make_interval(secs => :window::double precision)  AND (i.next_refresh_at IS NULL OR i.next_refresh_at <= now())), i.id, (i.auth_type = 'oauth2' AND i.expires_at <= now()) FROM public.integrations i LEFT JOIN public.credentials c ON c.integration_id = i.id WHERE i.id = :id::uuid;
COMMIT;
\endpipeline
