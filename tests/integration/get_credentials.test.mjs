// POST /functions/v1/getCredentials (SPEC §8): service role only; the one
// route that answers secrets; never the refresh token; Cache-Control: no-store.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
	apiKeyBody, assertError, assertIntegration, assertOk, basicBody, del, getCredentials, lit,
	newUser, oauthBody, psql, storeCredentials,
} from './lib.mjs';

function assertNoStore(res) {
	const cc = res.headers.get('cache-control') || '';
	assert.match(cc, /no-store/, `Cache-Control is "${cc}"`);
}

describe('getCredentials answers the decrypted secret', () => {
	test('api_key by integration_id', async () => {
		const u = newUser();
		const body = apiKeyBody();
		const i = assertOk(await storeCredentials(u.token, body)).integration;
		const res = await getCredentials({ integration_id: i.id });
		const json = assertOk(res);
		assertNoStore(res);
		assert.deepEqual(Object.keys(json).sort(), ['credentials', 'integration']);
		assertIntegration(json.integration, { id: i.id, provider: 'openai', status: 'connected' });
		assert.deepEqual(json.credentials, { api_key: body.credentials.api_key });
	});

	test('basic by user_id + provider', async () => {
		const u = newUser();
		const body = basicBody();
		const i = assertOk(await storeCredentials(u.token, body)).integration;
		const res = await getCredentials({ user_id: u.id, provider: 'twilio' });
		const json = assertOk(res);
		assertNoStore(res);
		assert.equal(json.integration.id, i.id);
		assert.deepEqual(json.credentials, { username: body.credentials.username, password: body.credentials.password });
	});

	test('secrets come back byte for byte: a PEM key with line breaks, a JSON key, an empty Basic password', async () => {
		const u = newUser();
		const pem = `-----BEGIN PRIVATE KEY-----\r\n${randomUUID()}\n\t${randomUUID()}\n-----END PRIVATE KEY-----\n`;
		const cases = [
			[{ provider: 'openai', auth_type: 'api_key', connection: 'pem', credentials: { api_key: pem } }, { api_key: pem }],
			[{ provider: 'openai', auth_type: 'api_key', connection: 'json', credentials: { api_key: JSON.stringify({ type: 'service_account', private_key: pem }, null, 2) } }, null],
			[{ provider: 'twilio', auth_type: 'basic', credentials: { username: `sk_${randomUUID()}`, password: '' } }, null],
		];
		for (const [body, want] of cases) {
			const i = assertOk(await storeCredentials(u.token, body)).integration;
			const json = assertOk(await getCredentials({ integration_id: i.id }));
			assert.deepEqual(json.credentials, want ?? body.credentials, `${body.auth_type} ${body.connection ?? ''}`);
		}
		// still refused: other control characters, and an empty key or user name
		for (const credentials of [{ api_key: 'a\u0001b' }, { api_key: 'a\u007fb' }, { api_key: '' }]) {
			assertError(await storeCredentials(u.token, { provider: 'openai', auth_type: 'api_key', connection: 'bad', credentials }), 400, 'invalid_request');
		}
		assertError(await storeCredentials(u.token, { provider: 'twilio', auth_type: 'basic', connection: 'bad', credentials: { username: '', password: 'x' } }), 400, 'invalid_request');
		assertError(await storeCredentials(u.token, { provider: 'twilio', auth_type: 'basic', connection: 'bad', credentials: { username: 'a\nb', password: 'x' } }), 400, 'invalid_request');
	});

	test('oauth2: access_token, token_type, expires_at, scopes — never the refresh token', async () => {
		const u = newUser();
		const body = oauthBody();
		const i = assertOk(await storeCredentials(u.token, body)).integration;
		const res = await getCredentials({ integration_id: i.id });
		const json = assertOk(res);
		assertNoStore(res);
		const c = json.credentials;
		assert.equal(c.access_token, body.credentials.access_token);
		assert.equal(typeof c.token_type, 'string');
		assert.match(c.token_type, /^bearer$/i);
		assert.equal(c.expires_at, i.expires_at);
		assert.deepEqual(c.scopes, ['repo', 'read:user']);
		assert.ok(!('refresh_token' in c), 'refresh_token in the credentials');
		assert.ok(!res.text.includes(body.credentials.refresh_token), 'the refresh token leaks');
		assert.ok(!res.text.includes('refresh_token'), 'a refresh_token field in the answer');
		assert.ok(!res.text.includes('id_token') || !('id_token' in c));
	});

	test('oauth2 without token_type defaults to Bearer; without expiry expires_at is null', async () => {
		const u = newUser();
		const body = { provider: 'github', credentials: { access_token: `gho_${randomUUID()}` } };
		const i = assertOk(await storeCredentials(u.token, body)).integration;
		assert.equal(i.expires_at, null);
		const c = assertOk(await getCredentials({ integration_id: i.id })).credentials;
		assert.equal(c.access_token, body.credentials.access_token);
		assert.match(c.token_type, /^bearer$/i);
		assert.equal(c.expires_at, null);
		assert.deepEqual(c.scopes, []);
	});

	test('by user_id + provider + connection picks that connection', async () => {
		const u = newUser();
		const one = apiKeyBody();
		const two = apiKeyBody({ connection: 'second' });
		const i1 = assertOk(await storeCredentials(u.token, one)).integration;
		const i2 = assertOk(await storeCredentials(u.token, two)).integration;
		const d = assertOk(await getCredentials({ user_id: u.id, provider: 'openai' }));
		assert.equal(d.integration.id, i1.id);
		assert.equal(d.credentials.api_key, one.credentials.api_key);
		const s = assertOk(await getCredentials({ user_id: u.id, provider: 'openai', connection: 'second' }));
		assert.equal(s.integration.id, i2.id);
		assert.equal(s.credentials.api_key, two.credentials.api_key);
	});
});

describe('getCredentials errors', () => {
	test('unknown integration_id → 404; unknown user/provider → 404; bad uuid → 404', async () => {
		assertError(await getCredentials({ integration_id: randomUUID() }), 404, 'not_found');
		assertError(await getCredentials({ user_id: randomUUID(), provider: 'openai' }), 404, 'not_found');
		const u = newUser();
		assertOk(await storeCredentials(u.token, apiKeyBody()));
		assertError(await getCredentials({ user_id: u.id, provider: 'openai', connection: 'nope' }), 404, 'not_found');
		assertError(await getCredentials({ user_id: u.id, provider: 'twilio' }), 404, 'not_found');
		assertError(await getCredentials({ integration_id: 'not-a-uuid' }), 404, 'not_found');
	});

	test('neither integration_id nor user_id+provider → 400; invalid JSON → 400 invalid_json', async () => {
		assertError(await getCredentials({}), 400, 'invalid_request');
		assertError(await getCredentials({ provider: 'openai' }), 400, 'invalid_request');
		assertError(await getCredentials('{"integration_id":'), 400, 'invalid_json');
	});

	test('errors carry Cache-Control: no-store too and no secret', async () => {
		const res = await getCredentials({ integration_id: randomUUID() });
		assertError(res, 404);
		assertNoStore(res);
	});

	test('after DELETE → 404', async () => {
		const u = newUser();
		const i = assertOk(await storeCredentials(u.token, apiKeyBody())).integration;
		assertOk(await getCredentials({ integration_id: i.id }));
		assertOk(await del(`/api/integrations/${i.id}`, { token: u.token }));
		assertError(await getCredentials({ integration_id: i.id }), 404, 'not_found');
		assertError(await getCredentials({ user_id: u.id, provider: 'openai' }), 404, 'not_found');
	});

	for (const status of ['revoked', 'expired', 'pending', 'error']) {
		test(`status ${status} (set with psql) → 409 not_connected, no secret`, async () => {
			const u = newUser();
			const body = apiKeyBody();
			const i = assertOk(await storeCredentials(u.token, body)).integration;
			psql(`UPDATE public.integrations SET status = ${lit(status)} WHERE id = ${lit(i.id)};`);
			const res = await getCredentials({ integration_id: i.id });
			assertError(res, 409, 'not_connected');
			assert.ok(!res.text.includes(body.credentials.api_key), 'the secret leaks in a 409');
			// storing again reconnects
			const again = apiKeyBody();
			assertOk(await storeCredentials(u.token, again));
			assert.equal(assertOk(await getCredentials({ integration_id: i.id })).credentials.api_key, again.credentials.api_key);
		});
	}

	test('connected but no credentials row → 409 not_connected', async () => {
		const u = newUser();
		const i = assertOk(await storeCredentials(u.token, apiKeyBody())).integration;
		psql(`DELETE FROM public.credentials WHERE integration_id = ${lit(i.id)};`);
		assertError(await getCredentials({ integration_id: i.id }), 409, 'not_connected');
	});
});
