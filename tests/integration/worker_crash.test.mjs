// A crashed worker does not take the service down (SPEC §11: pools are kept
// alive): kill -9 one worker of a program; requests keep succeeding (at most a
// 502 while it is replaced) and the pool is back to full size within seconds.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
	apiKeyBody, assertOk, get, logTail, newUser, poll, procStat, programProcesses, sleep,
	storeCredentials,
} from './lib.mjs';

async function killOneWorker(program, probe) {
	const before = programProcesses(program);
	assert.ok(before.all.length > 0, `no ${program} process of this stack found (pgrep -f build/cgi-bin/${program})`);
	assert.ok(before.workers.length >= 1, `${program}: no worker under a supervisor (pids ${before.all.join(',')}, masters ${before.masters.join(',')})`);
	const victim = before.workers[0];
	process.kill(victim, 'SIGKILL');
	const gone = await poll(() => {
		const st = procStat(victim);
		return !st || st.state === 'Z' || programProcesses(program).workers.every((p) => p !== victim);
	}, { timeoutMs: 5000, intervalMs: 50 });
	assert.ok(gone, `worker ${victim} did not die`);

	// requests right after the kill: 200, at most a transient 502
	const statuses = [];
	for (let n = 0; n < 12; n++) {
		const res = await probe();
		statuses.push(res.status);
		assert.ok(res.status === 200 || res.status === 502, `after killing worker ${victim}: HTTP ${res.status} ${res.text}`);
		await sleep(100);
	}
	assert.ok(statuses.filter((s) => s === 502).length <= 2, `too many 502s after one worker died: ${statuses.join(',')}\n${logTail(10)}`);

	// the pool is whole again, with a new worker in place of the dead one
	const back = await poll(() => {
		const now = programProcesses(program);
		return now.workers.length >= before.workers.length && !now.workers.includes(victim) ? now : null;
	}, { timeoutMs: 10000, intervalMs: 200 });
	assert.ok(back, `${program}: the dead worker was not replaced (workers before ${before.workers.join(',')}, now ${programProcesses(program).workers.join(',')})`);
	assert.deepEqual(back.masters.sort(), before.masters.sort(), 'the supervisor itself changed');

	// and then every request succeeds
	for (let n = 0; n < 2 * back.workers.length + 2; n++) {
		const res = await probe();
		assert.equal(res.status, 200, `after the replacement: HTTP ${res.status} ${res.text}`);
	}
	return { victim, statuses };
}

describe('a worker crash', () => {
	test('kill -9 of one integrations worker: /healthz and /api/integrations keep answering', async () => {
		const u = newUser();
		assertOk(await storeCredentials(u.token, apiKeyBody()));
		await killOneWorker('integrations', async () => {
			const a = await get('/healthz');
			if (a.status !== 200) return a;
			return get('/api/integrations', { token: u.token });
		});
		const list = assertOk(await get('/api/integrations', { token: u.token }));
		assert.equal(list.integrations.length, 1);
	});

	test('kill -9 of one storeCredentials worker: storing keeps working', async () => {
		const u = newUser();
		await killOneWorker('storeCredentials', () => storeCredentials(u.token, apiKeyBody()));
	});

	test('kill -9 of every worker of a program at once: the service is back within seconds', async () => {
		const program = 'integrations';
		const before = programProcesses(program);
		assert.ok(before.workers.length >= 1);
		for (const pid of before.workers) process.kill(pid, 'SIGKILL');
		const ok = await poll(async () => (await get('/healthz')).status === 200, { timeoutMs: 10000, intervalMs: 200 });
		assert.ok(ok, `/healthz did not come back after all ${program} workers were killed\n${logTail(10)}`);
		const after = await poll(() => {
			const now = programProcesses(program);
			return now.workers.length >= before.workers.length && now.workers.every((p) => !before.workers.includes(p));
		}, { timeoutMs: 10000 });
		assert.ok(after, 'the pool did not refill');
	});
});
