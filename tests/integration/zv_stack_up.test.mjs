// `scripts/stack up` on a stack that is already up (what `make run` does after
// a rebuild). Checked: with nothing changed it restarts nothing; when a
// program's or the worker's binary was replaced (as the linker does: a new
// file under the same name), exactly those are restarted, run the new file,
// and the stack answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BASE_URL, ROOT, STACK_DIR, assertOk, fn, get, post, serviceToken } from './lib.mjs';

const execFileP = promisify(execFile);
const RUN = join(STACK_DIR, 'run');
const BUILD = process.env.STACK_BUILD_DIR || join(ROOT, 'build');
const PIDFILES = ['healthCheck', 'integrations', 'webhooks', 'storeCredentials', 'worker', 'nginx'];

function pids() {
	const out = {};
	for (const name of PIDFILES) out[name] = readFileSync(join(RUN, `${name}.pid`), 'utf8').trim();
	return out;
}

async function stackUp() {
	const { stdout, stderr } = await execFileP(join(ROOT, 'scripts/stack'), ['up'], { cwd: ROOT, timeout: 90000 });
	assert.match(stdout, new RegExp(`^BASE_URL=${BASE_URL}$`, 'm'));
	return stderr;
}

/** What `make` does to a binary: a new file (new inode) under the old name. */
function replaceBinary(path) {
	const tmp = `${path}.zv-new`;
	copyFileSync(path, tmp);
	renameSync(tmp, path);
}

const inode = (path) => statSync(path).ino;

test('stack up on a running stack restarts nothing that did not change', { timeout: 120000 }, async () => {
	const before = pids();
	const log = await stackUp();
	assert.deepEqual(pids(), before, `no pid changed; stack up said:\n${log}`);
	assert.doesNotMatch(log, /restart/);
	assert.equal((await get('/healthz')).status, 200);
});

test('stack up restarts exactly the programs whose binary was replaced, and they run the new file', { timeout: 120000 }, async () => {
	const hc = join(BUILD, 'cgi-bin', 'healthCheck');
	const worker = join(BUILD, 'bin', 'worker');
	const before = pids();
	replaceBinary(hc);
	replaceBinary(worker);

	const log = await stackUp();
	const after = pids();
	assert.notEqual(after.healthCheck, before.healthCheck, `healthCheck restarted; stack up said:\n${log}`);
	assert.notEqual(after.worker, before.worker, `the worker restarted; stack up said:\n${log}`);
	for (const name of ['integrations', 'webhooks', 'storeCredentials', 'nginx']) {
		assert.equal(after[name], before[name], `${name} was left alone`);
	}
	assert.match(log, /restarted healthCheck: its binary changed/);
	assert.match(log, /the worker's binary changed/);
	assert.equal(statSync(`/proc/${after.healthCheck}/exe`).ino, inode(hc), 'healthCheck runs the new file');
	assert.equal(statSync(`/proc/${after.worker}/exe`).ino, inode(worker), 'the worker runs the new file');

	assert.equal((await get('/healthz')).status, 200);
	// the restarted program does its work: a service-role check of every connection
	assertOk(await post(fn('healthCheck'), {}, { token: serviceToken() }));
});
