// POST /functions/v1/storeCredentials (SPEC §2, §5, §8): api_key, basic and
// oauth2 as a user and as the service role; validation; upsert; connections.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
	apiKeyBody, assertError, assertIntegration, assertNoSecrets, assertOk, basicBody, countRows,
	fn, getCredentials, lit, newUser, oauthBody, post, psql, serviceToken, storeCredentials,
	uniqueSecret,
} from './lib.mjs';

const secretsOf = (body) => Object.values(body.credentials).filter((v) => typeof v === 'string' && v.length > 20);

describe('storeCredentials as a user', () => {
	test('api_key (openai) → 200 {"integration"} connected, no secret in the answer', async () => {
		const u = newUser();
		const body = apiKeyBody({ metadata: { account: 'acme' } });
		const res = await storeCredentials(u.token, body);
		const json = assertOk(res);
		assert.deepEqual(Object.keys(json), ['integration']);
		assertIntegration(json.integration, {
			provider: 'openai', connection: 'default', auth_type: 'api_key', status: 'connected',
			expires_at: null, metadata: { account: 'acme' }, last_error: null, scopes: [],
		});
		assertNoSecrets(res.text, secretsOf(body));
		// the row is the caller's
		assert.equal(psql(`SELECT user_id FROM public.integrations WHERE id = ${lit(json.integration.id)};`), u.id);
		assert.equal(countRows('credentials', `integration_id = ${lit(json.integration.id)}`), 1);
	});

	test('basic (twilio) → 200, username and password not in the answer', async () => {
		const u = newUser();
		const body = basicBody();
		const res = await storeCredentials(u.token, body);
		const json = assertOk(res);
		assertIntegration(json.integration, {
			provider: 'twilio', connection: 'default', auth_type: 'basic', status: 'connected', expires_at: null,
		});
		assertNoSecrets(res.text, [body.credentials.username, body.credentials.password]);
	});

	test('oauth2 (github) with expires_in, refresh_token, scope → 200 with scopes and expires_at', async () => {
		const u = newUser();
		const body = oauthBody();
		const before = Date.now();
		const res = await storeCredentials(u.token, body);
		const json = assertOk(res);
		assertIntegration(json.integration, {
			provider: 'github', connection: 'default', auth_type: 'oauth2', status: 'connected',
			scopes: ['repo', 'read:user'],
		});
		assert.ok(json.integration.expires_at, 'expires_at is set from expires_in');
		const exp = Date.parse(json.integration.expires_at);
		assert.ok(Math.abs(exp - (before + 3600 * 1000)) < 120 * 1000,
			`expires_at ${json.integration.expires_at} is not about now + 3600 s`);
		assertNoSecrets(res.text, [body.credentials.access_token, body.credentials.refresh_token]);
		assert.ok(!/refresh_token|access_token/.test(res.text), 'token field names in the answer');
	});

	test('oauth2 with expires_at (ISO) and scope as an array', async () => {
		const u = newUser();
		const at = new Date(Date.now() + 7200 * 1000);
		at.setMilliseconds(0);
		const body = oauthBody();
		delete body.credentials.expires_in;
		body.credentials.expires_at = at.toISOString();
		body.credentials.scope = ['user:email', 'repo'];
		const json = assertOk(await storeCredentials(u.token, body));
		assert.equal(Date.parse(json.integration.expires_at), at.getTime());
		assert.deepEqual(json.integration.scopes, ['user:email', 'repo']);
	});

	test('scope as a provider answers it: spaces or commas (GitHub: "repo,gist"), blanks skipped', async () => {
		const u = newUser();
		for (const [scope, want] of [['repo,gist', ['repo', 'gist']], ['openid  email', ['openid', 'email']],
			[' a, b ,c ', ['a', 'b', 'c']], ['', []]]) {
			const body = oauthBody({ connection: `sc${want.length}${scope.length}` });
			body.credentials.scope = scope;
			assert.deepEqual(assertOk(await storeCredentials(u.token, body)).integration.scopes, want, JSON.stringify(scope));
		}
	});

	test('a user naming its own user_id is fine; naming another user_id → 403 forbidden, nothing stored', async () => {
		const u = newUser();
		assertOk(await storeCredentials(u.token, apiKeyBody({ user_id: u.id })));
		const other = randomUUID();
		const res = await storeCredentials(u.token, apiKeyBody({ user_id: other, connection: 'x' }));
		assertError(res, 403, 'forbidden');
		assert.equal(countRows('integrations', `user_id = ${lit(other)}`), 0);
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)} AND connection = 'x'`), 0);
	});
});

describe('storeCredentials as the service role', () => {
	test('with user_id → 200, the row belongs to that user', async () => {
		const uid = randomUUID();
		const body = apiKeyBody({ user_id: uid });
		const res = await storeCredentials(serviceToken(), body);
		const json = assertOk(res);
		assertIntegration(json.integration, { provider: 'openai', status: 'connected' });
		assertNoSecrets(res.text, secretsOf(body));
		assert.equal(psql(`SELECT user_id FROM public.integrations WHERE id = ${lit(json.integration.id)};`), uid);
	});

	test('without user_id → 400 invalid_request', async () => {
		const res = await storeCredentials(serviceToken(), apiKeyBody());
		assertError(res, 400, 'invalid_request');
	});

	test('with a non-UUID user_id → 400', async () => {
		const res = await storeCredentials(serviceToken(), apiKeyBody({ user_id: 'not-a-uuid' }));
		assertError(res, 400);
	});
});

describe('storeCredentials validation (each leaves nothing stored)', () => {
	const cases = [
		['wrong auth_type for the provider', 400, 'unsupported_auth_type', (b) => ({ ...b, auth_type: 'oauth2' })],
		['unknown provider', 400, 'unknown_provider', (b) => ({ ...b, provider: 'no_such_provider_x' })],
		['missing credentials', 400, 'invalid_request', (b) => { const c = { ...b }; delete c.credentials; return c; }],
		['credentials without api_key', 400, 'invalid_request', (b) => ({ ...b, credentials: { key: 'x' } })],
		['api_key not a string', 400, 'invalid_request', (b) => ({ ...b, credentials: { api_key: 12345 } })],
		['empty api_key', 400, 'invalid_request', (b) => ({ ...b, credentials: { api_key: '' } })],
		['credentials not an object', 400, 'invalid_request', (b) => ({ ...b, credentials: 'sk-abc' })],
		['missing provider', 400, 'invalid_request', (b) => { const c = { ...b }; delete c.provider; return c; }],
		['bad connection label (space)', 400, 'invalid_request', (b) => ({ ...b, connection: 'my conn' })],
		['bad connection label (too long)', 400, 'invalid_request', (b) => ({ ...b, connection: 'c'.repeat(65) })],
		['bad connection label (slash)', 400, 'invalid_request', (b) => ({ ...b, connection: 'a/b' })],
		['empty connection label', 400, 'invalid_request', (b) => ({ ...b, connection: '' })],
		['metadata not an object', 400, 'invalid_request', (b) => ({ ...b, metadata: [1, 2] })],
	];
	for (const [name, status, code, mutate] of cases) {
		test(`${name} → ${status} ${code}`, async () => {
			const u = newUser();
			const body = mutate(apiKeyBody());
			const res = await storeCredentials(u.token, body);
			assertError(res, status, code);
			if (body.credentials && typeof body.credentials === 'object') {
				assertNoSecrets(res.text, Object.values(body.credentials).filter((v) => typeof v === 'string' && v.length > 8));
			}
			assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 0, 'a failed request stored a row');
			assert.equal(countRows('credentials', `user_id = ${lit(u.id)}`), 0);
		});
	}

	test('basic without password → 400 invalid_request', async () => {
		const u = newUser();
		const body = basicBody();
		delete body.credentials.password;
		assertError(await storeCredentials(u.token, body), 400, 'invalid_request');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 0);
	});

	test('oauth2 without access_token → 400; negative expires_in → 400; bad expires_at → 400', async () => {
		const u = newUser();
		const a = oauthBody();
		delete a.credentials.access_token;
		assertError(await storeCredentials(u.token, a), 400, 'invalid_request');
		const b = oauthBody();
		b.credentials.expires_in = -5;
		assertError(await storeCredentials(u.token, b), 400, 'invalid_request');
		const c = oauthBody();
		delete c.credentials.expires_in;
		c.credentials.expires_at = 'tomorrow';
		assertError(await storeCredentials(u.token, c), 400, 'invalid_request');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 0);
	});

	const rawCases = [
		['invalid JSON', '{"provider": "openai", "credentials": {'],
		['a JSON array', '[1,2,3]'],
		['an empty body', ''],
		['trailing garbage', '{"provider":"openai","credentials":{"api_key":"sk-x"}} xyz'],
	];
	for (const [name, raw] of rawCases) {
		test(`${name} → 400 invalid_json or invalid_request`, async () => {
			const u = newUser();
			const res = await post(fn('storeCredentials'), raw, { token: u.token });
			assertError(res, 400);
			assert.ok(['invalid_json', 'invalid_request'].includes(res.json.error.code), `code ${res.json.error.code}`);
			assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 0);
		});
	}

	test('malformed JSON is exactly invalid_json', async () => {
		const u = newUser();
		const res = await post(fn('storeCredentials'), '{"provider":', { token: u.token });
		assertError(res, 400, 'invalid_json');
	});
});

describe('storeCredentials upsert and connections', () => {
	test('storing twice upserts: same id, one credentials row, new ciphertext, new secret served', async () => {
		const u = newUser();
		const first = apiKeyBody();
		const a = assertOk(await storeCredentials(u.token, first)).integration;
		const row1 = psql(`SELECT id || '|' || secret FROM public.credentials WHERE integration_id = ${lit(a.id)};`);
		const second = apiKeyBody();
		const b = assertOk(await storeCredentials(u.token, second)).integration;
		assert.equal(b.id, a.id, 'the second store made a new integration');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 1);
		assert.equal(countRows('credentials', `integration_id = ${lit(a.id)}`), 1);
		const row2 = psql(`SELECT id || '|' || secret FROM public.credentials WHERE integration_id = ${lit(a.id)};`);
		assert.notEqual(row2.split('|')[1], row1.split('|')[1], 'the ciphertext did not change');
		assert.ok(Date.parse(b.updated_at) >= Date.parse(a.updated_at));
		const got = assertOk(await getCredentials({ integration_id: a.id }));
		assert.equal(got.credentials.api_key, second.credentials.api_key);
	});

	test('upsert keeps metadata when the second store omits it, replaces it when given', async () => {
		const u = newUser();
		assertOk(await storeCredentials(u.token, apiKeyBody({ metadata: { team: 'a' } })));
		const b = assertOk(await storeCredentials(u.token, apiKeyBody())).integration;
		assert.deepEqual(b.metadata, { team: 'a' });
		const c = assertOk(await storeCredentials(u.token, apiKeyBody({ metadata: { team: 'b' } }))).integration;
		assert.deepEqual(c.metadata, { team: 'b' });
	});

	test('a second connection label is a separate integration', async () => {
		const u = newUser();
		const a = assertOk(await storeCredentials(u.token, apiKeyBody())).integration;
		const b = assertOk(await storeCredentials(u.token, apiKeyBody({ connection: 'workspace-2' }))).integration;
		assert.notEqual(a.id, b.id);
		assert.equal(a.connection, 'default');
		assert.equal(b.connection, 'workspace-2');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 2);
		assert.equal(countRows('credentials', `user_id = ${lit(u.id)}`), 2);
	});

	test('10 concurrent stores for one (user, provider, connection): all 200, one integration, one credentials row', async () => {
		const u = newUser();
		const bodies = Array.from({ length: 10 }, () => apiKeyBody());
		const results = await Promise.all(bodies.map((b) => storeCredentials(u.token, b)));
		for (const r of results) assert.equal(r.status, 200, `concurrent store: HTTP ${r.status} ${r.text}`);
		const ids = new Set(results.map((r) => r.json.integration.id));
		assert.equal(ids.size, 1, 'concurrent stores made several integrations');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 1);
		assert.equal(countRows('credentials', `user_id = ${lit(u.id)}`), 1);
		// the stored secret is one of those sent, and it decrypts
		const got = assertOk(await getCredentials({ integration_id: [...ids][0] }));
		assert.ok(bodies.some((b) => b.credentials.api_key === got.credentials.api_key));
	});

	test('a long secret with unicode, quotes and a backslash round-trips through getCredentials', async () => {
		const u = newUser();
		const key = `${uniqueSecret('sk')}"\\ü€/${'x'.repeat(2000)}`;
		const a = assertOk(await storeCredentials(u.token, { provider: 'openai', credentials: { api_key: key } })).integration;
		const got = assertOk(await getCredentials({ integration_id: a.id }));
		assert.equal(got.credentials.api_key, key);
	});
});
