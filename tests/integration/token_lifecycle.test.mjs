// Token lifecycle (SPEC §8 refreshToken, revokeToken, healthCheck, getCredentials;
// SECURITY.md "Refresh", "Revocation", "Reliability") against the real
// authorization server of tests/oauth/server.mjs (oidc-provider): it rotates
// refresh tokens on every refresh and revokes the whole grant when a rotated
// one is used again, so a double refresh is not just wasteful but fatal.
//
// Integrations come from two places: the connect flow (connectTestOidc in
// lib.mjs) and, where a test must know the refresh token (introspection after
// revocation, rotation), tokens this file obtains from the server itself as the
// same client (code + PKCE) and hands to storeCredentials. The server's
// /_test/stats counts the refresh_token grants that really reached it.
//
// Rows are put inside the refresh window by setting expires_at (psql). The
// worker queues `refresh` jobs for connections about to expire every
// WORKER_SCHEDULE_SECONDS; it would refresh such rows behind the tests' back
// and make the counts below a matter of luck. So each row put in the window
// also gets a parked refresh job (queued, run_at a day ahead), which the
// scheduler respects (one refresh job per integration); they are deleted at
// the end. Measurements are printed as TAP comments (# ...).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
	ENV, INTAUTHCTL, ROOT, apiKeyBody, assertError, assertIntegration, assertOk, connectTestOidc, del, fn,
	getCredentials, holdRowLock, lit, newUser, poll, post, psql, psqlTry, serviceToken, show, sleep,
	storeCredentials, anonToken,
} from './lib.mjs';
import * as oauth from '../oauth/consent.mjs';

const execFileP = promisify(execFile);

const ISSUER = process.env.OAUTH_ISSUER;
const REDIRECT_URI = process.env.TESTOIDC_REDIRECT_URI;
const CLIENT = { id: process.env.TESTOIDC_CLIENT_ID, secret: process.env.TESTOIDC_CLIENT_SECRET, auth: 'client_secret_post' };
const WINDOW = Number(ENV.REFRESH_WINDOW_SECONDS || 600);
const PARK = 'token_lifecycle.test';

// The test server's controls. The psql calls below block this process's event
// loop for a while (execFileSync), so a kept-alive socket to the server may be
// closed by it (5 s idle) before undici notices: such an idempotent request is
// sent once more.
async function again(f) {
	try {
		return await f();
	} catch (e) {
		if (!['UND_ERR_SOCKET', 'ECONNRESET'].includes(e?.cause?.code)) throw e;
		return f();
	}
}
const { authorizationUrl, consent, pkcePair, token: tokenEndpoint } = oauth;
const stats = (...a) => again(() => oauth.stats(...a));
const requests = (...a) => again(() => oauth.requests(...a));
const setMode = (...a) => again(() => oauth.setMode(...a));
const introspect = (...a) => again(() => oauth.introspect(...a));

const refreshToken = (body, token = serviceToken(), opts = {}) => post(fn('refreshToken'), body, { token, ...opts });
const revokeToken = (body, token = serviceToken()) => post(fn('revokeToken'), body, { token });
const healthCheck = (token = serviceToken()) => post(fn('healthCheck'), {}, { token, timeoutMs: 60000 });
const grants = async () => (await stats(ISSUER)).token.refresh_token;
const idList = (ids) => `ARRAY[${ids.map(lit).join(',')}]::uuid[]`;

/** Tokens from the server for our client: authorization code + PKCE, exchanged here. */
async function obtainTokens() {
	const { verifier, challenge } = pkcePair();
	const loc = await consent(authorizationUrl(ISSUER, {
		clientId: CLIENT.id, redirectUri: REDIRECT_URI, state: randomBytes(16).toString('base64url'), challenge,
		login_hint: `tl-${randomBytes(4).toString('hex')}`,
	}));
	const code = new URL(loc).searchParams.get('code');
	assert.ok(code, `no code in ${loc}`);
	const r = await tokenEndpoint(ISSUER, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }, CLIENT);
	assert.equal(r.status, 200, `code exchange: ${JSON.stringify(r.body)}`);
	assert.ok(r.body.access_token && r.body.refresh_token, 'the server issued both tokens');
	return r.body;
}

/** A connected testoidc integration whose tokens this file knows. */
async function knownIntegration(user = newUser()) {
	const t = await obtainTokens();
	const body = {
		provider: 'testoidc', auth_type: 'oauth2',
		credentials: { access_token: t.access_token, refresh_token: t.refresh_token, token_type: t.token_type, expires_in: t.expires_in, scope: t.scope },
	};
	const i = assertOk(await storeCredentials(user.token, body)).integration;
	return { user, id: i.id, tokens: t, integration: i };
}

/**
 * The integration rows as the superuser sees them, with their credentials row
 * ("id key_id ciphertext", null when none) and log rows ([action, level,
 * message], oldest first): Map id → row. One psql call.
 */
function rows(ids) {
	const out = psql(`SELECT row_to_json(x)::text FROM (SELECT i.id, i.status, i.last_error, i.refresh_failures,
		i.next_refresh_at IS NOT NULL AND i.next_refresh_at > now() AS cooling, i.next_refresh_at,
		extract(epoch FROM i.expires_at - now()) AS expires_in, i.last_refreshed_at,
		i.last_health_check_at, extract(epoch FROM i.last_health_check_at) AS checked_epoch,
		(SELECT c.id || ' ' || c.key_id || ' ' || c.secret FROM public.credentials c WHERE c.integration_id = i.id) AS cred,
		coalesce((SELECT jsonb_agg(jsonb_build_array(l.action, l.level, l.message) ORDER BY l.id)
			FROM public.integration_logs l WHERE l.integration_id = i.id), '[]') AS logs
		FROM public.integrations i WHERE i.id = ANY(${idList(ids)})) x;`);
	return new Map(out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).map((r) => [r.id, r]));
}
const row = (id) => rows([id]).get(id) ?? null;
const logsOf = (r, action) => r.logs.filter((l) => l[0] === action);

/**
 * Puts these rows inside the refresh window (expiring in `seconds`) and parks
 * the worker's scheduler off them (see the top of the file). exclusive: other
 * rows that are due (other files' leftovers) get a cooldown, so that a
 * healthCheck sees exactly ours.
 */
function makeExpiring(ids, { seconds = 60, exclusive = false } = {}) {
	// the parked job first: the scheduler must never see the row due without it
	psql(`INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, run_at, payload)
			SELECT 'refresh', i.id, i.user_id, now() + interval '1 day', jsonb_build_object('parked_by', ${lit(PARK)})
			FROM public.integrations i WHERE i.id = ANY(${idList(ids)}) AND NOT EXISTS (
				SELECT 1 FROM public.integration_sync_jobs j WHERE j.integration_id = i.id AND j.kind = 'refresh'
				AND j.payload ->> 'parked_by' = ${lit(PARK)});
		UPDATE public.integrations SET expires_at = now() + make_interval(secs => ${seconds})
			WHERE id = ANY(${idList(ids)});
		${exclusive ? `UPDATE public.integrations SET next_refresh_at = now() + interval '1 day'
			WHERE status = 'connected' AND auth_type = 'oauth2'
			AND expires_at <= now() + make_interval(secs => ${WINDOW})
			AND (next_refresh_at IS NULL OR next_refresh_at <= now())
			AND NOT (id = ANY(${idList(ids)}));` : ''}`);
}

async function accessToken(id) {
	const res = await getCredentials({ integration_id: id });
	return assertOk(res).credentials.access_token;
}

before(async () => {
	assert.ok(ISSUER && CLIENT.id && CLIENT.secret && REDIRECT_URI, 'OAUTH_ISSUER and TESTOIDC_* come from tests/run');
	await setMode(ISSUER, { token: 'normal', revocation: 'normal', userinfo: 'normal' });
});

after(async () => {
	await setMode(ISSUER, { token: 'normal', revocation: 'normal', userinfo: 'normal' }).catch(() => {});
	// our rows leave the window before the scheduler may see them again
	psql(`UPDATE public.integrations SET expires_at = greatest(expires_at, now() + interval '1 hour')
			WHERE id IN (SELECT integration_id FROM public.integration_sync_jobs
				WHERE kind = 'refresh' AND payload ->> 'parked_by' = ${lit(PARK)});
		DELETE FROM public.integration_sync_jobs WHERE kind = 'refresh' AND payload ->> 'parked_by' = ${lit(PARK)};`);
});

// ---------------------------------------------------------------------------
describe('refreshToken: one provider call however many callers', () => {
	const burst = (k, body) => Promise.all(Array.from({ length: 20 }, () => refreshToken(body, k.user.token)));
	let forcedK;
	let dueK;
	let dueExpiry;

	test('20 concurrent forced refreshes: all 200, one refresh_token grant, one new expiry in every answer', async () => {
		const k = await knownIntegration();
		// an expiry the refresh will visibly move (the server grants an hour)
		psql(`UPDATE public.integrations SET expires_at = now() + interval '30 minutes' WHERE id = ${lit(k.id)};`);
		const g0 = await grants();
		const t0 = Date.now();
		const rs = await burst(k, { integration_id: k.id, force: true });
		const ms = Date.now() - t0;
		const g1 = await grants();
		for (const r of rs) {
			const j = assertOk(r);
			assert.equal(j.refreshed, true, `a forced refresh is satisfied by the one that ran: ${show(r)}`);
			assertIntegration(j.integration, { id: k.id, status: 'connected' });
		}
		assert.equal(g1 - g0, 1, `refresh_token grants at the server for 20 concurrent forced refreshes (${ms} ms)`);
		const expiries = new Set(rs.map((r) => r.json.integration.expires_at));
		assert.equal(expiries.size, 1, `one expiry in all answers: ${[...expiries]}`);
		assert.ok(Date.parse([...expiries][0]) > Date.now() + 50 * 60 * 1000, `the new expiry is the server's hour: ${[...expiries][0]}`);
		assert.equal(new Set(rs.map((r) => r.json.integration.last_refreshed_at)).size, 1, 'one last_refreshed_at');
		// the rotated-out refresh token is dead at the server; the new access token works
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, false, 'the old refresh token was rotated');
		const at = await accessToken(k.id);
		assert.notEqual(at, k.tokens.access_token);
		assert.equal((await introspect(ISSUER, at, CLIENT)).active, true, 'the new access token is active');
		console.log(`# 20 concurrent forced refreshes: ${g1 - g0} provider call, ${ms} ms for all answers`);
		forcedK = { ...k, at };
	});

	test('20 concurrent refreshes of an expiring token (not forced): one grant, one refreshed:true, same expiry', async () => {
		const k = await knownIntegration();
		makeExpiring([k.id]);
		const g0 = await grants();
		const rs = await burst(k, { integration_id: k.id });
		const g1 = await grants();
		for (const r of rs) assertIntegration(assertOk(r).integration, { id: k.id, status: 'connected' });
		assert.equal(g1 - g0, 1, 'one refresh_token grant for 20 concurrent refreshes of a due token');
		assert.equal(rs.filter((r) => r.json.refreshed === true).length, 1, 'exactly one caller refreshed');
		const expiries = new Set(rs.map((r) => r.json.integration.expires_at));
		assert.equal(expiries.size, 1, `one expiry in all answers: ${[...expiries]}`);
		dueExpiry = [...expiries][0];
		assert.ok(Date.parse(dueExpiry) > Date.now() + 50 * 60 * 1000, 'the new expiry');
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, false, 'the old refresh token was rotated');

		// now it is not due: refreshed:false and no call
		const g2 = await grants();
		const again = assertOk(await refreshToken({ integration_id: k.id }, k.user.token));
		assert.equal(again.refreshed, false);
		assert.equal(again.integration.expires_at, dueExpiry);
		assert.equal((await grants()) - g2, 0, 'a refresh that is not due makes no provider call');
		dueK = { ...k, at: await accessToken(k.id) };
	});

	test('the rotated refresh tokens were stored: later forced refreshes work and the grants stay alive', async () => {
		assert.ok(forcedK && dueK, 'the two bursts ran');
		// a forced refresh right after one that completed is satisfied by it
		// (lib/tokens.c FORCE_COALESCE_SECONDS): come back after that
		await sleep(2500);
		for (const k of [forcedK, dueK]) {
			const g0 = await grants();
			const later = assertOk(await refreshToken({ integration_id: k.id, force: true }, k.user.token));
			assert.equal(later.refreshed, true);
			assert.equal((await grants()) - g0, 1, 'a later forced refresh calls the server once');
			const last = (await requests(ISSUER)).filter((q) => q.endpoint === 'token').at(-1);
			assert.equal(last.grant_type, 'refresh_token');
			assert.equal(last.status, 200, `the server accepted the stored (rotated) refresh token: ${JSON.stringify(last)}`);
			const at = await accessToken(k.id);
			assert.notEqual(at, k.at);
			// reusing a rotated-out refresh token would have revoked the whole grant
			assert.equal((await introspect(ISSUER, at, CLIENT)).active, true, 'the grant is alive');
		}
	});
	test('a refresh that waited for the lock uses the credential committed meanwhile, not the one it saw before', async () => {
		// A new token that lives no longer than the window leaves the row due
		// after a refresh, so a second caller queued behind it refreshes too:
		// it must spend the refresh token that refresh stored, not the one
		// rotated out. Played with psql as the first refresh: the row holds
		// the spent credential E1, the lock holder writes the live E2 and
		// commits while refreshToken waits.
		const k = await knownIntegration();
		const cred = () => psql(`SELECT id || ' ' || secret FROM public.credentials WHERE integration_id = ${lit(k.id)};`).split(' ');
		const [id1, e1] = cred();
		assertOk(await refreshToken({ integration_id: k.id, force: true }, k.user.token));
		const [id2, e2] = cred();
		assert.notEqual(e1, e2);
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, false, 'E1\'s refresh token is spent');
		// the row holds the spent credential again, as before a first refresh
		psql(`UPDATE public.credentials SET id = ${lit(id1)}, secret = ${lit(e1)} WHERE integration_id = ${lit(k.id)};`);
		makeExpiring([k.id]);

		const holder = holdRowLock(k.id, {
			then: `UPDATE public.credentials SET id = ${lit(id2)}, secret = ${lit(e2)} WHERE integration_id = ${lit(k.id)};`,
		});
		await holder.ready;
		const g0 = await grants();
		// the holder writes E2 and commits only once this waits for its lock
		const waiting = refreshToken({ integration_id: k.id }, k.user.token);
		await holder.done;
		const res = await waiting;
		const j = assertOk(res);
		assert.equal(j.refreshed, true, show(res));
		assertIntegration(j.integration, { id: k.id, status: 'connected' });
		assert.equal((await grants()) - g0, 1, 'one grant');
		const last = (await requests(ISSUER)).filter((q) => q.endpoint === 'token').at(-1);
		assert.equal(last.status, 200, `the refresh spent the live refresh token (E2's), not E1's: ${JSON.stringify(last)}`);
		assert.equal((await introspect(ISSUER, await accessToken(k.id), CLIENT)).active, true, 'the grant is alive');
	});
});

// ---------------------------------------------------------------------------
describe('a row held past the lock timeout', () => {
	test('a refresh waiting behind it gives up with 409 conflict (busy, retry) before the statement timeout, and changes nothing', { timeout: 60000 }, async () => {
		const k = await knownIntegration();
		const before = row(k.id);
		// held for 40 s once the refresh waits: past the lock wait (19 s), not the test's patience
		const holder = holdRowLock(k.id, { holdS: 40 });
		await holder.ready;
		const g0 = await grants();
		const t0 = Date.now();
		const res = await refreshToken({ integration_id: k.id, force: true }, k.user.token, { timeoutMs: 40000 });
		const waited = Date.now() - t0;
		holder.stop();
		await holder.done.catch(() => {});
		assertError(res, 409, 'conflict');
		assert.ok(waited > 15000 && waited < 25000, `gave up after the lock timeout (19 s), not the statement's: ${waited} ms`);
		assert.equal((await grants()) - g0, 0, 'no provider call');
		assert.equal(row(k.id).cred, before.cred, 'the credential is untouched');
		assert.equal(assertOk(await refreshToken({ integration_id: k.id, force: true }, k.user.token)).refreshed, true, 'then it works');
	});
});

// ---------------------------------------------------------------------------
describe('refreshToken: who may, and what', () => {
	let k;
	before(async () => {
		k = await knownIntegration();
	});

	test('not due → refreshed:false, no provider call', async () => {
		const g0 = await grants();
		const j = assertOk(await refreshToken({ integration_id: k.id }, k.user.token));
		assert.equal(j.refreshed, false);
		assertIntegration(j.integration, { id: k.id, status: 'connected' });
		assert.equal((await grants()) - g0, 0);
	});

	test("a user's JWT on another user's integration → 404 (also by provider name)", async () => {
		const other = newUser();
		const g0 = await grants();
		assertError(await refreshToken({ integration_id: k.id, force: true }, other.token), 404, 'not_found');
		// by name, the other user's own (absent) connection is looked up
		assertError(await refreshToken({ provider: 'testoidc', force: true }, other.token), 404, 'not_found');
		assert.equal((await grants()) - g0, 0);
	});

	test('service role by user_id + provider refreshes; a user JWT naming another user_id → 403', async () => {
		const g0 = await grants();
		const j = assertOk(await refreshToken({ user_id: k.user.id, provider: 'testoidc', force: true }));
		assert.equal(j.refreshed, true);
		assert.equal(j.integration.id, k.id);
		assert.equal((await grants()) - g0, 1);
		assertError(await refreshToken({ user_id: newUser().id, provider: 'testoidc' }, k.user.token), 403, 'forbidden');
		// beside its own integration_id too, and for revokeToken; nothing is spent or revoked
		const g1 = await grants();
		assertError(await refreshToken({ integration_id: k.id, user_id: newUser().id, force: true }, k.user.token), 403, 'forbidden');
		assertError(await revokeToken({ integration_id: k.id, user_id: newUser().id }, k.user.token), 403, 'forbidden');
		assert.equal((await grants()) - g1, 0, 'a refused refresh made a provider call');
		assert.equal(row(k.id).status, 'connected', 'a refused revoke changed the status');
		// naming itself is fine
		assert.equal(assertOk(await refreshToken({ integration_id: k.id, user_id: k.user.id }, k.user.token)).integration.id, k.id);
	});

	test('bad bodies → 400', async () => {
		assertError(await refreshToken('{"integration_id": ', k.user.token), 400, 'invalid_json');
		assertError(await refreshToken('[1,2]', k.user.token), 400);
		assertError(await refreshToken({}, k.user.token), 400, 'invalid_request');
		assertError(await refreshToken({ integration_id: k.id, force: 'yes' }, k.user.token), 400, 'invalid_request');
		assertError(await refreshToken({ provider: 'testoidc' }), 400, 'invalid_request'); // service role needs user_id
		// a malformed id names no integration: 404 (or 400), never a database error
		const bad = await refreshToken({ integration_id: 'not-a-uuid' }, k.user.token);
		assert.ok([400, 404].includes(bad.status), show(bad));
		assertError(bad, bad.status, bad.status === 404 ? 'not_found' : 'invalid_request');
	});

	test('api_key integration → 200 refreshed:false', async () => {
		const u = newUser();
		const i = assertOk(await storeCredentials(u.token, apiKeyBody())).integration;
		const g0 = await grants();
		const j = assertOk(await refreshToken({ integration_id: i.id, force: true }, u.token));
		assert.equal(j.refreshed, false);
		assertIntegration(j.integration, { id: i.id, auth_type: 'api_key', status: 'connected' });
		assert.equal((await grants()) - g0, 0);
	});

	test('no JWT → 401; anon key → 401', async () => {
		assertError(await post(fn('refreshToken'), { integration_id: k.id }), 401, 'unauthorized');
		assertError(await refreshToken({ integration_id: k.id }, anonToken()), 401, 'unauthorized');
	});
});

// ---------------------------------------------------------------------------
describe('refreshToken: provider faults', () => {
	let k;
	before(async () => {
		k = await knownIntegration();
	});
	after(async () => {
		await setMode(ISSUER, { token: 'normal' });
	});

	const faults = [
		{ mode: 'down', status: 502, code: 'provider_error' },
		{ mode: 'error500', status: 502, code: 'provider_error' },
		{ mode: 'garbage', status: 502, code: 'provider_error' },
		{ mode: 'error503', status: 502, code: 'provider_error' },
		{ mode: 'slow', status: 504, code: 'provider_timeout' },
	];
	for (const f of faults) {
		test(`token endpoint ${f.mode} → ${f.status} ${f.code}; the credential stays, cooldown, failure counted`, async () => {
			const before = row(k.id);
			assert.ok(before.cred, 'a credentials row');
			const at = await accessToken(k.id);
			await setMode(ISSUER, { token: f.mode, count: 1, slow_ms: 8000 });
			const g0 = await grants();
			const t0 = Date.now();
			const res = await refreshToken({ integration_id: k.id, force: true }, k.user.token);
			const ms = Date.now() - t0;
			assertError(res, f.status, f.code);
			assert.ok(!res.text.includes(at), 'no token in the error');
			assert.equal((await grants()) - g0, 1, 'one attempt reached the server');
			if (f.mode === 'slow') {
				// HTTP_TIMEOUT_MS (3000 in tests/run's env file) bounds the call
				assert.ok(ms >= 2500 && ms < 8000, `gave up after the timeout, not the server: ${ms} ms`);
			}
			const after = row(k.id);
			assert.equal(after.status, 'connected', 'a provider fault is not the end of the connection');
			assert.equal(after.last_error?.code, f.code, `last_error: ${JSON.stringify(after.last_error)}`);
			assert.equal(after.cooling, true, `next_refresh_at in the future: ${after.next_refresh_at}`);
			assert.equal(after.refresh_failures, before.refresh_failures + 1, 'refresh_failures incremented');
			assert.equal(after.cred, before.cred, 'the credentials row is untouched');
			assert.equal(logsOf(after, 'refresh_failed').length, logsOf(before, 'refresh_failed').length + 1, 'a refresh_failed log row');
			assert.equal(await accessToken(k.id), at, 'getCredentials still answers the same access token');
		});
	}

	test('after the faults a forced refresh works and clears the failure state', async () => {
		const failures = row(k.id).refresh_failures;
		assert.equal(failures, faults.length, 'one failure counted per fault');
		const g0 = await grants();
		const j = assertOk(await refreshToken({ integration_id: k.id, force: true }, k.user.token));
		assert.equal(j.refreshed, true);
		assert.equal(j.integration.last_error, null);
		assert.equal((await grants()) - g0, 1);
		const r = row(k.id);
		assert.equal(r.refresh_failures, 0);
		assert.equal(r.next_refresh_at, null);
		assert.equal((await introspect(ISSUER, await accessToken(k.id), CLIENT)).active, true, 'no fault broke the grant');
	});

	test('invalid_grant → 422 reauthorization_required, status expired, a log row; then 409 not_connected', async () => {
		const x = await knownIntegration();
		await setMode(ISSUER, { token: 'invalid_grant', count: 1 });
		const res = await refreshToken({ integration_id: x.id, force: true }, x.user.token);
		assertError(res, 422, 'reauthorization_required');
		const r = row(x.id);
		assert.equal(r.status, 'expired');
		assert.equal(r.last_error?.code, 'reauthorization_required');
		const l = logsOf(r, 'refresh_rejected');
		assert.equal(l.length, 1, 'one refresh_rejected log row');
		assert.equal(l[0][1], 'error');
		assertError(await getCredentials({ integration_id: x.id }), 409, 'not_connected');
		const g0 = await grants();
		assertError(await refreshToken({ integration_id: x.id, force: true }, x.user.token), 409, 'not_connected');
		assert.equal((await grants()) - g0, 0);
	});
});

// ---------------------------------------------------------------------------
describe('getCredentials refreshes first inside the window', () => {
	test('expiring → one grant, the new token answered', async () => {
		const k = await knownIntegration();
		makeExpiring([k.id]);
		const g0 = await grants();
		const rs = await Promise.all([1, 2, 3].map(() => getCredentials({ integration_id: k.id })));
		const creds = rs.map((r) => assertOk(r).credentials);
		assert.equal((await grants()) - g0, 1, 'one refresh for three concurrent reads');
		for (const c of creds) {
			assert.notEqual(c.access_token, k.tokens.access_token, 'the refreshed token, not the old one');
			assert.equal(c.access_token, creds[0].access_token);
			assert.ok(Date.parse(c.expires_at) > Date.now() + 50 * 60 * 1000, `new expiry ${c.expires_at}`);
			assert.equal(c.refresh_token, undefined);
		}
		assert.equal((await introspect(ISSUER, creds[0].access_token, CLIENT)).active, true);
	});

	test('provider down → the still-valid old token, the failure recorded', async () => {
		const k = await knownIntegration();
		makeExpiring([k.id]);
		await setMode(ISSUER, { token: 'down', count: 1 });
		const g0 = await grants();
		const j = assertOk(await getCredentials({ integration_id: k.id }));
		assert.equal((await grants()) - g0, 1, 'it tried once');
		assert.equal(j.credentials.access_token, k.tokens.access_token, 'the old token, still valid for a minute');
		const r = row(k.id);
		assert.equal(r.status, 'connected');
		assert.equal(r.last_error?.code, 'provider_error');
		assert.equal(r.cooling, true);
		// cooling down: the next read does not hammer the provider
		const g1 = await grants();
		assert.equal(assertOk(await getCredentials({ integration_id: k.id })).credentials.access_token, k.tokens.access_token);
		assert.equal((await grants()) - g1, 0, 'no call while cooling down');
	});

	test('expired and the provider down → the refresh error, then 409 while cooling down: never a dead token', async () => {
		const k = await knownIntegration();
		makeExpiring([k.id], { seconds: -60 });
		await setMode(ISSUER, { token: 'down', count: 1 });
		const first = await getCredentials({ integration_id: k.id });
		assert.ok([502, 504].includes(first.status), `the failed refresh's error: ${show(first)}`);
		assert.equal(row(k.id).cooling, true);
		const g1 = await grants();
		const res = await getCredentials({ integration_id: k.id });
		assertError(res, 409, 'not_connected');
		assert.ok(!res.text.includes(k.tokens.access_token), 'the expired token is not answered');
		assert.equal((await grants()) - g1, 0, 'no call while cooling down');
		assert.equal(row(k.id).status, 'connected', 'a provider outage is not a disconnect');
	});
});

// ---------------------------------------------------------------------------
describe('revokeToken', () => {
	after(async () => {
		await setMode(ISSUER, { revocation: 'normal' });
	});

	test('revokes at the provider (refresh token first), deletes the credential, status revoked, logs; twice → 200', async () => {
		const k = await knownIntegration();
		assert.equal((await introspect(ISSUER, k.tokens.access_token, CLIENT)).active, true);
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, true);
		const s0 = await stats(ISSUER);
		const j = assertOk(await revokeToken({ integration_id: k.id }, k.user.token));
		assertIntegration(j.integration, { id: k.id, status: 'revoked', expires_at: null });
		const s1 = await stats(ISSUER);
		assert.equal(s1.revocation - s0.revocation, 2, 'two revocation calls');
		const calls = (await requests(ISSUER)).filter((q) => q.endpoint === 'revocation').slice(-2);
		assert.deepEqual(calls.map((q) => q.params.token_type_hint), ['refresh_token', 'access_token'], 'refresh token first (RFC 7009)');
		assert.deepEqual(calls.map((q) => q.status), [200, 200]);
		assert.equal((await introspect(ISSUER, k.tokens.access_token, CLIENT)).active, false, 'access token inactive');
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, false, 'refresh token inactive');
		const r = row(k.id);
		assert.equal(r.cred, null, 'the credential row is gone');
		assert.equal(r.status, 'revoked');
		assert.equal(logsOf(r, 'revoked').length, 1, 'one revoked log row');

		const again = await revokeToken({ integration_id: k.id }, k.user.token);
		assertIntegration(assertOk(again).integration, { id: k.id, status: 'revoked' });
		assert.equal((await stats(ISSUER)).revocation - s1.revocation, 0, 'nothing left to revoke remotely');
		assertError(await refreshToken({ integration_id: k.id, force: true }, k.user.token), 409, 'not_connected');
		assertError(await getCredentials({ integration_id: k.id }), 409, 'not_connected');
	});

	test('a credential that does not decrypt: disconnected locally anyway (200 revoked, credential gone), its revocation left to the worker', async () => {
		const k = await knownIntegration();
		const other = await knownIntegration();
		// another row's ciphertext: well formed, bound to that row, so it does not open here
		psql(`UPDATE public.credentials SET secret = (SELECT secret FROM public.credentials WHERE integration_id = ${lit(other.id)})
			WHERE integration_id = ${lit(k.id)};`);
		const s0 = await stats(ISSUER);
		const j = assertOk(await revokeToken({ integration_id: k.id }, k.user.token));
		assertIntegration(j.integration, { id: k.id, status: 'revoked', expires_at: null });
		assert.equal((await stats(ISSUER)).revocation - s0.revocation, 0, 'nothing could be sent to the provider');
		const r = row(k.id);
		assert.equal(r.cred, null, 'the credential row is gone');
		assert.equal(logsOf(r, 'revoked').length, 1, 'one revoked log row');
		// a job holding the envelope, sealed by us; the worker tries it and
		// fails until a key opens it (zy_rotate_keys sees one succeed)
		const job = () => psql(`SELECT id || ' ' || status || ' ' || attempts || ' ' || left(payload->>'secret', 3) || ' ' || coalesce(last_error, '-')
			FROM public.integration_sync_jobs WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(k.id)};`);
		assert.match(job(), /^\d+ \S+ \d+ v2\. /, 'a revoke_retry job with a sealed payload was queued');
		let seen = '';
		assert.ok(await poll(() => /^\d+ (failed|dead) [1-9]/.test(seen = job()), { timeoutMs: 15000, intervalMs: 200 }),
			`the worker tried the job: ${seen}`);
		assert.match(seen, /still does not decrypt/);
		assert.equal((await stats(ISSUER)).revocation - s0.revocation, 0, 'nothing was sent for it');
		psql(`DELETE FROM public.integration_sync_jobs WHERE id = ${seen.split(' ')[0]};`);

		// what no key could have sealed, or too big to keep in a job, never
		// blocks the disconnect or the delete: no job, the local part done
		for (const [what, secret, via] of [['junk', 'v2.zz', 'revoke'], ['huge', `v2.deadbeef.${'A'.repeat(40000)}`, 'revoke'],
			['huge', `v2.deadbeef.${'A'.repeat(40000)}`, 'delete']]) {
			const j = await knownIntegration();
			psql(`UPDATE public.credentials SET secret = ${lit(secret)} WHERE integration_id = ${lit(j.id)};`);
			if (via === 'revoke') {
				assertIntegration(assertOk(await revokeToken({ integration_id: j.id }, j.user.token)).integration, { id: j.id, status: 'revoked' });
			} else {
				assert.equal(assertOk(await del(`/api/integrations/${j.id}`, { token: j.user.token })).deleted, true, `${what} ${via}`);
			}
			assert.equal(Number(psql(`SELECT count(*) FROM public.integration_sync_jobs WHERE kind = 'revoke_retry'
				AND payload->>'integration_id' = ${lit(j.id)};`)), 0, `${what} ${via}: no job`);
		}
		assert.equal((await introspect(ISSUER, other.tokens.refresh_token, CLIENT)).active, true, 'the other row is untouched');
	});

	test("by service role with user_id + provider; another user's id → 404; no selector → 400", async () => {
		const k = await knownIntegration();
		assertError(await revokeToken({ integration_id: k.id }, newUser().token), 404, 'not_found');
		assertError(await revokeToken({}, k.user.token), 400, 'invalid_request');
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, true, 'untouched by the refused calls');
		const j = assertOk(await revokeToken({ user_id: k.user.id, provider: 'testoidc' }));
		assert.equal(j.integration.id, k.id);
		assert.equal(j.integration.status, 'revoked');
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, false);
	});

	test('provider unreachable → local disconnect anyway, a revoke_retry job with only ciphertext; the worker retries it', async () => {
		const k = await knownIntegration();
		await setMode(ISSUER, { revocation: 'down' });
		const res = await revokeToken({ integration_id: k.id }, k.user.token);
		assertIntegration(assertOk(res).integration, { id: k.id, status: 'revoked' });
		const r = row(k.id);
		assert.equal(r.cred, null, 'the credential row is gone');
		assert.match(logsOf(r, 'revoked')[0]?.[2] ?? '', /retried/, 'the log says the provider call will be retried');
		const job = () => {
			const out = psql(`SELECT row_to_json(j)::text FROM (SELECT id, status, attempts, payload, last_error
				FROM public.integration_sync_jobs WHERE kind = 'revoke_retry'
				AND payload ->> 'integration_id' = ${lit(k.id)}) j;`);
			return out ? out.split('\n').map((l) => JSON.parse(l)) : [];
		};
		const jobs = job();
		assert.equal(jobs.length, 1, 'one revoke_retry job');
		const text = JSON.stringify(jobs[0]);
		for (const s of [k.tokens.access_token, k.tokens.refresh_token]) assert.ok(!text.includes(s), 'no plaintext token in the job');
		assert.match(jobs[0].payload.secret ?? '', /^v2\.[0-9a-f]{8}\.[A-Za-z0-9_-]{40,}$/, 'the secret is an encrypted envelope');

		// the worker tries while the server is still unreachable, and fails
		const failed = await poll(() => {
			const j = job()[0];
			return j.attempts >= 1 && j.status === 'failed' ? j : null;
		}, { timeoutMs: 15000, intervalMs: 100 });
		assert.ok(failed, `the worker retried and failed while down: ${JSON.stringify(job()[0])}`);
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, true, 'not yet revoked');

		await setMode(ISSUER, { revocation: 'normal' });
		const t0 = Date.now();
		const done = await poll(() => {
			const j = job()[0];
			return j.status === 'succeeded' ? j : null;
		}, { timeoutMs: 20000, intervalMs: 200 });
		assert.ok(done, `the job succeeded once the server was back: ${JSON.stringify(job()[0])}`);
		assert.ok(done.attempts >= 2, `attempts ${done.attempts}`);
		assert.equal(done.payload.secret, undefined, 'the sealed credential is dropped with the finished job');
		assert.equal((await introspect(ISSUER, k.tokens.access_token, CLIENT)).active, false, 'access token inactive');
		assert.equal((await introspect(ISSUER, k.tokens.refresh_token, CLIENT)).active, false, 'refresh token inactive');
		console.log(`# revoke_retry: succeeded on attempt ${done.attempts}, ${Date.now() - t0} ms after the server came back`);
	});
});

// ---------------------------------------------------------------------------
describe('healthCheck', () => {
	const N = 12;
	let ids = [];

	/** Ours that are connected and not cooling down after a failure. */
	const healthy = () => [...rows(ids).values()].filter((r) => r.status === 'connected' && !r.cooling).map((r) => r.id);
	const script = 'set -e; source <(scripts/stack env); exec "$INTAUTHCTL" health-check';
	const intauthctl = async () => {
		const { stdout } = await execFileP('bash', ['-c', script], { cwd: ROOT, env: { ...process.env, INTAUTHCTL }, timeout: 60000 });
		return JSON.parse(stdout.trim().split('\n').at(-1));
	};

	before(async () => {
		// N users, each through the real connect flow, four at a time
		for (let i = 0; i < N; i += 4) {
			const batch = await Promise.all([0, 1, 2, 3].slice(0, N - i).map(() => connectTestOidc(newUser())));
			ids.push(...batch.map((c) => c.id));
		}
	});
	after(async () => {
		await setMode(ISSUER, { token: 'normal' });
	});

	test('service role only: user JWT → 403, anon → 401', async () => {
		assertError(await healthCheck(newUser().token), 403, 'forbidden');
		assertError(await healthCheck(anonToken()), 401, 'unauthorized');
	});

	test(`${N} expiring connections → {"checked":${N},"refreshed":${N},"failed":0,"expired":0}, one grant each`, async () => {
		makeExpiring(ids, { exclusive: true });
		const g0 = await grants();
		const since = Date.now() / 1000 - 1;
		const t0 = Date.now();
		const res = await healthCheck();
		const ms = Date.now() - t0;
		assert.deepEqual(assertOk(res), { checked: N, refreshed: N, failed: 0, expired: 0 });
		assert.equal((await grants()) - g0, N);
		for (const r of rows(ids).values()) {
			assert.equal(r.status, 'connected');
			assert.ok(r.expires_in > 3000, `refreshed: expires in ${r.expires_in} s`);
			assert.ok(r.last_refreshed_at);
			assert.ok(r.checked_epoch >= since, `last_health_check_at set by the check: ${r.last_health_check_at}`);
		}
		// nothing is due any more
		const g1 = await grants();
		assert.deepEqual(assertOk(await healthCheck()), { checked: 0, refreshed: 0, failed: 0, expired: 0 });
		assert.equal((await grants()) - g1, 0);
		console.log(`# healthCheck: ${N} refreshes in one call, ${ms} ms`);
	});

	test('two healthChecks at once refresh each row once', async () => {
		makeExpiring(ids, { exclusive: true });
		const g0 = await grants();
		const [a, b] = await Promise.all([healthCheck(), healthCheck()]);
		const ja = assertOk(a);
		const jb = assertOk(b);
		assert.equal((await grants()) - g0, N, `one grant per row: ${JSON.stringify([ja, jb])}`);
		assert.equal(ja.refreshed + jb.refreshed, N, `refreshed sums to ${N}: ${JSON.stringify([ja, jb])}`);
		assert.equal(ja.checked + jb.checked, N);
		assert.equal(ja.failed + jb.failed + ja.expired + jb.expired, 0);
		for (const r of rows(ids).values()) assert.ok(r.expires_in > 3000);
		// every grant is alive: none was refreshed twice with a rotated-out token
		const tokens = await Promise.all(ids.map((id) => accessToken(id)));
		const active = await Promise.all(tokens.map((at) => introspect(ISSUER, at, CLIENT)));
		assert.deepEqual(active.map((x) => x.active), ids.map(() => true), 'no grant was revoked');
		console.log(`# two concurrent healthChecks: ${JSON.stringify(ja)} + ${JSON.stringify(jb)}`);
	});

	test('a failing refresh counts in failed, an invalid_grant in expired', async () => {
		makeExpiring(ids, { exclusive: true });
		await setMode(ISSUER, { token: 'error500', count: 1 });
		const g0 = await grants();
		assert.deepEqual(assertOk(await healthCheck()), { checked: N, refreshed: N - 1, failed: 1, expired: 0 });
		assert.equal((await grants()) - g0, N);
		const failed = [...rows(ids).values()].filter((r) => r.last_error?.code === 'provider_error');
		assert.equal(failed.length, 1);
		assert.equal(failed[0].cooling, true, 'the failed row cools down');
		assert.equal(failed[0].status, 'connected');
		assert.equal(failed[0].refresh_failures, 1);

		makeExpiring(ids, { exclusive: true }); // the failed row cools down: not due
		await setMode(ISSUER, { token: 'invalid_grant', count: 1 });
		const g1 = await grants();
		assert.deepEqual(assertOk(await healthCheck()), { checked: N - 1, refreshed: N - 2, failed: 0, expired: 1 });
		assert.equal((await grants()) - g1, N - 1);
		const expired = [...rows(ids).values()].filter((r) => r.status === 'expired');
		assert.equal(expired.length, 1);
		assert.equal(expired[0].last_error?.code, 'reauthorization_required');
		assert.equal(logsOf(expired[0], 'refresh_rejected').length, 1);
	});

	test('a credential that does not decrypt counts in failed: an alarm that leaves the status alone, not "expired"', async () => {
		const ok = healthy();
		const [victim, donor] = ok;
		const original = psql(`SELECT secret FROM public.credentials WHERE integration_id = ${lit(victim)};`);
		// the other row's ciphertext is well formed but bound to that row
		psql(`UPDATE public.credentials SET secret = (SELECT secret FROM public.credentials WHERE integration_id = ${lit(donor)})
			WHERE integration_id = ${lit(victim)};`);
		try {
			makeExpiring(ok, { exclusive: true });
			const g0 = await grants();
			assert.deepEqual(assertOk(await healthCheck()), { checked: ok.length, refreshed: ok.length - 1, failed: 1, expired: 0 });
			assert.equal((await grants()) - g0, ok.length - 1, 'no grant for the row that does not open');
			const r = row(victim);
			assert.equal(r.status, 'connected');
			assert.equal(r.cooling, true, 'the row cools down instead of being due again at once');
			assert.equal(r.last_error?.code, 'internal_error');
		} finally {
			psql(`UPDATE public.credentials SET secret = ${lit(original)} WHERE integration_id = ${lit(victim)};
				UPDATE public.integrations SET next_refresh_at = NULL, refresh_failures = 0, first_failure_at = NULL,
				last_error = NULL WHERE id = ${lit(victim)};`);
		}
	});

	test('userinfo refusing the fresh token marks the connection error; a userinfo 500 changes nothing', async () => {
		const ok = healthy();
		makeExpiring(ok, { exclusive: true });
		await setMode(ISSUER, { userinfo: 'error500', count: 1 });
		assert.deepEqual(assertOk(await healthCheck()), { checked: ok.length, refreshed: ok.length, failed: 0, expired: 0 });
		makeExpiring(ok, { exclusive: true });
		await setMode(ISSUER, { userinfo: 'invalid_token', count: 1 });
		assert.deepEqual(assertOk(await healthCheck()),
			{ checked: ok.length, refreshed: ok.length - 1, failed: 1, expired: 0 });
		const refused = [...rows(ok).values()].filter((r) => r.status === 'error');
		assert.equal(refused.length, 1);
		assert.equal(refused[0].last_error?.code, 'userinfo_rejected');
		await setMode(ISSUER, { userinfo: 'normal' });
	});

	test('the refreshed rows are committed and unlocked before the userinfo round', async () => {
		const ok = healthy();
		makeExpiring(ok, { exclusive: true });
		const seen = (await stats(ISSUER)).userinfo;
		await setMode(ISSUER, { userinfo: 'slow', slow_ms: 3000, count: ok.length });
		const check = healthCheck();
		try {
			const calling = await poll(async () => (await stats(ISSUER)).userinfo >= seen + ok.length, { timeoutMs: 20000, intervalMs: 50 });
			assert.ok(calling, 'the userinfo round did not start');
			// while the provider keeps the userinfo calls waiting: every row is
			// free to lock, and already holds its new token
			const lock = psqlTry(`BEGIN; SELECT id FROM public.integrations WHERE id = ANY(${idList(ok)}) FOR UPDATE NOWAIT; ROLLBACK;`);
			assert.ok(lock.ok, `a row is still locked during the userinfo round: ${lock.err}`);
			for (const r of rows(ok).values()) assert.ok(r.expires_in > 3000, `not yet refreshed: expires in ${r.expires_in} s`);
		} finally {
			assert.deepEqual(assertOk(await check), { checked: ok.length, refreshed: ok.length, failed: 0, expired: 0 });
			await setMode(ISSUER, { userinfo: 'normal' });
		}
	});

	// Connections no refresh verifies: a token without an expiry (GitHub's
	// kind), or one expiring far ahead, is shown to userinfo once per
	// HEALTHCHECK_INTERVAL_SECONDS (a day here), counted from its last check
	// or its creation.
	describe('connections no refresh verifies are probed at userinfo', () => {
		const probes = [];
		/** A connected testoidc integration with live tokens and no expires_at. */
		async function stored({ refresh = true } = {}) {
			const t = await obtainTokens();
			const credentials = { access_token: t.access_token, token_type: t.token_type };
			if (refresh) credentials.refresh_token = t.refresh_token;
			const i = assertOk(await storeCredentials(newUser().token, { provider: 'testoidc', auth_type: 'oauth2', credentials })).integration;
			assert.equal(i.expires_at, null);
			probes.push(i.id);
			return { id: i.id, tokens: t };
		}
		const backdate = (ids) => psql(`UPDATE public.integrations SET last_health_check_at = now() - interval '2 days'
			WHERE id = ANY(${idList(ids)});`);
		const userinfoCalls = async () => (await stats(ISSUER)).userinfo;
		const userinfoAnswers = async (n) => (await requests(ISSUER)).filter((q) => q.endpoint === 'userinfo').slice(-n).map((q) => q.status);
		const revokeAt = async (accessTokenValue) =>
			assert.equal((await oauth.revoke(ISSUER, accessTokenValue, CLIENT, 'access_token')).status, 200);
		const zero = { checked: 0, refreshed: 0, failed: 0, expired: 0 };
		after(async () => {
			await setMode(ISSUER, { userinfo: 'normal' });
			psql(`UPDATE public.integrations SET status = 'revoked' WHERE id = ANY(${idList(probes)});`);
		});

		test('a new one is left alone; one unchecked for the interval gets one call, recorded; the next check waits', async () => {
			const { id } = await stored();
			makeExpiring([], { exclusive: true });
			const u0 = await userinfoCalls();
			assert.deepEqual(assertOk(await healthCheck()), zero);
			assert.equal((await userinfoCalls()) - u0, 0, 'a connection made just now was probed');
			backdate([id]);
			const since = Date.now() / 1000 - 1;
			const g0 = await grants();
			assert.deepEqual(assertOk(await healthCheck()), { ...zero, checked: 1 });
			assert.equal((await userinfoCalls()) - u0, 1);
			assert.equal((await grants()) - g0, 0, 'a probe spent a refresh token');
			const r = row(id);
			assert.equal(r.status, 'connected');
			assert.ok(r.checked_epoch >= since, `last_health_check_at not recorded: ${r.last_health_check_at}`);
			assert.equal(r.last_refreshed_at, null);
			const last = (await requests(ISSUER)).filter((q) => q.endpoint === 'userinfo').at(-1);
			assert.equal(last?.bearer, true, 'the token went in the Authorization header');
			assert.deepEqual(assertOk(await healthCheck()), zero);
			assert.equal((await userinfoCalls()) - u0, 1, 'probed again within the interval');
		});

		test('two healthChecks at once probe each connection once', async () => {
			const a = await stored();
			const b = await stored();
			makeExpiring([], { exclusive: true });
			backdate([a.id, b.id]);
			const u0 = await userinfoCalls();
			const [x, y] = (await Promise.all([healthCheck(), healthCheck()])).map((res) => assertOk(res));
			assert.equal(x.checked + y.checked, 2, JSON.stringify([x, y]));
			assert.equal((await userinfoCalls()) - u0, 2);
		});

		test('without a refresh token, a token the provider revoked makes the connection expired; a userinfo 500 changes nothing', async () => {
			const revoked = await stored({ refresh: false });
			const flaky = await stored({ refresh: false });
			await revokeAt(revoked.tokens.access_token);
			makeExpiring([], { exclusive: true });
			backdate([revoked.id, flaky.id]);
			await setMode(ISSUER, { userinfo: 'error500', count: 1 });
			// both tie: the 500 goes to whichever is called first
			const res = assertOk(await healthCheck());
			const answers = await userinfoAnswers(2);
			assert.ok(answers.includes(500), `no 500 was served: ${answers}`);
			assert.equal(row(flaky.id).status, 'connected', 'a provider fault changed a good connection');
			if (row(revoked.id).status === 'connected') {
				// the 500 fell on the revoked one: nothing changed; its next check refuses it
				assert.deepEqual(res, { ...zero, checked: 2 });
				backdate([revoked.id]);
				assert.deepEqual(assertOk(await healthCheck()), { ...zero, checked: 1, expired: 1 });
			} else {
				assert.deepEqual(res, { ...zero, checked: 2, expired: 1 });
			}
			const r = row(revoked.id);
			assert.equal(r.status, 'expired');
			assert.equal(r.last_error?.code, 'userinfo_rejected');
			assert.equal(logsOf(r, 'userinfo_rejected').length, 1);
			assert.ok(r.cred, 'the credential stays, for a revocation on disconnect');
		});

		test('with a refresh token, a refused access token (one expiring far ahead) is refreshed in the same run', async () => {
			const k = await stored();
			psql(`UPDATE public.integrations SET expires_at = now() + interval '30 days' WHERE id = ${lit(k.id)};`);
			makeExpiring([], { exclusive: true });
			backdate([k.id]);
			const before = row(k.id);
			const g0 = await grants();
			await setMode(ISSUER, { userinfo: 'invalid_token', count: 1 });
			assert.deepEqual(assertOk(await healthCheck()), { ...zero, checked: 1, refreshed: 1 });
			assert.equal((await grants()) - g0, 1, 'one refresh_token grant');
			assert.deepEqual(await userinfoAnswers(2), [401, 200], 'the stored token refused, the fresh one accepted');
			const r = row(k.id);
			assert.equal(r.status, 'connected');
			assert.notEqual(r.cred, before.cred, 'a new credential');
			assert.ok(r.expires_in > 3000 && r.expires_in < 86400, `refreshed: expires in ${r.expires_in} s`);
			assert.equal(logsOf(r, 'access_token_refused').length, 1);
			assert.equal((await introspect(ISSUER, await accessToken(k.id), CLIENT)).active, true);
		});

		test('with a refresh token, a grant the user revoked at the provider ends expired after the refresh it gets', async () => {
			const k = await stored();
			// this server revokes the whole grant with its access token
			await revokeAt(k.tokens.access_token);
			makeExpiring([], { exclusive: true });
			backdate([k.id]);
			assert.deepEqual(assertOk(await healthCheck()), { ...zero, checked: 1, expired: 1 });
			const r = row(k.id);
			assert.equal(r.status, 'expired');
			assert.equal(r.last_error?.code, 'reauthorization_required');
			assert.equal(logsOf(r, 'access_token_refused').length, 1);
			assert.equal(logsOf(r, 'refresh_rejected').length, 1);
		});

		test('a 403 (insufficient scope, a rate limit) and Slack\'s "ratelimited" are not refusals; Slack\'s invalid_auth is', async () => {
			const k = await stored({ refresh: false });
			makeExpiring([], { exclusive: true });
			for (const mode of ['insufficient_scope', 'ratelimited']) {
				backdate([k.id]);
				await setMode(ISSUER, { userinfo: mode, count: 1 });
				assert.deepEqual(assertOk(await healthCheck()), { ...zero, checked: 1 }, mode);
				assert.equal(row(k.id).status, 'connected', `${mode} changed the connection`);
			}
			backdate([k.id]);
			await setMode(ISSUER, { userinfo: 'ok_false', count: 1 });
			assert.deepEqual(assertOk(await healthCheck()), { ...zero, checked: 1, expired: 1 });
			assert.equal(row(k.id).last_error?.code, 'userinfo_rejected');
		});

		test('HEALTHCHECK_INTERVAL_SECONDS=0 turns probing off (`intauthctl health-check`)', async () => {
			const { id } = await stored();
			makeExpiring([], { exclusive: true });
			backdate([id]);
			const run = (env) => execFileP('bash', ['-c', script], { cwd: ROOT, env: { ...process.env, INTAUTHCTL, ...env }, timeout: 60000 })
				.then((x) => JSON.parse(x.stdout.trim().split('\n').at(-1)));
			const u0 = await userinfoCalls();
			assert.deepEqual(await run({ HEALTHCHECK_INTERVAL_SECONDS: '0' }), zero);
			assert.equal((await userinfoCalls()) - u0, 0);
			assert.deepEqual(await run({}), { ...zero, checked: 1 });
			assert.equal((await userinfoCalls()) - u0, 1);
		});

		test('a refusal of a token replaced during the call leaves the new credential alone', async () => {
			const old = await stored();
			makeExpiring([], { exclusive: true });
			backdate([old.id]);
			const fresh = await obtainTokens();
			const userId = psql(`SELECT user_id FROM public.integrations WHERE id = ${lit(old.id)};`);
			const u0 = await userinfoCalls();
			// held for 2 s, under the stack's 3 s HTTP_TIMEOUT_MS
			await setMode(ISSUER, { userinfo: 'slow', slow_ms: 2000, count: 1 });
			const check = healthCheck();
			const calling = await poll(async () => (await userinfoCalls()) > u0, { timeoutMs: 20000, intervalMs: 20 });
			assert.ok(calling, 'the probe did not start');
			// while the provider holds the call (it looks at the token only
			// afterwards): the user reconnects with new tokens, and the old
			// access token is revoked, so the call comes back 401
			assertOk(await storeCredentials(serviceToken(), {
				provider: 'testoidc', auth_type: 'oauth2', user_id: userId,
				credentials: { access_token: fresh.access_token, refresh_token: fresh.refresh_token, token_type: fresh.token_type },
			}));
			await revokeAt(old.tokens.access_token);
			const g0 = await grants();
			assert.deepEqual(assertOk(await check), { ...zero, checked: 1 });
			assert.deepEqual(await userinfoAnswers(1), [401], 'the held call was not refused: the test proves nothing');
			const r = row(old.id);
			assert.equal(r.status, 'connected', 'the old token\'s verdict fell on the new credential');
			assert.equal(r.expires_in, null, 'the new credential was made due');
			assert.equal(logsOf(r, 'userinfo_rejected').length + logsOf(r, 'access_token_refused').length, 0);
			assert.equal((await grants()) - g0, 0);
		});
	});

	test('`intauthctl health-check` prints the same JSON', async () => {
		const ok = healthy();
		assert.equal(ok.length, N - 3);
		makeExpiring(ok, { exclusive: true });
		const g0 = await grants();
		assert.deepEqual(await intauthctl(), { checked: ok.length, refreshed: ok.length, failed: 0, expired: 0 });
		assert.equal((await grants()) - g0, ok.length);
		for (const r of rows(ok).values()) assert.ok(r.expires_in > 3000, `refreshed: expires in ${r.expires_in} s`);
	});
	test('`intauthctl health-check` exits 3 when a refresh failed, and refuses arguments without spending a grant', async () => {
		const ok = healthy();
		const run = (args) => execFileP('bash', ['-c', `set -e; source <(scripts/stack env); exec "$INTAUTHCTL" health-check ${args}`],
			{ cwd: ROOT, env: { ...process.env, INTAUTHCTL }, timeout: 60000 }).then((r) => ({ code: 0, ...r }), (e) => e);
		makeExpiring(ok, { exclusive: true });
		const g0 = await grants();
		const help = await run('--help');
		assert.equal(help.code, 2, `health-check --help: ${help.stderr}`);
		assert.equal((await grants()) - g0, 0, 'health-check --help refreshed tokens');
		await setMode(ISSUER, { token: 'error500', count: 1 });
		const res = await run('');
		assert.equal(res.code, 3, `exit code with a failed refresh: ${res.stderr}`);
		assert.deepEqual(JSON.parse(res.stdout.trim().split('\n').at(-1)), { checked: ok.length, refreshed: ok.length - 1, failed: 1, expired: 0 });
	});
	// last: the victim's refresh token was rotated at the provider and is lost
	test('a row whose outcome cannot be written fails alone: the other rows keep their rotated tokens', async () => {
		const ok = healthy();
		const [victim, ...others] = ok;
		assert.ok(others.length >= 2, `only ${ok.length} healthy rows left`);
		makeExpiring(ok, { exclusive: true });
		const before = rows(ok);
		// the victim's credential write fails inside the batch's transaction
		psql(`CREATE FUNCTION public.intauth_test_refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.integration_id = ${lit(victim)}::uuid THEN RAISE EXCEPTION 'refused by the test'; END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER intauth_test_refuse_write BEFORE UPDATE ON public.credentials
				FOR EACH ROW EXECUTE FUNCTION public.intauth_test_refuse_write();`);
		let res;
		try {
			res = await healthCheck();
		} finally {
			psql(`DROP TRIGGER intauth_test_refuse_write ON public.credentials;
				DROP FUNCTION public.intauth_test_refuse_write();`);
		}
		assert.deepEqual(assertOk(res), { checked: ok.length, refreshed: ok.length - 1, failed: 1, expired: 0 });
		const after = rows(ok);
		assert.equal(after.get(victim).cred, before.get(victim).cred, 'the refused row changed');
		for (const id of others) {
			assert.notEqual(after.get(id).cred, before.get(id).cred, `the rotated token of ${id} was lost`);
			assert.ok(after.get(id).expires_in > 3000, `not refreshed: ${id}`);
		}
		const active = await Promise.all(others.map(async (id) => introspect(ISSUER, await accessToken(id), CLIENT)));
		assert.deepEqual(active.map((x) => x.active), others.map(() => true), 'a stored token is not the provider\'s');
	});
});

// ---------------------------------------------------------------------------
describe('the healthCheck scan uses the partial index', () => {
	const MARK = `explain-${randomBytes(4).toString('hex')}`;
	after(() => {
		psql(`DELETE FROM public.integrations WHERE metadata ->> 'explain_test' = ${lit(MARK)}; ANALYZE public.integrations;`);
	});

	/**
	 * A claim query (SQL_CLAIM_DUE, ...) as lib/tokens.c spells it: its adjacent C
	 * string literals concatenated, with the string macros it uses (ROW_COLUMNS,
	 * ...) expanded, so this checks the query the program really sends.
	 */
	function sourceQuery(name) {
		const src = readFileSync(join(ROOT, 'lib/tokens.c'), 'utf8').replace(/\\\n/g, ' ');
		const macros = new Map();
		for (const m of src.matchAll(/^#define\s+([A-Z_][A-Z0-9_]*)[ \t]+(.*)$/gm)) macros.set(m[1], m[2]);
		const expand = (text, depth = 0) => {
			assert.ok(depth < 8, 'macros nest too deep');
			let out = '';
			for (const t of text.matchAll(/"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*)|(\S)/g)) {
				if (t[1] !== undefined) out += t[1].replace(/\\(["\\])/g, '$1');
				else if (t[2] !== undefined) {
					assert.ok(macros.has(t[2]), `unknown identifier ${t[2]} in the query`);
					out += expand(macros.get(t[2]), depth + 1);
				} else assert.fail(`unexpected ${t[3]} in the query`);
			}
			return out;
		};
		const decl = src.match(new RegExp(`${name}\\[\\]\\s*=\\s*([^;]*);`));
		assert.ok(decl, `${name} in lib/tokens.c`);
		return expand(decl[1]);
	}
	function claimQuery(name = 'SQL_CLAIM_DUE') {
		return sourceQuery(name).replace(/\$W/g, String(WINDOW)).replace(/\$A::double precision/g, 'NULL::double precision').replace(/\$1::int/g, '64')
			// SQL_CLAIM_DUE's cursor, as a call's first batch has it
			.replace(/\$2::timestamptz/g, "'-infinity'::timestamptz").replace(/\$3::uuid/g, "'00000000-0000-0000-0000-000000000000'::uuid");
	}

	test('EXPLAIN of the claim query over thousands of far-off rows: Index Scan on integrations_expiring_idx', () => {
		const sql = claimQuery();
		assert.match(sql, /FOR UPDATE SKIP LOCKED/);
		const CUT = '--8<--';
		// 4000 rows: 3000 connected oauth2 ones a month away, 1000 revoked; then the
		// plan, and the query run (rolled back) to see how many rows the scan read
		const out = psql(`INSERT INTO public.integrations (user_id, provider, connection, auth_type, status, expires_at, metadata)
			SELECT gen_random_uuid(), 'testoidc', 'x' || g, 'oauth2', CASE WHEN g % 4 = 0 THEN 'revoked' ELSE 'connected' END,
			now() + interval '30 days' + g * interval '1 minute', jsonb_build_object('explain_test', ${lit(MARK)})
			FROM generate_series(1, 4000) g;
			ANALYZE public.integrations; ANALYZE public.credentials;
			EXPLAIN ${sql};
			SELECT '${CUT}';
			BEGIN; EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${sql}; ROLLBACK;
			SELECT '${CUT}';
			SELECT count(*) FROM public.integrations;`);
		const [plan, analyzed, count] = out.split(`${CUT}\n`);
		assert.match(plan, /Index Scan using integrations_expiring_idx on integrations i/, plan.replace(/\n/g, ' | '));
		assert.match(plan, /Index Cond: .*expires_at <= /, plan.replace(/\n/g, ' | '));
		assert.doesNotMatch(plan, /Seq Scan on integrations/, plan.replace(/\n/g, ' | '));
		const scan = analyzed.split('\n').find((l) => /Index Scan using integrations_expiring_idx/.test(l)) ?? '';
		const m = scan.match(/actual rows=(\d+)/);
		assert.ok(m, analyzed);
		const total = Number(count);
		assert.ok(total >= 4000);
		assert.ok(Number(m[1]) < 100, `the index scan read ${m[1]} of ${total} rows`);
		console.log(`# claim query: index scan read ${m[1]} of ${total} integrations rows`);
	});

	test('a call over many due rows reads each index entry about once: every batch claims from where the last one ended', { timeout: 90000 }, async () => {
		// 160 due rows whose credentials do not open: each fails and cools
		// down, its row versions still in the index's window. A claim from
		// the start of the index reads them all again in every later batch.
		// Measured here (10 batches of 16, the worker's scheduler reading the
		// window too): 1,743 entries without the cursor, 762 with it (this
		// small table gets a plan that sorts what lies ahead of the cursor;
		// an ordered scan would read about 170).
		const N = 160;
		const ids = psql(`INSERT INTO public.integrations (user_id, provider, connection, auth_type, status, expires_at, metadata)
			SELECT gen_random_uuid(), 'testoidc', 'c' || g, 'oauth2', 'connected', now() + interval '60 seconds' + g * interval '1 ms',
			jsonb_build_object('explain_test', ${lit(MARK)}) FROM generate_series(1, ${N}) g RETURNING id;`).split('\n');
		assert.equal(ids.length, N);
		psql(`INSERT INTO public.credentials (id, integration_id, user_id, provider, key_id, secret)
			SELECT gen_random_uuid(), id, user_id, provider, 'k', 'v2.explain' FROM public.integrations WHERE id = ANY(${idList(ids)});`);
		// one expiry for all: the cursor orders by (expires_at, id)
		makeExpiring(ids, { seconds: 60, exclusive: true });
		psql('ANALYZE public.integrations; ANALYZE public.credentials;');
		const reads = () => Number(psql(`SELECT pg_stat_clear_snapshot(); SELECT idx_tup_read FROM pg_stat_user_indexes
			WHERE indexrelname = 'integrations_expiring_idx';`).split('\n').at(-1));
		const settled = async () => {
			// a backend reports its counters when idle, within about 10 s
			let last = reads();
			for (let i = 0; i < 30; i++) {
				await sleep(1000);
				const now = reads();
				if (now === last && i >= 11) return now;
				last = now;
			}
			return last;
		};
		const before = await settled();
		const res = assertOk(await healthCheck());
		assert.equal(res.checked, N, JSON.stringify(res));
		assert.equal(res.failed, N, JSON.stringify(res));
		const read = (await settled()) - before;
		assert.ok(read >= N, `the counters did not move: ${read}`);
		assert.ok(read < 7 * N, `the batches read ${read} index entries for ${N} due rows`);
		console.log(`# healthCheck over ${N} due rows in batches of 16: ${read} index entries read`);
	});

	test('EXPLAIN of the probe claim over a backlog: an index scan that stops at the batch, past the providers it does not probe', () => {
		// the list the programs send: the catalog's OAuth providers with a
		// userinfo_url, and the two the tests add (tests/run)
		const catalog = JSON.parse(readFileSync(join(ROOT, 'providers/providers.json'), 'utf8'));
		const probed = [...Object.keys(catalog).filter((k) => catalog[k].auth_type === 'oauth2' && catalog[k].userinfo_url),
			'testoidc', 'testoidc_basic'].sort();
		assert.ok(!probed.includes('notion'), 'notion has no userinfo_url');
		const sql = claimQuery('SQL_CLAIM_PROBES').replace(/\$1::text\[\]/g, `'{${probed.join(',')}}'::text[]`)
			.replace(/\$2::double precision/g, '86400::double precision').replace(/\$3::int/g, '16');
		assert.match(sql, /FOR UPDATE OF i SKIP LOCKED/);
		// with credentials: 20000 connections checked just now at a probed
		// provider, 6000 unchecked for two days at one never probed, and 400
		// unchecked at the probed one
		const out = psql(`INSERT INTO public.integrations (user_id, provider, connection, auth_type, status, created_at,
				last_health_check_at, metadata)
			SELECT gen_random_uuid(), CASE WHEN g <= 20000 OR g > 26000 THEN 'testoidc' ELSE 'notion' END, 'p' || g, 'oauth2',
			'connected', now() - interval '2 days', CASE WHEN g <= 20000 THEN now() END,
			jsonb_build_object('explain_test', ${lit(MARK)}, 'probe', true)
			FROM generate_series(1, 26400) g;
			INSERT INTO public.credentials (id, integration_id, user_id, provider, key_id, secret)
			SELECT gen_random_uuid(), id, user_id, provider, 'k', 'v2.explain' FROM public.integrations
			WHERE metadata ->> 'explain_test' = ${lit(MARK)} AND metadata ? 'probe';
			ANALYZE public.integrations; ANALYZE public.credentials;
			BEGIN; EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${sql}; ROLLBACK;`);
		const flat = out.replace(/\n/g, ' | ');
		assert.match(out, /Index Scan using integrations_probe_due_idx on integrations/, flat);
		assert.doesNotMatch(out, /Seq Scan on integrations|Bitmap Index Scan on integrations_probe_due_idx|Sort/, flat);
		// every row the scans yield is looked up in credentials once: the
		// lookups count what the scans read (their own "rows" is a per-loop
		// average, one loop per provider)
		const lookups = out.match(/Index Scan using credentials_integration_id_key on credentials c \(actual rows=\d+ loops=(\d+)\)/);
		assert.ok(lookups, flat);
		const read = Number(lookups[1]);
		assert.ok(read <= 32, `the index scans yielded ${read} rows for a batch of 16: ${flat}`);
		assert.doesNotMatch(out, /Rows Removed by Filter: \d{3,}/, flat);
		assert.match(out, /Update on integrations i \(actual rows=16 /, flat);
		console.log(`# probe claim: the index scans yielded ${read} rows for a batch of 16, past 6000 unchecked at a provider not probed`);
	});

	test('statistics that have not seen a burst of new connections: the generic plan of each claim follows its own index', () => {
		// Before autovacuum's ANALYZE the planner takes both partial indexes
		// for empty. When they shared a predicate, the due claim's generic
		// plan walked the whole of integrations_probe_due_idx in every batch
		// (10,000 due rows: 22.6 million index entries read, 17.4 s). Seen on
		// copies of the two tables with their indexes, in a transaction rolled
		// back: their statistics are this test's alone.
		const CUT = '--8<--';
		const copy = (sql) => sql.replace(/public\.(integrations|credentials)\b/g, 'stale_plan.$1');
		const out = psql(`BEGIN;
			CREATE SCHEMA stale_plan;
			CREATE TABLE stale_plan.integrations (LIKE public.integrations INCLUDING ALL);
			CREATE TABLE stale_plan.credentials (LIKE public.credentials INCLUDING ALL);
			INSERT INTO stale_plan.integrations (user_id, provider, connection, auth_type, status, created_at)
			SELECT gen_random_uuid(), 'testoidc', 's' || g, 'oauth2', 'revoked', now() - interval '2 days'
			FROM generate_series(1, 10000) g;
			INSERT INTO stale_plan.credentials (id, integration_id, user_id, provider, key_id, secret)
			SELECT gen_random_uuid(), id, user_id, provider, 'k', 'v2.explain' FROM stale_plan.integrations;
			ANALYZE stale_plan.integrations; ANALYZE stale_plan.credentials;
			UPDATE stale_plan.integrations SET status = 'connected',
				expires_at = CASE WHEN connection ~ '[02468]$' THEN now() + interval '60 seconds' END;
			PREPARE due_claim AS ${copy(sourceQuery('SQL_CLAIM_DUE')).replace(/\$W/g, '$4')};
			PREPARE probe_claim AS ${copy(sourceQuery('SQL_CLAIM_PROBES')).replace(/\$W/g, '$4')};
			SET LOCAL plan_cache_mode = force_generic_plan;
			EXPLAIN EXECUTE due_claim(16, '-infinity', '00000000-0000-0000-0000-000000000000', ${WINDOW});
			SELECT '${CUT}';
			EXPLAIN EXECUTE probe_claim('{testoidc}', 86400, 16, ${WINDOW});
			SELECT '${CUT}';
			SELECT indexname FROM pg_indexes WHERE schemaname = 'stale_plan' ORDER BY 1;
			ROLLBACK;`);
		const [due, probe, names] = out.split(`${CUT}\n`).map((p) => p.replace(/\n/g, ' | '));
		// LIKE names the copies by their columns
		assert.match(names, /integrations_expires_at_id_idx/, names);
		assert.match(names, /integrations_provider_coalesce_idx/, names);
		assert.match(due, /Index Scan using integrations_expires_at_id_idx on integrations i/, due);
		assert.doesNotMatch(due, /integrations_provider_coalesce_idx|Seq Scan on integrations/, due);
		assert.match(probe, /Index Scan using integrations_provider_coalesce_idx on integrations/, probe);
		assert.doesNotMatch(probe, /integrations_expires_at_id_idx|Seq Scan on integrations/, probe);
	});
});
