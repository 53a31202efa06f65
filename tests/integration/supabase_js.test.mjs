// The seed's clients call the routes with supabase-js (SPEC §2): functions.invoke
// must work against the stack unchanged. On Node 20, supabase-js 2.109.0 needs
// the ws package as its realtime transport (STACK-NOTES).
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
	BASE_URL, TESTS_DIR, anonToken, apiKeyBody, assertOk, countRows, getCredentials, lit, newUser,
	oauthBody, serviceToken,
} from './lib.mjs';

let createClient;
let WebSocket;

before(async () => {
	// tests/run does not install the npm peers itself: do it once, from the lock file
	if (!existsSync(join(TESTS_DIR, 'node_modules', '@supabase', 'supabase-js', 'package.json')) ||
		!existsSync(join(TESTS_DIR, 'node_modules', 'ws', 'package.json'))) {
		execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: TESTS_DIR, stdio: 'inherit', timeout: 300000 });
	}
	({ createClient } = await import('@supabase/supabase-js'));
	({ default: WebSocket } = await import('ws'));
});

function client({ userToken, accessToken } = {}) {
	const anon = anonToken();
	const options = {
		realtime: { transport: WebSocket },
		auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
	};
	if (accessToken) options.accessToken = async () => accessToken;
	if (userToken) options.global = { headers: { Authorization: `Bearer ${userToken}` } };
	return createClient(BASE_URL, anon, options);
}

async function errorBody(error) {
	const res = error?.context;
	if (!res || typeof res.json !== 'function') return null;
	try {
		return { status: res.status, json: await res.json() };
	} catch {
		return { status: res.status, json: null };
	}
}

describe('supabase-js functions.invoke', () => {
	test('storeCredentials with a user JWT in global.headers → data.integration connected', async () => {
		const u = newUser();
		const body = apiKeyBody();
		const sb = client({ userToken: u.token });
		const { data, error } = await sb.functions.invoke('storeCredentials', { body });
		assert.equal(error, null, `invoke failed: ${error?.name} ${error?.message} ${JSON.stringify(await errorBody(error))}`);
		assert.equal(data.integration.status, 'connected');
		assert.equal(data.integration.provider, 'openai');
		assert.ok(!JSON.stringify(data).includes(body.credentials.api_key));
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 1);
	});

	test('storeCredentials with the accessToken option (oauth2 body) → connected', async () => {
		const u = newUser();
		const sb = client({ accessToken: u.token });
		const { data, error } = await sb.functions.invoke('storeCredentials', { body: oauthBody() });
		assert.equal(error, null, `invoke failed: ${error?.message} ${JSON.stringify(await errorBody(error))}`);
		assert.equal(data.integration.status, 'connected');
		assert.deepEqual(data.integration.scopes, ['repo', 'read:user']);
	});

	test('an invalid request answers an error with the JSON envelope (400 unknown_provider)', async () => {
		const u = newUser();
		const sb = client({ userToken: u.token });
		const { data, error } = await sb.functions.invoke('storeCredentials', {
			body: { provider: 'no_such_provider', credentials: { api_key: 'x' } },
		});
		assert.equal(data, null);
		assert.ok(error, 'no error for an unknown provider');
		assert.equal(error.name, 'FunctionsHttpError');
		const eb = await errorBody(error);
		assert.equal(eb.status, 400);
		assert.equal(eb.json?.error?.code, 'unknown_provider');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 0);
	});

	test('without a user session (anon key only) → error 401 unauthorized', async () => {
		const sb = client();
		const { data, error } = await sb.functions.invoke('storeCredentials', { body: apiKeyBody() });
		assert.equal(data, null);
		assert.ok(error, 'the anon key got in');
		const eb = await errorBody(error);
		assert.equal(eb.status, 401);
		assert.equal(eb.json?.error?.code, 'unauthorized');
	});

	test('getCredentials through supabase-js with the service role returns the secret', async () => {
		const u = newUser();
		const body = apiKeyBody();
		const sbUser = client({ userToken: u.token });
		const stored = await sbUser.functions.invoke('storeCredentials', { body });
		assert.equal(stored.error, null);
		const sbService = client({ userToken: serviceToken() });
		const { data, error } = await sbService.functions.invoke('getCredentials', { body: { integration_id: stored.data.integration.id } });
		assert.equal(error, null, `getCredentials failed: ${error?.message} ${JSON.stringify(await errorBody(error))}`);
		assert.equal(data.credentials.api_key, body.credentials.api_key);
		// and a user may not
		const denied = await sbUser.functions.invoke('getCredentials', { body: { integration_id: stored.data.integration.id } });
		assert.ok(denied.error);
		assert.equal((await errorBody(denied.error)).status, 403);
		// sanity: the direct route agrees
		assertOk(await getCredentials({ integration_id: stored.data.integration.id }));
	});
});
