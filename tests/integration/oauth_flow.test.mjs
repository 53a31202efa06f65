// The OAuth connect flow end to end (SPEC §7, §8; SECURITY.md "OAuth"):
// auth-start and auth-callback against the real authorization server of
// tests/oauth/server.mjs (oidc-provider, PKCE S256 required, RFC 9207 iss),
// providers "testoidc" (client_secret_post) and "testoidc_basic"
// (client_secret_basic, a secret holding "+", "/" and "~").
//
// A "browser" here is a cookie jar for intauth's origin; consent() plays the
// user at the authorization server and stops at the redirect back to
// /api/auth/{provider}/callback, which the test then calls with the jar's
// cookie. Counters and the request log of the server (/_test/stats,
// /_test/requests) tell which token calls really reached it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
	ENV, ENV_FILE, STACK_DIR, allLogs, asUser, anonToken, assertError, assertIntegration, assertOk, countRows, get,
	getCredentials, lit, newUser, poll, psql, serviceToken, show,
} from './lib.mjs';
import {
	CookieJar, consent, introspect, pkcePair, requests, setMode, stats, userinfo,
} from '../oauth/consent.mjs';

const ISSUER = process.env.OAUTH_ISSUER;
const CATALOG = process.env.TESTOIDC_CATALOG;
const PUBLIC_BASE_URL = (ENV.PUBLIC_BASE_URL || '').replace(/\/+$/, '');
const B64URL_43 = /^[A-Za-z0-9_-]{43}$/;
const APP = 'http://app.test.example';

const CLIENTS = {
	testoidc: {
		id: process.env.TESTOIDC_CLIENT_ID,
		secret: process.env.TESTOIDC_CLIENT_SECRET,
		auth: 'client_secret_post',
	},
	testoidc_basic: {
		id: process.env.TESTOIDC_BASIC_CLIENT_ID,
		secret: process.env.TESTOIDC_BASIC_CLIENT_SECRET,
		auth: 'client_secret_basic',
	},
};

const s256 = (s) => createHash('sha256').update(s).digest('base64url');
const callbackUri = (provider) => `${PUBLIC_BASE_URL}/api/auth/${provider}/callback`;

// ---------- a browser on intauth's origin ----------

/** The intauth_flow Set-Cookie of an answer, parsed: { value, attrs: Map(lowercased name → value) }. */
function flowCookie(res) {
	const lines = res.headers.getSetCookie().filter((l) => l.trim().startsWith('intauth_flow='));
	if (lines.length === 0) return null;
	assert.equal(lines.length, 1, `one intauth_flow cookie: ${lines.join(' | ')}`);
	const [pair, ...rest] = lines[0].split(';');
	const attrs = new Map();
	for (const a of rest) {
		const i = a.indexOf('=');
		attrs.set((i < 0 ? a : a.slice(0, i)).trim().toLowerCase(), i < 0 ? '' : a.slice(i + 1).trim());
	}
	return { value: pair.slice(pair.indexOf('=') + 1).trim(), attrs, line: lines[0] };
}

/**
 * GET /api/auth/{provider}/start as `user` from `jar` (a CookieJar for
 * intauth's origin; its cookies are sent and the answer's stored).
 * query: an object of query parameters. Answers the raw answer plus the URL.
 */
async function start(user, provider, query = {}, { jar = new CookieJar(), token = user?.token } = {}) {
	const qs = new URLSearchParams(query).toString();
	const path = `/api/auth/${provider}/start${qs ? `?${qs}` : ''}`;
	const headers = {};
	const cookie = jar.header(`${PUBLIC_BASE_URL}${path}`);
	if (cookie) headers.cookie = cookie;
	const res = await get(path, { token, headers });
	jar.store(`${PUBLIC_BASE_URL}${path}`, res.headers.getSetCookie());
	let url = null;
	if (res.status === 200 && res.json && typeof res.json.url === 'string') url = res.json.url;
	else if (res.status === 302) url = res.headers.get('location');
	return { res, url, jar, cookie: flowCookie(res) };
}

/** Calls intauth's callback at `location` (the authorization server's redirect), path possibly replaced. */
async function callback(location, { jar, cookie, path } = {}) {
	const u = new URL(location);
	const p = `${path ?? u.pathname}${u.search}`;
	const headers = {};
	const c = cookie ?? (jar ? jar.header(`${PUBLIC_BASE_URL}${p}`) : '');
	if (c) headers.cookie = c;
	const res = await get(p, { headers });
	const loc = res.headers.get('location');
	return { ...res, location: loc, outcome: loc ? new URL(loc) : null };
}

/** start → consent at the authorization server → (not yet) callback. */
async function authorize(user, provider, query = {}, opts = {}) {
	const s = await start(user, provider, query, opts);
	assert.equal(s.res.status, query.redirect === '1' ? 302 : 200, `start: ${show(s.res)}`);
	const back = await consent(s.url);
	return { ...s, back, state: new URL(s.url).searchParams.get('state') };
}

/** The whole flow; answers the callback's answer and the flow. */
async function connect(user, provider, query = {}, opts = {}) {
	const a = await authorize(user, provider, query, opts);
	const cb = await callback(a.back, { jar: a.jar });
	return { ...a, cb };
}

function assertConnectedRedirect(cb, redirectTo, provider) {
	assert.equal(cb.status, 302, `callback: ${show(cb)} location=${cb.location}`);
	const want = new URL(redirectTo);
	const got = cb.outcome;
	assert.equal(`${got.origin}${got.pathname}`, `${want.origin}${want.pathname}`, cb.location);
	for (const [k, v] of want.searchParams) assert.equal(got.searchParams.get(k), v, `kept ${k}: ${cb.location}`);
	assert.equal(got.searchParams.get('provider'), provider, cb.location);
	assert.equal(got.searchParams.get('status'), 'connected', cb.location);
	assert.equal(got.searchParams.get('error'), null, cb.location);
	assert.equal(got.hash, want.hash, `fragment kept: ${cb.location}`);
}

function assertErrorRedirect(cb, redirectTo, provider, code) {
	assert.equal(cb.status, 302, `callback: ${show(cb)}`);
	const got = cb.outcome;
	const want = new URL(redirectTo);
	assert.equal(`${got.origin}${got.pathname}`, `${want.origin}${want.pathname}`, cb.location);
	assert.equal(got.searchParams.get('provider'), provider, cb.location);
	assert.equal(got.searchParams.get('status'), 'error', cb.location);
	assert.equal(got.searchParams.get('error'), code, cb.location);
}

const integrationsOf = async (user) => assertOk(await get('/api/integrations', { token: user.token })).integrations;
const codeExchanges = async () => (await stats(ISSUER)).token.authorization_code;
// the last code exchange (the worker may refresh other tests' tokens meanwhile)
const lastTokenRequest = async () => (await requests(ISSUER))
	.filter((r) => r.endpoint === 'token' && r.grant_type === 'authorization_code').at(-1);

/** The newest oauth_states row of a user, as JSON (superuser view). */
function stateRow(userId) {
	const out = psql(`SELECT row_to_json(s)::text FROM public.oauth_states s WHERE user_id = ${lit(userId)}
		ORDER BY created_at DESC LIMIT 1;`);
	return out ? JSON.parse(out) : null;
}

function workerRunning() {
	const f = join(STACK_DIR, 'run', 'worker.pid');
	if (!existsSync(f)) return false;
	const pid = Number(readFileSync(f, 'utf8').trim());
	if (!(pid > 0)) return false;
	try {
		process.kill(pid, 0);
		return true;
	} catch (e) {
		return e.code === 'EPERM';
	}
}

before(async () => {
	assert.ok(ISSUER, 'OAUTH_ISSUER is exported by tests/run');
	assert.ok(PUBLIC_BASE_URL, `PUBLIC_BASE_URL in ${ENV_FILE}`);
	for (const c of Object.values(CLIENTS)) assert.ok(c.id && c.secret, 'TESTOIDC_* client ids and secrets are exported');
	await setMode(ISSUER, { token: 'normal', revocation: 'normal', userinfo: 'normal' });
});

after(async () => {
	await setMode(ISSUER, { token: 'normal', revocation: 'normal', userinfo: 'normal', slow_ms: 20000 }).catch(() => {});
});

// ---------- the happy path ----------

describe('connect end to end', () => {
	test('testoidc (client_secret_post): start → consent → callback → connected, with a working access token', async () => {
		const user = newUser();
		const redirectTo = `${APP}/settings/integrations?tab=oauth#list`;
		const before = await codeExchanges();
		const f = await connect(user, 'testoidc', { redirect_to: redirectTo });
		assertConnectedRedirect(f.cb, redirectTo, 'testoidc');
		assert.equal(await codeExchanges() - before, 1, 'one code exchange');

		// the token request that reached the server: form-encoded, client_secret_post,
		// byte-identical redirect_uri, with a code_verifier (the server requires
		// PKCE and checked it against the code_challenge: the answer was 200)
		const req = await lastTokenRequest();
		assert.equal(req.grant_type, 'authorization_code');
		assert.equal(req.status, 200, JSON.stringify(req));
		assert.equal(req.client_auth, 'client_secret_post');
		assert.equal(req.client_id, CLIENTS.testoidc.id);
		assert.equal(req.params.redirect_uri, new URL(f.url).searchParams.get('redirect_uri'));
		assert.equal(req.params.code_verifier, '<present>');
		assert.equal(req.params.client_secret, '<present>');

		const list = await integrationsOf(user);
		assert.equal(list.length, 1, JSON.stringify(list));
		const i = list[0];
		assertIntegration(i, { provider: 'testoidc', connection: 'default', auth_type: 'oauth2', status: 'connected', last_error: null });
		assert.ok(i.expires_at && Date.parse(i.expires_at) > Date.now(), `expires_at from expires_in: ${i.expires_at}`);
		assert.ok(i.scopes.includes('openid'), `granted scopes: ${i.scopes}`);

		const creds = await getCredentials({ integration_id: i.id });
		const body = assertOk(creds);
		assert.match(creds.headers.get('cache-control') || '', /no-store/);
		assert.equal(body.integration.id, i.id);
		assert.equal(typeof body.credentials.access_token, 'string');
		assert.match(body.credentials.token_type, /^bearer$/i);
		assert.ok(!('refresh_token' in body.credentials), 'the refresh token stays inside intauth');
		const ui = await userinfo(ISSUER, body.credentials.access_token);
		assert.equal(ui.status, 200, JSON.stringify(ui.body));
		assert.equal(typeof ui.body.sub, 'string');
		const intro = await introspect(ISSUER, body.credentials.access_token, CLIENTS.testoidc);
		assert.equal(intro.active, true);
		assert.equal(intro.client_id, CLIENTS.testoidc.id);

		// nothing readable at rest
		const secret = psql(`SELECT secret FROM public.credentials WHERE integration_id = ${lit(i.id)};`);
		assert.match(secret, /^v2\./);
		assert.ok(!secret.includes(body.credentials.access_token));
		assert.ok(!allLogs().includes(body.credentials.access_token), 'the access token is in a log');
	});

	test('testoidc_basic (client_secret_basic, secret with + / ~), started with ?redirect=1 and the default redirect_to', async () => {
		assert.match(CLIENTS.testoidc_basic.secret, /[+/~]/, 'the basic client secret holds characters that need form-urlencoding');
		const user = newUser();
		const f = await connect(user, 'testoidc_basic', { redirect: '1' });
		assertConnectedRedirect(f.cb, `${PUBLIC_BASE_URL}/`, 'testoidc_basic');

		const req = await lastTokenRequest();
		assert.equal(req.status, 200, JSON.stringify(req));
		assert.equal(req.client_auth, 'client_secret_basic');
		assert.equal(req.client_id, CLIENTS.testoidc_basic.id);
		assert.equal(req.params.client_secret, undefined, 'no secret in the body with client_secret_basic');
		assert.equal(req.params.code_verifier, '<present>');
		assert.equal(req.params.redirect_uri, callbackUri('testoidc_basic'));

		const [i] = await integrationsOf(user);
		assertIntegration(i, { provider: 'testoidc_basic', status: 'connected' });
		const body = assertOk(await getCredentials({ user_id: user.id, provider: 'testoidc_basic' }));
		assert.equal((await userinfo(ISSUER, body.credentials.access_token)).status, 200);
		assert.equal((await introspect(ISSUER, body.credentials.access_token, CLIENTS.testoidc_basic)).active, true);
	});

	test('?connection=work and ?connection=home give two integrations of one provider', async () => {
		const user = newUser();
		for (const connection of ['work', 'home']) {
			const f = await connect(user, 'testoidc', { connection, redirect_to: `${APP}/done` });
			assertConnectedRedirect(f.cb, `${APP}/done`, 'testoidc');
		}
		const list = await integrationsOf(user);
		assert.deepEqual(list.map((i) => i.connection).sort(), ['home', 'work']);
		for (const i of list) assertIntegration(i, { provider: 'testoidc', status: 'connected' });
		assert.notEqual(list[0].id, list[1].id);
		const a = assertOk(await getCredentials({ integration_id: list[0].id })).credentials.access_token;
		const b = assertOk(await getCredentials({ integration_id: list[1].id })).credentials.access_token;
		assert.notEqual(a, b, 'each connection holds its own token');
	});

	test('a bootstrap job is queued; the worker puts the userinfo account into metadata; a connect log row', async (t) => {
		const user = newUser();
		const f = await connect(user, 'testoidc');
		assertConnectedRedirect(f.cb, `${PUBLIC_BASE_URL}/`, 'testoidc');
		const [i] = await integrationsOf(user);
		const jobs = countRows('integration_sync_jobs', `integration_id = ${lit(i.id)} AND kind = 'bootstrap'`);
		assert.equal(jobs, 1, 'one bootstrap job for the new integration');

		const logs = assertOk(await get(`/api/integrations/${i.id}/logs`, { token: user.token })).logs;
		assert.ok(logs.some((l) => /connect/.test(l.action) && l.level === 'info'), `a connect log row: ${JSON.stringify(logs)}`);
		for (const l of logs) assert.deepEqual(Object.keys(l).sort(), ['action', 'created_at', 'details', 'id', 'level', 'message']);

		if (!workerRunning()) {
			t.diagnostic('the worker is not running: the account in metadata is not checked');
			return;
		}
		const token = assertOk(await getCredentials({ integration_id: i.id })).credentials.access_token;
		const sub = (await userinfo(ISSUER, token)).body.sub;
		const got = await poll(async () => {
			const [x] = await integrationsOf(user);
			return x.metadata && x.metadata.account ? x : null;
		}, { timeoutMs: 8000, intervalMs: 200 });
		assert.ok(got, `the worker did not put an account into metadata within 8 s: ${JSON.stringify(await integrationsOf(user))}`);
		assert.equal(typeof got.metadata.account, 'object');
		assert.equal(got.metadata.account.sub, sub, 'the account is the one userinfo answers for the token');
		assert.equal(got.status, 'connected');
		const jobStatus = () => psql(`SELECT status FROM public.integration_sync_jobs WHERE integration_id = ${lit(i.id)} AND kind = 'bootstrap';`);
		assert.equal(await poll(() => jobStatus() === 'succeeded', { timeoutMs: 5000 }) && jobStatus(), 'succeeded');
	});
});

// ---------- auth-start ----------

describe('auth-start', () => {
	test('answers {"url"} for the authorization request: code, client_id, redirect_uri, scope, state, S256 challenge', async () => {
		const cat = JSON.parse(readFileSync(CATALOG, 'utf8')).testoidc;
		const user = newUser();
		const s = await start(user, 'testoidc');
		assert.equal(s.res.status, 200, show(s.res));
		assert.deepEqual(Object.keys(s.res.json), ['url']);
		assert.match(s.res.headers.get('cache-control') || '', /no-store/);
		const u = new URL(s.url);
		assert.equal(`${u.origin}${u.pathname}`, cat.authorization_url);
		const q = u.searchParams;
		assert.equal(q.get('response_type'), 'code');
		assert.equal(q.get('client_id'), CLIENTS.testoidc.id);
		assert.equal(q.get('redirect_uri'), callbackUri('testoidc'));
		assert.equal(q.get('scope'), cat.default_scopes.join(' '));
		assert.match(q.get('state'), B64URL_43);
		assert.match(q.get('code_challenge'), B64URL_43);
		assert.equal(q.get('code_challenge_method'), 'S256');
		assert.equal(q.getAll('state').length, 1);

		const again = await start(user, 'testoidc', { scopes: 'openid,email' });
		const q2 = new URL(again.url).searchParams;
		assert.equal(q2.get('scope'), 'openid email');
		assert.notEqual(q2.get('state'), q.get('state'), 'a fresh state per flow');
		assert.notEqual(q2.get('code_challenge'), q.get('code_challenge'), 'a fresh verifier per flow');
	});

	test('?redirect=1 answers 302 to the same kind of URL', async () => {
		const s = await start(newUser(), 'testoidc', { redirect: '1', scopes: 'openid' });
		assert.equal(s.res.status, 302, show(s.res));
		const u = new URL(s.res.headers.get('location'));
		assert.equal(u.searchParams.get('client_id'), CLIENTS.testoidc.id);
		assert.equal(u.searchParams.get('scope'), 'openid');
		assert.match(u.searchParams.get('state'), B64URL_43);
		assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
		assert.ok(s.cookie, 'the flow cookie is set on the redirect too');
	});

	test('the intauth_flow cookie: HttpOnly, SameSite=Lax, a Path covering the callback; OAUTH_BIND_BROWSER on by default', async () => {
		assert.ok(!('OAUTH_BIND_BROWSER' in ENV), 'the test env file leaves OAUTH_BIND_BROWSER at its default');
		const s = await start(newUser(), 'testoidc');
		assert.ok(s.cookie, `no intauth_flow cookie: ${s.res.headers.getSetCookie()}`);
		const c = s.cookie;
		assert.match(c.value, B64URL_43);
		assert.ok(c.attrs.has('httponly'), c.line);
		assert.equal((c.attrs.get('samesite') || '').toLowerCase(), 'lax', c.line);
		const path = c.attrs.get('path');
		assert.ok(path && callbackUri('testoidc').slice(PUBLIC_BASE_URL.length).startsWith(path), `Path ${path} covers the callback`);
		if (PUBLIC_BASE_URL.startsWith('http://')) assert.ok(!c.attrs.has('secure'), 'no Secure over http');
		if (c.attrs.has('max-age')) assert.ok(Number(c.attrs.get('max-age')) > 0, c.line);
	});

	test('only a hash of state is stored; the PKCE verifier is an encrypted envelope; the cookie nonce is hashed too', async () => {
		const user = newUser();
		const s = await start(user, 'testoidc', { redirect_to: `${APP}/x`, connection: 'lab' });
		const q = new URL(s.url).searchParams;
		const state = q.get('state');
		const row = stateRow(user.id);
		assert.ok(row, 'an oauth_states row');
		const text = JSON.stringify(row);
		assert.notEqual(row.state_hash, state);
		assert.ok(!text.includes(state), 'the raw state is in oauth_states');
		assert.ok(!text.includes(s.cookie.value), 'the raw flow nonce is in oauth_states');
		assert.match(row.code_verifier, /^v2\./, 'code_verifier is an encrypted envelope');
		assert.notEqual(s256(row.code_verifier), q.get('code_challenge'), 'code_verifier is stored in the clear');
		assert.equal(row.provider, 'testoidc');
		assert.equal(row.connection, 'lab');
		assert.equal(row.redirect_to, `${APP}/x`);
		assert.equal(row.used_at, null);
		const ttl = (Date.parse(row.expires_at) - Date.parse(row.created_at)) / 1000;
		assert.ok(Math.abs(ttl - 600) < 5, `state lifetime ${ttl} s, not 10 minutes`);
		assert.equal(psql(`SELECT relrowsecurity FROM pg_class WHERE oid = 'public.oauth_states'::regclass;`), 't');
	});

	test('refusals: redirect_to off the allowed origins, unknown provider, api_key provider, bad connection, no or wrong JWT', async () => {
		const user = newUser();
		const states = () => countRows('oauth_states', `user_id = ${lit(user.id)}`);
		for (const bad of [
			'https://evil.example/', 'http://app.test.example.evil.example/', `${APP}:8443/`,
			'https://app.test.example/', '//evil.example/', 'javascript:alert(1)', 'http://app.test.example@evil.example/',
			'not a url', '', 'http://evil.example\\@app.test.example/', 'http://app.test.example\\@evil.example/',
			`${APP}/x\r\nSet-Cookie: a=1`, `${APP}/x\tY`, 'ftp://app.test.example/', `${APP}/${'a'.repeat(2100)}`,
		]) {
			const res = (await start(user, 'testoidc', { redirect_to: bad })).res;
			assertError(res, 400, 'invalid_request');
			assert.equal(res.headers.get('location'), null);
			assert.equal(flowCookie(res), null, `no cookie for a refused start (${bad})`);
		}
		assertError((await start(user, 'testoidc', { redirect_to: 'https://evil.example/', redirect: '1' })).res, 400, 'invalid_request');
		assert.equal(states(), 0, 'a refused start stores no state');

		assertError((await start(user, 'nosuchprovider')).res, 400, 'unknown_provider');
		assertError((await start(user, 'openai')).res, 400, 'unsupported_auth_type');
		assertError((await start(user, 'testoidc', { connection: 'bad connection/../' })).res, 400, 'invalid_request');
		assert.equal(states(), 0);

		assertError((await start(null, 'testoidc')).res, 401, 'unauthorized');
		assertError((await start(null, 'testoidc', {}, { token: anonToken() })).res, 401, 'unauthorized');
		assertError((await start(null, 'testoidc', {}, { token: `${user.token}x` })).res, 401, 'unauthorized');
		assertError((await start(null, 'testoidc', {}, { token: serviceToken() })).res, 403, 'forbidden');
		assert.equal(states(), 0);
	});
});

// ---------- auth-callback: the state ----------

describe('auth-callback refuses a state that is not valid (400 invalid_state), and changes nothing', () => {
	test('a replayed callback', async () => {
		const user = newUser();
		const f = await connect(user, 'testoidc');
		assertConnectedRedirect(f.cb, `${PUBLIC_BASE_URL}/`, 'testoidc');
		const [before] = await integrationsOf(user);
		// the worker's bootstrap job may update metadata meanwhile: compare what a
		// callback writes (the credential, the connect log, the row's identity)
		const written = () => psql(`SELECT c.id || ' ' || c.secret || ' ' || (SELECT count(*) FROM public.integration_logs l
			WHERE l.user_id = c.user_id) FROM public.credentials c WHERE c.user_id = ${lit(user.id)};`);
		const was = written();
		const n = await codeExchanges();
		const replay = await callback(f.back, { jar: f.jar });
		assertError(replay, 400, 'invalid_state');
		assert.equal(replay.location, null);
		assert.equal(await codeExchanges(), n, 'no token call for a replay');
		const list = await integrationsOf(user);
		assert.deepEqual(list.map((i) => [i.id, i.status, i.created_at]), [[before.id, 'connected', before.created_at]]);
		assert.equal(written(), was, 'the credential and the logs are unchanged');
		assert.notEqual(stateRow(user.id).used_at, null, 'the state is marked used');
	});

	test('an expired state', async () => {
		const user = newUser();
		const a = await authorize(user, 'testoidc');
		psql(`UPDATE public.oauth_states SET expires_at = now() - interval '1 minute' WHERE user_id = ${lit(user.id)};`);
		const n = await codeExchanges();
		const cb = await callback(a.back, { jar: a.jar });
		assertError(cb, 400, 'invalid_state');
		assert.equal(await codeExchanges(), n);
		assert.deepEqual(await integrationsOf(user), []);
	});

	test('a state from another provider (mix-up)', async () => {
		const user = newUser();
		const a = await authorize(user, 'testoidc');
		const n = await codeExchanges();
		const cb = await callback(a.back, { jar: a.jar, path: '/api/auth/testoidc_basic/callback' });
		assertError(cb, 400, 'invalid_state');
		assert.equal(await codeExchanges(), n);
		assert.deepEqual(await integrationsOf(user), []);
	});

	test('a browser without the flow cookie, or with another one', async () => {
		const user = newUser();
		const other = await start(newUser(), 'testoidc');
		for (const cookie of [
			'', // no cookie at all
			`intauth_flow=${randomBytes(32).toString('base64url')}`, // a well-formed nonce of nobody
			`intauth_flow=${other.cookie.value}`, // another user's browser
			'intauth_flow=', 'intauth_flow=../x', 'other=1',
		]) {
			const a = await authorize(user, 'testoidc');
			const n = await codeExchanges();
			const cb = await callback(a.back, { cookie });
			assertError(cb, 400, 'invalid_state');
			assert.equal(await codeExchanges(), n, `no token call (cookie "${cookie}")`);
			assert.deepEqual(await integrationsOf(user), [], `no integration (cookie "${cookie}")`);
		}
	});

	// A signed-in user may write their own oauth_states rows through the Data
	// API (the authenticated role's grants): a row auth-start never wrote must
	// not switch off the browser binding or PKCE, or send the browser elsewhere.
	for (const [what, set] of [
		['without its browser binding', 'flow_hash = NULL'],
		['without its PKCE verifier', 'code_verifier = NULL'],
		['with a redirect_to on an origin not allowed', `redirect_to = 'https://evil.example/'`],
	]) {
		test(`a state row the user rewrote ${what}`, async () => {
			const user = newUser();
			const a = await authorize(user, 'testoidc');
			const rewritten = asUser(user.id, `WITH u AS (UPDATE public.oauth_states SET ${set}
				WHERE user_id = ${lit(user.id)} RETURNING 1) SELECT count(*) FROM u;`, { commit: true });
			assert.equal(rewritten, '1', 'the user could not rewrite its state row: the check would be empty');
			const n = await codeExchanges();
			const cb = await callback(a.back, { jar: a.jar });
			assertError(cb, 400, 'invalid_state');
			assert.equal(cb.location, null, 'redirected after all');
			assert.equal(await codeExchanges(), n, 'the code was exchanged');
			assert.deepEqual(await integrationsOf(user), []);
		});
	}

	test('a repeated state names no flow: refused without consuming either', async () => {
		const user = newUser();
		const a = await authorize(user, 'testoidc');
		const u = new URL(a.back);
		const n = await codeExchanges();
		for (const second of [a.state, randomBytes(32).toString('base64url')]) {
			const twice = new URL(u);
			twice.searchParams.append('state', second);
			assertError(await callback(twice.href, { jar: a.jar }), 400, 'invalid_state');
		}
		assert.equal(await codeExchanges(), n);
		assertConnectedRedirect(await callback(a.back, { jar: a.jar }), `${PUBLIC_BASE_URL}/`, 'testoidc');
	});

	test('missing or malformed state', async () => {
		for (const q of ['', '?code=abc', '?state=short&code=abc', `?state=${'a'.repeat(43)}&code=abc`, '?error=access_denied']) {
			assertError(await get(`/api/auth/testoidc/callback${q}`), 400, 'invalid_state');
		}
	});

	test('two flows started in two tabs of one browser both finish', async () => {
		const user = newUser();
		const jar = new CookieJar();
		const tab1 = await authorize(user, 'testoidc', { connection: 'tab1' }, { jar });
		const tab2 = await authorize(user, 'testoidc', { connection: 'tab2' }, { jar });
		assert.ok(tab1.cookie && tab2.cookie);
		assert.equal(tab2.cookie.value, tab1.cookie.value, 'the second start reuses the browser\'s nonce');
		assertConnectedRedirect(await callback(tab2.back, { jar }), `${PUBLIC_BASE_URL}/`, 'testoidc');
		assertConnectedRedirect(await callback(tab1.back, { jar }), `${PUBLIC_BASE_URL}/`, 'testoidc');
		assert.deepEqual((await integrationsOf(user)).map((i) => i.connection).sort(), ['tab1', 'tab2']);
	});

	test('five simultaneous callbacks with one state: one code exchange, one 302 connected, four 400 invalid_state', async () => {
		const user = newUser();
		const a = await authorize(user, 'testoidc');
		const n = await codeExchanges();
		const answers = await Promise.all(Array.from({ length: 5 }, () => callback(a.back, { jar: a.jar })));
		const ok = answers.filter((r) => r.status === 302);
		const refused = answers.filter((r) => r.status === 400);
		assert.equal(ok.length, 1, answers.map(show).join('\n'));
		assert.equal(refused.length, 4, answers.map(show).join('\n'));
		assertConnectedRedirect(ok[0], `${PUBLIC_BASE_URL}/`, 'testoidc');
		for (const r of refused) assertError(r, 400, 'invalid_state');
		assert.equal(await codeExchanges() - n, 1, 'exactly one code exchange at the server');
		const list = await integrationsOf(user);
		assert.equal(list.length, 1);
		assert.equal(list[0].status, 'connected');
	});
});

// ---------- auth-callback: outcomes sent back to redirect_to ----------

describe('auth-callback failures go back to redirect_to with status=error, and store nothing', () => {
	test('an iss other than the provider\'s issuer (RFC 9207): invalid_issuer, no token call', async () => {
		const user = newUser();
		const redirectTo = `${APP}/back`;
		const a = await authorize(user, 'testoidc', { redirect_to: redirectTo });
		assert.equal(new URL(a.back).searchParams.get('iss'), ISSUER, 'the server sends iss');
		const forged = new URL(a.back);
		forged.searchParams.set('iss', 'https://evil.example');
		const n = await codeExchanges();
		const cb = await callback(forged.href, { jar: a.jar });
		assertErrorRedirect(cb, redirectTo, 'testoidc', 'invalid_issuer');
		assert.equal(await codeExchanges(), n, 'no token call before the issuer check');
		assert.deepEqual(await integrationsOf(user), []);
		// the state was consumed: the genuine answer cannot be used afterwards
		assertError(await callback(a.back, { jar: a.jar }), 400, 'invalid_state');
		assert.equal(await codeExchanges(), n);
	});

	test('an error response from another issuer is a mix-up too (RFC 9207 §2.4): invalid_issuer', async () => {
		const user = newUser();
		const redirectTo = `${APP}/back`;
		const a = await authorize(user, 'testoidc', { redirect_to: redirectTo });
		const forged = new URL(a.back);
		forged.searchParams.delete('code');
		forged.searchParams.set('error', 'access_denied');
		forged.searchParams.set('iss', 'https://evil.example');
		const cb = await callback(forged.href, { jar: a.jar });
		assertErrorRedirect(cb, redirectTo, 'testoidc', 'invalid_issuer');
		assert.deepEqual(await integrationsOf(user), []);
	});

	test('a repeated iss, code or error (RFC 6749 §3.1): invalid_request, no token call', async () => {
		for (const [key, ...extra] of [['iss', 'https://evil.example'], ['code', 'x'.repeat(43)], ['error', 'access_denied', 'access_denied']]) {
			const user = newUser();
			const a = await authorize(user, 'testoidc');
			const u = new URL(a.back);
			for (const v of extra) u.searchParams.append(key, v);
			const n = await codeExchanges();
			const cb = await callback(u.href, { jar: a.jar });
			assertErrorRedirect(cb, `${PUBLIC_BASE_URL}/`, 'testoidc', 'invalid_request');
			assert.equal(await codeExchanges(), n, `no token call with two ${key}`);
			assert.deepEqual(await integrationsOf(user), []);
		}
	});

	test('error=access_denied from the provider: the code goes back, error_description never does', async () => {
		const user = newUser();
		const redirectTo = `${APP}/back`;
		const s = await start(user, 'testoidc', { redirect_to: redirectTo });
		const state = new URL(s.url).searchParams.get('state');
		const desc = `<script>alert("x${randomBytes(4).toString('hex')}")</script>`;
		const q = new URLSearchParams({ error: 'access_denied', error_description: desc, state, iss: ISSUER });
		const n = await codeExchanges();
		const cb = await callback(`${callbackUri('testoidc')}?${q}`, { jar: s.jar });
		assertErrorRedirect(cb, redirectTo, 'testoidc', 'access_denied');
		const all = `${cb.location}\n${cb.text}\n${decodeURIComponent(cb.location)}`;
		assert.ok(!all.includes('script') && !all.includes(desc), `error_description reflected: ${all}`);
		assert.equal(cb.outcome.searchParams.get('error_description'), null);
		assert.equal(await codeExchanges(), n);
		assert.deepEqual(await integrationsOf(user), []);
		assertError(await callback(`${callbackUri('testoidc')}?${q}`, { jar: s.jar }), 400, 'invalid_state');
		const logs = allLogs().split('\n').filter((l) => !/"GET [^"]*callback/.test(l)).join('\n');
		assert.ok(!logs.includes('alert('), 'error_description in a program log');
	});

	test('a real authorization error from the server (request without PKCE) comes back as its code', async () => {
		const user = newUser();
		const redirectTo = `${APP}/back`;
		const s = await start(user, 'testoidc', { redirect_to: redirectTo });
		const u = new URL(s.url);
		u.searchParams.delete('code_challenge');
		u.searchParams.delete('code_challenge_method');
		const back = await consent(u.href);
		assert.equal(new URL(back).searchParams.get('error'), 'invalid_request', back);
		const cb = await callback(back, { jar: s.jar });
		assertErrorRedirect(cb, redirectTo, 'testoidc', 'invalid_request');
		assert.deepEqual(await integrationsOf(user), []);
	});

	test('the verifier intauth sends belongs to the challenge it sent: a swapped challenge fails the exchange', async () => {
		const user = newUser();
		const s = await start(user, 'testoidc');
		const u = new URL(s.url);
		u.searchParams.set('code_challenge', pkcePair().challenge);
		const back = await consent(u.href);
		const n = await codeExchanges();
		const cb = await callback(back, { jar: s.jar });
		assertErrorRedirect(cb, `${PUBLIC_BASE_URL}/`, 'testoidc', 'provider_error');
		assert.equal(await codeExchanges() - n, 1, 'the exchange was tried');
		const req = await lastTokenRequest();
		assert.equal(req.params.code_verifier, '<present>');
		assert.equal(req.error, 'invalid_grant', JSON.stringify(req));
		assert.deepEqual(await integrationsOf(user), []);
	});

	for (const mode of ['down', 'error500', 'error503', 'garbage', 'invalid_grant']) {
		test(`token endpoint ${mode}: provider_error, nothing stored`, async () => {
			const user = newUser();
			const redirectTo = `${APP}/back`;
			const a = await authorize(user, 'testoidc', { redirect_to: redirectTo });
			const n = await codeExchanges();
			await setMode(ISSUER, { token: mode, count: 1 });
			let cb;
			try {
				cb = await callback(a.back, { jar: a.jar });
			} finally {
				await setMode(ISSUER, { token: 'normal' });
			}
			assertErrorRedirect(cb, redirectTo, 'testoidc', 'provider_error');
			assert.equal(await codeExchanges() - n, 1, 'one token call');
			assert.deepEqual(await integrationsOf(user), []);
			assert.equal(psql(`SELECT (SELECT count(*) FROM public.integrations WHERE user_id = ${lit(user.id)})
				+ (SELECT count(*) FROM public.credentials WHERE user_id = ${lit(user.id)});`), '0', 'no row stored');
		});
	}

	test('a failed reconnect leaves the existing connection as it was', async () => {
		const user = newUser();
		assertConnectedRedirect((await connect(user, 'testoidc')).cb, `${PUBLIC_BASE_URL}/`, 'testoidc');
		const [before] = await integrationsOf(user);
		const tokenBefore = assertOk(await getCredentials({ integration_id: before.id })).credentials.access_token;
		const a = await authorize(user, 'testoidc');
		await setMode(ISSUER, { token: 'error500', count: 1 });
		let cb;
		try {
			cb = await callback(a.back, { jar: a.jar });
		} finally {
			await setMode(ISSUER, { token: 'normal' });
		}
		assertErrorRedirect(cb, `${PUBLIC_BASE_URL}/`, 'testoidc', 'provider_error');
		const [now] = await integrationsOf(user);
		assert.equal(now.id, before.id);
		assert.equal(now.status, 'connected');
		assert.equal(assertOk(await getCredentials({ integration_id: before.id })).credentials.access_token, tokenBefore);
	});

	test('a token endpoint slower than HTTP_TIMEOUT_MS: provider_timeout, nothing stored', async (t) => {
		const timeout = Number(ENV.HTTP_TIMEOUT_MS || 15000);
		if (timeout > 5000) {
			t.skip(`HTTP_TIMEOUT_MS is ${timeout} ms: too slow for this suite`);
			return;
		}
		const user = newUser();
		const a = await authorize(user, 'testoidc');
		await setMode(ISSUER, { token: 'slow', slow_ms: timeout + 5000, count: 1 });
		let cb;
		const t0 = Date.now();
		try {
			cb = await callback(a.back, { jar: a.jar });
		} finally {
			await setMode(ISSUER, { token: 'normal', slow_ms: 20000 });
		}
		const took = Date.now() - t0;
		assertErrorRedirect(cb, `${PUBLIC_BASE_URL}/`, 'testoidc', 'provider_timeout');
		// gave up at its timeout, before the server would have answered
		assert.ok(took >= timeout - 200 && took < timeout + 4000, `answered after ${took} ms (timeout ${timeout} ms)`);
		assert.deepEqual(await integrationsOf(user), []);
	});
});
