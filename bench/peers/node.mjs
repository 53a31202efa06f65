// The Node peer for `make bench`: the webhook (GitHub) and integrations-list
// handlers of intauth written as a plain Node http server with `pg`, the way a
// Node service would do them, doing the same work as the C programs:
//   POST /webhooks/github   X-Hub-Signature-256 over the raw body (HMAC-SHA256,
//                           constant-time compare, current and previous
//                           secret), the event stored once with its job in one
//                           transaction as service_role
//   GET /api/integrations   HS256 bearer JWT checked (alg, signature in constant
//                           time, exp, aud, role, sub), then the caller's
//                           integrations read under RLS in a transaction with
//                           the claims set
// Every transaction is BEGIN; set_config('role'), set_config('request.jwt.claims');
// the statement; COMMIT, with the same SQL text as lib/events.c and
// lib/integrations.c. Idiomatic pg: one Pool, one query per round trip.
//
// Environment: PORT, PGHOST (socket directory), PGPORT, PGDATABASE, PGUSER,
// POOL_SIZE, JWT_SECRET, JWT_AUDIENCE (default authenticated),
// GITHUB_WEBHOOK_SECRET, GITHUB_WEBHOOK_PREVIOUS_SECRET (optional).
// Prints "PEER_READY <port>" when listening.
import crypto from 'node:crypto';
import http from 'node:http';

import pg from 'pg';

const env = process.env;
const port = Number(env.PORT);
const audience = env.JWT_AUDIENCE || 'authenticated';
const jwtSecret = Buffer.from(env.JWT_SECRET || '', 'utf8');
const githubSecrets = [env.GITHUB_WEBHOOK_SECRET, env.GITHUB_WEBHOOK_PREVIOUS_SECRET]
	.filter((s) => s)
	.map((s) => Buffer.from(s, 'utf8'));
const MAX_BODY = 1048576;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const pool = new pg.Pool({
	host: env.PGHOST,
	port: Number(env.PGPORT),
	database: env.PGDATABASE,
	user: env.PGUSER,
	max: Number(env.POOL_SIZE || 8),
	// connections stay open, as the C programs' do
	idleTimeoutMillis: 0,
	application_name: 'bench-node-peer',
});

const SQL_BEGIN_CLAIMS =
	"SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)";

// lib/events.c SQL_STORE_EVENT, unchanged
const SQL_STORE_EVENT =
	'WITH e AS (' +
	' INSERT INTO public.integration_events (provider, event_id, webhook_id, integration_id,' +
	'  user_id, event_type, payload, body)' +
	" VALUES ($1, $2, $3::uuid, nullif($4, '')::uuid, nullif($5, '')::uuid, nullif($6, '')," +
	"  $7::text::jsonb, $8::text)" +
	' ON CONFLICT (provider, event_id) DO NOTHING' +
	' RETURNING id, integration_id, user_id),' +
	' j AS (' +
	' INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, payload)' +
	" SELECT 'webhook', e.integration_id, e.user_id, jsonb_build_object('event_id', e.id) FROM e)" +
	' SELECT count(*)::text FROM e';

// lib/integrations.c ia_integration_list, unchanged
const SQL_LIST =
	"SELECT json_build_object('integrations', coalesce(json_agg(" +
	" intauth.integration_json(i) ORDER BY i.created_at, i.id), '[]'::json))::text" +
	' FROM public.integrations i WHERE i.user_id = $1';

// One request transaction as the caller; rolls back on any error.
async function inTransaction(role, claims, sql, params) {
	const client = await pool.connect();
	try {
		await client.query('BEGIN');
		try {
			await client.query(SQL_BEGIN_CLAIMS, [role, claims]);
			const res = await client.query({ text: sql, values: params, rowMode: 'array' });
			await client.query('COMMIT');
			return res.rows;
		} catch (e) {
			await client.query('ROLLBACK').catch(() => {});
			throw e;
		}
	} finally {
		client.release();
	}
}

function send(res, status, body, extra = {}) {
	res.writeHead(status, {
		'Content-Type': 'application/json',
		'Content-Length': Buffer.byteLength(body),
		...extra,
	});
	res.end(body);
}

function sendError(res, status, code, message) {
	send(res, status, JSON.stringify({ error: { code, message } }));
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let size = 0;
		req.on('data', (c) => {
			size += c.length;
			if (size > MAX_BODY) {
				reject(Object.assign(new Error('too large'), { status: 413 }));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks, size)));
		req.on('error', reject);
	});
}

// One header, exactly once (a repeated one fails closed).
function single(req, name) {
	let value;
	let count = 0;
	const raw = req.rawHeaders;
	for (let i = 0; i < raw.length; i += 2) {
		if (raw[i].length === name.length && raw[i].toLowerCase() === name) {
			value = raw[i + 1];
			count++;
		}
	}
	return count === 1 ? value : undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function webhook(req, res) {
	const body = await readBody(req);
	const sig = single(req, 'x-hub-signature-256');
	let ok = false;
	if (sig && /^sha256=[0-9a-fA-F]{64}$/.test(sig)) {
		const given = Buffer.from(sig.slice(7), 'hex');
		for (const secret of githubSecrets) {
			const mac = crypto.createHmac('sha256', secret).update(body).digest();
			if (crypto.timingSafeEqual(mac, given)) ok = true;
		}
	}
	if (!ok) {
		console.error('webhook_rejected provider github');
		return sendError(res, 401, 'invalid_signature', 'The webhook signature could not be verified.');
	}
	let eventId = single(req, 'x-github-delivery');
	if (!eventId || eventId.length > 256 || /[\x00-\x1f\x7f]/.test(eventId))
		eventId = 'sha256:' + crypto.createHash('sha256').update(body).digest('hex');
	const eventType = (single(req, 'x-github-event') || '').slice(0, 127);
	// JSON bodies as jsonb, other UTF-8 as text, anything else base64
	let text = null;
	let kind = 'base64';
	try {
		text = utf8.decode(body);
	} catch {
		// not UTF-8
	}
	if (text !== null && !text.includes('\u0000')) {
		kind = 'text';
		try {
			JSON.parse(text);
			if (!text.includes('\\u0000')) kind = 'json';
		} catch {
			// not JSON: stored as text
		}
	} else {
		text = 'base64:' + body.toString('base64');
	}
	const rows = await inTransaction('service_role', '{"role":"service_role"}', SQL_STORE_EVENT, [
		'github', eventId, null, '', '', eventType, kind === 'json' ? text : null, kind === 'json' ? null : text,
	]);
	const duplicate = rows[0][0] === '0';
	send(res, 200, `{"received":true,"duplicate":${duplicate}}`);
}

// HS256 bearer token -> { sub, json } or null
function verifyJwt(header) {
	if (!header || !header.startsWith('Bearer ')) return null;
	const token = header.slice(7);
	if (token.length > 8192) return null;
	const parts = token.split('.');
	if (parts.length !== 3) return null;
	let head;
	let claims;
	let json;
	try {
		head = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
		if (head.alg !== 'HS256' || (head.typ !== undefined && head.typ !== 'JWT')) return null;
		const mac = crypto.createHmac('sha256', jwtSecret).update(parts[0] + '.' + parts[1]).digest();
		const given = Buffer.from(parts[2], 'base64url');
		if (given.length !== mac.length || !crypto.timingSafeEqual(mac, given)) return null;
		json = Buffer.from(parts[1], 'base64url').toString('utf8');
		claims = JSON.parse(json);
	} catch {
		return null;
	}
	const now = Date.now() / 1000;
	if (typeof claims.exp !== 'number' || claims.exp + 30 < now) return null;
	if (typeof claims.nbf === 'number' && claims.nbf - 30 > now) return null;
	if (typeof claims.iat === 'number' && claims.iat - 30 > now) return null;
	if (claims.aud !== undefined) {
		const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
		if (!auds.includes(audience)) return null;
	}
	if (claims.role !== 'authenticated' || typeof claims.sub !== 'string' || !UUID.test(claims.sub.toLowerCase()))
		return null;
	return { sub: claims.sub.toLowerCase(), json };
}

async function listIntegrations(req, res) {
	const caller = verifyJwt(req.headers.authorization);
	if (!caller) return sendError(res, 401, 'unauthorized', 'A valid bearer token is required.');
	const rows = await inTransaction('authenticated', caller.json, SQL_LIST, [caller.sub]);
	send(res, 200, rows[0][0]);
}

const server = http.createServer(async (req, res) => {
	try {
		const path = req.url.split('?')[0];
		if (path === '/webhooks/github') {
			if (req.method !== 'POST') return sendError(res, 405, 'method_not_allowed', 'Use POST.');
			return await webhook(req, res);
		}
		if (path === '/api/integrations') {
			if (req.method !== 'GET') return sendError(res, 405, 'method_not_allowed', 'Use GET.');
			return await listIntegrations(req, res);
		}
		return sendError(res, 404, 'not_found', 'No such route.');
	} catch (e) {
		if (e.status === 413) return sendError(res, 413, 'payload_too_large', 'Request body too large');
		console.error('request_failed', e.code || e.message);
		if (!res.headersSent) sendError(res, 500, 'internal_error', 'Internal error');
	}
});
server.keepAliveTimeout = 65000;
server.listen(port, '127.0.0.1', () => console.log(`PEER_READY ${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
	process.on(sig, () => {
		server.close();
		pool.end().finally(() => process.exit(0));
		setTimeout(() => process.exit(0), 2000).unref();
	});
}
