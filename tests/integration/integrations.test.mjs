// The read side for users (SPEC §2, §5): /api/integrations, /{id}, /{id}/logs,
// DELETE, /api/providers, /healthz. Another user's id is 404, never 403.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
	ENV, apiKeyBody, assertError, assertIntegration, assertOk, basicBody, countRows, del, get, getCredentials, lit,
	newUser, oauthBody, serviceToken, storeCredentials,
} from './lib.mjs';

describe('GET /api/integrations', () => {
	const a = newUser();
	const b = newUser();
	let aIds = [];
	let bIds = [];

	before(async () => {
		aIds = [
			assertOk(await storeCredentials(a.token, apiKeyBody())).integration.id,
			assertOk(await storeCredentials(a.token, basicBody())).integration.id,
			assertOk(await storeCredentials(a.token, oauthBody())).integration.id,
		];
		bIds = [assertOk(await storeCredentials(b.token, apiKeyBody())).integration.id];
	});

	test('lists only the caller\'s rows, each a full integration object', async () => {
		const res = await get('/api/integrations', { token: a.token });
		const json = assertOk(res);
		assert.deepEqual(Object.keys(json), ['integrations']);
		assert.ok(Array.isArray(json.integrations));
		assert.deepEqual(json.integrations.map((i) => i.id).sort(), [...aIds].sort());
		for (const i of json.integrations) assertIntegration(i, { status: 'connected' });
		for (const id of bIds) assert.ok(!res.text.includes(id), 'another user\'s id in the list');
		const listB = assertOk(await get('/api/integrations', { token: b.token }));
		assert.deepEqual(listB.integrations.map((i) => i.id), bIds);
	});

	test('a user with nothing gets an empty list', async () => {
		const json = assertOk(await get('/api/integrations', { token: newUser().token }));
		assert.deepEqual(json, { integrations: [] });
	});

	test('no secret is in the list', async () => {
		const u = newUser();
		const body = oauthBody();
		assertOk(await storeCredentials(u.token, body));
		const res = await get('/api/integrations', { token: u.token });
		assertOk(res);
		assert.ok(!res.text.includes(body.credentials.access_token));
		assert.ok(!res.text.includes(body.credentials.refresh_token));
	});
});

describe('GET /api/integrations/{id}', () => {
	test('own → 200 {"integration"}; another user\'s → 404; unknown → 404; non-uuid → 404', async () => {
		const a = newUser();
		const b = newUser();
		const ia = assertOk(await storeCredentials(a.token, apiKeyBody({ metadata: { n: 1 } }))).integration;
		const ib = assertOk(await storeCredentials(b.token, apiKeyBody())).integration;

		const own = assertOk(await get(`/api/integrations/${ia.id}`, { token: a.token }));
		assert.deepEqual(Object.keys(own), ['integration']);
		assertIntegration(own.integration, { id: ia.id, provider: 'openai', metadata: { n: 1 } });
		assert.deepEqual(own.integration, ia, 'GET answers the object storeCredentials answered');

		const other = await get(`/api/integrations/${ib.id}`, { token: a.token });
		assertError(other, 404, 'not_found');
		assert.ok(!other.text.includes('openai'), 'the 404 tells something about the row');

		assertError(await get(`/api/integrations/${randomUUID()}`, { token: a.token }), 404, 'not_found');
		assertError(await get('/api/integrations/not-a-uuid', { token: a.token }), 404, 'not_found');
		assertError(await get(`/api/integrations/${ia.id.toUpperCase()}x`, { token: a.token }), 404, 'not_found');
	});

	test('an uppercase UUID names the same row, in paths and bodies (RFC 9562: UUIDs are case-insensitive)', async () => {
		const a = newUser();
		const body = apiKeyBody();
		const ia = assertOk(await storeCredentials(a.token, body)).integration;
		const res = await get(`/api/integrations/${ia.id.toUpperCase()}`, { token: a.token });
		assert.equal(assertOk(res).integration.id, ia.id);
		assert.equal(assertOk(await get(`/api/integrations/${ia.id.toUpperCase()}/logs`, { token: a.token })).logs.length >= 1, true);
		// the service role names the user in upper case: stored under the user, and it decrypts
		const b = newUser();
		const sb = apiKeyBody();
		const ib = assertOk(await storeCredentials(serviceToken(), { ...sb, user_id: b.id.toUpperCase() })).integration;
		const listed = assertOk(await get('/api/integrations', { token: b.token }));
		assert.deepEqual((listed.integrations ?? listed).map((i) => i.id), [ib.id], 'the user sees it as theirs');
		for (const sel of [{ integration_id: ib.id.toUpperCase() }, { user_id: b.id.toUpperCase(), provider: sb.provider }]) {
			assert.deepEqual(assertOk(await getCredentials(sel)).credentials, sb.credentials, JSON.stringify(sel));
		}
		assert.equal(assertOk(await del(`/api/integrations/${ia.id.toUpperCase()}`, { token: a.token })).deleted, true);
		assertError(await get(`/api/integrations/${ia.id}`, { token: a.token }), 404, 'not_found');
	});
});

describe('DELETE /api/integrations/{id}', () => {
	test('own → 200, then GET 404, credentials gone; again → 404', async () => {
		const a = newUser();
		const ia = assertOk(await storeCredentials(a.token, apiKeyBody())).integration;
		assert.equal(countRows('credentials', `integration_id = ${lit(ia.id)}`), 1);
		const res = await del(`/api/integrations/${ia.id}`, { token: a.token });
		assertOk(res);
		assertError(await get(`/api/integrations/${ia.id}`, { token: a.token }), 404, 'not_found');
		assert.equal(countRows('integrations', `id = ${lit(ia.id)}`), 0);
		assert.equal(countRows('credentials', `integration_id = ${lit(ia.id)}`), 0, 'the credential outlived its integration');
		assertError(await del(`/api/integrations/${ia.id}`, { token: a.token }), 404, 'not_found');
		const list = assertOk(await get('/api/integrations', { token: a.token }));
		assert.deepEqual(list.integrations, []);
	});

	test('another user\'s → 404 and the row is still there', async () => {
		const a = newUser();
		const b = newUser();
		const ib = assertOk(await storeCredentials(b.token, apiKeyBody())).integration;
		assertError(await del(`/api/integrations/${ib.id}`, { token: a.token }), 404, 'not_found');
		assert.equal(countRows('integrations', `id = ${lit(ib.id)}`), 1);
		assert.equal(countRows('credentials', `integration_id = ${lit(ib.id)}`), 1);
		assertOk(await get(`/api/integrations/${ib.id}`, { token: b.token }));
	});

	test('non-uuid → 404; no token → 401', async () => {
		const a = newUser();
		assertError(await del('/api/integrations/abc', { token: a.token }), 404, 'not_found');
		assertError(await del(`/api/integrations/${randomUUID()}`), 401, 'unauthorized');
	});
});

describe('GET /api/integrations/{id}/logs', () => {
	test('{"logs":[..]} with a credentials_stored entry, newest first', async () => {
		const a = newUser();
		const ia = assertOk(await storeCredentials(a.token, apiKeyBody())).integration;
		assertOk(await storeCredentials(a.token, apiKeyBody()));
		const res = await get(`/api/integrations/${ia.id}/logs`, { token: a.token });
		const json = assertOk(res);
		assert.deepEqual(Object.keys(json), ['logs']);
		assert.ok(Array.isArray(json.logs));
		const stored = json.logs.filter((l) => l.action === 'credentials_stored');
		assert.equal(stored.length, 2, `two stores, two credentials_stored entries: ${res.text}`);
		for (const l of json.logs) {
			assert.deepEqual(Object.keys(l).sort(), ['action', 'created_at', 'details', 'id', 'level', 'message']);
			assert.ok(['debug', 'info', 'warn', 'error'].includes(l.level));
			assert.equal(typeof l.message, 'string');
		}
		const ids = json.logs.map((l) => Number(l.id));
		assert.deepEqual(ids, [...ids].sort((x, y) => y - x), 'logs are not newest first');
	});

	test('limit=1 gives one entry; limit 0, 201, -1 and abc → 400', async () => {
		const a = newUser();
		const ia = assertOk(await storeCredentials(a.token, apiKeyBody())).integration;
		assertOk(await storeCredentials(a.token, apiKeyBody()));
		const one = assertOk(await get(`/api/integrations/${ia.id}/logs?limit=1`, { token: a.token }));
		assert.equal(one.logs.length, 1);
		for (const bad of ['0', '201', '-1', 'abc', '1.5', '']) {
			assertError(await get(`/api/integrations/${ia.id}/logs?limit=${bad}`, { token: a.token }), 400, 'invalid_request');
		}
	});

	test('another user\'s integration → 404, unknown → 404, non-uuid → 404', async () => {
		const a = newUser();
		const b = newUser();
		const ib = assertOk(await storeCredentials(b.token, apiKeyBody())).integration;
		assertError(await get(`/api/integrations/${ib.id}/logs`, { token: a.token }), 404, 'not_found');
		assertError(await get(`/api/integrations/${randomUUID()}/logs`, { token: a.token }), 404, 'not_found');
		assertError(await get('/api/integrations/zzz/logs', { token: a.token }), 404, 'not_found');
		assertError(await get(`/api/integrations/${ib.id}/other`, { token: b.token }), 404, 'not_found');
	});

	test('no secret is in the logs', async () => {
		const a = newUser();
		const body = basicBody();
		const ia = assertOk(await storeCredentials(a.token, body)).integration;
		const res = await get(`/api/integrations/${ia.id}/logs`, { token: a.token });
		assertOk(res);
		assert.ok(!res.text.includes(body.credentials.password));
		assert.ok(!res.text.includes(body.credentials.username));
	});
});

describe('GET /api/providers', () => {
	test('>= 30 providers with name/display_name/auth_type/configured/default_scopes, no secrets', async () => {
		const res = await get('/api/providers');
		const json = assertOk(res);
		assert.deepEqual(Object.keys(json), ['providers']);
		assert.ok(Array.isArray(json.providers));
		assert.ok(json.providers.length >= 30, `only ${json.providers.length} providers`);
		const names = new Set();
		for (const p of json.providers) {
			for (const k of ['name', 'display_name', 'auth_type', 'configured', 'default_scopes']) {
				assert.ok(k in p, `provider ${JSON.stringify(p).slice(0, 100)} lacks ${k}`);
			}
			assert.match(p.name, /^[a-z0-9_]+$/);
			assert.ok(!names.has(p.name), `duplicate provider ${p.name}`);
			names.add(p.name);
			assert.equal(typeof p.display_name, 'string');
			assert.ok(['oauth2', 'api_key', 'basic'].includes(p.auth_type), `${p.name}: auth_type ${p.auth_type}`);
			assert.equal(typeof p.configured, 'boolean');
			assert.ok(Array.isArray(p.default_scopes));
			for (const k of Object.keys(p)) assert.ok(!/secret|client_id|password|token$/i.test(k), `${p.name} exposes ${k}`);
		}
		for (const n of ['github', 'stripe', 'slack', 'shopify', 'svix', 'openai', 'twilio']) assert.ok(names.has(n), `no ${n}`);
		assert.equal(json.providers.find((p) => p.name === 'openai').auth_type, 'api_key');
		assert.equal(json.providers.find((p) => p.name === 'twilio').auth_type, 'basic');
		assert.equal(json.providers.find((p) => p.name === 'github').auth_type, 'oauth2');
		// no value of the env file that looks like a secret appears
		for (const [k, v] of Object.entries(ENV)) {
			if (/SECRET|KEY|PASSWORD/.test(k) && v && v.length >= 8) assert.ok(!res.text.includes(v), `${k} leaks into /api/providers`);
		}
	});

	test('answers without a token, and with any token', async () => {
		assertOk(await get('/api/providers', { token: newUser().token }));
	});
});

describe('GET /healthz', () => {
	test('200 while the database answers', async () => {
		const res = await get('/healthz');
		assert.equal(res.status, 200, res.text);
	});
});
