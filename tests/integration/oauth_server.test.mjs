// The test authorization server itself (tests/oauth/server.mjs, oidc-provider),
// independent of intauth's C code: if these fail, the OAuth flow tests that
// use it cannot be trusted. Uses the server tests/run started (OAUTH_ISSUER and
// the TESTOIDC_* variables); run alone, it starts its own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import {
	authorizationUrl, consent, introspect, pkcePair, requests, revoke, setMode, stats, token, userinfo,
} from '../oauth/consent.mjs';

let issuer;
let child;
let post; // client_secret_post client: { id, secret, auth, redirectUri }
let basic; // client_secret_basic client

async function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// node tests/oauth/server.mjs --port PORT ...args; resolves once OAUTH_READY
async function startServer(port, args) {
	const server = fileURLToPath(new URL('../oauth/server.mjs', import.meta.url));
	const proc = spawn(process.execPath, [server, '--port', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
	let errs = '';
	proc.stderr.on('data', (d) => { errs += d; });
	const iss = await new Promise((resolve, reject) => {
		let out = '';
		const t = setTimeout(() => reject(new Error(`oauth server not ready in 20 s: ${errs}`)), 20000);
		proc.stdout.on('data', (d) => {
			out += d;
			const m = /OAUTH_READY (\S+)/.exec(out);
			if (m) {
				clearTimeout(t);
				resolve(m[1]);
			}
		});
		proc.once('exit', (code) => reject(new Error(`oauth server exited with ${code}: ${errs}`)));
	});
	return { child: proc, issuer: iss };
}

async function stopServer(proc) {
	if (proc.exitCode !== null || proc.signalCode !== null) return;
	const gone = new Promise((resolve) => proc.once('exit', resolve));
	proc.kill('SIGTERM');
	await gone;
}

before(async () => {
	const env = process.env;
	if (env.OAUTH_ISSUER) {
		issuer = env.OAUTH_ISSUER;
		post = { id: env.TESTOIDC_CLIENT_ID, secret: env.TESTOIDC_CLIENT_SECRET, redirectUri: env.TESTOIDC_REDIRECT_URI };
		basic = { id: env.TESTOIDC_BASIC_CLIENT_ID, secret: env.TESTOIDC_BASIC_CLIENT_SECRET, redirectUri: env.TESTOIDC_BASIC_REDIRECT_URI };
	} else {
		const port = await freePort();
		post = { id: 'smoke-post', secret: 'smoke secret/with+odd:chars', redirectUri: 'http://127.0.0.1:9/api/auth/testoidc/callback' };
		basic = { id: 'smoke basic:client', secret: 'sm%ke b@sic=secret', redirectUri: 'http://127.0.0.1:9/api/auth/testoidc_basic/callback' };
		({ child, issuer } = await startServer(port, [
			'--redirect-uri', post.redirectUri, '--client-id', post.id, '--client-secret', post.secret,
			'--basic-client-id', basic.id, '--basic-client-secret', basic.secret,
			'--basic-redirect-uri', basic.redirectUri]));
	}
	post.auth = 'client_secret_post';
	basic.auth = 'client_secret_basic';
	for (const c of [post, basic]) {
		assert.ok(c.id && c.secret && c.redirectUri, 'client id, secret and redirect_uri are known');
	}
});

after(async () => {
	if (issuer) await setMode(issuer, { token: 'normal', revocation: 'normal', userinfo: 'normal', slow_ms: 20000 }).catch(() => {});
	if (child) await stopServer(child);
});

// authorize as `client` and return { code, state, iss, verifier, location }
async function authorize(client, extra = {}) {
	const { verifier, challenge } = pkcePair();
	const state = pkcePair().verifier;
	const location = await consent(authorizationUrl(issuer, {
		clientId: client.id, redirectUri: client.redirectUri, state, challenge, ...extra,
	}));
	const q = new URL(location).searchParams;
	assert.equal(q.get('error'), null, `authorization error: ${location}`);
	assert.equal(q.get('state'), state);
	return { code: q.get('code'), state, iss: q.get('iss'), verifier, location };
}

async function connect(client, extra) {
	const a = await authorize(client, extra);
	const t = await token(issuer, {
		grant_type: 'authorization_code', code: a.code, redirect_uri: client.redirectUri, code_verifier: a.verifier,
	}, client);
	assert.equal(t.status, 200, JSON.stringify(t.body));
	return t.body;
}

test('discovery lists the endpoints the test catalog uses', async () => {
	const res = await fetch(new URL('/.well-known/openid-configuration', issuer));
	assert.equal(res.status, 200);
	const d = await res.json();
	assert.equal(d.issuer, issuer);
	assert.equal(d.authorization_endpoint, `${issuer}/auth`);
	assert.equal(d.token_endpoint, `${issuer}/token`);
	assert.equal(d.revocation_endpoint, `${issuer}/token/revocation`);
	assert.equal(d.introspection_endpoint, `${issuer}/token/introspection`);
	assert.equal(d.userinfo_endpoint, `${issuer}/me`);
	assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
	assert.equal(d.authorization_response_iss_parameter_supported, true);
	assert.deepEqual(d.grant_types_supported, ['authorization_code', 'refresh_token']);
	for (const s of ['openid', 'offline_access', 'profile', 'email']) assert.ok(d.scopes_supported.includes(s), s);

	if (process.env.TESTOIDC_CATALOG) {
		const cat = JSON.parse(readFileSync(process.env.TESTOIDC_CATALOG, 'utf8'));
		for (const [name, auth] of [['testoidc', 'client_secret_post'], ['testoidc_basic', 'client_secret_basic']]) {
			const p = cat[name];
			assert.ok(p, `${name} in the catalog`);
			assert.equal(p.auth_type, 'oauth2');
			assert.equal(p.issuer, d.issuer);
			assert.equal(p.authorization_url, d.authorization_endpoint);
			assert.equal(p.token_url, d.token_endpoint);
			assert.equal(p.revocation_url, d.revocation_endpoint);
			assert.equal(p.userinfo_url, d.userinfo_endpoint);
			assert.equal(p.token_endpoint_auth, auth);
			assert.equal(p.pkce, true);
		}
	}
});

test('consent() ends at redirect_uri with code, state and iss (RFC 9207)', async () => {
	const a = await authorize(post, { login_hint: 'alice' });
	assert.ok(a.location.startsWith(`${post.redirectUri}?`), a.location);
	assert.match(a.code, /^[A-Za-z0-9_-]{20,}$/);
	assert.equal(a.iss, issuer);
});

test('code + verifier → tokens; the access token works at userinfo as the login_hint account', async () => {
	const before = await stats(issuer);
	const t = await connect(post, { login_hint: 'alice' });
	assert.equal(t.token_type, 'Bearer');
	assert.ok(t.access_token && t.refresh_token && t.id_token);
	assert.ok(t.expires_in > 0);
	const u = await userinfo(issuer, t.access_token);
	assert.equal(u.status, 200);
	assert.equal(u.body.sub, 'alice');
	assert.equal(u.body.email, 'alice@example.test');
	const i = await introspect(issuer, t.access_token, post);
	assert.equal(i.active, true);
	assert.equal(i.client_id, post.id);
	const after = await stats(issuer);
	assert.equal(after.token.authorization_code - before.token.authorization_code, 1);
	assert.equal(after.userinfo - before.userinfo, 1);
	// default account
	const t2 = await connect(post);
	assert.equal((await userinfo(issuer, t2.access_token)).body.sub, 'user-1');
});

test('each client must use its registered auth method (Basic with form-urlencoded id:secret, or the body)', async () => {
	const t = await connect(basic);
	assert.ok(t.access_token && t.refresh_token);
	const a = await authorize(basic);
	const wrong = await token(issuer, {
		grant_type: 'authorization_code', code: a.code, redirect_uri: basic.redirectUri, code_verifier: a.verifier,
	}, { ...basic, auth: 'client_secret_post' });
	assert.equal(wrong.status, 401);
	assert.equal(wrong.body.error, 'invalid_client');
	const b = await authorize(post);
	const wrong2 = await token(issuer, {
		grant_type: 'authorization_code', code: b.code, redirect_uri: post.redirectUri, code_verifier: b.verifier,
	}, { ...post, auth: 'client_secret_basic' });
	assert.equal(wrong2.status, 401);
	assert.equal(wrong2.body.error, 'invalid_client');
	// the code is still good with the right method
	const right = await token(issuer, {
		grant_type: 'authorization_code', code: b.code, redirect_uri: post.redirectUri, code_verifier: b.verifier,
	}, post);
	assert.equal(right.status, 200);
	const log = await requests(issuer);
	const last = log.filter((r) => r.endpoint === 'token').slice(-4);
	assert.deepEqual(last.map((r) => [r.client_id, r.client_auth, r.status]), [
		[basic.id, 'client_secret_basic', 200], [basic.id, 'client_secret_post', 401],
		[post.id, 'client_secret_basic', 401], [post.id, 'client_secret_post', 200]]);
	assert.ok(!JSON.stringify(log).includes(basic.secret), 'the request log holds no secret');
});

test('the code is single use, bound to redirect_uri and to the verifier', async () => {
	const a = await authorize(post);
	const bad = async (fields) => token(issuer, {
		grant_type: 'authorization_code', code: a.code, redirect_uri: post.redirectUri, code_verifier: a.verifier, ...fields,
	}, post);
	let r = await bad({ redirect_uri: `${post.redirectUri}/` });
	assert.equal(r.body.error, 'invalid_grant');
	const b = await authorize(post);
	r = await token(issuer, { grant_type: 'authorization_code', code: b.code, redirect_uri: post.redirectUri, code_verifier: pkcePair().verifier }, post);
	assert.equal(r.body.error, 'invalid_grant');
	const c = await authorize(post);
	r = await token(issuer, { grant_type: 'authorization_code', code: c.code, redirect_uri: post.redirectUri }, post);
	assert.equal(r.status, 400);
	const d = await authorize(post);
	const fields = { grant_type: 'authorization_code', code: d.code, redirect_uri: post.redirectUri, code_verifier: d.verifier };
	r = await token(issuer, fields, post);
	assert.equal(r.status, 200);
	r = await token(issuer, fields, post);
	assert.equal(r.body.error, 'invalid_grant');
});

test('refresh rotates the refresh token; reusing the old one fails and kills the new one', async () => {
	const t = await connect(post);
	const r1 = await token(issuer, { grant_type: 'refresh_token', refresh_token: t.refresh_token }, post);
	assert.equal(r1.status, 200, JSON.stringify(r1.body));
	assert.ok(r1.body.access_token && r1.body.refresh_token);
	assert.notEqual(r1.body.refresh_token, t.refresh_token);
	assert.notEqual(r1.body.access_token, t.access_token);
	assert.equal((await introspect(issuer, r1.body.refresh_token, post)).active, true);

	const reuse = await token(issuer, { grant_type: 'refresh_token', refresh_token: t.refresh_token }, post);
	assert.equal(reuse.status, 400);
	assert.equal(reuse.body.error, 'invalid_grant');
	const next = await token(issuer, { grant_type: 'refresh_token', refresh_token: r1.body.refresh_token }, post);
	assert.equal(next.body.error, 'invalid_grant');
	assert.equal((await introspect(issuer, r1.body.access_token, post)).active, false);
	assert.equal((await userinfo(issuer, r1.body.access_token)).status, 401);
});

test('revocation (RFC 7009): revoked tokens introspect inactive; revoking again still answers 200', async () => {
	const before = await stats(issuer);
	const t = await connect(post);
	let r = await revoke(issuer, t.refresh_token, post, 'refresh_token');
	assert.equal(r.status, 200);
	assert.equal((await introspect(issuer, t.refresh_token, post)).active, false);
	r = await revoke(issuer, t.access_token, post, 'access_token');
	assert.equal(r.status, 200);
	assert.equal((await introspect(issuer, t.access_token, post)).active, false);
	r = await revoke(issuer, t.refresh_token, post, 'refresh_token');
	assert.equal(r.status, 200);
	const rt = await token(issuer, { grant_type: 'refresh_token', refresh_token: t.refresh_token }, post);
	assert.equal(rt.body.error, 'invalid_grant');

	const t2 = await connect(basic);
	r = await revoke(issuer, t2.access_token, basic, 'access_token');
	assert.equal(r.status, 200);
	assert.equal((await introspect(issuer, t2.access_token, basic)).active, false);
	// oidc-provider revokes every token of the grant, whichever token is revoked
	assert.equal((await introspect(issuer, t2.refresh_token, basic)).active, false);
	// a client cannot introspect another client's token
	const t3 = await connect(basic);
	assert.equal((await introspect(issuer, t3.refresh_token, basic)).active, true);
	assert.equal((await introspect(issuer, t3.refresh_token, post)).active, false);

	const after = await stats(issuer);
	assert.equal(after.revocation - before.revocation, 4);
	assert.equal((after.revocation_by_hint.refresh_token ?? 0) - (before.revocation_by_hint.refresh_token ?? 0), 2);
});

test('PKCE is required, S256 only: the error comes back to redirect_uri with iss', async () => {
	for (const extra of [{}, { code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' }]) {
		const state = 'st-' + Math.random().toString(36).slice(2);
		const loc = await consent(authorizationUrl(issuer, { clientId: post.id, redirectUri: post.redirectUri, state, ...extra }));
		const q = new URL(loc).searchParams;
		assert.equal(q.get('error'), 'invalid_request', loc);
		assert.equal(q.get('state'), state);
		assert.equal(q.get('iss'), issuer);
		assert.equal(q.get('code'), null);
	}
	// an unregistered redirect_uri is not redirected to
	await assert.rejects(consent(authorizationUrl(issuer, {
		clientId: post.id, redirectUri: `${post.redirectUri}x`, state: 's', challenge: pkcePair().challenge,
	})), (err) => err.status === 400);
});

test('prompt=consent keeps offline_access in the granted scope', async () => {
	const t = await connect(post, { prompt: 'consent' });
	assert.ok(t.refresh_token);
	assert.ok(t.scope.split(' ').includes('offline_access'), t.scope);
});

test('/_test/mode makes the token endpoint misbehave; /_test/stats counts by grant_type', async () => {
	const t = await connect(post);
	const refresh = () => token(issuer, { grant_type: 'refresh_token', refresh_token: t.refresh_token }, post);
	const before = await stats(issuer);
	try {
		await setMode(issuer, 'error500');
		let r = await refresh();
		assert.equal(r.status, 500);

		await setMode(issuer, 'garbage');
		r = await refresh();
		assert.equal(r.status, 200);
		assert.equal(typeof r.body, 'string');
		assert.throws(() => JSON.parse(r.body));

		await setMode(issuer, 'invalid_grant');
		r = await refresh();
		assert.equal(r.status, 400);
		assert.equal(r.body.error, 'invalid_grant');

		await setMode(issuer, 'down');
		await assert.rejects(refresh());

		await setMode(issuer, { token: 'slow', slow_ms: 1500, count: 1 });
		const t0 = Date.now();
		r = await refresh();
		assert.ok(Date.now() - t0 >= 1400, 'slow mode waits');
		assert.equal(r.status, 200, 'then answers normally');
		assert.equal((await stats(issuer)).modes.token, 'normal', 'count: 1 returns to normal');

		await setMode(issuer, { revocation: 'error503' });
		const rv = await revoke(issuer, r.body.refresh_token, post, 'refresh_token');
		assert.equal(rv.status, 503);
		await setMode(issuer, { revocation: 'normal' });

		const res = await fetch(new URL('/_test/mode', issuer), {
			method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"token":"bogus"}',
		});
		assert.equal(res.status, 400);
	} finally {
		await setMode(issuer, { token: 'normal', revocation: 'normal', slow_ms: 20000 });
	}
	const after = await stats(issuer);
	assert.equal(after.token.refresh_token - before.token.refresh_token, 5);
	assert.equal(after.token.authorization_code - before.token.authorization_code, 0);
	assert.equal(after.revocation - before.revocation, 1);
	assert.deepEqual(after.modes, { token: 'normal', revocation: 'normal', userinfo: 'normal' });
	// back to normal: a refresh works
	const last = (await requests(issuer)).filter((x) => x.endpoint === 'token').at(-1);
	assert.equal(last.grant_type, 'refresh_token');
	assert.equal(last.status, 200);
});

test('--access-ttl: access tokens expire on time (no clock tolerance); refresh still works; SIGTERM stops it', async () => {
	const c = { id: 'ttl-client', secret: 'ttl-secret', auth: 'client_secret_post', redirectUri: 'http://127.0.0.1:9/api/auth/testoidc/callback' };
	const s = await startServer(await freePort(), ['--access-ttl', '1', '--redirect-uri', c.redirectUri,
		'--client-id', c.id, '--client-secret', c.secret]);
	try {
		const { verifier, challenge } = pkcePair();
		const loc = await consent(authorizationUrl(s.issuer, { clientId: c.id, redirectUri: c.redirectUri, state: 's', challenge }));
		const code = new URL(loc).searchParams.get('code');
		const t = await token(s.issuer, { grant_type: 'authorization_code', code, redirect_uri: c.redirectUri, code_verifier: verifier }, c);
		assert.equal(t.status, 200);
		assert.equal(t.body.expires_in, 1);
		await new Promise((r) => setTimeout(r, 2100));
		assert.equal((await userinfo(s.issuer, t.body.access_token)).status, 401);
		assert.equal((await introspect(s.issuer, t.body.access_token, c)).active, false);
		const r = await token(s.issuer, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token }, c);
		assert.equal(r.status, 200);
		assert.equal((await userinfo(s.issuer, r.body.access_token)).status, 200);
	} finally {
		await stopServer(s.child);
	}
	assert.equal(s.child.exitCode, 0);
});
