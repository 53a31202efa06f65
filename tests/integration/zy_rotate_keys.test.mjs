// Key rotation (SPEC §6, `intauthctl rotate-keys`): every stored secret is
// re-encrypted under a new key while requests keep writing under the old one,
// and nothing is lost: each integration still answers the last secret stored
// for it, first with the programs holding the new key and the old one, then
// with the new key alone.
//
// What is rotated here: credentials rows (stored before and during the run,
// some replaced while it runs), a webhook endpoint's signing secrets
// (integration_webhooks, from intauthctl webhook-add), OAuth connect flows left
// in flight across the rotation (their sealed PKCE verifiers in oauth_states),
// and a revoke_retry job's sealed credential (the provider's revocation
// endpoint failing). The webhook, the flows and the job are used after the
// rotation, by programs and a worker restarted with the new key, which proves
// those ciphertexts open too.
//
// Runs near the end (zy_, before zz_database_down): it restarts the stack
// twice (scripts/stack down/up) and leaves it running with the new key as the
// only key in ENV_FILE.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { consent, introspect } from '../oauth/consent.mjs';
import {
	ENV_FILE, INTAUTHCTL, PG_PORT, PG_SOCKET_DIR, ROOT, apiKeyBody, assertOk, basicBody, fn, get,
	asUser, getCredentials, lit, logTail, newUser, oauthBody, poll, post, psql, readEnvFile, serviceToken, show,
	storeCredentials,
} from './lib.mjs';

const execFileP = promisify(execFile);
const ISSUER = process.env.OAUTH_ISSUER;
const CLIENT = { id: process.env.TESTOIDC_CLIENT_ID, secret: process.env.TESTOIDC_CLIENT_SECRET };
const STACK = join(ROOT, 'scripts', 'stack');
const ENV0 = readEnvFile();
const OLD_KEY = ENV0.CREDENTIAL_ENCRYPTION_KEY;
const DB_URL = ENV0.DATABASE_URL || `host=${PG_SOCKET_DIR} port=${PG_PORT} dbname=intauth user=intauth_app`;

/** Runs intauthctl with the stack's database and the given keys (environment wins over ENV_FILE). */
async function intauthctl(args, { key, previous } = {}) {
	const env = { ...process.env, ENV_FILE, DATABASE_URL: DB_URL };
	delete env.CREDENTIAL_ENCRYPTION_KEY;
	delete env.CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS;
	if (key) env.CREDENTIAL_ENCRYPTION_KEY = key;
	if (previous) env.CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS = previous;
	try {
		const { stdout, stderr } = await execFileP(INTAUTHCTL, args, { env, encoding: 'utf8', timeout: 60000 });
		return { code: 0, stdout, stderr };
	} catch (e) {
		return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout || '', stderr: e.stderr || e.message };
	}
}

/** rotate-keys: exit code, the current kid and the counts per table. */
// 4: rows no key opens; other files leave such rows behind on purpose
async function rotateKeys(keys, { batch = 5, codes = [0, 3, 4] } = {}) {
	const r = await intauthctl(['rotate-keys', '--batch', String(batch)], keys);
	const what = `rotate-keys exited ${r.code}\n${r.stdout}\n${r.stderr}`;
	assert.ok(codes.includes(r.code), what);
	const kid = /current key ([0-9a-f]{8})/.exec(r.stdout)?.[1];
	assert.ok(kid, what);
	const tables = {};
	for (const m of r.stdout.matchAll(/^(\S+)\s+rotated (\d+) changed (\d+) failed (\d+) remaining (\d+)$/gm)) {
		tables[m[1]] = { rotated: +m[2], changed: +m[3], failed: +m[4], remaining: +m[5] };
	}
	for (const t of ['credentials', 'integration_webhooks', 'oauth_states', 'revoke_retry_jobs']) {
		assert.ok(tables[t], `no counts for ${t}: ${what}`);
	}
	return { ...r, kid, tables, what };
}

/** Rewrites the two key lines of ENV_FILE, keeping every other line (and the file's mode). */
function setEnvKeys(current, previous) {
	const lines = readFileSync(ENV_FILE, 'utf8').split('\n')
		.filter((l) => !/^\s*(export\s+)?CREDENTIAL_ENCRYPTION_(KEY|PREVIOUS_KEYS)\s*=/.test(l));
	while (lines.length && lines.at(-1) === '') lines.pop();
	lines.push(`CREDENTIAL_ENCRYPTION_KEY=${current}`);
	if (previous) lines.push(`CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS=${previous}`);
	const tmp = `${ENV_FILE}.rotate-test`;
	writeFileSync(tmp, `${lines.join('\n')}\n`);
	chmodSync(tmp, statSync(ENV_FILE).mode & 0o7777);
	renameSync(tmp, ENV_FILE);
}

/** Restarts every program and the worker so they read ENV_FILE again. */
async function restartStack(t) {
	const opts = { cwd: ROOT, env: process.env, encoding: 'utf8', timeout: 120000 };
	const t0 = Date.now();
	const down = await execFileP(STACK, ['down'], opts);
	const t1 = Date.now();
	const { stdout, stderr } = await execFileP(STACK, ['up'], opts);
	t?.diagnostic(`scripts/stack down took ${t1 - t0} ms, up ${Date.now() - t1} ms`);
	assert.match(stdout, /BASE_URL=/, `scripts/stack up: ${stdout}\n${down.stderr}\n${stderr}`);
}

const kidOf = (envelope) => /^v[12]\.([0-9a-f]{8})\./.exec(envelope || '')?.[1];

/** The secret part of a stored body, as getCredentials answers it. */
function expectedCredentials(body) {
	const c = body.credentials;
	if (body.auth_type === 'api_key') return { api_key: c.api_key };
	if (body.auth_type === 'basic') return { username: c.username, password: c.password };
	return { access_token: c.access_token, token_type: c.token_type }; // the refresh token is never answered
}

/** Every integration answers its latest stored secret. */
async function assertAllSecrets(latest, when) {
	const entries = [...latest.values()];
	for (let i = 0; i < entries.length; i += 10) {
		await Promise.all(entries.slice(i, i + 10).map(async (e) => {
			const res = await getCredentials({ integration_id: e.id });
			assert.equal(res.status, 200, `${when}: getCredentials ${e.id}: ${show(res)}\n${logTail(10, /decrypt|error/)}`);
			const want = expectedCredentials(e.body);
			for (const [k, v] of Object.entries(want)) {
				assert.equal(res.json.credentials?.[k], v, `${when}: integration ${e.id} answers another ${k} than last stored`);
			}
		}));
	}
}

/** auth-start for testoidc: the authorization URL and the browser's flow cookie. */
async function startFlow(user) {
	const q = new URLSearchParams({ redirect_to: `${process.env.BASE_URL}/` });
	const start = await get(`/api/auth/testoidc/start?${q}`, { token: user.token });
	assert.equal(start.status, 200, `auth-start: ${show(start)}`);
	const cookie = (start.headers.getSetCookie?.() ?? []).map((c) => c.split(';')[0]).find((c) => c.startsWith('intauth_flow='));
	assert.ok(cookie, 'auth-start set no intauth_flow cookie');
	return { url: start.json.url, cookie, state: new URL(start.json.url).searchParams.get('state') };
}

/** Consent at the test server, then auth-callback: answers the outcome in the redirect. */
async function finishFlow(flow) {
	const back = new URL(await consent(flow.url));
	const cb = await get(`${back.pathname}${back.search}`, { headers: { cookie: flow.cookie } });
	assert.equal(cb.status, 302, `auth-callback: ${show(cb)}`);
	return new URL(cb.headers.get('location'), process.env.BASE_URL).searchParams;
}

const oauthMode = (mode) => fetch(`${ISSUER}/_test/mode`, {
	method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(mode),
}).then((r) => assert.equal(r.status, 200, 'the test OAuth server refused /_test/mode'));

describe('intauthctl rotate-keys', () => {
	let touchedEnv = false;
	let newKey;

	// a failed run must not leave the suite without a stack or without a key
	// that opens what was written: the new key with the old one as previous
	after(async () => {
		if (ISSUER) await oauthMode({ revocation: 'normal' }).catch(() => {});
		if (!touchedEnv || !newKey) return;
		const env = readEnvFile();
		if (env.CREDENTIAL_ENCRYPTION_KEY !== newKey) setEnvKeys(newKey, OLD_KEY);
		await execFileP(STACK, ['up'], { cwd: ROOT, env: process.env, timeout: 120000 }).catch(() => {});
	});

	test('re-encrypts every secret under the new key while requests run, and loses none', { timeout: 170000 }, async (t) => {
		const t0 = Date.now();
		const mark = (what) => t.diagnostic(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
		assert.ok(OLD_KEY, `no CREDENTIAL_ENCRYPTION_KEY in ${ENV_FILE}`);
		assert.ok(ISSUER, 'OAUTH_ISSUER is exported by tests/run');
		newKey = (await intauthctl(['gen-key'])).stdout.trim();
		assert.ok(newKey && newKey !== OLD_KEY, 'gen-key gave no fresh key');

		// --- before: secrets under the old key ------------------------------
		const users = [newUser(), newUser(), newUser(), newUser()];
		const latest = new Map(); // user|provider|connection -> { id, body, user }
		const makers = [apiKeyBody, basicBody, oauthBody];
		const store = async (user, body, key) => {
			const res = await storeCredentials(user.token, body);
			assert.equal(res.status, 200, `storeCredentials: ${show(res)}`);
			latest.set(key, { id: res.json.integration.id, body, user });
		};
		const initial = [];
		for (let i = 0; i < 72; i++) {
			const user = users[i % users.length];
			const body = makers[i % 3]({ connection: `rot-${i}` });
			initial.push([user, body, `${user.id}|${body.provider}|rot-${i}`]);
		}
		for (let i = 0; i < initial.length; i += 10) await Promise.all(initial.slice(i, i + 10).map((a) => store(...a)));
		mark('stored');
		const ours = `user_id IN (${users.map((u) => lit(u.id)).join(',')})`;
		const oldKid = psql(`SELECT DISTINCT key_id FROM public.credentials WHERE ${ours};`);
		assert.match(oldKid, /^[0-9a-f]{8}$/, 'our rows are not all under one key');
		// one more, left alone, keeps its old ciphertext for the control at the end
		const controlUser = newUser();
		const controlBody = apiKeyBody({ connection: 'rot-control' });
		const control = { id: assertOk(await storeCredentials(controlUser.token, controlBody)).integration.id, body: controlBody };
		const controlRow = psql(`SELECT id || ' ' || secret FROM public.credentials WHERE integration_id = ${lit(control.id)};`).split(' ');
		assert.equal(kidOf(controlRow[1]), oldKid);

		// a webhook endpoint with its own signing secret
		const hookUser = newUser();
		const hookSecret = `wh_${randomBytes(24).toString('base64url')}`;
		const add = await intauthctl(['webhook-add', '--user', hookUser.id, '--provider', 'github', '--secret', hookSecret]);
		assert.equal(add.code, 0, `webhook-add: ${add.stderr}`);
		const hookId = add.stdout.trim();
		const hookKid = () => psql(`SELECT key_id || ' ' || split_part(secrets, '.', 2) FROM public.integration_webhooks WHERE id = ${lit(hookId)};`);
		assert.equal(hookKid(), `${oldKid} ${oldKid}`, 'the webhook secrets are not under the old key');

		// an OAuth flow left in flight, and a revocation the provider refuses
		// (its credential waits, sealed, in a revoke_retry job)
		const flowA = await startFlow(newUser());
		const flowB = await startFlow(newUser());
		const verifierOf = (flow) => psql(`SELECT code_verifier FROM public.oauth_states WHERE state_hash = ${lit(
			createHash('sha256').update(flow.state).digest('base64url'))};`);
		for (const f of [flowA, flowB]) assert.equal(kidOf(verifierOf(f)), oldKid, 'an in-flight verifier is not under the old key');

		const revoker = newUser();
		const connectFlow = await startFlow(revoker);
		assert.equal((await finishFlow(connectFlow)).get('status'), 'connected', 'the testoidc connect failed');
		const revokedId = psql(`SELECT id FROM public.integrations WHERE user_id = ${lit(revoker.id)} AND provider = 'testoidc';`);
		// a connection whose old-key envelope is kept, to be put back at the end
		const keeper = newUser();
		assert.equal((await finishFlow(await startFlow(keeper))).get('status'), 'connected', 'the keeper connect failed');
		const keeperId = psql(`SELECT id FROM public.integrations WHERE user_id = ${lit(keeper.id)} AND provider = 'testoidc';`);
		const keeperRow = psql(`SELECT id || ' ' || secret FROM public.credentials WHERE integration_id = ${lit(keeperId)};`).split(' ');
		const keeperToken = assertOk(await getCredentials({ integration_id: keeperId })).credentials.access_token;
		await oauthMode({ revocation: 'error503' });
		assertOk(await post(fn('revokeToken'), { integration_id: revokedId }, { token: serviceToken() }));
		const jobRow = () => psql(`SELECT id || ' ' || status || ' ' || coalesce(payload->>'secret', '-') FROM public.integration_sync_jobs WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(revokedId)};`).split(' ');
		const [jobId, , jobSecret] = jobRow();
		assert.ok(jobId, 'revokeToken queued no revoke_retry job while the provider failed');
		assert.equal(kidOf(jobSecret), oldKid, 'the revoke_retry job holds no credential sealed under the old key');
		// the worker (WORKER_BACKOFF_BASE_MS is short here) is kept off the job
		// until the end, so that what finally opens it is the rotated ciphertext
		const parked = await poll(() => psql(`UPDATE public.integration_sync_jobs SET run_at = now() + interval '1 hour',`
			+ ` max_attempts = 100 WHERE id = ${jobId} AND status <> 'running' RETURNING id;`), { timeoutMs: 10000, intervalMs: 50 });
		assert.ok(parked, 'the revoke_retry job stayed running');

		mark('flows and revoke_retry job ready');
		// --- rotate while writers keep storing under the old key ------------
		const keys = [...latest.keys()];
		// one row the writers leave alone: its old ciphertext is put back later
		// under a key_id column that claims the new key
		const liarBody = apiKeyBody({ connection: 'rot-liar' });
		await store(users[0], liarBody, `${users[0].id}|${liarBody.provider}|rot-liar`);
		const liarRow = psql(`SELECT c.id || ' ' || c.secret FROM public.credentials c JOIN public.integrations i`
			+ ` ON i.id = c.integration_id WHERE i.user_id = ${lit(users[0].id)} AND i.connection = 'rot-liar';`).split(' ');
		assert.equal(kidOf(liarRow[1]), oldKid);
		let rotating = true;
		let written = 0;
		let fresh = 0;
		const writer = async (w) => {
			// each writer owns its keys, so "the last 200" for a key is well defined
			const mine = keys.filter((_, i) => i % 6 === w);
			for (let n = 0; rotating || n < 10; n++) {
				if (n % 3 === 2) {
					const user = users[w % users.length];
					const body = apiKeyBody({ connection: `rot-new-${w}-${fresh++}` });
					await store(user, body, `${user.id}|${body.provider}|${body.connection}`);
				} else {
					const key = mine[n % mine.length];
					const { user, body } = latest.get(key);
					const next = makers[['openai', 'twilio', 'github'].indexOf(body.provider)]({ connection: body.connection });
					await store(user, next, key);
				}
				written++;
			}
		};
		const writers = Promise.all([0, 1, 2, 3, 4, 5].map(writer));
		let first;
		let whileRunning;
		try {
			assert.ok(await poll(() => written >= 12, { timeoutMs: 20000, intervalMs: 20 }), 'the writers did not get going');
			const during = written;
			first = await rotateKeys({ key: newKey, previous: OLD_KEY });
			whileRunning = written - during;
		} finally {
			rotating = false;
			await writers;
		}
		mark(`first rotate-keys done, ${whileRunning} stores while it ran`);
		assert.notEqual(first.kid, oldKid, 'the new key has the old key\'s kid');
		assert.ok(whileRunning > 0, 'no request completed while rotate-keys ran: the test proved nothing');
		assert.ok(first.tables.credentials.rotated > 0, first.what);
		assert.ok(first.tables.integration_webhooks.rotated >= 1, `the webhook secrets were not rotated: ${first.what}`);
		assert.ok(first.tables.oauth_states.rotated >= 2, `the in-flight verifiers were not rotated: ${first.what}`);
		assert.ok(first.tables.revoke_retry_jobs.rotated >= 1, `the revoke_retry job was not rotated: ${first.what}`);

		// the key_id column is the owner's to write (RLS lets him update his
		// own row): a column naming the new key must not hide an old envelope
		asUser(users[0].id, `UPDATE public.credentials SET key_id = ${lit(first.kid)}, secret = ${lit(liarRow[1])}`
			+ ` WHERE id = ${lit(liarRow[0])};`, { commit: true });
		assert.equal(psql(`SELECT key_id || ' ' || left(secret, 12) FROM public.credentials WHERE id = ${lit(liarRow[0])};`),
			`${first.kid} v2.${oldKid}.`, 'the owner could not put the old envelope back');
		// what programs still on the old key wrote meanwhile is picked up by a re-run
		const leftBefore = Number(psql(`SELECT count(*) FROM public.credentials WHERE ${ours} AND key_id <> ${lit(first.kid)};`));
		const second = await rotateKeys({ key: newKey, previous: OLD_KEY });
		assert.equal(second.kid, first.kid);
		assert.ok(second.tables.credentials.rotated >= leftBefore, `re-run rotated ${second.tables.credentials.rotated} of our ${leftBefore} old rows: ${second.what}`);
		const rows = psql(`SELECT key_id || ' ' || left(secret, 12) FROM public.credentials WHERE ${ours};`).split('\n');
		assert.equal(rows.length, latest.size, 'a credentials row is missing or extra');
		for (const r of rows) assert.equal(r, `${first.kid} v2.${first.kid}.`, 'a row is not under the new key after the re-run');
		for (const f of [flowA, flowB]) assert.equal(kidOf(verifierOf(f)), first.kid, 'an in-flight verifier is not under the new key');
		assert.equal(kidOf(psql(`SELECT secret FROM public.credentials WHERE integration_id = ${lit(control.id)};`)), first.kid);
		assert.equal(kidOf(jobRow()[2]), first.kid, 'the revoke_retry credential is not under the new key');
		assert.equal(hookKid(), `${first.kid} ${first.kid}`, 'the webhook secrets are not under the new key');

		// a row no key of the ring opens is not "run again" (exit 3): it is
		// reported apart (exit 4), with its id, and left as it is
		const junkBody = apiKeyBody({ connection: 'rot-junk' });
		const junkIntegration = assertOk(await storeCredentials(users[1].token, junkBody)).integration.id;
		const junkId = psql(`SELECT id FROM public.credentials WHERE integration_id = ${lit(junkIntegration)};`);
		asUser(users[1].id, `UPDATE public.credentials SET secret = 'v1.deadbeef.AAAA' WHERE id = ${lit(junkId)};`, { commit: true });
		const junk = await rotateKeys({ key: newKey, previous: OLD_KEY }, { codes: [4] });
		assert.equal(junk.tables.credentials.failed, second.tables.credentials.failed + 1, junk.what);
		assert.ok(junk.stderr.includes(junkId) || junk.stdout.includes(junkId), `the row that does not open is not named: ${junk.what}`);
		assert.equal(psql(`SELECT secret FROM public.credentials WHERE id = ${lit(junkId)};`), 'v1.deadbeef.AAAA');
		psql(`DELETE FROM public.integrations WHERE id = ${lit(junkIntegration)};`);

		// a disconnect while the programs still hold only the old key, of a
		// connection rotate-keys has already moved to the new one: it does not
		// open, so the local disconnect happens and the revocation waits, sealed,
		// in a job; the worker restarted with both keys carries it out below
		const lateUser = newUser();
		assert.equal((await finishFlow(await startFlow(lateUser))).get('status'), 'connected', 'the late connect failed');
		const lateId = psql(`SELECT id FROM public.integrations WHERE user_id = ${lit(lateUser.id)} AND provider = 'testoidc';`);
		const lateToken = assertOk(await getCredentials({ integration_id: lateId })).credentials.access_token;
		await rotateKeys({ key: newKey, previous: OLD_KEY });
		assert.equal(kidOf(psql(`SELECT secret FROM public.credentials WHERE integration_id = ${lit(lateId)};`)), first.kid);
		await oauthMode({ revocation: 'normal' });
		assert.equal(assertOk(await post(fn('revokeToken'), { integration_id: lateId }, { token: serviceToken() })).integration.status, 'revoked');
		const lateJob = () => psql(`SELECT id || ' ' || status FROM public.integration_sync_jobs WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(lateId)};`).split(' ');
		const [lateJobId] = lateJob();
		assert.ok(lateJobId, 'no revoke_retry job for the credential that did not open');
		assert.ok(await poll(() => psql(`UPDATE public.integration_sync_jobs SET run_at = now() + interval '1 hour',`
			+ ` max_attempts = 100 WHERE id = ${lateJobId} AND status <> 'running' RETURNING id;`), { timeoutMs: 10000, intervalMs: 50 }),
		'the late revoke_retry job stayed running');
		assert.equal((await introspect(ISSUER, lateToken, CLIENT)).active, true, 'revoked before a key opened it');

		// --- programs on the new key, the old one still known ---------------
		touchedEnv = true;
		setEnvKeys(newKey, OLD_KEY);
		await restartStack(t);
		mark('restarted with new + previous');
		// the late revocation: the worker now opens the job and the credential in it
		psql(`UPDATE public.integration_sync_jobs SET run_at = now() WHERE id = ${lateJobId};`);
		assert.ok(await poll(() => lateJob()[1] === 'succeeded', { timeoutMs: 20000, intervalMs: 200 }),
			`the late revoke_retry job: ${lateJob().join(' ')}`);
		assert.equal((await introspect(ISSUER, lateToken, CLIENT)).active, false, 'the late credential was revoked at the provider');
		await assertAllSecrets(latest, 'new key + previous');
		const a = await finishFlow(flowA);
		assert.equal(a.get('status'), 'connected', `the flow started before the rotation did not finish: ${a}`);

		// --- the old key dropped: nothing needs it any more -----------------
		setEnvKeys(newKey, null);
		const third = await rotateKeys({ key: newKey });
		assert.equal(third.kid, first.kid);
		assert.equal(third.tables.credentials.rotated, 0, `a credential was still under the old key: ${third.what}`);
		assert.equal(Number(psql(`SELECT count(*) FROM public.credentials WHERE ${ours} AND key_id <> ${lit(first.kid)};`)), 0);
		await restartStack(t);
		mark('restarted with the new key only');
		await assertAllSecrets(latest, 'new key only');
		await assertAllSecrets(new Map([['control', control]]), 'new key only');
		// a delivery signed with the webhook's own secret still verifies
		const hookBody = JSON.stringify({ zen: 'Rotate keys.', hook_id: hookId, nonce: randomUUID() });
		const hook = await post(fn(`webhooks/github/${hookId}`), hookBody, {
			headers: {
				'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': randomUUID(),
				'x-hub-signature-256': `sha256=${createHmac('sha256', hookSecret).update(hookBody).digest('hex')}`,
			},
		});
		assert.deepEqual(assertOk(hook), { received: true, duplicate: false }, `webhook delivery after the rotation: ${show(hook)}`);
		const b = await finishFlow(flowB);
		assert.equal(b.get('status'), 'connected', `a flow started before the rotation did not finish on the new key alone: ${b}`);
		// the worker, on the new key alone, opens the rotated job and revokes
		await oauthMode({ revocation: 'normal' });
		psql(`UPDATE public.integration_sync_jobs SET run_at = now() WHERE id = ${jobId};`);
		const done = await poll(() => jobRow()[1] === 'succeeded', { timeoutMs: 20000, intervalMs: 250 });
		assert.ok(done, `the revoke_retry job did not succeed on the new key: ${jobRow().join(' ')}\n${logTail(10, /revoke|job/)}`);

		// control: the old ciphertext put back in its row no longer opens,
		// so the answers above came from the re-encrypted values
		psql(`UPDATE public.credentials SET key_id = ${lit(oldKid)}, secret = ${lit(controlRow[1])} WHERE id = ${lit(controlRow[0])};`);
		const stale = await getCredentials({ integration_id: control.id });
		assert.equal(stale.status, 500, `an old-key ciphertext still opened without the old key: ${show(stale)}`);
		psql(`DELETE FROM public.integrations WHERE id = ${lit(control.id)};`);

		// programs on the new key alone disconnect a credential still under the
		// old one (its old envelope put back): the job keeping it is sealed under
		// the new key, and rotate-keys, given the old key once more, looks
		// inside it and seals the credential itself again; the worker on the
		// new key alone then revokes it
		psql(`UPDATE public.credentials SET key_id = ${lit(oldKid)}, secret = ${lit(keeperRow[1])} WHERE id = ${lit(keeperRow[0])};`);
		assert.equal(assertOk(await post(fn('revokeToken'), { integration_id: keeperId }, { token: serviceToken() })).integration.status, 'revoked');
		const keeperJob = () => psql(`SELECT id || ' ' || status || ' ' || (payload ? 'unopened') || ' ' || coalesce(payload->>'secret', '-')`
			+ ` FROM public.integration_sync_jobs WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(keeperId)};`).split(' ');
		const [keeperJobId, , marked, keeperSealed] = keeperJob();
		assert.ok(keeperJobId && marked === 'true', `the job keeping the unopened credential: ${keeperJob().join(' ')}`);
		assert.equal(kidOf(keeperSealed), first.kid, 'the job is sealed under the programs\' key');
		assert.ok(await poll(() => psql(`UPDATE public.integration_sync_jobs SET run_at = now() + interval '1 hour',`
			+ ` max_attempts = 100 WHERE id = ${keeperJobId} AND status <> 'running' RETURNING id;`), { timeoutMs: 10000, intervalMs: 50 }),
		'the keeper job stayed running');
		const fourth = await rotateKeys({ key: newKey, previous: OLD_KEY });
		assert.ok(fourth.tables.revoke_retry_jobs.rotated >= 1, `rotate-keys did not look inside the job: ${fourth.what}`);
		assert.equal(keeperJob()[2], 'false', 'the job still says unopened');
		const without = await rotateKeys({ key: newKey });
		assert.equal(without.tables.revoke_retry_jobs.failed, 0, `the job still needs the old key: ${without.what}`);
		psql(`UPDATE public.integration_sync_jobs SET run_at = now() WHERE id = ${keeperJobId};`);
		assert.ok(await poll(() => keeperJob()[1] === 'succeeded', { timeoutMs: 20000, intervalMs: 200 }),
			`the keeper job: ${keeperJob().join(' ')}\n${logTail(10, /revoke|job/)}`);
		assert.equal((await introspect(ISSUER, keeperToken, CLIENT)).active, false, 'the old-key credential was revoked at the provider');
	});
});
