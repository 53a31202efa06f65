// Bearer JWT checks (SPEC §3, SECURITY.md "JWT"): every bad token is 401
// unauthorized in the JSON envelope and stores nothing; roles decide routes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import {
	ENV_FILE, INTAUTHCTL, JWT_SECRET, anonToken, apiKeyBody, assertError, assertOk, b64url, countRows, fn, get, getCredentials, lit,
	newUser, now, post, serviceToken, signJwt, storeCredentials, userClaims, userToken,
} from './lib.mjs';

// Signs arbitrary header and payload text with the real secret.
function signRaw(headerText, payloadText) {
	const input = `${b64url(headerText)}.${b64url(payloadText)}`;
	return `${input}.${createHmac('sha256', JWT_SECRET).update(input).digest('base64url')}`;
}

function badTokens(sub) {
	const t = now();
	const claims = userClaims(sub);
	const good = userToken(sub);
	const [h, p] = good.split('.');
	const big = signJwt(userClaims(sub, { pad: 'x'.repeat(8400) }));
	return [
		['garbage', 'this-is-not-a-jwt'],
		['two segments', `${h}.${p}`],
		['alg none', signJwt(claims, { header: { alg: 'none', typ: 'JWT' } })],
		['alg none with the real signature kept', `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.${good.split('.')[2]}`],
		['HS512', signJwt(claims, { header: { alg: 'HS512', typ: 'JWT' } })],
		['HS384', signJwt(claims, { header: { alg: 'HS384', typ: 'JWT' } })],
		['RS256 header with an HMAC signature', signJwt(claims, { header: { alg: 'RS256', typ: 'JWT' } })],
		['wrong secret', signJwt(claims, { secret: 'not-the-secret-' + randomUUID() })],
		['tampered payload (sub changed after signing)', `${h}.${b64url(JSON.stringify({ ...claims, sub: randomUUID() }))}.${good.split('.')[2]}`],
		['expired beyond the 30 s leeway', signJwt({ ...claims, iat: t - 3600, exp: t - 120 })],
		['missing exp', signJwt((({ exp, ...c }) => c)(claims))],
		['exp as a string', signJwt({ ...claims, exp: String(t + 3600) })],
		['nbf in the future', signJwt({ ...claims, nbf: t + 600 })],
		['iat in the future', signJwt({ ...claims, iat: t + 600 })],
		['anon role', signJwt({ ...claims, role: 'anon' })],
		['no role', signJwt((({ role, ...c }) => c)(claims))],
		['unknown role', signJwt({ ...claims, role: 'postgres' })],
		['authenticated with a non-UUID sub', signJwt({ ...claims, sub: 'user-123' })],
		['authenticated without sub', signJwt((({ sub: _s, ...c }) => c)(claims))],
		['aud mismatch', signJwt({ ...claims, aud: 'some-other-audience' })],
		['token over 8 KiB', big],
		['padded base64 segments', `${h}=.${p}.${good.split('.')[2]}`],
		['payload not JSON (validly signed)', signRaw(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'not json at all')],
		['payload a JSON array (validly signed)', signRaw(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), '[1,2]')],
		['header not JSON (validly signed)', signRaw('{alg:HS256}', JSON.stringify(claims))],
		['duplicate role claim (validly signed)', signRaw(JSON.stringify({ alg: 'HS256', typ: 'JWT' }),
			`{"sub":"${sub}","role":"anon","role":"authenticated","exp":${t + 3600}}`)],
	];
}

describe('authentication on storeCredentials', () => {
	test('no Authorization header → 401 unauthorized', async () => {
		const res = await post(fn('storeCredentials'), apiKeyBody());
		assertError(res, 401, 'unauthorized');
	});

	test('Authorization without "Bearer" (Basic) → 401', async () => {
		const res = await post(fn('storeCredentials'), apiKeyBody(), {
			headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
		});
		assertError(res, 401, 'unauthorized');
	});

	test('a valid token is accepted (control for the cases below)', async () => {
		const sub = randomUUID();
		assertOk(await storeCredentials(userToken(sub), apiKeyBody()));
		// a token exactly within the leeway still works: expired 10 s ago
		const t = now();
		assertOk(await storeCredentials(signJwt(userClaims(sub, { iat: t - 600, exp: t - 10 })), apiKeyBody({ connection: 'leeway' })));
		// aud may be absent, or an array holding "authenticated"
		const noAud = userClaims(sub);
		delete noAud.aud;
		assertOk(await storeCredentials(signJwt(noAud), apiKeyBody({ connection: 'noaud' })));
		assertOk(await storeCredentials(signJwt(userClaims(sub, { aud: ['authenticated'] })), apiKeyBody({ connection: 'audarr' })));
		assert.equal(countRows('integrations', `user_id = ${lit(sub)}`), 4);
	});

	const sub = randomUUID();
	for (const [name, token] of badTokens(sub)) {
		test(`${name} → 401 unauthorized, nothing stored`, async () => {
			const res = await storeCredentials(token, apiKeyBody());
			assertError(res, 401, 'unauthorized');
			assert.equal(countRows('integrations', `user_id = ${lit(sub)}`), 0);
		});
	}

	test('the apikey header alone (Supabase anon key) does not get in', async () => {
		const res = await post(fn('storeCredentials'), apiKeyBody(), { headers: { apikey: anonToken() } });
		assertError(res, 401, 'unauthorized');
	});

	test('the apikey header is ignored even when it holds a service-role token', async () => {
		const uid = randomUUID();
		const res = await post(fn('storeCredentials'), apiKeyBody({ user_id: uid }), { headers: { apikey: serviceToken() } });
		assertError(res, 401, 'unauthorized');
		assert.equal(countRows('integrations', `user_id = ${lit(uid)}`), 0);
	});

	test('Bearer anon key with apikey anon key (supabase-js default without a session) → 401', async () => {
		const anon = anonToken();
		const res = await post(fn('storeCredentials'), apiKeyBody(), { token: anon, headers: { apikey: anon } });
		assertError(res, 401, 'unauthorized');
	});

	test('the 401 answer says nothing about why (same body for all failures)', async () => {
		const u = newUser();
		const a = await storeCredentials(signJwt(userClaims(u.id), { secret: 'wrong' }), apiKeyBody());
		const b = await storeCredentials(signJwt({ ...userClaims(u.id), exp: now() - 3600 }), apiKeyBody());
		assertError(a, 401, 'unauthorized');
		assertError(b, 401, 'unauthorized');
		assert.deepEqual(a.json, b.json);
	});
});

describe('roles per route', () => {
	test('user JWT on getCredentials → 403 forbidden', async () => {
		const u = newUser();
		const i = assertOk(await storeCredentials(u.token, apiKeyBody())).integration;
		const res = await getCredentials({ integration_id: i.id }, { token: u.token });
		assertError(res, 403, 'forbidden');
		assert.ok(!res.text.includes('api_key'), 'a forbidden answer mentions the credential');
	});

	test('no token on getCredentials → 401; anon token → 401', async () => {
		assertError(await post(fn('getCredentials'), { integration_id: randomUUID() }), 401, 'unauthorized');
		assertError(await getCredentials({ integration_id: randomUUID() }, { token: anonToken() }), 401, 'unauthorized');
	});

	test('GET /api/integrations: no token → 401, bad token → 401, anon → 401', async () => {
		assertError(await get('/api/integrations'), 401, 'unauthorized');
		assertError(await get('/api/integrations', { token: 'garbage.garbage.garbage' }), 401, 'unauthorized');
		assertError(await get('/api/integrations', { token: anonToken() }), 401, 'unauthorized');
	});

	test('GET /api/integrations with the service role is refused (user route)', async () => {
		const res = await get('/api/integrations', { token: serviceToken() });
		assert.ok([401, 403].includes(res.status), `service role on a user-only route: ${res.status} ${res.text}`);
		assertError(res, res.status);
	});
});

describe('intauthctl mint-token', () => {
	const mint = (args) => {
		try {
			return { code: 0, out: execFileSync(INTAUTHCTL, ['mint-token', ...args], { env: { ...process.env, ENV_FILE }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() };
		} catch (e) {
			return { code: e.status, out: String(e.stdout || '').trim(), err: String(e.stderr || '') };
		}
	};

	test('tokens of each role act as that role; bad arguments exit 2 and print no token', async () => {
		const sub = randomUUID();
		const user = mint(['--sub', sub]);
		assert.equal(user.code, 0, user.err);
		assert.equal((await get('/api/integrations', { token: user.out })).status, 200, 'a user token reads its list');
		assertError(await getCredentials({ integration_id: randomUUID() }, { token: user.out }), 403, 'forbidden');
		const upper = mint(['--sub', sub.toUpperCase()]);
		assert.equal(upper.code, 0, upper.err);
		assert.equal(JSON.parse(Buffer.from(upper.out.split('.')[1], 'base64url')).sub, sub, 'the sub in its canonical form');
		const service = mint(['--role', 'service_role']);
		assert.equal(service.code, 0, service.err);
		assertError(await getCredentials({ integration_id: randomUUID() }, { token: service.out }), 404, 'not_found');
		const anon = mint(['--role', 'anon', '--ttl', '60']);
		assert.equal(anon.code, 0, anon.err);
		assert.equal(JSON.parse(Buffer.from(anon.out.split('.')[1], 'base64url')).role, 'anon');
		assertError(await get('/api/integrations', { token: anon.out }), 401, 'unauthorized');
		for (const args of [['--role', 'postgres'], ['--role', 'authenticated'], ['--sub', 'not-a-uuid'], ['--sub', sub, '--ttl', '0'], ['--bogus']]) {
			const r = mint(args);
			assert.equal(r.code, 2, `mint-token ${args.join(' ')}: ${r.code}`);
			assert.equal(r.out, '', `mint-token ${args.join(' ')} printed a token`);
		}
	});
});
