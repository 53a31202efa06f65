-- pgbench mirror of GET /api/auth/{provider}/start: the statement and the
-- round trips the route sends (lib/oauth.c ia_oauth_start -> lib/db.c
-- ia_db_run_one): BEGIN, set_config(role, the user's JWT claims), the
-- state insert (old states are the worker's to delete) and COMMIT in one
-- pipeline, one round trip; the statement prepared once per connection.
-- mirror-of: lib/oauth.c "INSERT INTO public.oauth_states" f889baa4ad96
-- mirror-of: lib/db.c fn:run_pipelined a0a505a2efa9
-- mirror-of: lib/db.c "SELECT set_config('role', $1, true)" 6a35d0e4bb00
-- -M prepared, -D role, claims_pre, claims_post, uid_pre, nusers, provider,
-- connection, redirect, scopes, params, envelope (a PKCE verifier sealed by
-- the route), flow_hash. Per transaction: the user (one of NUSERS) and a new
-- state hash (random; the route's is SHA-256 of a random state).
\set u random(1, :nusers)
\set state random(1, 9000000000000000000)
\startpipeline
BEGIN;
SELECT set_config('role', :role, true), set_config('request.jwt.claims', :claims_pre || lpad(:u::text, 12, '0') || :claims_post, true), set_config('intauth.defer_wake', 'on', true);
INSERT INTO public.oauth_states (state_hash, user_id, provider, connection,  redirect_to, scopes, params, code_verifier, flow_hash) VALUES (:state, (:uid_pre || lpad(:u::text, 12, '0'))::uuid, :provider, :connection, :redirect, ARRAY(SELECT jsonb_array_elements_text(:scopes::jsonb)),  :params::jsonb, :envelope, :flow_hash) RETURNING id;
COMMIT;
\endpipeline
