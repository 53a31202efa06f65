// Database down (SPEC §2 /healthz, §4 503; SECURITY.md "Reliability"): with
// PostgreSQL stopped every route answers 503 unavailable with Retry-After;
// once it is back the same processes answer 200 again, nothing restarted.
// Runs last (files run in name order with --test-concurrency=1): it stops the
// stack's PostgreSQL the way scripts/stack does, and starts it again.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
	PG_DATA_DIR as PGDATA, STACK_DIR, apiKeyBody, assertError, assertOk, get, getCredentials, logTail, newUser, pgRunning,
	poll, programProcesses, startPg, stopPg, storeCredentials,
} from './lib.mjs';

function assertUnavailable(res, what) {
	assertError(res, 503, 'unavailable');
	const ra = res.headers.get('retry-after');
	assert.ok(ra !== null, `${what}: 503 without Retry-After`);
	assert.match(ra, /^\d+$/, `${what}: Retry-After "${ra}"`);
	assert.ok(Number(ra) > 0 && Number(ra) <= 3600, `${what}: Retry-After ${ra}`);
}

const PROGRAMS = ['integrations', 'storeCredentials', 'getCredentials'];

describe('the database goes down and comes back', () => {
	// whatever happens, leave the cluster running for the rest of the run
	after(() => {
		if (!pgRunning()) startPg();
	});

	test('503 unavailable with Retry-After while down; 200 again after, without restarting any program', { timeout: 180000 }, async () => {
		assert.ok(existsSync(join(PGDATA, 'PG_VERSION')), `no cluster in ${PGDATA}`);
		const u = newUser();
		const body = apiKeyBody();
		const stored = assertOk(await storeCredentials(u.token, body)).integration;
		assert.equal((await get('/healthz')).status, 200);
		// warm every worker's connection
		for (let n = 0; n < 6; n++) assertOk(await get('/api/integrations', { token: u.token }));
		const before = Object.fromEntries(PROGRAMS.map((p) => [p, programProcesses(p)]));
		for (const p of PROGRAMS) assert.ok(before[p].all.length > 0, `no ${p} process found`);

		stopPg();
		try {
			assert.equal(pgRunning(), false, 'PostgreSQL still answers after pg_ctl stop');
			// several rounds, so that every worker of each program is asked
			for (let n = 0; n < 4; n++) {
				const t0 = Date.now();
				const h = await get('/healthz');
				assertUnavailable(h, 'GET /healthz');
				assert.ok(Date.now() - t0 < 10000, `/healthz took ${Date.now() - t0} ms with the database down`);

				const s = await storeCredentials(u.token, apiKeyBody());
				assertUnavailable(s, 'storeCredentials');
				assert.ok(!s.text.includes(STACK_DIR) && !/PGSQL|could not connect|connection to server/i.test(s.text),
					`the 503 message leaks connection details: ${s.text}`);

				assertUnavailable(await get('/api/integrations', { token: u.token }), 'GET /api/integrations');
				assertUnavailable(await getCredentials({ integration_id: stored.id }), 'getCredentials');
			}
			// checks that need no database still run first: a bad token is 401, not 503
			const bad = await storeCredentials('garbage', apiKeyBody());
			assertError(bad, 401, 'unauthorized');
		} finally {
			startPg();
		}

		// back: /healthz within seconds, by polling, nothing restarted
		const t0 = Date.now();
		const up = await poll(async () => (await get('/healthz')).status === 200, { timeoutMs: 15000, intervalMs: 250 });
		assert.ok(up, `/healthz not 200 within 15 s of PostgreSQL's restart\n${logTail(10)}`);
		const took = Date.now() - t0;

		// every worker reconnects: several requests in a row all succeed
		for (let n = 0; n < 6; n++) {
			const r = await storeCredentials(u.token, apiKeyBody({ connection: `after-${n}` }));
			assert.equal(r.status, 200, `storeCredentials #${n} after the restart: HTTP ${r.status} ${r.text}\n${logTail(10)}`);
			assert.equal(r.json.integration.status, 'connected');
		}
		for (let n = 0; n < 6; n++) {
			assert.equal((await get('/healthz')).status, 200);
			assertOk(await get('/api/integrations', { token: u.token }));
		}
		const got = assertOk(await getCredentials({ integration_id: stored.id }));
		assert.equal(got.credentials.api_key, body.credentials.api_key, 'the data from before the outage');

		const afterProcs = Object.fromEntries(PROGRAMS.map((p) => [p, programProcesses(p)]));
		for (const p of PROGRAMS) {
			assert.deepEqual(afterProcs[p].masters.sort(), before[p].masters.sort(), `${p} was restarted`);
			assert.deepEqual(afterProcs[p].workers.sort(), before[p].workers.sort(), `${p}: a worker died during the outage`);
		}
		assert.ok(took < 15000);
	});
});
