-- pgbench mirror of POST /functions/v1/storeCredentials with an api_key: the
-- statement and the round trips the route sends (lib/integrations.c
-- ia_integration_save -> lib/db.c ia_db_run_one): BEGIN, set_config(role,
-- the user's JWT claims), SQL_STORE (integration upsert, sealed credential,
-- log row) and COMMIT in one pipeline, one round trip; SQL_STORE prepared
-- once per connection.
-- mirror-of: lib/integrations.c SQL_STORE 82b15b1ba914
-- mirror-of: lib/db.c fn:run_pipelined a0a505a2efa9
-- mirror-of: lib/db.c "SELECT set_config('role', $1, true)" 6a35d0e4bb00
-- -M prepared, -D role, claims_pre, claims_post (the users' JWT payload
-- around the sub), uid_pre, nusers, provider, auth_type, scopes, kid,
-- envelope (a credential sealed by the route), action, message, bootstrap.
-- What the route computes per request is made here per transaction: the user
-- (one of NUSERS, as the wrk script spreads requests), a new connection label
-- (a new row each time), the credential id (gen_random_uuid() for the C's
-- ia_uuid_v4). NULL parameters (expiry, metadata, provider params) are literals.
\set u random(1, :nusers)
\set conn random(1, 9000000000000000000)
\startpipeline
BEGIN;
SELECT set_config('role', :role, true), set_config('request.jwt.claims', :claims_pre || lpad(:u::text, 12, '0') || :claims_post, true), set_config('intauth.defer_wake', 'on', true);
WITH i AS ( INSERT INTO public.integrations AS t (user_id, provider, connection, auth_type, status,  scopes, expires_at, metadata, provider_params, account_id) VALUES ((:uid_pre || lpad(:u::text, 12, '0'))::uuid, :provider, :conn, :auth_type, 'connected', ARRAY(SELECT jsonb_array_elements_text(:scopes::jsonb)),  CASE WHEN NULL::text IS NOT NULL THEN NULL::timestamptz       WHEN NULL::text LIKE '@%' THEN to_timestamp(substr(NULL, 2)::double precision)       WHEN NULL::text IS NOT NULL THEN now() + make_interval(secs => NULL::double precision)  END,  coalesce(NULL::jsonb, '{}'), coalesce(NULL::jsonb, '{}'),  coalesce(NULL::jsonb #>> '{account,id}', NULL::jsonb ->> 'account_id')) ON CONFLICT (user_id, provider, connection) DO UPDATE SET  auth_type = excluded.auth_type, status = 'connected', scopes = excluded.scopes,  expires_at = excluded.expires_at,  metadata = CASE WHEN NULL::jsonb IS NULL THEN t.metadata ELSE excluded.metadata END,  account_id = CASE WHEN NULL::jsonb IS NULL THEN t.account_id ELSE excluded.account_id END,  last_error = NULL, refresh_failures = 0, first_failure_at = NULL,  next_refresh_at = NULL, updated_at = now(),  provider_params = coalesce(NULL::jsonb, t.provider_params) RETURNING *), c AS ( INSERT INTO public.credentials (id, integration_id, user_id, provider, key_id, secret) SELECT gen_random_uuid(), i.id, i.user_id, i.provider, :kid, :envelope FROM i ON CONFLICT (integration_id) DO UPDATE SET id = excluded.id, key_id = excluded.key_id,  secret = excluded.secret, updated_at = now()), l AS ( INSERT INTO public.integration_logs (integration_id, user_id, provider, action, message) SELECT i.id, i.user_id, i.provider, :action, :message FROM i), j AS ( INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id) SELECT 'bootstrap', i.id, i.user_id FROM i WHERE :bootstrap::boolean) SELECT json_build_object('integration',  intauth.integration_json(ROW(i.*)::public.integrations))::text FROM i;
COMMIT;
\endpipeline
