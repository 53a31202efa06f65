// HTTP edges (SPEC §2, §4): body size limit, unknown routes, wrong methods,
// CORS preflight — all in the JSON error envelope, nginx's answers included.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import {
	ALLOWED_ORIGIN, BASE_URL, MAX_BODY_BYTES, STACK_DIR, apiKeyBody, assertError, assertOk, countRows, del, fn, get,
	http, lit, newUser, poll, post, serviceToken, storeCredentials,
} from './lib.mjs';

/** A storeCredentials body of exactly `size` bytes (padding in metadata). */
function bodyOfSize(size, userId) {
	const base = { provider: 'openai', credentials: { api_key: `sk-${randomUUID()}` }, user_id: userId, metadata: { pad: '' } };
	const overhead = Buffer.byteLength(JSON.stringify(base));
	const text = JSON.stringify({ ...base, metadata: { pad: 'p'.repeat(size - overhead) } });
	assert.equal(Buffer.byteLength(text), size);
	return text;
}

describe('body size', () => {
	test(`a body of exactly MAX_BODY_BYTES (${MAX_BODY_BYTES}) is not 413`, async () => {
		const u = newUser();
		const res = await post(fn('storeCredentials'), bodyOfSize(MAX_BODY_BYTES, u.id), { token: u.token });
		assert.notEqual(res.status, 413, `exactly MAX_BODY_BYTES was refused as too large: ${res.text.slice(0, 200)}`);
		// the program read and judged it: 200, or 400 for metadata that large
		assert.ok([200, 400].includes(res.status), `HTTP ${res.status} ${res.text.slice(0, 200)}`);
		if (res.status === 400) assertError(res, 400, 'invalid_request');
	});

	test('one byte more → 413 payload_too_large in the JSON envelope, nothing stored', async () => {
		const u = newUser();
		const res = await post(fn('storeCredentials'), bodyOfSize(MAX_BODY_BYTES + 1, u.id), { token: u.token });
		assertError(res, 413, 'payload_too_large');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 0);
	});

	test('a much larger body → 413 too, also without a token', async () => {
		const res = await post(fn('storeCredentials'), Buffer.alloc(3 * MAX_BODY_BYTES, 0x20));
		assertError(res, 413, 'payload_too_large');
	});

	test('a body with 8 KiB of metadata is stored (control)', async () => {
		const u = newUser();
		const res = await post(fn('storeCredentials'), bodyOfSize(8 * 1024, u.id), { token: u.token });
		assertOk(res);
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 1);
	});
});

/** POST with Transfer-Encoding: chunked (no Content-Length), in two chunks. */
function postChunked(path, parts, token) {
	return new Promise((resolvePromise, reject) => {
		const req = request(BASE_URL + path, {
			method: 'POST',
			headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
		}, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (c) => { text += c; });
			res.on('end', () => {
				let json = null;
				try { json = JSON.parse(text); } catch { json = null; }
				resolvePromise({ status: res.statusCode, headers: new Headers(Object.entries(res.headers).map(([k, v]) => [k, String(v)])), text, json });
			});
		});
		req.on('error', reject);
		for (const p of parts.slice(0, -1)) req.write(p);
		setTimeout(() => req.end(parts.at(-1)), 30);
	});
}

describe('chunked request bodies', () => {
	test('a chunked body (no Content-Length) is read whole → 200', async () => {
		const u = newUser();
		const key = `sk-${randomUUID()}`;
		const res = await postChunked(fn('storeCredentials'), ['{"provider":"openai",', `"credentials":{"api_key":"${key}"}}`], u.token);
		assert.equal(res.status, 200, `chunked: HTTP ${res.status} ${res.text}`);
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 1);
	});

	test('a chunked body over MAX_BODY_BYTES → 413 payload_too_large', async () => {
		const u = newUser();
		const big = bodyOfSize(MAX_BODY_BYTES + 10, u.id);
		const res = await postChunked(fn('storeCredentials'), [big.slice(0, 1000), big.slice(1000)], u.token).catch((e) => ({ status: 0, text: String(e), json: null }));
		// nginx may close the connection after answering 413 while we still send
		if (res.status !== 0) assertError(res, 413, 'payload_too_large');
		assert.equal(countRows('integrations', `user_id = ${lit(u.id)}`), 0);
	});
});

describe('unknown routes and methods', () => {
	const unknown = [
		['POST', '/functions/v1/noSuchFunction'],
		['POST', '/functions/v1/'],
		['POST', '/functions/v1/storeCredentials/extra'],
		['GET', '/api/nothing-here'],
		['GET', '/api/'],
		['GET', '/api/integrations/00000000-0000-4000-8000-000000000000/logs/more'],
	];
	for (const [method, path] of unknown) {
		test(`${method} ${path} → 404 JSON envelope`, async () => {
			const res = await http(method, path, { token: newUser().token, body: method === 'POST' ? {} : undefined });
			assertError(res, 404, 'not_found');
		});
	}

	test('GET on storeCredentials → 405 method_not_allowed (JSON)', async () => {
		const res = await get(fn('storeCredentials'), { token: newUser().token });
		assertError(res, 405, 'method_not_allowed');
	});

	test('PUT and DELETE on storeCredentials → 405; GET on getCredentials → 405', async () => {
		assertError(await http('PUT', fn('storeCredentials'), { token: newUser().token, body: apiKeyBody() }), 405, 'method_not_allowed');
		assertError(await del(fn('storeCredentials'), { token: newUser().token }), 405, 'method_not_allowed');
		assertError(await get(fn('getCredentials'), { token: serviceToken() }), 405, 'method_not_allowed');
	});

	test('POST on /api/integrations → 405; PUT on /api/integrations/{id} → 405', async () => {
		const u = newUser();
		assertError(await post('/api/integrations', apiKeyBody(), { token: u.token }), 405, 'method_not_allowed');
		assertError(await http('PUT', `/api/integrations/${randomUUID()}`, { token: u.token, body: {} }), 405, 'method_not_allowed');
	});

	test('a 405 from the program names the allowed methods', async () => {
		const res = await get(fn('storeCredentials'), { token: newUser().token });
		const allow = res.headers.get('allow') || '';
		assert.match(allow, /POST/, `Allow: "${allow}"`);
	});
});

describe('CORS', () => {
	test('OPTIONS preflight from an allowed origin → 204 with Access-Control-Allow-Origin', async () => {
		const res = await http('OPTIONS', fn('storeCredentials'), {
			headers: {
				origin: ALLOWED_ORIGIN,
				'access-control-request-method': 'POST',
				'access-control-request-headers': 'authorization, x-client-info, apikey, content-type',
			},
		});
		assert.equal(res.status, 204, `preflight: HTTP ${res.status} ${res.text}`);
		assert.equal(res.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
		// a listed origin (not a "*" match) may send the flow cookie
		assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
		assert.match(res.headers.get('access-control-allow-methods') || '', /POST/);
		const allowHeaders = (res.headers.get('access-control-allow-headers') || '').toLowerCase();
		for (const h of ['authorization', 'apikey', 'content-type', 'x-client-info']) assert.ok(allowHeaders.includes(h), `allow-headers lacks ${h}: ${allowHeaders}`);
	});

	test('preflight on /api/integrations and getCredentials from an allowed origin → 204', async () => {
		for (const path of ['/api/integrations', fn('getCredentials'), `/api/integrations/${randomUUID()}`]) {
			const res = await http('OPTIONS', path, {
				headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': path.startsWith('/api') ? 'GET' : 'POST' },
			});
			assert.equal(res.status, 204, `${path}: HTTP ${res.status} ${res.text}`);
			assert.equal(res.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
		}
	});

	test('a disallowed origin gets no Access-Control-Allow-Origin', async () => {
		for (const origin of ['http://evil.example', 'http://app.test.example.evil.example', 'null']) {
			const res = await http('OPTIONS', fn('storeCredentials'), {
				headers: { origin, 'access-control-request-method': 'POST' },
			});
			const acao = res.headers.get('access-control-allow-origin');
			assert.ok(acao === null, `origin ${origin} got Access-Control-Allow-Origin: ${acao}`);
			assert.notEqual(res.status, 200);
		}
	});

	test('the actual POST from an allowed origin carries Access-Control-Allow-Origin; a disallowed one does not', async () => {
		const u = newUser();
		const ok = await storeCredentials(u.token, apiKeyBody(), { headers: { origin: ALLOWED_ORIGIN } });
		assertOk(ok);
		assert.equal(ok.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
		const bad = await storeCredentials(u.token, apiKeyBody(), { headers: { origin: 'http://evil.example' } });
		assertOk(bad); // CORS is the browser's business; the server just doesn't allow it
		assert.equal(bad.headers.get('access-control-allow-origin'), null);
		assert.notEqual(bad.headers.get('access-control-allow-origin'), '*');
	});
});

describe('a failed request stores nothing', () => {
	test('invalid credentials, wrong user, bad JSON, bad token: integrations/credentials/logs counts unchanged', async () => {
		const u = newUser();
		const where = `user_id = ${lit(u.id)}`;
		const before = ['integrations', 'credentials', 'integration_logs'].map((t) => countRows(t, where));
		assert.deepEqual(before, [0, 0, 0]);
		const attempts = [
			await storeCredentials(u.token, { provider: 'openai', credentials: {} }),
			await storeCredentials(u.token, { provider: 'openai', credentials: { api_key: 'x' }, connection: 'bad label!' }),
			await storeCredentials(u.token, { provider: 'twilio', credentials: { username: 'only' } }),
			await storeCredentials(u.token, { provider: 'github', credentials: { access_token: 'x', expires_in: 'soon' } }),
			await storeCredentials(u.token, { provider: 'openai', auth_type: 'basic', credentials: { api_key: 'x' } }),
			await post(fn('storeCredentials'), '{not json', { token: u.token }),
		];
		for (const r of attempts) assert.equal(r.status, 400, `expected 400: HTTP ${r.status} ${r.text}`);
		const after = ['integrations', 'credentials', 'integration_logs'].map((t) => countRows(t, where));
		assert.deepEqual(after, before);
	});
});

describe('the FastCGI connection', () => {
	// A program closes its connection as soon as it has read the request to
	// its end (lib/app.c finish_request). A body it refuses unread must be
	// drained first: closing on unread data would reset nginx's connection
	// while it still sends, and the caller would get 502 instead of the answer.
	test('large bodies refused before they are read (bad JWT, wrong method, service-only route) still get their JSON answer', async () => {
		const big = bodyOfSize(Math.min(MAX_BODY_BYTES, 900 * 1024), randomUUID());
		const u = newUser();
		const calls = [];
		for (let i = 0; i < 6; i++) {
			calls.push(post(fn('storeCredentials'), big, { token: 'not.a.jwt' }).then((r) => [r, 401, 'unauthorized']));
			calls.push(http('PUT', fn('storeCredentials'), { body: big, token: u.token }).then((r) => [r, 405, 'method_not_allowed']));
			calls.push(post(fn('getCredentials'), big, { token: u.token }).then((r) => [r, 403, 'forbidden']));
		}
		for (const [res, status, code] of await Promise.all(calls)) assertError(res, status, code);
	});

	test("X-Request-Id is nginx's $request_id: the answer and the access log name the request alike", async () => {
		const res = await get('/api/providers');
		assert.equal(res.status, 200);
		const id = res.headers.get('x-request-id');
		assert.match(id ?? '', /^[0-9a-f]{32}$/);
		// the access log is written in batches, at least once a second
		const log = join(STACK_DIR, 'log', 'access.log');
		const found = await poll(() => existsSync(log) && readFileSync(log, 'utf8').includes(` id=${id}`), { timeoutMs: 5000 });
		assert.ok(found, `id=${id} in the access log`);
		const other = (await get('/api/providers')).headers.get('x-request-id');
		assert.notEqual(other, id, 'each request its own id');
	});
});
