// Faults on the running stack (issue 6), beside zz_database_down's outage:
// the database stopped and started again in the middle of a write load. Every
// request answered 200 must have committed (its secret reads back); the
// others are 503 unavailable; the same processes carry on afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	apiKeyBody, assertOk, getCredentials, lit, newUser, pgRunning, programProcesses, psql, startPg, stopPg,
	storeCredentials,
} from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

after(() => {
	if (!pgRunning()) startPg();
});

test('database stopped and restarted mid-load: every 200 committed, the rest 503, no restarts', { timeout: 180000 }, async (t) => {
	const before = [...programProcesses('storeCredentials').all].sort();
	const answered = [];
	let stop = false;
	async function client(n) {
		const user = newUser();
		for (let i = 0; !stop; i++) {
			const body = apiKeyBody({ connection: `load-${n}-${i}` });
			let res;
			try {
				res = await storeCredentials(user.token, body, { timeoutMs: 30000 });
			} catch (e) {
				res = { status: 0, text: String(e) };
			}
			answered.push({ user, body, status: res.status, json: res.json, text: res.text });
			if (res.status !== 200) await sleep(50);
		}
	}
	const clients = Array.from({ length: 6 }, (_, n) => client(n));
	await sleep(1500);
	stopPg();
	await sleep(2000);
	startPg();
	// the load goes on until writes succeed again (each worker meets its
	// dropped connection once, then reconnects)
	const restarted = answered.length;
	const deadline = Date.now() + 60000;
	while (Date.now() < deadline && answered.slice(restarted).filter((a) => a.status === 200).length < 12)
		await sleep(200);
	stop = true;
	await Promise.all(clients);

	const byStatus = {};
	for (const a of answered) byStatus[a.status] = (byStatus[a.status] || 0) + 1;
	t.diagnostic(`answers by status: ${JSON.stringify(byStatus)}`);
	for (const a of answered)
		assert.ok(a.status === 200 || a.status === 503,
			`only 200 or 503 under the outage, got ${a.status}: ${a.text.slice(0, 200)}`);
	assert.ok(byStatus[503] > 0, `the outage was seen: ${JSON.stringify(byStatus)}`);
	assert.ok(byStatus[200] > 0, `writes succeeded around it: ${JSON.stringify(byStatus)}`);
	for (const a of answered.filter((x) => x.status === 503))
		assert.equal(a.json?.error?.code, 'unavailable');

	assert.ok(answered.slice(restarted).filter((a) => a.status === 200).length >= 12,
		'service resumed after the restart');

	// every 200 is in the database with the secret it was given
	for (const a of answered.filter((x) => x.status === 200)) {
		const res = assertOk(await getCredentials({ integration_id: a.json.integration.id }));
		assert.equal(res.credentials.api_key, a.body.credentials.api_key, 'a 200 that did not commit');
	}

	const afterPids = [...programProcesses('storeCredentials').all].sort();
	assert.ok(before.length > 0, 'storeCredentials processes found');
	assert.deepEqual(afterPids, before, 'no storeCredentials process was restarted');
});

test('a statement past statement_timeout (20 s): 503 unavailable with Retry-After, nothing written, the process serves on', { timeout: 90000 }, async () => {
	const user = newUser();
	const before = [...programProcesses('storeCredentials').all].sort();
	// the log row storeCredentials writes in its statement stalls, for this user only
	psql(`CREATE FUNCTION public.intauth_test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.user_id = ${lit(user.id)}::uuid THEN PERFORM pg_sleep(28); END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER intauth_test_stall BEFORE INSERT ON public.integration_logs
			FOR EACH ROW EXECUTE FUNCTION public.intauth_test_stall();`);
	let res;
	const t0 = Date.now();
	try {
		res = await storeCredentials(user.token, apiKeyBody({ connection: 'stalled' }), { timeoutMs: 45000 });
	} finally {
		psql(`DROP TRIGGER intauth_test_stall ON public.integration_logs; DROP FUNCTION public.intauth_test_stall();`);
	}
	const waited = Date.now() - t0;
	assert.equal(res.status, 503, res.text);
	assert.equal(res.json?.error?.code, 'unavailable');
	assert.equal(res.headers.get('retry-after'), '2');
	assert.ok(waited > 15000 && waited < 28000, `answered when the statement timed out, not when the stall ended: ${waited} ms`);
	assert.equal(psql(`SELECT count(*) FROM public.integrations WHERE user_id = ${lit(user.id)};`), '0', 'half a write was kept');
	const again = assertOk(await storeCredentials(user.token, apiKeyBody({ connection: 'stalled' })));
	assert.equal(again.integration.status, 'connected');
	assert.deepEqual([...programProcesses('storeCredentials').all].sort(), before, 'a storeCredentials process was restarted');
});
