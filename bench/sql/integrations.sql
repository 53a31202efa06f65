-- pgbench mirror of GET /api/integrations: the statement and the round trips
-- the route sends (lib/integrations.c ia_integration_list -> lib/db.c
-- ia_db_run_one): BEGIN, set_config(role, the user's JWT claims), the user's
-- integrations as JSON under RLS and COMMIT in one pipeline, one round trip;
-- the statement prepared once per connection.
-- mirror-of: lib/integrations.c "json_build_object('integrations'" 5781e9f95496
-- mirror-of: lib/db.c fn:run_pipelined a0a505a2efa9
-- mirror-of: lib/db.c "SELECT set_config('role', $1, true)" 6a35d0e4bb00
-- -M prepared, -D role, claims (the reader's JWT payload), uid.
\startpipeline
BEGIN;
SELECT set_config('role', :role, true), set_config('request.jwt.claims', :claims, true), set_config('intauth.defer_wake', 'on', true);
SELECT json_build_object('integrations', coalesce(json_agg( intauth.integration_json(i) ORDER BY i.created_at, i.id), '[]'::json))::text FROM public.integrations i WHERE i.user_id = :uid;
COMMIT;
\endpipeline
