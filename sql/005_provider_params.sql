-- Validated {param} values of the connect flow (e.g. a Shopify shop), kept on
-- the integration so later token calls can build the same provider URLs.
ALTER TABLE public.integrations ADD COLUMN IF NOT EXISTS
	provider_params jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(provider_params) = 'object');
