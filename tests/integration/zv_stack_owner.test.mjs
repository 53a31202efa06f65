// A stack whose owner dies without `scripts/stack down` (tests/run or the bench
// killed with SIGKILL, a CI timeout): its watchdog takes it down. Checked on a
// second private stack (PostgreSQL, nginx and the watchdog; no programs built,
// so it costs the machine little) owned by a `sleep`: while the owner lives the
// stack stays up; once it is killed, PostgreSQL and nginx stop, a bystander
// that logs into the stack's log directory is stopped too, and the directory is
// removed (STACK_OWNER_REMOVE=1).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, get, poll, procStat, sleep } from './lib.mjs';

const execFileP = promisify(execFile);

/** A free port below the ephemeral range, as tests/run picks them. */
async function freePort() {
	for (let i = 0; i < 50; i++) {
		const port = 10000 + Math.floor(Math.random() * 22000);
		const ok = await new Promise((resolve) => {
			const srv = createServer();
			srv.once('error', () => resolve(false));
			srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
		});
		if (ok) return port;
	}
	throw new Error('no free port');
}

const alive = (pid) => {
	const st = procStat(pid);
	return st !== null && st.state !== 'Z';
};
const pidIn = (file) => Number(readFileSync(file, 'utf8').split('\n')[0].trim());

const children = [];
let dir = null;
after(() => {
	for (const c of children) {
		try {
			c.kill('SIGKILL');
		} catch {
			/* gone */
		}
	}
	// a failed test may have left the second stack up
	if (dir && existsSync(dir)) {
		try {
			execFileSync(join(ROOT, 'scripts/stack'), ['down'], { env: { ...process.env, STACK_DIR: dir }, stdio: 'ignore' });
		} catch {
			/* best effort */
		}
		rmSync(dir, { recursive: true, force: true });
	}
});

test('a stack whose owner is killed takes itself down and removes its directory', { timeout: 120000 }, async () => {
	dir = mkdtempSync('/tmp/iao.');
	chmodSync(dir, 0o755);
	const emptyBuild = join(dir, 'nobuild');
	mkdirSync(emptyBuild);
	const owner = spawn('sleep', ['600'], { stdio: 'ignore' });
	children.push(owner);
	const httpPort = await freePort();
	const pgPort = await freePort();
	const env = {
		PATH: process.env.PATH,
		HOME: process.env.HOME || '/tmp',
		STACK_DIR: dir,
		HTTP_PORT: String(httpPort),
		PG_PORT: String(pgPort),
		PG_FSYNC: 'off',
		STACK_BUILD_DIR: emptyBuild,
		ENV_FILE: join(dir, 'dev.env'),
		STACK_OWNER_PID: String(owner.pid),
		STACK_OWNER_REMOVE: '1',
	};
	const { stdout } = await execFileP(join(ROOT, 'scripts/stack'), ['up'], { env, cwd: ROOT, timeout: 90000 });
	assert.match(stdout, /^BASE_URL=/m);

	const pgPid = pidIn(join(dir, 'pg', 'data', 'postmaster.pid'));
	const nginxPid = pidIn(join(dir, 'run', 'nginx.pid'));
	const watchdogPid = pidIn(join(dir, 'run', 'watchdog.pid'));
	assert.ok(alive(pgPid) && alive(nginxPid) && alive(watchdogPid), 'the second stack runs');
	// something else the owner started that logs into the stack's directory
	const logFd = openSync(join(dir, 'log', 'bystander.log'), 'a');
	const bystander = spawn('sleep', ['600'], { stdio: ['ignore', logFd, logFd], detached: true });
	closeSync(logFd);
	children.push(bystander);

	// the owner alive: the watchdog leaves everything running
	await sleep(2500);
	assert.ok(alive(pgPid) && alive(nginxPid) && alive(watchdogPid) && alive(bystander.pid),
		'nothing stopped while the owner lives');

	owner.kill('SIGKILL');
	assert.ok(await poll(() => !existsSync(dir), { timeoutMs: 60000, intervalMs: 200 }),
		`the stack directory ${dir} was removed`);
	for (const [name, pid] of [['postgres', pgPid], ['nginx', nginxPid], ['the watchdog', watchdogPid], ['the bystander', bystander.pid]]) {
		assert.ok(await poll(() => !alive(pid), { timeoutMs: 5000, intervalMs: 100 }), `${name} (pid ${pid}) stopped`);
	}
	dir = null;

	// the suite's own stack is untouched
	assert.equal((await get('/healthz')).status, 200);
});
