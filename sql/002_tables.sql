-- The seven tables of the seed. Every table has RLS enabled with owner policies;
-- service_role bypasses RLS (Supabase's convention).

CREATE TABLE IF NOT EXISTS public.integrations (
	id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id              uuid NOT NULL,
	provider             text NOT NULL CHECK (provider ~ '^[a-z0-9_]{1,64}$'),
	connection           text NOT NULL DEFAULT 'default'
	                     CHECK (connection ~ '^[A-Za-z0-9_.:@-]{1,64}$'),
	auth_type            text NOT NULL CHECK (auth_type IN ('oauth2', 'api_key', 'basic')),
	status               text NOT NULL DEFAULT 'pending'
	                     CHECK (status IN ('pending', 'connected', 'expired', 'error', 'revoked')),
	scopes               text[] NOT NULL DEFAULT '{}',
	expires_at           timestamptz,
	metadata             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
	last_refreshed_at    timestamptz,
	last_health_check_at timestamptz,
	last_error           jsonb CHECK (last_error IS NULL OR jsonb_typeof(last_error) = 'object'),
	-- refresh bookkeeping: failures in a row and the earliest next automatic attempt
	refresh_failures     integer NOT NULL DEFAULT 0,
	first_failure_at     timestamptz,
	next_refresh_at      timestamptz,
	created_at           timestamptz NOT NULL DEFAULT now(),
	updated_at           timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT integrations_owner_provider_connection_key UNIQUE (user_id, provider, connection)
);
-- healthCheck scans only what expires soon: its cost follows the expiring rows.
CREATE INDEX IF NOT EXISTS integrations_expiring_idx
	ON public.integrations (expires_at) WHERE status = 'connected' AND auth_type = 'oauth2';
CREATE INDEX IF NOT EXISTS integrations_user_created_idx
	ON public.integrations (user_id, created_at);

CREATE TABLE IF NOT EXISTS public.credentials (
	-- the ciphertext's associated data names this id: a new id per write
	id             uuid PRIMARY KEY,
	integration_id uuid NOT NULL UNIQUE REFERENCES public.integrations (id) ON DELETE CASCADE,
	user_id        uuid NOT NULL,
	provider       text NOT NULL,
	key_id         text NOT NULL,
	secret         text NOT NULL CHECK (secret LIKE 'v1.%'),
	created_at     timestamptz NOT NULL DEFAULT now(),
	updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS credentials_key_id_idx ON public.credentials (key_id);

CREATE TABLE IF NOT EXISTS public.integration_logs (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	integration_id uuid REFERENCES public.integrations (id) ON DELETE SET NULL,
	user_id        uuid NOT NULL,
	provider       text,
	level          text NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warn', 'error')),
	action         text NOT NULL,
	message        text NOT NULL,
	details        jsonb NOT NULL DEFAULT '{}',
	created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS integration_logs_integration_idx
	ON public.integration_logs (integration_id, id DESC);
CREATE INDEX IF NOT EXISTS integration_logs_user_idx
	ON public.integration_logs (user_id, id DESC);

CREATE TABLE IF NOT EXISTS public.oauth_states (
	id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	state_hash    text NOT NULL UNIQUE,          -- SHA-256 of the state, never the state
	user_id       uuid NOT NULL,
	provider      text NOT NULL,
	connection    text NOT NULL DEFAULT 'default',
	redirect_to   text NOT NULL,
	scopes        text[] NOT NULL DEFAULT '{}',
	params        jsonb NOT NULL DEFAULT '{}',   -- validated {param} values (e.g. shop)
	code_verifier text,                          -- PKCE verifier, encrypted envelope
	flow_hash     text,                          -- SHA-256 of the browser's intauth_flow nonce
	created_at    timestamptz NOT NULL DEFAULT now(),
	expires_at    timestamptz NOT NULL DEFAULT now() + interval '10 minutes',
	used_at       timestamptz
);
CREATE INDEX IF NOT EXISTS oauth_states_expires_idx ON public.oauth_states (expires_at);

CREATE TABLE IF NOT EXISTS public.integration_webhooks (
	id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id        uuid NOT NULL,
	integration_id uuid REFERENCES public.integrations (id) ON DELETE CASCADE,
	provider       text NOT NULL,
	key_id         text NOT NULL,
	secrets        text NOT NULL CHECK (secrets LIKE 'v1.%'), -- encrypted JSON array: rotation keeps several
	active         boolean NOT NULL DEFAULT true,
	created_at     timestamptz NOT NULL DEFAULT now(),
	updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS integration_webhooks_user_idx ON public.integration_webhooks (user_id);

CREATE TABLE IF NOT EXISTS public.integration_events (
	id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	provider       text NOT NULL,
	event_id       text NOT NULL,
	webhook_id     uuid REFERENCES public.integration_webhooks (id) ON DELETE SET NULL,
	integration_id uuid REFERENCES public.integrations (id) ON DELETE SET NULL,
	user_id        uuid,
	event_type     text,
	payload        jsonb,     -- the body when it is JSON
	body           text,      -- the body otherwise
	received_at    timestamptz NOT NULL DEFAULT now(),
	processed_at   timestamptz,
	CONSTRAINT integration_events_provider_event_key UNIQUE (provider, event_id)
);

CREATE TABLE IF NOT EXISTS public.integration_sync_jobs (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind           text NOT NULL CHECK (kind ~ '^[a-z_]{1,32}$'),
	status         text NOT NULL DEFAULT 'queued'
	               CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
	integration_id uuid REFERENCES public.integrations (id) ON DELETE CASCADE,
	user_id        uuid,
	payload        jsonb NOT NULL DEFAULT '{}',
	attempts       integer NOT NULL DEFAULT 0,
	max_attempts   integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
	run_at         timestamptz NOT NULL DEFAULT now(),
	locked_until   timestamptz,
	locked_by      text,
	last_error     text,
	created_at     timestamptz NOT NULL DEFAULT now(),
	updated_at     timestamptz NOT NULL DEFAULT now(),
	finished_at    timestamptz
);
CREATE INDEX IF NOT EXISTS integration_sync_jobs_due_idx
	ON public.integration_sync_jobs (run_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS integration_sync_jobs_lease_idx
	ON public.integration_sync_jobs (locked_until) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS integration_sync_jobs_finished_idx
	ON public.integration_sync_jobs (finished_at) WHERE finished_at IS NOT NULL;
