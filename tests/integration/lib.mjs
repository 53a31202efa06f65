// Shared helpers for the integration tests (node --test, Node 20).
//
// The runner (tests/run) starts a private stack and exports:
//   BASE_URL    http://127.0.0.1:<port> of the stack's nginx
//   ENV_FILE    KEY=VALUE file the programs read (JWT_SECRET, CREDENTIAL_ENCRYPTION_KEY, ...)
//   STACK_DIR   the stack's directory (PostgreSQL's unix socket in $STACK_DIR/pg, logs in log/)
//   PG_PORT     the cluster's port
//   INTAUTHCTL  build/bin/intauthctl
// Nothing here hard-codes an answer: tokens are minted from the env file's
// JWT_SECRET, users are fresh random UUIDs per test, secrets are random strings.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';

const execFileP = promisify(execFile);

export const TESTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(TESTS_DIR, '..');

function required(name) {
	const v = process.env[name];
	if (!v) throw new Error(`${name} is not set: run the integration tests through tests/run (make test)`);
	return v;
}

export const BASE_URL = required('BASE_URL').replace(/\/+$/, '');
export const ENV_FILE = required('ENV_FILE');
export const STACK_DIR = required('STACK_DIR');
export const PG_PORT = required('PG_PORT');
export const INTAUTHCTL = process.env.INTAUTHCTL || join(ROOT, 'build/bin/intauthctl');
export const PG_SOCKET_DIR = process.env.PG_SOCKET_DIR || join(STACK_DIR, 'pg');

/** The env file as an object (KEY=VALUE lines, '#' comments, optional export/quotes). */
export function readEnvFile(path = ENV_FILE) {
	const out = {};
	for (const raw of readFileSync(path, 'utf8').split('\n')) {
		let line = raw.trim();
		if (!line || line.startsWith('#')) continue;
		if (line.startsWith('export ')) line = line.slice(7).trim();
		const eq = line.indexOf('=');
		if (eq <= 0) continue;
		let v = line.slice(eq + 1).trim();
		if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) v = v.slice(1, -1);
		out[line.slice(0, eq).trim()] = v;
	}
	return out;
}

export const ENV = readEnvFile();
export const JWT_SECRET = ENV.JWT_SECRET;
if (!JWT_SECRET) throw new Error(`JWT_SECRET missing in ${ENV_FILE}`);
export const MAX_BODY_BYTES = Number(process.env.MAX_BODY_BYTES || ENV.MAX_BODY_BYTES || 1048576);
export const ALLOWED_ORIGIN = 'http://app.test.example';

// ---------- JWTs, minted here so that bad ones can be crafted too ----------

export const b64url = (buf) => Buffer.from(buf).toString('base64url');
export const now = () => Math.floor(Date.now() / 1000);

/**
 * Signs header.payload with HS256 (or HS512 when header.alg says so) using
 * `secret`; alg "none" gives an empty signature.
 */
export function signJwt(payload, { header = { alg: 'HS256', typ: 'JWT' }, secret = JWT_SECRET } = {}) {
	const h = b64url(JSON.stringify(header));
	const p = b64url(JSON.stringify(payload));
	const input = `${h}.${p}`;
	if (header.alg === 'none') return `${input}.`;
	const algo = header.alg === 'HS512' ? 'sha512' : header.alg === 'HS384' ? 'sha384' : 'sha256';
	return `${input}.${createHmac(algo, secret).update(input).digest('base64url')}`;
}

export function userClaims(sub, extra = {}) {
	const t = now();
	return { sub, role: 'authenticated', aud: 'authenticated', iat: t, exp: t + 3600, ...extra };
}

export const userToken = (sub, extra = {}) => signJwt(userClaims(sub, extra));
export const serviceToken = (extra = {}) => {
	const t = now();
	return signJwt({ role: 'service_role', iss: 'intauth-tests', iat: t, exp: t + 3600, ...extra });
};
/** Supabase's public anon key: a valid signature, role anon. */
export const anonToken = () => {
	const t = now();
	return signJwt({ role: 'anon', iss: 'supabase', iat: t, exp: t + 3600 });
};

/** A fresh user: a random UUID and its token. */
export function newUser() {
	const id = randomUUID();
	return { id, token: userToken(id) };
}

/** A long random string nobody else uses, for secrets searched for later. */
export function uniqueSecret(prefix = 'sk') {
	return `${prefix}_${randomBytes(30).toString('base64url')}_${randomBytes(8).toString('hex')}`;
}

// ---------- HTTP ----------

/**
 * One request. body: an object (sent as JSON), a string or Buffer (sent raw).
 * Answers { status, headers, text, json } (json null when the body isn't JSON).
 */
export async function http(method, path, { token, body, headers = {}, timeoutMs = 20000 } = {}) {
	const h = { ...headers };
	if (token) h.authorization = `Bearer ${token}`;
	let payload;
	if (body !== undefined) {
		if (typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
		else payload = JSON.stringify(body);
		if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
	}
	const res = await fetch(BASE_URL + path, {
		method,
		headers: h,
		body: payload,
		redirect: 'manual',
		signal: AbortSignal.timeout(timeoutMs),
	});
	const text = await res.text();
	let json = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = null;
	}
	return { status: res.status, headers: res.headers, text, json };
}

export const post = (path, body, opts = {}) => http('POST', path, { ...opts, body });
export const get = (path, opts = {}) => http('GET', path, opts);
export const del = (path, opts = {}) => http('DELETE', path, opts);

export const fn = (name) => `/functions/v1/${name}`;

export function storeCredentials(token, body, opts = {}) {
	return post(fn('storeCredentials'), body, { ...opts, token });
}

export function getCredentials(body, { token = serviceToken(), ...opts } = {}) {
	return post(fn('getCredentials'), body, { ...opts, token });
}

/** A short description of an answer for assertion messages. */
export function show(res) {
	const t = res.text.length > 400 ? `${res.text.slice(0, 400)}...` : res.text;
	return `HTTP ${res.status} ${t}`;
}

/** Asserts the SPEC §4 error envelope with this status (and code when given). */
export function assertError(res, status, code) {
	assert.equal(res.status, status, `expected ${status}${code ? ` ${code}` : ''}, got ${show(res)}`);
	assert.match(res.headers.get('content-type') || '', /application\/json/, `not JSON: ${show(res)}`);
	assert.ok(res.json && typeof res.json === 'object', `body is not JSON: ${show(res)}`);
	assert.ok(res.json.error && typeof res.json.error === 'object', `no "error" object: ${show(res)}`);
	assert.equal(typeof res.json.error.code, 'string', `error.code missing: ${show(res)}`);
	assert.equal(typeof res.json.error.message, 'string', `error.message missing: ${show(res)}`);
	if (code) assert.equal(res.json.error.code, code, `expected code ${code}: ${show(res)}`);
}

export function assertOk(res, status = 200) {
	assert.equal(res.status, status, `expected ${status}, got ${show(res)}`);
	assert.ok(res.json, `body is not JSON: ${show(res)}`);
	return res.json;
}

export const INTEGRATION_FIELDS = [
	'id', 'provider', 'connection', 'auth_type', 'status', 'scopes', 'expires_at', 'metadata',
	'last_refreshed_at', 'last_health_check_at', 'last_error', 'created_at', 'updated_at',
].sort();

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
export const isUuid = (s) => typeof s === 'string' && UUID_RE.test(s);

/** Asserts the integration object of SPEC §5. */
export function assertIntegration(i, expect = {}) {
	assert.ok(i && typeof i === 'object' && !Array.isArray(i), `integration is not an object: ${JSON.stringify(i)}`);
	assert.deepEqual(Object.keys(i).sort(), INTEGRATION_FIELDS, `integration fields: ${JSON.stringify(i)}`);
	assert.ok(isUuid(i.id), `id is not a uuid: ${i.id}`);
	assert.ok(Array.isArray(i.scopes), 'scopes is not an array');
	for (const s of i.scopes) assert.equal(typeof s, 'string');
	assert.ok(i.metadata && typeof i.metadata === 'object' && !Array.isArray(i.metadata), 'metadata is not an object');
	for (const k of ['expires_at', 'last_refreshed_at', 'last_health_check_at']) {
		assert.ok(i[k] === null || ISO_UTC_RE.test(i[k]), `${k} is not ISO-8601 UTC or null: ${i[k]}`);
	}
	for (const k of ['created_at', 'updated_at']) assert.match(i[k], ISO_UTC_RE, `${k} is not ISO-8601 UTC`);
	assert.ok(i.last_error === null || (typeof i.last_error === 'object' && 'code' in i.last_error), 'last_error');
	assert.ok(['pending', 'connected', 'expired', 'error', 'revoked'].includes(i.status), `status ${i.status}`);
	for (const [k, v] of Object.entries(expect)) assert.deepEqual(i[k], v, `integration.${k}`);
}

/** Asserts none of the strings appears in text. */
export function assertNoSecrets(text, secrets, where = 'answer') {
	for (const s of secrets) {
		if (!s) continue;
		assert.ok(!text.includes(s), `a secret appears in the ${where}: ...${s.slice(0, 6)}...`);
	}
}

// ---------- PostgreSQL as its superuser, over the stack's unix socket ----------

const PSQL_ARGS = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', PG_SOCKET_DIR, '-p', String(PG_PORT), '-U', 'postgres', '-d', 'intauth'];

/** Runs sql with psql as postgres; answers stdout trimmed. Throws (with stderr) on an error. */
export function psql(sql, { args = [] } = {}) {
	try {
		return execFileSync('psql', [...PSQL_ARGS, ...args], {
			input: sql,
			encoding: 'utf8',
			stdio: ['pipe', 'pipe', 'pipe'],
			env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
			timeout: 30000,
		}).trim();
	} catch (e) {
		const err = new Error(`psql failed: ${(e.stderr || e.message || '').toString().trim()}`);
		err.stderr = (e.stderr || '').toString();
		throw err;
	}
}

/**
 * Holds the lock of one integrations row in a transaction of its own, as a
 * request inside a provider call would, and lets go only once somebody waits
 * for it (then after holdS more seconds), running `then` (SQL) before its
 * COMMIT. Fails (done rejects) when nobody came to wait within maxWaitS: a
 * test built on it cannot pass with a request that never waited.
 * Answers { done, ready, stop }: ready resolves once the lock is held; stop()
 * ends the holder at once (its transaction rolls back).
 */
export function holdRowLock(id, { then = '', holdS = 0, maxWaitS = 15 } = {}) {
	const tag = `hold_${randomBytes(6).toString('hex')}`;
	const waiter = 'EXISTS (SELECT 1 FROM pg_stat_activity a WHERE pg_backend_pid() = ANY (pg_blocking_pids(a.pid)))';
	const sql = `BEGIN;
		SELECT 1 FROM public.integrations WHERE id = ${lit(id)} FOR UPDATE;
		DO $${tag}$ BEGIN
			FOR n IN 1..${maxWaitS * 20} LOOP
				PERFORM pg_stat_clear_snapshot();
				EXIT WHEN ${waiter};
				PERFORM pg_sleep(0.05);
			END LOOP;
			PERFORM pg_stat_clear_snapshot();
			IF NOT ${waiter} THEN RAISE EXCEPTION 'nobody waited for the lock (${tag})'; END IF;
			PERFORM pg_sleep(${Number(holdS)});
		END $${tag}$;
		${then}
		COMMIT;`;
	const done = execFileP('psql', [...PSQL_ARGS, '-c', sql], { env: { ...process.env, PGCONNECT_TIMEOUT: '5' } });
	done.catch(() => {});
	const ready = poll(() => psql(`SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%${tag}%' AND pid <> pg_backend_pid();`) !== '0',
		{ timeoutMs: 10000, intervalMs: 50 }).then((ok) => assert.ok(ok, `the lock holder (${tag}) did not take the lock`));
	const stop = () => psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%${tag}%' AND pid <> pg_backend_pid();`);
	return { done, ready, stop };
}

/** Like psql() but never throws: { ok, out, err }. */
export function psqlTry(sql) {
	try {
		return { ok: true, out: psql(sql), err: '' };
	} catch (e) {
		return { ok: false, out: '', err: e.stderr || e.message };
	}
}

/**
 * Runs statements as the `authenticated` role with the claims of sub, the way
 * the programs do and the way the Data API (PostgREST) lets a signed-in user
 * do directly; rolled back unless commit. asUserTry never throws.
 */
function asUserSql(sub, statements, commit) {
	const claims = JSON.stringify({ sub, role: 'authenticated' });
	return `BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', ${lit(claims)}, true) \\g /dev/null
${statements}
${commit ? 'COMMIT' : 'ROLLBACK'};`;
}
export const asUser = (sub, statements, { commit = false } = {}) => psql(asUserSql(sub, statements, commit));
export const asUserTry = (sub, statements, { commit = false } = {}) => psqlTry(asUserSql(sub, statements, commit));

/** Quotes a literal for SQL (only used with values we generate). */
export const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

export const countRows = (table, where) => Number(psql(`SELECT count(*) FROM public.${table} WHERE ${where};`));

/** The directory holding PostgreSQL's server binaries (pg_dump, pg_ctl). */
export function pgBinDir() {
	try {
		const d = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
		if (d && existsSync(join(d, 'pg_ctl'))) return d;
	} catch {
		/* pg_config may be missing */
	}
	const base = '/usr/lib/postgresql';
	if (existsSync(base)) {
		const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'pg_ctl')));
		versions.sort((a, b) => Number(b) - Number(a));
		if (versions.length) return join(base, versions[0], 'bin');
	}
	throw new Error('no PostgreSQL server binaries found');
}

/** pg_dump of the whole intauth database (as the superuser). */
export async function pgDump() {
	const bin = join(pgBinDir(), 'pg_dump');
	const { stdout } = await execFileP(bin, ['-h', PG_SOCKET_DIR, '-p', String(PG_PORT), '-U', 'postgres', '-d', 'intauth', '--no-owner'], {
		encoding: 'utf8',
		maxBuffer: 512 * 1024 * 1024,
	});
	return stdout;
}

// ---------- processes and logs ----------

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value or timeoutMs passes; answers the last value. */
export async function poll(fnc, { timeoutMs = 10000, intervalMs = 200 } = {}) {
	const end = Date.now() + timeoutMs;
	let last;
	for (;;) {
		try {
			last = await fnc();
		} catch (e) {
			last = undefined;
			if (Date.now() >= end) throw e;
		}
		if (last) return last;
		if (Date.now() >= end) return last;
		await sleep(intervalMs);
	}
}

function procEnviron(pid) {
	try {
		return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
	} catch {
		return [];
	}
}

export function procStat(pid) {
	try {
		const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
		const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
		return { state: rest[0], ppid: Number(rest[1]) };
	} catch {
		return null;
	}
}

/** Is this process part of our stack (and not another stack running on the machine)? */
function belongsToStack(pid) {
	const env = procEnviron(pid);
	if (env.some((e) => e === `ENV_FILE=${ENV_FILE}` || e === `STACK_DIR=${STACK_DIR}`)) return true;
	try {
		const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
		return cmd.includes(STACK_DIR);
	} catch {
		return false;
	}
}

/**
 * The processes of one FastCGI program of this stack: { master, workers }.
 * The master supervises the workers; a worker is a process of the program whose
 * parent is another process of the program.
 */
export function programProcesses(program) {
	let out = '';
	try {
		out = execFileSync('pgrep', ['-f', `build/cgi-bin/${program}`], { encoding: 'utf8' });
	} catch {
		out = '';
	}
	const pids = out.split('\n').map(Number).filter((p) => p > 0 && p !== process.pid);
	const ours = pids.filter((p) => {
		const st = procStat(p);
		return st && st.state !== 'Z' && belongsToStack(p);
	});
	const set = new Set(ours);
	const workers = ours.filter((p) => set.has(procStat(p)?.ppid));
	const masters = ours.filter((p) => !set.has(procStat(p)?.ppid));
	return { masters, workers, all: ours };
}

/** The tails of the stack's logs, for failure messages. */
export function logTail(lines = 20, filter = null) {
	const dir = join(STACK_DIR, 'log');
	if (!existsSync(dir)) return '';
	let out = '';
	for (const f of readdirSync(dir)) {
		const p = join(dir, f);
		try {
			if (!statSync(p).isFile()) continue;
			let ls = readFileSync(p, 'utf8').split('\n');
			if (filter) ls = ls.filter((l) => filter.test(l));
			out += `--- ${f}\n${ls.slice(-lines).join('\n')}\n`;
		} catch {
			/* a log being rotated */
		}
	}
	return out;
}

/** Everything the stack's logs hold (for "a secret never reaches a log"). */
export function allLogs() {
	const dir = join(STACK_DIR, 'log');
	if (!existsSync(dir)) return '';
	let out = '';
	for (const f of readdirSync(dir)) {
		const p = join(dir, f);
		try {
			if (statSync(p).isFile()) out += readFileSync(p, 'latin1');
		} catch {
			/* ignore */
		}
	}
	return out;
}

// ---------- common bodies ----------

export function apiKeyBody(extra = {}) {
	return { provider: 'openai', auth_type: 'api_key', credentials: { api_key: uniqueSecret('sk') }, ...extra };
}

export function basicBody(extra = {}) {
	return {
		provider: 'twilio',
		auth_type: 'basic',
		credentials: { username: `AC${randomBytes(16).toString('hex')}`, password: uniqueSecret('pw') },
		...extra,
	};
}

export function oauthBody(extra = {}) {
	return {
		provider: 'github',
		auth_type: 'oauth2',
		credentials: {
			access_token: uniqueSecret('gho'),
			refresh_token: uniqueSecret('ghr'),
			token_type: 'bearer',
			expires_in: 3600,
			scope: 'repo read:user',
		},
		...extra,
	};
}

// ---------- the OAuth connect flow against the test authorization server ----------

/**
 * Connects `user` ({id, token}, e.g. from newUser()) to the test OAuth server
 * (tests/oauth/server.mjs, started by tests/run) through intauth's real connect
 * flow: auth-start with the user's JWT (keeping its intauth_flow cookie), the
 * server's automatic login and consent, then auth-callback with that cookie.
 * Answers { integration, id, location }: the integration as
 * GET /api/integrations/{id} shows it (status connected) and the callback's
 * redirect. Throws with the answers when a step fails.
 */
export async function connectTestOidc(user, { provider = 'testoidc', connection, scopes } = {}) {
	const { consent } = await import('../oauth/consent.mjs');
	const q = new URLSearchParams({ redirect_to: `${BASE_URL}/` });
	if (connection) q.set('connection', connection);
	if (scopes) q.set('scopes', scopes.join(','));
	const start = await get(`/api/auth/${provider}/start?${q}`, { token: user.token });
	if (start.status !== 200 || !start.json?.url) throw new Error(`auth-start: ${show(start)}`);
	const flow = (start.headers.getSetCookie?.() ?? [])
		.map((c) => c.split(';')[0])
		.find((c) => c.startsWith('intauth_flow='));
	if (!flow) throw new Error('auth-start set no intauth_flow cookie');
	const back = await consent(start.json.url);
	const u = new URL(back);
	const cb = await get(`${u.pathname}${u.search}`, { headers: { cookie: flow } });
	const location = cb.headers.get('location') || '';
	if (cb.status !== 302 || new URL(location, BASE_URL).searchParams.get('status') !== 'connected') {
		throw new Error(`auth-callback: ${show(cb)} location ${location}`);
	}
	const list = await get('/api/integrations', { token: user.token });
	if (list.status !== 200) throw new Error(`GET /api/integrations: ${show(list)}`);
	const integration = list.json.integrations.find(
		(i) => i.provider === provider && i.connection === (connection || 'default') && i.status === 'connected',
	);
	if (!integration) throw new Error(`no connected ${provider} integration after the callback: ${show(list)}`);
	return { integration, id: integration.id, location };
}

// ---------- the stack's PostgreSQL, stopped and started as scripts/stack runs it ----------

const PGDATA = join(STACK_DIR, 'pg', 'data');
const PG_LOG = join(STACK_DIR, 'log', 'postgres.log');
// as scripts/stack: as root the cluster runs as postgres
const AS_PG = process.getuid() === 0 ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'] : [];

function pgCtl(args, { session = false } = {}) {
	const cmd = [...(session ? ['setsid', '-w'] : []), ...AS_PG, join(pgBinDir(), 'pg_ctl'), '-D', PGDATA, ...args];
	try {
		// stdio ignored: the postmaster must not inherit a pipe we would wait on
		execFileSync(cmd[0], cmd.slice(1), { cwd: '/', stdio: 'ignore', timeout: 90000 });
	} catch (e) {
		const tail = existsSync(PG_LOG) ? readFileSync(PG_LOG, 'utf8').split('\n').slice(-15).join('\n') : '';
		throw new Error(`pg_ctl ${args.join(' ')} failed (${e.status ?? e.message})\n${tail}`);
	}
}

export const PG_DATA_DIR = PGDATA;
export const pgRunning = () => psqlTry('SELECT 1;').ok;
export function stopPg() {
	pgCtl(['-m', 'fast', '-w', '-t', '60', 'stop']);
}
export function startPg() {
	if (!pgRunning()) pgCtl(['-l', PG_LOG, '-w', '-t', '60', 'start'], { session: true });
}
