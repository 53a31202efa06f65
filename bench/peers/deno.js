// The Deno peer for `make bench`: intauth's webhook (GitHub) and
// integrations-list handlers as the seed's runtime would run them, one
// `Deno.serve` function with the `postgres` npm driver, doing the same work as
// the C programs (and as bench/peers/node.mjs):
//   POST /webhooks/github   X-Hub-Signature-256 over the raw body, verified
//                           with WebCrypto HMAC-SHA256 (constant time), the
//                           event stored once with its job in one transaction
//                           as service_role
//   GET /api/integrations   HS256 bearer JWT verified with WebCrypto (alg,
//                           signature, exp, aud, role, sub), the caller's
//                           integrations read under RLS in a transaction with
//                           the claims set
// Every transaction is BEGIN; set_config('role'), set_config('request.jwt.claims');
// the statement; COMMIT (sql.begin), with the SQL of lib/events.c and
// lib/integrations.c (the body bound as $7::text::jsonb: this driver would
// serialise a string bound to a plain jsonb parameter as a JSON string). The
// driver's defaults otherwise (named prepared statements, one query per round
// trip when each is awaited).
//
// Environment as for node.mjs: PORT, PGHOST (socket directory), PGPORT,
// PGDATABASE, PGUSER, POOL_SIZE, JWT_SECRET, JWT_AUDIENCE,
// GITHUB_WEBHOOK_SECRET, GITHUB_WEBHOOK_PREVIOUS_SECRET.
// Prints "PEER_READY <port>" when listening.
import postgres from 'postgres';

const env = Deno.env.toObject();
const port = Number(env.PORT);
const audience = env.JWT_AUDIENCE || 'authenticated';
const MAX_BODY = 1048576;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const enc = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

const sql = postgres({
	path: `${env.PGHOST}/.s.PGSQL.${env.PGPORT}`,
	database: env.PGDATABASE,
	username: env.PGUSER,
	max: Number(env.POOL_SIZE || 8),
	connection: { application_name: 'bench-deno-peer' },
	onnotice: () => {},
});

function hmacKey(secret) {
	return crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
		'verify',
	]);
}
const jwtKey = await hmacKey(env.JWT_SECRET || '');
const githubKeys = await Promise.all(
	[env.GITHUB_WEBHOOK_SECRET, env.GITHUB_WEBHOOK_PREVIOUS_SECRET].filter((s) => s).map(hmacKey),
);

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
	' SELECT count(*)::text AS n FROM e';

// lib/integrations.c ia_integration_list
const SQL_LIST =
	"SELECT json_build_object('integrations', coalesce(json_agg(" +
	" intauth.integration_json(i) ORDER BY i.created_at, i.id), '[]'::json))::text AS body" +
	' FROM public.integrations i WHERE i.user_id = $1';

function inTransaction(role, claims, query, params) {
	return sql.begin(async (tx) => {
		await tx`SELECT set_config('role', ${role}, true), set_config('request.jwt.claims', ${claims}, true)`;
		return await tx.unsafe(query, params);
	});
}

function json(status, body, headers = {}) {
	return new Response(body, { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

function error(status, code, message) {
	return json(status, JSON.stringify({ error: { code, message } }));
}

function hexBytes(hex) {
	const out = new Uint8Array(hex.length / 2);
	for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
	return out;
}

function b64urlBytes(s) {
	const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
	const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

function b64(bytes) {
	let s = '';
	for (let i = 0; i < bytes.length; i += 32768) s += String.fromCharCode(...bytes.subarray(i, i + 32768));
	return btoa(s);
}

async function webhook(req) {
	const body = new Uint8Array(await req.arrayBuffer());
	if (body.length > MAX_BODY) return error(413, 'payload_too_large', 'Request body too large');
	// Headers joins repeats with ", ": such a value fails the pattern (fails closed)
	const sig = req.headers.get('x-hub-signature-256');
	let ok = false;
	if (sig && /^sha256=[0-9a-fA-F]{64}$/.test(sig)) {
		const given = hexBytes(sig.slice(7));
		for (const key of githubKeys) {
			if (await crypto.subtle.verify('HMAC', key, given, body)) ok = true;
		}
	}
	if (!ok) {
		console.error('webhook_rejected provider github');
		return error(401, 'invalid_signature', 'The webhook signature could not be verified.');
	}
	let eventId = req.headers.get('x-github-delivery');
	if (!eventId || eventId.length > 256 || /[\x00-\x1f\x7f,]/.test(eventId)) {
		const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
		eventId = 'sha256:' + Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
	}
	const eventType = (req.headers.get('x-github-event') || '').slice(0, 127);
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
		text = 'base64:' + b64(body);
	}
	const rows = await inTransaction('service_role', '{"role":"service_role"}', SQL_STORE_EVENT, [
		'github', eventId, null, '', '', eventType, kind === 'json' ? text : null, kind === 'json' ? null : text,
	]);
	return json(200, `{"received":true,"duplicate":${rows[0].n === '0'}}`);
}

const textDecoder = new TextDecoder();

// HS256 bearer token -> { sub, json } or null
async function verifyJwt(header) {
	if (!header || !header.startsWith('Bearer ')) return null;
	const token = header.slice(7);
	if (token.length > 8192) return null;
	const parts = token.split('.');
	if (parts.length !== 3) return null;
	let claims;
	let claimsJson;
	try {
		const head = JSON.parse(textDecoder.decode(b64urlBytes(parts[0])));
		if (head.alg !== 'HS256' || (head.typ !== undefined && head.typ !== 'JWT')) return null;
		const valid = await crypto.subtle.verify('HMAC', jwtKey, b64urlBytes(parts[2]),
			enc.encode(parts[0] + '.' + parts[1]));
		if (!valid) return null;
		claimsJson = textDecoder.decode(b64urlBytes(parts[1]));
		claims = JSON.parse(claimsJson);
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
	return { sub: claims.sub.toLowerCase(), json: claimsJson };
}

async function listIntegrations(req) {
	const caller = await verifyJwt(req.headers.get('authorization'));
	if (!caller) return error(401, 'unauthorized', 'A valid bearer token is required.');
	const rows = await inTransaction('authenticated', caller.json, SQL_LIST, [caller.sub]);
	return json(200, rows[0].body);
}

const server = Deno.serve({
	port,
	hostname: '127.0.0.1',
	onListen: () => console.log(`PEER_READY ${port}`),
}, async (req) => {
	try {
		const path = new URL(req.url).pathname;
		if (path === '/webhooks/github') {
			if (req.method !== 'POST') return error(405, 'method_not_allowed', 'Use POST.');
			return await webhook(req);
		}
		if (path === '/api/integrations') {
			if (req.method !== 'GET') return error(405, 'method_not_allowed', 'Use GET.');
			return await listIntegrations(req);
		}
		return error(404, 'not_found', 'No such route.');
	} catch (e) {
		console.error('request_failed', e?.code || e?.message);
		return error(500, 'internal_error', 'Internal error');
	}
});

for (const sig of ['SIGTERM', 'SIGINT']) {
	Deno.addSignalListener(sig, async () => {
		setTimeout(() => Deno.exit(0), 2000);
		await server.shutdown();
		await sql.end({ timeout: 1 });
		Deno.exit(0);
	});
}
