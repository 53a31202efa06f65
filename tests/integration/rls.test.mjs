// Row level security (SPEC §3, §5; SECURITY.md "JWT and RLS"): as the role the
// programs switch to, a query without WHERE sees only the caller's rows, and
// writes for another user are refused. The login role is nothing special.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import {
	apiKeyBody, asUser, asUserTry, assertOk, basicBody, countRows, lit, newUser, psql, storeCredentials,
} from './lib.mjs';

describe('RLS as the authenticated role', () => {
	const a = newUser();
	const b = newUser();
	let ia;
	let ib;

	before(async () => {
		ia = assertOk(await storeCredentials(a.token, apiKeyBody())).integration;
		assertOk(await storeCredentials(a.token, basicBody()));
		ib = assertOk(await storeCredentials(b.token, apiKeyBody())).integration;
	});

	for (const table of ['integrations', 'credentials', 'integration_logs']) {
		test(`SELECT count(*) FROM ${table} (no WHERE) sees only the caller's rows`, () => {
			const mine = countRows(table, `user_id = ${lit(a.id)}`);
			const all = Number(psql(`SELECT count(*) FROM public.${table};`));
			assert.ok(mine >= 2, `A has ${mine} rows in ${table}`);
			assert.ok(all > mine, `the table holds only A's rows (${all}): the check would be empty`);
			const seen = Number(asUser(a.id, `SELECT count(*) FROM public.${table};`));
			assert.equal(seen, mine, `A sees ${seen} of ${all} rows in ${table}, owns ${mine}`);
			const foreign = Number(asUser(a.id, `SELECT count(*) FROM public.${table} WHERE user_id <> ${lit(a.id)};`));
			assert.equal(foreign, 0);
		});
	}

	test('without claims the authenticated role sees nothing', () => {
		const n = psql(`BEGIN; SET LOCAL ROLE authenticated; SELECT count(*) FROM public.integrations; ROLLBACK;`);
		assert.equal(Number(n), 0);
	});

	for (const table of ['oauth_states', 'integration_webhooks', 'integration_events', 'integration_sync_jobs']) {
		test(`${table}: RLS enabled, a stranger sees none of its rows`, () => {
			const rls = psql(`SELECT relrowsecurity FROM pg_class WHERE oid = 'public.${table}'::regclass;`);
			assert.equal(rls, 't', `${table} has RLS disabled`);
			const seen = Number(asUser(newUser().id, `SELECT count(*) FROM public.${table};`));
			assert.equal(seen, 0);
		});
	}

	test('INSERT of an integration for another user is refused', () => {
		const r = asUserTry(a.id, `INSERT INTO public.integrations (user_id, provider, auth_type, status)
			VALUES (${lit(b.id)}, 'openai', 'api_key', 'connected');`);
		assert.equal(r.ok, false, 'the insert for another user went through');
		assert.match(r.err, /row-level security|permission denied/i);
	});

	test('INSERT of a credentials row for another user is refused', () => {
		const r = asUserTry(a.id, `INSERT INTO public.credentials (id, integration_id, user_id, provider, key_id, secret)
			VALUES (gen_random_uuid(), ${lit(ib.id)}, ${lit(b.id)}, 'openai', 'k', 'v1.x');`);
		assert.equal(r.ok, false);
		assert.match(r.err, /row-level security|permission denied/i);
	});

	// The caller's own row (user_id = the caller, as RLS demands) pointing at
	// another user's integration: the link is keyed on (integration_id, user_id).
	const ownRowFor = {
		credentials: (i) => `INSERT INTO public.credentials (id, integration_id, user_id, provider, key_id, secret)
			VALUES (gen_random_uuid(), ${lit(i)}, ${lit(a.id)}, 'openai', 'k', 'v1.x')`,
		integration_webhooks: (i) => `INSERT INTO public.integration_webhooks (user_id, integration_id, provider, key_id, secrets)
			VALUES (${lit(a.id)}, ${lit(i)}, 'github', 'k', 'v1.x')`,
		integration_logs: (i) => `INSERT INTO public.integration_logs (integration_id, user_id, action, message)
			VALUES (${lit(i)}, ${lit(a.id)}, 'forged', 'forged')`,
		integration_sync_jobs: (i) => `INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id)
			VALUES ('bootstrap', ${lit(i)}, ${lit(a.id)})`,
	};
	for (const [table, row] of Object.entries(ownRowFor)) {
		test(`${table}: one's own row cannot point at another user's integration`, () => {
			// credentials: a target without a credential yet, or the one-per-integration key answers first
			const target = table !== 'credentials' ? ib.id : psql(`INSERT INTO public.integrations
				(user_id, provider, connection, auth_type, status) VALUES (${lit(b.id)}, 'openai',
				'rls-bare-' || gen_random_uuid(), 'api_key', 'pending') RETURNING id;`);
			const r = asUserTry(a.id, `${row(target)};`);
			assert.equal(r.ok, false, `a row of A's links to B's integration in ${table}`);
			assert.match(r.err, /integration_owner_fkey/);
			if (table !== 'credentials') { // A's integration already has its one credential
				const ok = asUser(a.id, `${row(ia.id)} RETURNING 'linked';`);
				assert.match(ok, /linked/, 'the control (A\'s own integration) was refused');
			}
		});
	}

	test('integration_events: a user cannot store an event (it could claim a delivery\'s id before the provider sends it)', () => {
		const r = asUserTry(a.id, `INSERT INTO public.integration_events (provider, event_id, user_id)
			VALUES ('github', gen_random_uuid()::text, ${lit(a.id)});`);
		assert.equal(r.ok, false, 'a user stored an event');
		assert.match(r.err, /permission denied/i);
	});

	test('integration_sync_jobs: a user\'s own job takes the queue\'s defaults; service kinds are refused', () => {
		const row = asUser(a.id, `INSERT INTO public.integration_sync_jobs (kind, user_id, attempts, max_attempts, run_at,
			status, locked_by, locked_until) VALUES ('revoke_retry', ${lit(a.id)}, 2147483647, 2147483647, '-infinity',
			'running', 'me', 'infinity') RETURNING concat_ws('|', status, attempts, max_attempts, run_at > now() - interval '1 minute',
			coalesce(locked_by, '-'), coalesce(locked_until::text, '-'));`);
		assert.equal(row, 'queued|0|10|t|-|-', 'a user chose the queue\'s own columns');
		for (const kind of ['refresh', 'webhook']) {
			const r = asUserTry(a.id, `INSERT INTO public.integration_sync_jobs (kind, user_id) VALUES (${lit(kind)}, ${lit(a.id)});`);
			assert.equal(r.ok, false, `a user queued a ${kind} job`);
			assert.match(r.err, /queued by the service only/);
		}
		const big = asUserTry(a.id, `INSERT INTO public.integration_sync_jobs (kind, user_id, payload)
			VALUES ('revoke_retry', ${lit(a.id)}, jsonb_build_object('x', repeat('a', 70000)));`);
		assert.equal(big.ok, false, 'a 70 KB payload was queued');
	});

	test('integration_sync_jobs: a user cannot flood the shared queue (100 of his jobs waiting at most)', () => {
		const u = newUser();
		const pending = () => Number(psql(`SELECT count(*) FROM public.integration_sync_jobs WHERE user_id = ${lit(u.id)};`));
		const flood = asUserTry(u.id, `INSERT INTO public.integration_sync_jobs (kind, user_id)
			SELECT 'bootstrap', ${lit(u.id)} FROM generate_series(1, 20000);`, { commit: true });
		assert.equal(flood.ok, false, 'a user queued 20000 jobs');
		assert.match(flood.err, /too many jobs are waiting/);
		assert.equal(pending(), 0, 'the refused insert left rows behind');
		asUser(u.id, `INSERT INTO public.integration_sync_jobs (kind, user_id)
			SELECT 'bootstrap', ${lit(u.id)} FROM generate_series(1, 100);`, { commit: true });
		assert.equal(pending(), 100, 'a hundred are allowed');
		const more = asUserTry(u.id, `INSERT INTO public.integration_sync_jobs (kind, user_id) VALUES ('revoke_retry', ${lit(u.id)});`);
		assert.equal(more.ok, false, 'the 101st waiting job was queued');
		// finished ones do not count
		psql(`UPDATE public.integration_sync_jobs SET status = 'succeeded', finished_at = now() WHERE user_id = ${lit(u.id)};`);
		assert.equal(asUser(u.id, `INSERT INTO public.integration_sync_jobs (kind, user_id) VALUES ('revoke_retry', ${lit(u.id)})
			RETURNING status;`), 'queued');
		psql(`DELETE FROM public.integration_sync_jobs WHERE user_id = ${lit(u.id)};`);
	});

	test('integration_sync_jobs: a user sees his jobs\' progress, not their payload (a sealed credential to replay)', () => {
		const status = asUser(a.id, `INSERT INTO public.integration_sync_jobs (kind, user_id, payload)
			VALUES ('revoke_retry', ${lit(a.id)}, '{"secret":"v1.sealed"}') RETURNING status;`);
		assert.equal(status, 'queued');
		const r = asUserTry(a.id, `INSERT INTO public.integration_sync_jobs (kind, user_id, payload)
			VALUES ('revoke_retry', ${lit(a.id)}, '{"secret":"v1.sealed"}');
			SELECT payload FROM public.integration_sync_jobs;`);
		assert.equal(r.ok, false, 'a user read a job\'s payload');
		assert.match(r.err, /permission denied/i);
	});

	test('integration_webhooks: one\'s webhook row cannot be moved onto another user\'s integration', () => {
		const moved = asUserTry(a.id, `${ownRowFor.integration_webhooks(ia.id)};
			UPDATE public.integration_webhooks SET integration_id = ${lit(ib.id)} WHERE integration_id = ${lit(ia.id)};`);
		assert.equal(moved.ok, false, 'A moved its webhook row onto B\'s integration');
		assert.match(moved.err, /integration_owner_fkey/);
	});

	test('INSERT for oneself is allowed (control)', () => {
		const out = asUser(a.id, `INSERT INTO public.integrations (user_id, provider, connection, auth_type)
			VALUES (${lit(a.id)}, 'openai', 'rls-control', 'api_key') RETURNING 'inserted';`);
		assert.match(out, /inserted/);
		assert.equal(countRows('integrations', `user_id = ${lit(a.id)} AND connection = 'rls-control'`), 0, 'rolled back');
	});

	test('UPDATE and DELETE of another user\'s rows touch nothing; moving one\'s row to another user is refused', () => {
		const upd = asUser(a.id, `WITH u AS (UPDATE public.integrations SET status = 'revoked' WHERE id = ${lit(ib.id)} RETURNING 1) SELECT count(*) FROM u;`);
		assert.equal(Number(upd), 0);
		const d = asUser(a.id, `WITH d AS (DELETE FROM public.integrations RETURNING user_id) SELECT count(*) FILTER (WHERE user_id <> ${lit(a.id)}) FROM d;`);
		assert.equal(Number(d), 0);
		assert.equal(countRows('integrations', `id = ${lit(ib.id)} AND status = 'connected'`), 1);
		const move = asUserTry(a.id, `UPDATE public.integrations SET user_id = ${lit(b.id)} WHERE id = ${lit(ia.id)};`);
		assert.equal(move.ok, false, 'a user moved its row to another user');
		assert.match(move.err, /row-level security/i);
	});
});

describe('the programs\' login role', () => {
	test('intauth_app exists and is not superuser, not BYPASSRLS, cannot create roles or databases', () => {
		const r = psql(`SELECT concat_ws(',', rolsuper::int, rolbypassrls::int, rolcreaterole::int, rolcreatedb::int, rolcanlogin::int)
			FROM pg_roles WHERE rolname = 'intauth_app';`);
		assert.equal(r, '0,0,0,0,1', `intauth_app (super,bypassrls,createrole,createdb,login): ${r || 'missing'}`);
	});

	test('intauth_app owns no table, sequence, function or schema', () => {
		const tables = psql(`SELECT string_agg(c.relname, ',') FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
			WHERE r.rolname = 'intauth_app';`);
		assert.equal(tables, '', `intauth_app owns: ${tables}`);
		const fns = psql(`SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = 'intauth_app';`);
		assert.equal(fns, '0');
		const schemas = psql(`SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = 'intauth_app';`);
		assert.equal(schemas, '0');
		const owner = psql(`SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'
			AND tablename IN ('integrations', 'credentials', 'integration_logs');`);
		assert.notEqual(owner, 'intauth_app');
	});

	test('intauth_app is not a member of a role that bypasses RLS or is superuser (except service_role by design)', () => {
		const r = psql(`SELECT coalesce(string_agg(g.rolname, ','), '') FROM pg_roles g
			WHERE pg_has_role('intauth_app', g.oid, 'MEMBER') AND g.rolname <> 'intauth_app'
			AND (g.rolsuper OR (g.rolbypassrls AND g.rolname <> 'service_role'));`);
		assert.equal(r, '');
	});

	test('the running programs connect as intauth_app', async () => {
		// make sure every program has a connection
		const u = newUser();
		assertOk(await storeCredentials(u.token, apiKeyBody()));
		const users = psql(`SELECT coalesce(string_agg(DISTINCT usename, ','), '') FROM pg_stat_activity
			WHERE datname = 'intauth' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
			AND usename <> 'postgres';`);
		assert.equal(users, 'intauth_app', `programs log in as: ${users}`);
		const supers = psql(`SELECT count(*) FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename
			WHERE a.application_name = 'intauth' AND r.rolsuper;`);
		assert.equal(supers, '0', 'a program is connected as a superuser');
	});
});
