-- Envelopes are now sealed as "v2." (a subkey per purpose, lib/ia_crypto.h);
-- "v1." ones still open and are rewritten by `intauthctl rotate-keys`. The
-- checks of sql/002 accepted only v1.
ALTER TABLE public.credentials DROP CONSTRAINT IF EXISTS credentials_secret_check;
ALTER TABLE public.credentials ADD CONSTRAINT credentials_secret_check
	CHECK (secret LIKE 'v1.%' OR secret LIKE 'v2.%');
ALTER TABLE public.integration_webhooks DROP CONSTRAINT IF EXISTS integration_webhooks_secrets_check;
ALTER TABLE public.integration_webhooks ADD CONSTRAINT integration_webhooks_secrets_check
	CHECK (secrets LIKE 'v1.%' OR secrets LIKE 'v2.%');
