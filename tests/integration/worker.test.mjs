// The job queue and bin/worker (SPEC §9), against the stack's PostgreSQL, its
// worker, the real test OAuth server (tests/oauth/server.mjs) and extra
// worker processes (the stack's build: $STACK_BUILD_DIR/bin/worker, default
// build/) started here with the stack's environment (`scripts/stack env`) plus
// short per-test settings (5 s lease, 200 ms poll and backoff base).
//
// Some tests must know which process holds a job (kill -9 mid-job, SIGTERM
// mid-job) or need short backoffs, so no other worker may take their jobs.
// The stack's watchdog restarts a worker that exits, so stopping the stack's
// worker would only get it replaced; instead those tests pause it: SIGSTOP to
// its supervisor (nothing is respawned) and to each of its children, SIGCONT
// afterwards (also on any exit of this file). A stopped process still counts
// as running for the watchdog. Jobs those tests create are created after the
// pause, and a job the paused worker might hold is none of theirs. Every extra
// worker is killed at the end, whatever happens.
//
// Slow jobs are real: a `bootstrap` job calls the provider's userinfo
// endpoint, which the test server answers slowly on demand (/_test/mode
// {"userinfo": "slow", "slow_ms": N, "count": jobs}). A job that always fails
// is a job of a kind no worker knows, which the worker fails on every attempt.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
	ENV, INTAUTHCTL, PG_PORT, PG_SOCKET_DIR, ROOT, STACK_DIR, apiKeyBody, asUser, assertOk, connectTestOidc, holdRowLock, lit, logTail,
	newUser, oauthBody, pgBinDir, poll, procStat, serviceToken, sleep, storeCredentials,
} from './lib.mjs';
import { setMode, stats } from '../oauth/consent.mjs';

const execFileP = promisify(execFile);
// the build the stack runs (scripts/stack's STACK_BUILD_DIR)
const WORKER_BIN = join(process.env.STACK_BUILD_DIR || join(ROOT, 'build'), 'bin/worker');
const ISSUER = process.env.OAUTH_ISSUER;

// ---------- processes ----------

/** Live (non-zombie) children of pid. */
function childrenOf(pid) {
	const out = [];
	for (const d of readdirSync('/proc')) {
		if (!/^\d+$/.test(d)) continue;
		const st = procStat(Number(d));
		if (st && st.ppid === pid && st.state !== 'Z') out.push(Number(d));
	}
	return out;
}

function alive(pid) {
	const st = procStat(pid);
	return !!st && st.state !== 'Z';
}

function signal(pid, sig) {
	try {
		process.kill(pid, sig);
		return true;
	} catch {
		return false;
	}
}

/** The environment `scripts/stack up` gave the programs, as bash sees it. */
let stackEnv = null;
function stackEnvironment() {
	if (stackEnv) return stackEnv;
	const out = execFileSync('bash', ['-c', 'eval "$(scripts/stack env)" && env -0'], {
		cwd: ROOT, env: process.env, encoding: 'utf8',
	});
	const env = {};
	for (const kv of out.split('\0')) {
		const eq = kv.indexOf('=');
		if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
	}
	assert.ok(env.DATABASE_URL || ENV.DATABASE_URL, 'scripts/stack env gives no DATABASE_URL');
	stackEnv = env;
	return env;
}

const extraWorkers = new Set();
let workerSeq = 0;

/**
 * Starts build/bin/worker with the stack's environment and settings; its
 * output goes to $STACK_DIR/log/worker-test-N-name.log. Answers
 * { pid, log, exited: Promise<{code, signal}> }.
 */
function startWorker(name, settings) {
	const log = join(STACK_DIR, 'log', `worker-test-${++workerSeq}-${name}.log`);
	const fd = openSync(log, 'a');
	const child = spawn(WORKER_BIN, [], {
		cwd: STACK_DIR, env: { ...stackEnvironment(), ...settings }, stdio: ['ignore', fd, fd],
	});
	closeSync(fd);
	const w = { name, pid: child.pid, log, child, exit: null };
	w.exited = new Promise((resolve) => child.once('exit', (code, sig) => {
		w.exit = { code, signal: sig };
		resolve(w.exit);
	}));
	extraWorkers.add(w);
	return w;
}

/** Waits until the worker's supervisor has n children; answers their pids. */
async function workerReady(w, n) {
	const kids = await poll(() => {
		if (w.exit) throw new Error(`worker ${w.name} exited: ${JSON.stringify(w.exit)}\n${readFileSync(w.log, 'utf8')}`);
		const k = childrenOf(w.pid);
		return k.length === n ? k : null;
	}, { timeoutMs: 5000, intervalMs: 50 });
	assert.ok(kids, `worker ${w.name}: not ${n} children\n${readFileSync(w.log, 'utf8')}`);
	return kids;
}

/** SIGKILL the worker and its children (cleanup, whatever state it is in). */
function killWorker(w) {
	const kids = alive(w.pid) ? childrenOf(w.pid) : [];
	signal(w.pid, 'SIGKILL');
	for (const k of kids) signal(k, 'SIGKILL');
	extraWorkers.delete(w);
}

/** SIGTERM and wait for the exit; SIGKILL when it does not come in time. */
async function stopWorker(w, timeoutMs = 20000) {
	if (!w.exit) signal(w.pid, 'SIGTERM');
	const res = await Promise.race([w.exited, sleep(timeoutMs).then(() => null)]);
	if (!res) killWorker(w);
	extraWorkers.delete(w);
	return res;
}

/**
 * Runs fn(w, children) with an extra worker of n children; the worker is
 * SIGKILLed afterwards unless fn stopped it, so a failed test leaves no worker
 * behind to take the next test's jobs.
 */
async function withWorker(name, settings, n, fn) {
	const w = startWorker(name, { WORKER_CONCURRENCY: String(n), ...settings });
	try {
		return await fn(w, await workerReady(w, n));
	} finally {
		if (!w.exit) killWorker(w);
		extraWorkers.delete(w);
	}
}

/** Events a worker log holds (one JSON object per line). */
function logEvents(path) {
	if (!existsSync(path)) return [];
	const out = [];
	for (const line of readFileSync(path, 'utf8').split('\n')) {
		if (!line.startsWith('{')) continue;
		try {
			out.push(JSON.parse(line));
		} catch {
			/* a line being written */
		}
	}
	return out;
}

const STACK_WORKER_LOG = join(STACK_DIR, 'log', 'worker.log');

// ---------- the stack's own worker: pause and resume ----------

let paused = [];

function resumeStackWorker() {
	for (const p of paused) signal(p, 'SIGCONT');
	paused = [];
}

async function pauseStackWorker() {
	const sup = Number(readFileSync(join(STACK_DIR, 'run', 'worker.pid'), 'utf8').trim());
	assert.ok(alive(sup), `the stack's worker (pid ${sup}) is not running\n${logTail(10)}`);
	// the supervisor first, so that no child is replaced meanwhile
	signal(sup, 'SIGSTOP');
	paused = [sup, ...childrenOf(sup)];
	for (const p of paused.slice(1)) signal(p, 'SIGSTOP');
	const stopped = await poll(() => paused.every((p) => ['T', 'Z', undefined].includes(procStat(p)?.state)),
		{ timeoutMs: 3000, intervalMs: 20 });
	assert.ok(stopped, `could not pause the stack's worker (${paused.join(',')})`);
	assert.ok(paused.length >= 2, `the stack's worker has no children to pause (${paused.join(',')})`);
}

process.on('exit', () => {
	resumeStackWorker();
	for (const w of [...extraWorkers]) killWorker(w);
});
// an interrupted run must not leave the stack's worker stopped either
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

// ---------- the database ----------

// lib.mjs's psql() without Debian's /usr/bin/psql, a Perl wrapper that costs
// 0.1 to 0.4 s a call here: this file makes many calls.
const PSQL_BIN = (() => {
	try {
		const p = join(pgBinDir(), 'psql');
		return existsSync(p) ? p : 'psql';
	} catch {
		return 'psql';
	}
})();

/** Runs sql as postgres; answers stdout trimmed; throws with stderr. */
function psql(sql) {
	try {
		return execFileSync(PSQL_BIN, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', PG_SOCKET_DIR,
			'-p', String(PG_PORT), '-U', 'postgres', '-d', 'intauth'], {
			input: sql, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 30000,
			env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
		}).trim();
	} catch (e) {
		throw new Error(`psql failed: ${(e.stderr || e.message || '').toString().trim()}`);
	}
}

function job(id) {
	const row = psql(`SELECT row_to_json(j) FROM (SELECT id, kind, status, attempts, max_attempts,
		run_at, locked_until, locked_by, last_error, finished_at, updated_at, payload
		FROM public.integration_sync_jobs WHERE id = ${Number(id)}) j;`);
	return row ? JSON.parse(row) : null;
}

/**
 * Waits inside PostgreSQL until cond (an SQL boolean expression) holds: one
 * psql call that checks it every 20 ms, each time with a fresh snapshot
 * (READ COMMITTED), instead of a psql process per check. Answers whether it held.
 */
function dbWait(cond, timeoutMs) {
	return psql(`DO $$
		DECLARE deadline timestamptz := clock_timestamp() + make_interval(secs => ${timeoutMs / 1000});
		BEGIN
			LOOP
				EXIT WHEN (${cond}) OR clock_timestamp() > deadline;
				PERFORM pg_sleep(0.02);
			END LOOP;
		END $$;
		SELECT (${cond});`) === 't';
}

/** Waits until job id satisfies cond (SQL over its row); answers the row. */
function waitJob(id, cond, timeoutMs, what) {
	const ok = dbWait(`EXISTS (SELECT 1 FROM public.integration_sync_jobs WHERE id = ${Number(id)} AND (${cond}))`, timeoutMs);
	const j = job(id);
	assert.ok(ok, `job ${id}: ${what} not reached in ${timeoutMs} ms; now ${JSON.stringify(j)}\n${logTail(8, /worker/)}`);
	return j;
}

const dbNow = () => psql('SELECT clock_timestamp();');
const ms = (ts) => Date.parse(ts.replace(' ', 'T').replace(/\+00(:00)?$/, 'Z'));

/** A job kind nobody implements: every attempt fails. */
const unknownKind = () => `zz_${randomBytes(6).toString('hex').replace(/[0-9]/g, (d) => 'abcdefghij'[d])}`;

/** A call to the test server's controls, once more if a kept-alive connection was closed under it. */
async function control(fnc) {
	try {
		return await fnc();
	} catch {
		await sleep(50);
		return fnc();
	}
}
const serverStats = () => control(() => stats(ISSUER));
const serverMode = (m) => control(() => setMode(ISSUER, m));
const userinfoCount = async () => (await serverStats()).userinfo;

// -------------------------------------------------------------------------

let owner;
let integrationId;

before(async () => {
	assert.ok(ISSUER, 'OAUTH_ISSUER is not set: run through tests/run');
	assert.ok(existsSync(WORKER_BIN), `${WORKER_BIN} is not built`);
	await serverMode({ userinfo: 'normal', token: 'normal', revocation: 'normal' });
	owner = newUser();
	// the real connect flow: auth-start, the test server's consent, auth-callback
	integrationId = (await connectTestOidc(owner)).id;
});

after(async () => {
	resumeStackWorker();
	for (const w of [...extraWorkers]) killWorker(w);
	if (ISSUER) await serverMode({ userinfo: 'normal', token: 'normal', revocation: 'normal' }).catch(() => {});
});

/** { sub: the fetched account's sub or null, logs: how many times it was fetched } */
const accountState = (id) => JSON.parse(psql(`SELECT json_build_object(
	'sub', (SELECT metadata #>> '{account,sub}' FROM public.integrations WHERE id = ${lit(id)}),
	'logs', (SELECT count(*) FROM public.integration_logs WHERE integration_id = ${lit(id)} AND action = 'account_fetched'));`));

test('the bootstrap job queued by the OAuth callback fetches the account (the stack\'s worker)', async () => {
	const ok = dbWait(`EXISTS (SELECT 1 FROM public.integration_sync_jobs WHERE integration_id = ${lit(integrationId)}
		AND kind = 'bootstrap' AND status = 'succeeded')`, 10000);
	assert.ok(ok, `the bootstrap job did not succeed\n${logTail(10, /worker/)}`);
	const attempts = psql(`SELECT string_agg(attempts::text, ',') FROM public.integration_sync_jobs
		WHERE integration_id = ${lit(integrationId)} AND kind = 'bootstrap';`);
	assert.equal(attempts, '1');
	assert.deepEqual(accountState(integrationId), { sub: 'user-1', logs: 1 });
	// an OpenID userinfo names the account by sub (no top-level id)
	assert.equal(psql(`SELECT account_id FROM public.integrations WHERE id = ${lit(integrationId)};`), 'user-1');
});

test('a lease shorter than two provider calls is refused at start', async () => {
	const w = startWorker('short-lease', { WORKER_LEASE_SECONDS: '5', HTTP_TIMEOUT_MS: '3000' });
	const res = await Promise.race([w.exited, sleep(5000).then(() => null)]);
	if (!res) killWorker(w);
	extraWorkers.delete(w);
	assert.deepEqual(res, { code: 1, signal: null });
	assert.match(readFileSync(w.log, 'utf8'), /WORKER_LEASE_SECONDS \(5\) must exceed .*HTTP_TIMEOUT_MS \(3000 ms\)/);
});

test('50 webhook jobs queued in one statement, the stack\'s worker and another: each runs exactly once', async () => {
	// an integration whose account half of the events name, vouched for by the
	// application's backend (service role)
	const u = newUser();
	const acct = `acct_${randomBytes(8).toString('hex')}`;
	const iid = assertOk(await storeCredentials(serviceToken(),
		{ ...apiKeyBody({ provider: 'stripe', metadata: { account_id: acct } }), user_id: u.id })).integration.id;
	// two users who claim that account themselves, later (the newer integration
	// would win the link): through storeCredentials, and through the Data API
	const claimer = newUser();
	const claimed = assertOk(await storeCredentials(claimer.token, apiKeyBody({ provider: 'stripe', metadata: { account_id: acct } }))).integration.id;
	const rewriter = newUser();
	const rewritten = assertOk(await storeCredentials(rewriter.token, apiKeyBody({ provider: 'stripe' }))).integration.id;
	asUser(rewriter.id, `UPDATE public.integrations SET metadata = jsonb_build_object('account', jsonb_build_object('id', ${lit(acct)}))
		WHERE id = ${lit(rewritten)};`, { commit: true });
	// a later write of the service (a refresh's outcome, healthCheck) must not
	// take the account the user wrote into metadata
	psql(`UPDATE public.integrations SET status = 'connected', updated_at = now() WHERE id IN (${lit(claimed)}, ${lit(rewritten)});`);
	assert.equal(psql(`SELECT string_agg(coalesce(account_id, '-'), ',' ORDER BY created_at) FROM public.integrations
		WHERE id IN (${lit(iid)}, ${lit(claimed)}, ${lit(rewritten)});`), `${acct},-,-`,
	'only the service-written account links');
	const tag = randomBytes(6).toString('hex');
	const stackLogStart = readFileSync(STACK_WORKER_LOG, 'utf8').length;
	await withWorker('once', { WORKER_POLL_MS: '200', WORKER_BACKOFF_BASE_MS: '200' }, 3, async (w) => {
		// one statement: 50 events and their jobs; its NOTIFY wakes all the workers
		const ids = psql(`WITH ev AS (INSERT INTO public.integration_events (provider, event_id, event_type, payload)
			SELECT 'stripe', 'evt_${tag}_' || g, 'test.event',
			 jsonb_build_object('account', CASE WHEN g % 2 = 0 THEN ${lit(acct)} ELSE 'acct_nobody_${tag}' END, 'n', g)
			FROM generate_series(1, 50) g RETURNING id)
			INSERT INTO public.integration_sync_jobs (kind, payload)
			SELECT 'webhook', jsonb_build_object('event_id', id) FROM ev RETURNING id;`).split('\n').map(Number);
		assert.equal(ids.length, 50);
		const list = ids.join(',');
		const done = dbWait(`(SELECT count(*) FROM public.integration_sync_jobs
			WHERE id IN (${list}) AND status NOT IN ('queued', 'running')) = 50`, 15000);
		assert.ok(done, `not all 50 jobs finished: ${psql(`SELECT status, count(*) FROM public.integration_sync_jobs WHERE id IN (${list}) GROUP BY 1;`)}`);

		const bad = psql(`SELECT id || ' ' || status || ' ' || attempts || ' ' || coalesce(last_error, '')
			FROM public.integration_sync_jobs WHERE id IN (${list})
			AND NOT (status = 'succeeded' AND attempts = 1 AND finished_at IS NOT NULL AND last_error IS NULL);`);
		assert.equal(bad, '', `jobs not succeeded at the first attempt:\n${bad}`);
		const events = psql(`SELECT (payload ->> 'n')::int % 2 = 0, count(*), count(processed_at),
			count(*) FILTER (WHERE integration_id = ${lit(iid)} AND user_id = ${lit(u.id)}), count(integration_id)
			FROM public.integration_events WHERE event_id LIKE 'evt_${tag}_%' GROUP BY 1 ORDER BY 1;`);
		// odd events name nobody: processed, not linked; even ones: linked to the integration
		assert.equal(events, 'f|25|25|0|0\nt|25|25|25|25');

		// each job ran once: one job_succeeded line in all the workers' logs together
		const lines = [
			...logEvents(w.log),
			...readFileSync(STACK_WORKER_LOG, 'utf8').slice(stackLogStart).split('\n').filter((l) => l.startsWith('{'))
				.map((l) => JSON.parse(l)),
		];
		const runs = new Map();
		const pids = new Set();
		for (const e of lines) {
			const m = /^job (\d+) webhook/.exec(e.msg || '');
			if (!m || !ids.includes(Number(m[1]))) continue;
			assert.equal(e.event, 'job_succeeded', `a run failed: ${JSON.stringify(e)}`);
			runs.set(Number(m[1]), (runs.get(Number(m[1])) || 0) + 1);
			pids.add(e.pid);
		}
		for (const id of ids) assert.equal(runs.get(id), 1, `job ${id} ran ${runs.get(id) || 0} times`);
		assert.ok(pids.size >= 2, `all 50 jobs were run by one process (${[...pids]}): the others were not woken`);
		assert.deepEqual(await stopWorker(w), { code: 0, signal: null }, 'the extra worker did not exit 0 on SIGTERM');
	});
});

describe('with the stack\'s worker paused', () => {
	before(() => pauseStackWorker());
	after(() => resumeStackWorker());

	// n bootstrap jobs whose userinfo calls hang, each held by a child of w
	async function slowBootstraps(w, maxAttempts, slowMs) {
		const seen = await userinfoCount();
		await serverMode({ userinfo: 'slow', slow_ms: slowMs, count: maxAttempts.length });
		const ids = psql(`UPDATE public.integrations SET metadata = metadata - 'account' WHERE id = ${lit(integrationId)};
			INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, max_attempts)
			SELECT 'bootstrap', ${lit(integrationId)}, ${lit(owner.id)}, m FROM unnest(ARRAY[${maxAttempts.join(',')}]) m
			RETURNING id;`).split('\n').map(Number);
		const inCall = await poll(async () => (await userinfoCount()) >= seen + ids.length, { timeoutMs: 5000, intervalMs: 25 });
		assert.ok(inCall, `the worker did not call userinfo for jobs ${ids}: ${JSON.stringify(ids.map(job))}\n${readFileSync(w.log, 'utf8')}`);
		return { ids, seen };
	}

	/** The jobs' rows, asserting each is held (running, first attempt). */
	function heldJobs(ids) {
		const rows = ids.map(job);
		for (const j of rows) {
			assert.equal(j.status, 'running', `job ${j.id} while its userinfo call hangs: ${JSON.stringify(j)}`);
			assert.equal(j.attempts, 1);
		}
		return rows;
	}

	// 5 s lease; one provider call may take 2 s
	const FAST = { WORKER_LEASE_SECONDS: '5', WORKER_POLL_MS: '200', WORKER_BACKOFF_BASE_MS: '200', HTTP_TIMEOUT_MS: '2000' };

	test('a refresh job whose row is held past the lock wait fails for a retry (409 conflict), then refreshes once the row is free', { timeout: 120000 }, async () => {
		const user = newUser();
		const c = await connectTestOidc(user);
		// the job first, parked: the holder's FOR UPDATE would block its foreign
		// key check. The connection's bootstrap job (queued while the stack's
		// worker is paused) would wait for the row first: gone.
		const id = Number(psql(`DELETE FROM public.integration_sync_jobs WHERE integration_id = ${lit(c.id)};
			UPDATE public.integrations SET expires_at = now() + interval '120 seconds', next_refresh_at = NULL
				WHERE id = ${lit(c.id)};
			INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, run_at)
			VALUES ('refresh', ${lit(c.id)}, ${lit(user.id)}, now() + interval '1 day') RETURNING id;`));
		// held for 30 s once the job waits: past the 19 s lock wait
		const holder = holdRowLock(c.id, { holdS: 30, maxWaitS: 20 });
		await holder.ready;
		const grantsBefore = (await serverStats()).token.refresh_token;
		try {
			psql(`UPDATE public.integration_sync_jobs SET run_at = now() WHERE id = ${id};`);
			// the default lease (longer than the lock wait); retries after 200 ms
			await withWorker('held', { WORKER_POLL_MS: '200', WORKER_BACKOFF_BASE_MS: '200' }, 1, async (w) => {
				// failed, then taken again 200 ms later: its error stays until it succeeds
				const seen = await poll(async () => job(id).last_error !== null, { timeoutMs: 40000, intervalMs: 200 });
				const failed = job(id);
				assert.ok(seen, `not failed for a retry: ${JSON.stringify(failed)}\n${readFileSync(w.log, 'utf8')}`);
				assert.ok(['failed', 'running'].includes(failed.status), JSON.stringify(failed));
				assert.match(failed.last_error, /retry/i, JSON.stringify(failed));
				assert.equal((await serverStats()).token.refresh_token, grantsBefore, 'a provider call under a lock not held');
				holder.stop();
				await holder.done.catch(() => {});
				const done = waitJob(id, "status = 'succeeded'", 30000, 'succeeded');
				assert.equal(done.attempts, 2);
				assert.equal((await serverStats()).token.refresh_token, grantsBefore + 1, 'one refresh_token grant');
				assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
			});
		} finally {
			holder.stop();
			await holder.done.catch(() => {});
		}
	});

	test('kill -9 of workers holding jobs: after the lease a job runs again and completes once; one out of attempts is dead', async () => {
		// two children, two slow jobs: each child holds one; A may be tried 5 times, B once
		await withWorker('kill9', FAST, 2, async (w, victims) => {
			const logsBefore = accountState(integrationId).logs;
			const { ids: [a, b], seen } = await slowBootstraps(w, [5, 1], 15000);
			for (const v of victims) assert.ok(signal(v, 'SIGKILL'));
			// as the children left them: a lease runs out only 5 s after its claim
			const held = heldJobs([a, b]);

			const ja = waitJob(a, "status = 'succeeded'", 15000, 'succeeded after the kill');
			assert.equal(ja.attempts, 2, 'the killed attempt plus one more');
			assert.ok(ms(ja.finished_at) >= ms(held[0].locked_until), `taken again before the lease ran out (${held[0].locked_until} > ${ja.finished_at})`);
			const jb = waitJob(b, "status <> 'running'", 5000, 'leaving running');
			assert.equal(jb.status, 'dead', `a job out of attempts whose worker died: ${JSON.stringify(jb)}`);
			assert.equal(jb.attempts, 1, 'it was not attempted again');
			assert.ok(ms(jb.finished_at) >= ms(held[1].locked_until), 'dead only once the lease ran out');
			assert.match(jb.last_error || '', /attempt 1\/1 did not finish.*lease/, 'last_error says why');
			assert.equal(jb.locked_until, null);

			assert.equal(await userinfoCount(), seen + 3, 'userinfo: the two killed calls and one more');
			assert.deepEqual(accountState(integrationId), { sub: 'user-1', logs: logsBefore + 1 }, 'the account was saved once');
			const ev = logEvents(w.log);
			for (const v of victims) {
				assert.ok(ev.some((e) => e.event === 'worker_died' && e.msg.includes(`worker ${v} killed by signal 9`)),
					`the supervisor did not report the kill of ${v}\n${readFileSync(w.log, 'utf8')}`);
			}
			assert.equal(ev.filter((e) => e.event === 'job_succeeded' && e.msg.startsWith(`job ${a} `)).length, 1);
			assert.equal(ev.filter((e) => /^job_/.test(e.event) && e.msg.startsWith(`job ${b} `)).length, 0, 'job B never ran again');
			const now = childrenOf(w.pid);
			assert.equal(now.length, 2);
			assert.ok(now.every((p) => !victims.includes(p)), 'the killed children were replaced');
			assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
		});
	});

	test('a userinfo answering 200 with "ok": false fails the bootstrap and keeps the known account', async () => {
		const before = psql(`SELECT account_id || ' ' || (metadata -> 'account')::text FROM public.integrations WHERE id = ${lit(integrationId)};`);
		assert.match(before, /^user-1 /);
		await serverMode({ userinfo: 'ok_false', count: 1 });
		const id = Number(psql(`INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, max_attempts)
			VALUES ('bootstrap', ${lit(integrationId)}, ${lit(owner.id)}, 1) RETURNING id;`));
		await withWorker('ok-false', FAST, 1, async (w) => {
			const j = waitJob(id, "status = 'dead'", 10000, 'dead');
			assert.match(j.last_error || '', /"ok": false/);
			assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
		});
		assert.equal(psql(`SELECT account_id || ' ' || (metadata -> 'account')::text FROM public.integrations WHERE id = ${lit(integrationId)};`),
			before, 'an error answer was stored as the account');
	});

	test('a job whose worker died is taken again while due jobs keep the queue busy', async () => {
		const tag = randomBytes(6).toString('hex');
		// a lease that ran out an hour ago, and a backlog of due jobs queued before it
		const backlog = 1500;
		psql(`INSERT INTO public.integration_sync_jobs (kind, payload, run_at)
			SELECT 'webhook', jsonb_build_object('event_id', gen_random_uuid(), 'tag', ${lit(tag)}), now() - interval '1 minute'
			FROM generate_series(1, ${backlog});`);
		const stale = Number(psql(`INSERT INTO public.integration_sync_jobs (kind, payload, status, attempts, max_attempts,
			locked_until, locked_by, run_at) VALUES ('webhook', jsonb_build_object('event_id', gen_random_uuid(), 'stale', ${lit(tag)}),
			'running', 1, 5, now() - interval '1 hour', 'a-worker-that-died', now() - interval '2 hours') RETURNING id;`));
		const left = () => Number(psql(`SELECT count(*) FROM public.integration_sync_jobs
			WHERE payload ->> 'tag' = ${lit(tag)} AND status = 'queued';`));
		try {
			await withWorker('reclaim', FAST, 1, async (w) => {
				const j = waitJob(stale, "status = 'succeeded'", 15000, 'succeeded');
				const waiting = left();
				assert.equal(j.attempts, 2, 'the attempt that died plus one');
				assert.ok(waiting > backlog / 2, `the job whose worker died ran only once the backlog was nearly gone (${waiting} of ${backlog} left)`);
				assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
			});
		} finally {
			psql(`DELETE FROM public.integration_sync_jobs WHERE payload ->> 'tag' = ${lit(tag)} OR payload ->> 'stale' = ${lit(tag)};`);
		}
	});

	test('a job that always fails is retried with growing delays, then is dead with its error', async () => {
		const base = 200;
		await withWorker('backoff', { ...FAST, WORKER_BACKOFF_BASE_MS: String(base) }, 1, async (w) => {
			const kind = unknownKind();
			// One psql session queues the job, then samples its row every 10 ms
			// (a fresh snapshot per statement) until it is dead: every failed
			// state and most claims.
			const out = psql(`
				WITH j AS (INSERT INTO public.integration_sync_jobs (kind, max_attempts) VALUES (${lit(kind)}, 4) RETURNING id)
				SELECT set_config('intauth_test.job', id::text, false) FROM j;
				CREATE TEMP TABLE s (at timestamptz, status text, attempts int, run_at timestamptz,
					updated_at timestamptz, last_error text, finished_at timestamptz);
				DO $$
				DECLARE r record; prev text := ''; deadline timestamptz := clock_timestamp() + interval '15 seconds';
				BEGIN
					LOOP
						SELECT status, attempts, run_at, updated_at, last_error, finished_at INTO r
						FROM public.integration_sync_jobs WHERE id = current_setting('intauth_test.job')::bigint;
						IF r::text IS DISTINCT FROM prev THEN
							INSERT INTO s VALUES (clock_timestamp(), r.status, r.attempts, r.run_at, r.updated_at,
								r.last_error, r.finished_at);
							prev := r::text;
						END IF;
						EXIT WHEN r.status = 'dead' OR clock_timestamp() > deadline;
						PERFORM pg_sleep(0.01);
					END LOOP;
				END $$;
				SELECT json_agg(s ORDER BY at) FROM s;`).split('\n');
			const id = Number(out[0]);
			const samples = JSON.parse(out.slice(1).join('\n'));
			const last = samples.at(-1);
			assert.equal(last.status, 'dead', `not dead within 15 s: ${JSON.stringify(samples)}`);
			assert.equal(last.attempts, 4);
			assert.equal(last.last_error, 'unknown job kind');
			assert.ok(last.finished_at, 'finished_at is set');
			const j = job(id);
			assert.equal(j.locked_until, null);
			assert.equal(j.locked_by, null);

			const failed = samples.filter((s) => s.status === 'failed');
			assert.deepEqual(failed.map((s) => s.attempts), [1, 2, 3], `failed states seen: ${JSON.stringify(samples)}`);
			const delays = failed.map((s) => ms(s.run_at) - ms(s.updated_at));
			delays.forEach((d, k) => {
				const nominal = base * 2 ** k; // base * 2^(attempts-1), jitter 0.75..1.25
				assert.ok(d >= nominal * 0.75 - 2 && d <= nominal * 1.25 + 2, `delay after attempt ${k + 1}: ${d} ms, nominal ${nominal}`);
				assert.equal(failed[k].last_error, 'unknown job kind');
			});
			assert.ok(delays[0] < delays[1] && delays[1] < delays[2], `delays do not grow: ${delays}`);
			// no retry was claimed before it was due
			for (const [k, f] of failed.entries()) {
				const next = samples.find((s) => s.attempts === k + 2);
				assert.ok(next && ms(next.updated_at) >= ms(f.run_at), `attempt ${k + 2} claimed before its run_at`);
			}
			const tries = logEvents(w.log).filter((e) => e.event === 'job_failed' && e.msg.startsWith(`job ${id} `));
			assert.deepEqual(tries.map((e) => /attempt (\d+)\/4/.exec(e.msg)?.[1]), ['1', '2', '3', '4']);
			assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
		});
	});

	test('SIGTERM: the idle child exits at once, the busy one finishes its job first; exit 0, nothing left running', async () => {
		const since = dbNow();
		const settings = { ...FAST, WORKER_POLL_MS: '5000', WORKER_LEASE_SECONDS: '10', HTTP_TIMEOUT_MS: '4000' };
		await withWorker('sigterm', settings, 2, async (w, kids) => {
			const slowMs = 2500;
			const { ids: [id] } = await slowBootstraps(w, [5], slowMs);
			const t0 = Date.now();
			assert.ok(signal(w.pid, 'SIGTERM'));
			heldJobs([id]);
			// the child waiting for work (poll interval 5 s) leaves at once
			const idleGone = await poll(() => kids.filter(alive).length === 1, { timeoutMs: 1500, intervalMs: 20 });
			assert.ok(idleGone, `no child left within 1.5 s of SIGTERM: ${kids.filter(alive)}`);
			assert.ok(Date.now() - t0 < 1500);

			const res = await Promise.race([w.exited, sleep(10000).then(() => null)]);
			assert.deepEqual(res, { code: 0, signal: null }, `the worker did not exit 0 within 10 s of SIGTERM\n${readFileSync(w.log, 'utf8')}`);
			for (const k of kids) assert.ok(!alive(k), `child ${k} outlived its supervisor`);
			const j = job(id);
			assert.equal(j.status, 'succeeded', `the job in hand when SIGTERM came: ${JSON.stringify(j)}`);
			assert.equal(j.attempts, 1);
			assert.ok(ms(j.finished_at) >= t0 - 50, 'it finished after the SIGTERM');
			assert.equal(accountState(integrationId).sub, 'user-1', 'the job completed its work');
			// the stack's worker is paused: whatever was claimed since is this worker's
			const running = psql(`SELECT string_agg(id || ' ' || kind, ', ') FROM public.integration_sync_jobs
				WHERE status = 'running' AND updated_at >= ${lit(since)};`);
			assert.equal(running, '', `jobs left running: ${running}`);
			assert.ok(logEvents(w.log).some((e) => e.event === 'stop'), 'the supervisor logged its stop');
		});
	});

	test('intauthctl jobs: counts by kind and status, the oldest due job, dead jobs; jobs retry ID', async () => {
		const tag = randomBytes(6).toString('hex');
		const err = `simulated outage ${tag}`;
		// two stored events: one whose job died, one whose job is long overdue
		const [dead, due] = psql(`WITH ev AS (INSERT INTO public.integration_events (provider, event_id, payload)
			 VALUES ('stripe', 'evt_ctl_a_${tag}', '{}'), ('stripe', 'evt_ctl_b_${tag}', '{}') RETURNING id, event_id),
			j AS (INSERT INTO public.integration_sync_jobs (kind, status, payload, attempts, max_attempts, last_error,
			 finished_at, run_at)
			 SELECT 'webhook', CASE WHEN event_id LIKE 'evt_ctl_a_%' THEN 'dead' ELSE 'queued' END,
			  jsonb_build_object('event_id', id),
			  CASE WHEN event_id LIKE 'evt_ctl_a_%' THEN 3 ELSE 0 END, 3,
			  CASE WHEN event_id LIKE 'evt_ctl_a_%' THEN ${lit(err)} END,
			  CASE WHEN event_id LIKE 'evt_ctl_a_%' THEN now() END,
			  CASE WHEN event_id LIKE 'evt_ctl_a_%' THEN now() ELSE now() - interval '3650 days' END
			 FROM ev RETURNING id, status)
			SELECT id FROM j ORDER BY status = 'queued';`).split('\n').map(Number);
		assert.ok(dead > 0 && due > 0);
		const env = { ...process.env, ...stackEnvironment() };
		const ctl = (...args) => execFileP(INTAUTHCTL, args, { env, encoding: 'utf8' });
		const { stdout } = await ctl('jobs');
		const expected = psql(`SELECT kind || ' ' || status || ' ' || count(*) FROM public.integration_sync_jobs
			GROUP BY kind, status ORDER BY kind, status;`).split('\n');
		const lines = stdout.split('\n');
		const counts = lines.filter((l) => /^\S+\s+(queued|running|succeeded|failed|dead)\s+\d+$/.test(l))
			.map((l) => l.split(/\s+/).join(' '));
		assert.deepEqual(counts, expected, `counts by kind and status:\n${stdout}`);
		const oldest = lines.find((l) => l.startsWith('oldest due job:'));
		assert.match(oldest || '', new RegExp(`^oldest due job: ${due} \\(webhook, due since `), stdout);
		const di = lines.indexOf('dead jobs:');
		assert.ok(di > 0, `no dead jobs section:\n${stdout}`);
		assert.ok(lines.slice(di + 1).includes(`  ${dead} webhook after 3 attempts: ${err}`), `dead job ${dead} not listed:\n${stdout}`);

		// retry: refused for what is not the id of a dead or failed job
		await Promise.all([
			assert.rejects(ctl('jobs', 'retry', 'abc'), (e) => e.code === 1 && /number/.test(e.stderr)),
			assert.rejects(ctl('jobs', 'retry', String(due)), (e) => e.code === 1 && /No dead or failed job/.test(e.stderr)),
			assert.rejects(ctl('jobs', 'retry'), (e) => e.code === 2),
		]);
		const r = await ctl('jobs', 'retry', String(dead));
		assert.equal(r.stdout.trim(), 'queued again');
		const q = job(dead);
		assert.deepEqual([q.status, q.attempts, q.last_error, q.finished_at], ['queued', 0, null, null]);
		assert.ok(ms(q.run_at) <= Date.now() + 1000, 'due now');

		// a worker then runs it (and the overdue one)
		await withWorker('retry', FAST, 1, async (w) => {
			for (const id of [dead, due]) {
				const j = waitJob(id, "status = 'succeeded'", 10000, 'succeeded');
				assert.equal(j.attempts, 1);
			}
			assert.equal(psql(`SELECT count(processed_at) FROM public.integration_events WHERE event_id LIKE 'evt_ctl_%_${tag}';`), '2');
			const now = (await ctl('jobs')).stdout;
			assert.ok(!now.includes(`  ${dead} webhook after`), 'the retried job is no longer listed dead');
			assert.ok(!now.includes(`oldest due job: ${due} `));
			assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
		});
	});
});

test('the scheduler queues a refresh job for an integration about to expire; the worker refreshes it', async () => {
	const since = dbNow();
	psql(`UPDATE public.integrations SET expires_at = now() + interval '120 seconds', next_refresh_at = NULL
		WHERE id = ${lit(integrationId)};`);
	const grantsBefore = (await serverStats()).token.refresh_token;
	const refreshJobs = () => JSON.parse(psql(`SELECT coalesce(json_agg(j ORDER BY id), '[]') FROM
		(SELECT id, status, attempts, last_error FROM public.integration_sync_jobs
		 WHERE integration_id = ${lit(integrationId)} AND kind = 'refresh' AND created_at >= ${lit(since)}) j;`));
	// a worker whose scheduler runs every second (the stack's runs every 30 s)
	await withWorker('schedule', { WORKER_POLL_MS: '200', WORKER_SCHEDULE_SECONDS: '1' }, 1, async (w) => {
		const ok = dbWait(`EXISTS (SELECT 1 FROM public.integration_sync_jobs WHERE integration_id = ${lit(integrationId)}
			AND kind = 'refresh' AND created_at >= ${lit(since)} AND status NOT IN ('queued', 'running'))`, 10000);
		const jobs = refreshJobs();
		assert.ok(ok, `no finished refresh job: ${JSON.stringify(jobs)}\n${readFileSync(w.log, 'utf8')}`);
		assert.equal(jobs[0].status, 'succeeded', JSON.stringify(jobs));
		assert.equal(jobs.length, 1);
		assert.equal(jobs[0].attempts, 1);
		const i = JSON.parse(psql(`SELECT row_to_json(i) FROM (SELECT status, expires_at > now() + interval '50 minutes' AS fresh,
			last_refreshed_at >= ${lit(since)}::timestamptz AS refreshed FROM public.integrations WHERE id = ${lit(integrationId)}) i;`));
		assert.deepEqual(i, { status: 'connected', fresh: true, refreshed: true });
		assert.equal((await serverStats()).token.refresh_token, grantsBefore + 1, 'one refresh_token grant at the provider');
		// later runs of the scheduler leave the fresh integration alone
		await sleep(1300);
		assert.equal(refreshJobs().length, 1, 'a second refresh job was queued');
		assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
	});
});

test('a connection that cannot be refreshed (no refresh token, a credential that does not open) gets one refresh job, not one per scheduler round', async () => {
	const since = dbNow();
	const owner = newUser();
	const { refresh_token: _, ...noRefresh } = oauthBody().credentials;
	const plain = assertOk(await storeCredentials(owner.token, oauthBody({ connection: 'no-refresh',
		credentials: { ...noRefresh, expires_in: 120 } }))).integration.id;
	const broken = assertOk(await storeCredentials(owner.token, oauthBody({ connection: 'no-decrypt',
		credentials: { ...oauthBody().credentials, expires_in: 120 } }))).integration.id;
	// another row's ciphertext: well formed, bound to that row, so it does not open here
	psql(`UPDATE public.credentials SET secret = (SELECT secret FROM public.credentials WHERE integration_id = ${lit(plain)})
		WHERE integration_id = ${lit(broken)};`);
	const jobsOf = (id) => JSON.parse(psql(`SELECT coalesce(json_agg(j ORDER BY id), '[]') FROM
		(SELECT id, status, attempts FROM public.integration_sync_jobs
		 WHERE integration_id = ${lit(id)} AND kind = 'refresh' AND created_at >= ${lit(since)}) j;`));
	await withWorker('unrefreshable', { WORKER_POLL_MS: '200', WORKER_SCHEDULE_SECONDS: '1' }, 1, async (w) => {
		const done = dbWait(`(SELECT count(*) FROM public.integration_sync_jobs WHERE integration_id IN (${lit(plain)}, ${lit(broken)})
			AND kind = 'refresh' AND created_at >= ${lit(since)} AND status NOT IN ('queued', 'running')) = 2`, 10000);
		assert.ok(done, `the refresh jobs did not finish: ${JSON.stringify([jobsOf(plain), jobsOf(broken)])}\n${readFileSync(w.log, 'utf8')}`);
		await sleep(3500); // three more scheduler rounds
		assert.equal(jobsOf(plain).length, 1, `refresh jobs for the connection without a refresh token: ${JSON.stringify(jobsOf(plain))}`);
		assert.equal(jobsOf(broken).length, 1, `refresh jobs for the credential that does not open: ${JSON.stringify(jobsOf(broken))}`);
		const state = (id) => JSON.parse(psql(`SELECT row_to_json(i) FROM (SELECT status, next_refresh_at = expires_at AS at_expiry,
			next_refresh_at > now() AS cooling, last_error ->> 'code' AS code FROM public.integrations WHERE id = ${lit(id)}) i;`));
		// still usable until it expires: looked at again then
		assert.deepEqual(state(plain), { status: 'connected', at_expiry: true, cooling: true, code: null });
		// an alarm, not the user's doing: the status stays, a cooldown starts
		assert.deepEqual(state(broken), { status: 'connected', at_expiry: false, cooling: true, code: 'internal_error' });
		assert.deepEqual(await stopWorker(w), { code: 0, signal: null });
	});
	psql(`DELETE FROM public.integrations WHERE id IN (${lit(plain)}, ${lit(broken)});`);
});
