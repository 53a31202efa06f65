-- healthCheck claims due connections batch after batch, each from where the
-- one before ended, in (expires_at, id) order (lib/tokens.c SQL_CLAIM_DUE):
-- from the start of the index every batch would read again the entries of
-- the rows the call has refreshed or failed so far. The index gets the id
-- too, so that order and the cursor are the scan's own.
DROP INDEX IF EXISTS public.integrations_expiring_idx;
CREATE INDEX integrations_expiring_idx
	ON public.integrations (expires_at, id) WHERE status = 'connected' AND auth_type = 'oauth2';
