-- Which integration a webhook event belongs to is decided by the provider
-- account its body names (lib/jobs.c run_webhook). That account must be one
-- the service established: the bootstrap job's fetch from the provider, or
-- metadata the application's backend (service role) wrote. A signed-in user
-- writes integrations.metadata freely (storeCredentials' "metadata", or the
-- Data API), and naming another customer's account there would have linked
-- that customer's events, delivered under the app-wide secret, to the user's
-- integration, where RLS shows them to him.
--
-- integrations.account_id holds the linking account. Only the service sets it,
-- explicitly (storeCredentials with the service role, from the metadata the
-- backend sent; the bootstrap job, from the provider's answer); it is never
-- derived later from metadata, which the user may have rewritten meanwhile. A
-- trigger keeps it as it was on any write of the authenticated role; its WHEN
-- clause spares the service's writes (every refresh) the PL/pgSQL call.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.integrations'::regclass
	               AND attname = 'account_id' AND NOT attisdropped) THEN
		ALTER TABLE public.integrations ADD COLUMN account_id text;
		-- once, when the column arrives: the accounts linked until now
		UPDATE public.integrations
		   SET account_id = coalesce(metadata #>> '{account,id}', metadata ->> 'account_id')
		 WHERE coalesce(metadata #>> '{account,id}', metadata ->> 'account_id') IS NOT NULL;
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION intauth.integrations_account_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.account_id := CASE WHEN TG_OP = 'UPDATE' THEN OLD.account_id END;
	RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS integrations_account_id ON public.integrations;
CREATE TRIGGER integrations_account_id BEFORE INSERT OR UPDATE ON public.integrations
	FOR EACH ROW WHEN (current_user = 'authenticated')
	EXECUTE FUNCTION intauth.integrations_account_id();

CREATE INDEX IF NOT EXISTS integrations_provider_account_id_idx
	ON public.integrations (provider, account_id) WHERE account_id IS NOT NULL;
