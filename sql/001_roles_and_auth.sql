-- Roles and auth.uid() as Supabase has them, created only when absent, so the
-- same migrations apply unchanged on a Supabase database.

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
		CREATE ROLE anon NOLOGIN NOINHERIT;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
		CREATE ROLE authenticated NOLOGIN NOINHERIT;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
		-- As on Supabase: the application's backend role bypasses RLS.
		CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
	END IF;
	-- The local stack's login role (created by scripts/stack) may switch to the
	-- request roles but is itself nothing: not superuser, no BYPASSRLS, owns nothing.
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'intauth_app') THEN
		GRANT anon, authenticated, service_role TO intauth_app;
	END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

DO $$
BEGIN
	IF to_regprocedure('auth.uid()') IS NULL THEN
		-- Reads the verified claims the programs set per transaction.
		CREATE FUNCTION auth.uid() RETURNS uuid
		LANGUAGE sql STABLE
		AS $f$
			SELECT nullif(coalesce(
				nullif(current_setting('request.jwt.claim.sub', true), ''),
				nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
			), '')::uuid
		$f$;
	END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS intauth;
GRANT USAGE ON SCHEMA intauth TO authenticated, service_role;
