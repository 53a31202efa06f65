-- The webhook job links an event to the integration whose account the body
-- names (lib/jobs.c run_webhook): without this each job scanned every
-- integration of the provider.
CREATE INDEX IF NOT EXISTS integrations_provider_account_idx
	ON public.integrations (provider, (coalesce(metadata #>> '{account,id}', metadata ->> 'account_id')));
