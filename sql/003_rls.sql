-- Row level security: a user sees and changes only rows whose user_id is
-- auth.uid(), even through a query that forgets its WHERE clause.

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['integrations', 'credentials', 'integration_logs', 'oauth_states',
	                         'integration_webhooks', 'integration_events', 'integration_sync_jobs']
	LOOP
		EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_owner', t);
		EXECUTE format('CREATE POLICY %I ON public.%I TO authenticated '
		               'USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())',
		               t || '_owner', t);
		EXECUTE format('GRANT SELECT ON public.%I TO authenticated', t);
		EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO service_role', t);
	END LOOP;
END
$$;

-- What users may change themselves; events and jobs are written by the service.
GRANT INSERT, UPDATE, DELETE ON public.integrations, public.credentials, public.integration_logs,
	public.oauth_states, public.integration_webhooks TO authenticated;
-- A user sees his jobs' progress, not their payload: a revoke_retry job's
-- payload holds a sealed credential, which copied into new jobs would let him
-- make the service call the provider's revocation endpoint with the app's
-- client credentials again and again.
REVOKE SELECT ON public.integration_sync_jobs FROM authenticated;
GRANT SELECT (id, kind, status, integration_id, user_id, attempts, max_attempts, run_at, locked_until,
              locked_by, last_error,
              created_at, updated_at, finished_at)
	ON public.integration_sync_jobs TO authenticated;
-- A job created inside a user's request (same transaction as its cause).
-- Events are written by the webhook route alone, as the service
-- (sql/011_service_written_events.sql).
GRANT INSERT ON public.integration_sync_jobs TO authenticated;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO authenticated, service_role;
