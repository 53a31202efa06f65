// Faults on the running stack (issue 6): a FastCGI child killed with SIGKILL
// in the middle of a request. The request chosen is the one that holds the
// most: a forced refresh, which keeps its transaction and the integration's
// row lock open across the provider call. The token endpoint is made slow so
// the child is certainly inside that call when it dies.
//
// Checked: nginx answers that one request with the JSON 502 envelope; the
// supervisor replaces the child within seconds and the pool is whole again;
// the dead child's transaction rolled back at once (the row lock is free, the
// credential and status untouched, no refresh half-recorded); the next forced
// refresh makes exactly one grant and the rotated token works; requests that
// were not in the dead child carried on.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
	assertError, assertOk, connectTestOidc, fn, getCredentials, lit, newUser, poll, post, programProcesses,
	psql, serviceToken, sleep,
} from './lib.mjs';
import * as oauth from '../oauth/consent.mjs';

const ISSUER = process.env.OAUTH_ISSUER;
const SYSCALL_ACCEPT = 43;      // x86_64: an idle FastCGI child waits in accept()

after(async () => {
	await oauth.setMode(ISSUER, { token: 'normal' });
});

/** The row and its credential as the superuser sees them. */
function row(id) {
	return JSON.parse(psql(`SELECT row_to_json(x)::text FROM (SELECT i.status, i.last_error, i.refresh_failures,
		i.last_refreshed_at, (SELECT c.id || ' ' || c.secret FROM public.credentials c WHERE c.integration_id = i.id) AS cred
		FROM public.integrations i WHERE i.id = ${lit(id)}) x;`));
}

/** The workers of a program that are not waiting in accept(): busy with a request. */
function busyWorkers(program) {
	return programProcesses(program).workers.filter((pid) => {
		try {
			return Number(readFileSync(`/proc/${pid}/syscall`, 'latin1').split(' ')[0]) !== SYSCALL_ACCEPT;
		} catch {
			return false;
		}
	});
}

test('a FastCGI child killed mid-request: 502 JSON for that request, the pool refilled, its transaction rolled back, nothing half-written', { timeout: 60000 }, async (t) => {
	const user = newUser();
	const { id } = await connectTestOidc(user, { connection: 'killed-child' });
	const before = row(id);
	const accessBefore = assertOk(await getCredentials({ integration_id: id })).credentials.access_token;
	const poolBefore = programProcesses('refreshToken').workers.sort();
	assert.ok(poolBefore.length >= 2, `refreshToken has a pool: ${poolBefore}`);

	// slower than the kill below, faster than the programs' HTTP_TIMEOUT_MS would matter
	await oauth.setMode(ISSUER, { token: 'slow', count: 1, slow_ms: 8000 });
	const grants0 = (await oauth.stats(ISSUER)).token.refresh_token;
	const inFlight = post(fn('refreshToken'), { integration_id: id, force: true }, { token: user.token, timeoutMs: 20000 });

	// the child that took it: the one not back in accept()
	let busy = [];
	assert.ok(await poll(() => (busy = busyWorkers('refreshToken')).length === 1, { timeoutMs: 2000, intervalMs: 20 }),
		`one refreshToken child busy with the request: ${busy}`);
	// it is inside the provider call, holding the row lock
	assert.ok(await poll(async () => (await oauth.stats(ISSUER)).token.refresh_token > grants0, { timeoutMs: 2000, intervalMs: 20 }),
		'the refresh reached the token endpoint');
	const victim = busy[0];
	process.kill(victim, 'SIGKILL');

	const res = await inFlight;
	assertError(res, 502, 'provider_error');

	// the supervisor brings the pool back to its size with a new process
	let pool = [];
	assert.ok(await poll(() => {
		pool = programProcesses('refreshToken').workers;
		return pool.length === poolBefore.length && !pool.includes(victim);
	}, { timeoutMs: 10000, intervalMs: 100 }), `the pool was refilled: before ${poolBefore}, now ${pool}`);
	const survivors = poolBefore.filter((p) => p !== victim);
	assert.deepEqual(survivors.filter((p) => pool.includes(p)).sort(), survivors.sort(), 'only the killed child was replaced');

	// the dead child's backend is gone and its transaction with it: nothing
	// holds the row (a lock_timeout of 1 s would fail this FOR UPDATE NOWAIT)
	assert.ok(await poll(() => psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'intauth'
		AND state = 'idle in transaction' AND backend_xid IS NOT NULL;`) === '0', { timeoutMs: 5000 }),
		'no transaction left open by the killed child');
	assert.equal(psql(`BEGIN; SELECT 'free' FROM public.integrations WHERE id = ${lit(id)} FOR UPDATE NOWAIT; ROLLBACK;`)
		.split('\n').filter((l) => l === 'free').length, 1, 'the row lock was released');
	const mid = row(id);
	assert.equal(mid.status, 'connected');
	assert.equal(mid.cred, before.cred, 'the credential is untouched');
	assert.equal(mid.last_refreshed_at, before.last_refreshed_at, 'no refresh was recorded');
	assert.equal(mid.refresh_failures, before.refresh_failures, 'no failure was half-recorded either');
	assert.equal(assertOk(await getCredentials({ integration_id: id })).credentials.access_token, accessBefore,
		'the stored access token still reads back');

	// the service goes on: a forced refresh now makes exactly one grant
	await oauth.setMode(ISSUER, { token: 'normal' });
	await sleep(50);
	const grants1 = (await oauth.stats(ISSUER)).token.refresh_token;
	const ok = assertOk(await post(fn('refreshToken'), { integration_id: id, force: true }, { token: user.token }));
	assert.equal(ok.refreshed, true);
	assert.equal((await oauth.stats(ISSUER)).token.refresh_token - grants1, 1, 'one refresh grant');
	const accessAfter = assertOk(await getCredentials({ integration_id: id }, { token: serviceToken() })).credentials.access_token;
	assert.notEqual(accessAfter, accessBefore, 'a new access token was stored');
	t.diagnostic(`killed pid ${victim}; pool ${poolBefore} -> ${pool}`);
});
