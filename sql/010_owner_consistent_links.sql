-- A row that points at an integration belongs to that integration's owner.
--
-- RLS pins a row's user_id to the caller, and the signed-in user may write
-- integration_webhooks, credentials and integration_logs (and insert jobs)
-- through the Data API; the service writes the other links. A foreign key on integration_id alone only
-- says the integration exists, so a user could point their own webhook row
-- (signed with their own secret) at another user's integration and have
-- forged events stored and processed under it. Keying the link on
-- (integration_id, user_id) makes such a row impossible to write, whoever
-- writes it. Each old single-column key is replaced, not doubled, so an insert
-- still makes one lookup.
--
-- Rows already linked across owners would make the migration fail; instead
-- the key is added NOT VALID (new and changed rows are checked at once), then
-- validated, and a failed validation leaves a WARNING naming the table.
DO $$
DECLARE
	link record;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_constraint
	               WHERE conrelid = 'public.integrations'::regclass AND conname = 'integrations_id_user_key') THEN
		ALTER TABLE public.integrations ADD CONSTRAINT integrations_id_user_key UNIQUE (id, user_id);
	END IF;

	FOR link IN SELECT * FROM (VALUES
		('credentials',           'CASCADE'),
		('integration_webhooks',  'CASCADE'),
		('integration_sync_jobs', 'CASCADE'),
		('integration_logs',      'SET NULL (integration_id)'),
		('integration_events',    'SET NULL (integration_id)')) AS l (tab, on_delete)
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_constraint
		               WHERE conrelid = format('public.%I', link.tab)::regclass
		                 AND conname = link.tab || '_integration_owner_fkey') THEN
			EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I FOREIGN KEY (integration_id, user_id)'
			               ' REFERENCES public.integrations (id, user_id) ON DELETE %s NOT VALID',
			               link.tab, link.tab || '_integration_owner_fkey', link.on_delete);
		END IF;
		EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT IF EXISTS %I',
		               link.tab, link.tab || '_integration_id_fkey');
		BEGIN
			EXECUTE format('ALTER TABLE public.%I VALIDATE CONSTRAINT %I',
			               link.tab, link.tab || '_integration_owner_fkey');
		EXCEPTION WHEN foreign_key_violation THEN
			RAISE WARNING 'public.%: rows link to an integration of another user; new rows are checked, '
			              'the old ones are left for review (%)', link.tab, SQLERRM;
		END;
	END LOOP;
END
$$;
