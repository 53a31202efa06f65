-- Superseded by sql/012_trusted_account_link.sql: the webhook job links an
-- event through integrations.account_id (indexed there), no longer through an
-- account named in metadata, which users may write. Its index goes.
DROP INDEX IF EXISTS public.integrations_provider_account_idx;
