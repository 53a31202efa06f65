// Webhooks (SPEC §8, SECURITY.md "Webhook signatures"): deliveries signed by the
// providers' own libraries (GitHub @octokit/webhooks-methods, Stripe's
// generateTestHeaderString, Standard Webhooks / Svix `standardwebhooks`) and by
// hand from SECURITY.md's table for Slack and Shopify. Every delivery must be
// verified over the raw bytes, stored once per (provider, event id) together
// with its `webhook` job, and every failure must look the same (401
// invalid_signature, nothing stored).
//
// Secrets: tests/run writes random <NAME>_WEBHOOK_SECRET values into the env
// file (and GITHUB_WEBHOOK_PREVIOUS_SECRET for the rotation test); per-webhook
// secrets are created with `intauthctl webhook-add`.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { promisify } from 'node:util';
import { sign as githubSign } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import {
	BASE_URL, ENV, ENV_FILE, INTAUTHCTL, MAX_BODY_BYTES, PG_PORT, PG_SOCKET_DIR, allLogs, assertError,
	assertNoSecrets, assertOk, fn, get, http, lit, logTail, newUser, now, oauthBody, poll, psql, show,
	storeCredentials,
} from './lib.mjs';

const execFileP = promisify(execFile);

const SECRET = {
	github: ENV.GITHUB_WEBHOOK_SECRET,
	github_previous: ENV.GITHUB_WEBHOOK_PREVIOUS_SECRET,
	stripe: ENV.STRIPE_WEBHOOK_SECRET,
	slack: ENV.SLACK_WEBHOOK_SECRET,
	shopify: ENV.SHOPIFY_WEBHOOK_SECRET,
	svix: ENV.SVIX_WEBHOOK_SECRET,
};
for (const [k, v] of Object.entries(SECRET)) {
	if (!v) throw new Error(`the env file (${ENV_FILE}) has no webhook secret for ${k}: tests/run writes them`);
}

const stripe = new Stripe(`sk_test_${randomBytes(16).toString('hex')}`);

const whPath = (provider, webhookId) => fn(`webhooks/${provider}${webhookId ? `/${webhookId}` : ''}`);
const rnd = (n = 12) => randomBytes(n).toString('hex');

// Every 401 answer of this file, with what must never appear in it.
const rejections = [];

/**
 * POST with node:http, so that a header can be sent twice (headers given as
 * [name, value] pairs are written as they are). Answers like lib.mjs http().
 */
function rawPost(path, body, headerPairs, { timeoutMs = 20000 } = {}) {
	const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
	const url = new URL(BASE_URL + path);
	// given as a flat list, headers go out exactly as listed: Host included
	const flat = ['host', url.host, 'content-length', String(buf.length)];
	if (!headerPairs.some(([k]) => k.toLowerCase() === 'content-type')) flat.push('content-type', 'application/json');
	for (const [k, v] of headerPairs) flat.push(k, v);
	return new Promise((resolve, reject) => {
		const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: flat }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				const headers = new Headers();
				for (const [k, v] of Object.entries(res.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : String(v));
				let json = null;
				try {
					json = text ? JSON.parse(text) : null;
				} catch {
					json = null;
				}
				resolve({ status: res.statusCode, headers, text, json });
			});
			res.on('error', reject);
		});
		req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
		req.on('error', reject);
		req.end(buf);
	});
}

/** Sends a delivery { provider, webhookId?, body, headers } as it is. */
function deliver(d, { headers = d.headers, body = d.body, provider = d.provider, webhookId = d.webhookId } = {}) {
	const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
	return rawPost(whPath(provider, webhookId), body, pairs);
}

/** Expects the one 401 of every verification failure, and records it. */
function assertRejected(res, d, what) {
	assertError(res, 401, 'invalid_signature');
	rejections.push({ what, text: res.text, body: Buffer.isBuffer(d.body) ? d.body.toString('latin1') : d.body, headers: d.headers });
}

// ---------- deliveries, one builder per scheme ----------

/** A JSON body with a random nonce (to tamper with) and some non-ASCII text. */
const nonce = () => `n${rnd(16)}`;

async function githubDelivery({ secret = SECRET.github, id = randomUUID(), event = 'push', body } = {}) {
	body ??= JSON.stringify({
		ref: 'refs/heads/main',
		repository: { id: Number.parseInt(rnd(3), 16), full_name: 'octo/dépôt-☃' },
		sender: { login: 'octocat' },
		nonce: nonce(),
	});
	return {
		provider: 'github',
		eventId: id,
		eventType: event,
		body,
		headers: {
			'x-github-event': event,
			'x-github-delivery': id,
			'x-hub-signature-256': await githubSign(secret, body),
			'user-agent': 'GitHub-Hookshot/intauth-tests',
		},
		signatureHeader: 'x-hub-signature-256',
		required: ['x-hub-signature-256'],
	};
}

function stripeDelivery({ secret = SECRET.stripe, id = `evt_${rnd()}`, timestamp = now(), body } = {}) {
	body ??= JSON.stringify({
		id,
		object: 'event',
		type: 'invoice.paid',
		created: timestamp,
		livemode: false,
		data: { object: { id: `in_${rnd()}`, object: 'invoice', customer_name: 'Zoë Ünicode', amount_paid: 4200 } },
		nonce: nonce(),
	});
	return {
		provider: 'stripe',
		eventId: id,
		eventType: 'invoice.paid',
		body,
		headers: { 'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp }) },
		signatureHeader: 'stripe-signature',
		required: ['stripe-signature'],
		resign: (ts) => stripeDelivery({ secret, id, timestamp: ts, body }),
		withTimestamp: (ts) => stripeDelivery({ secret, id, timestamp: ts }),
	};
}

/** Slack v0 by hand (SECURITY.md): HMAC-SHA256 hex of "v0:ts:body". */
const slackSignature = (secret, ts, body) => `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;

function slackDelivery({ secret = SECRET.slack, id = `Ev${rnd(5).toUpperCase()}`, timestamp = now(), body } = {}) {
	body ??= JSON.stringify({
		token: rnd(),
		team_id: `T${rnd(4).toUpperCase()}`,
		api_app_id: `A${rnd(4).toUpperCase()}`,
		type: 'event_callback',
		event_id: id,
		event_time: timestamp,
		event: { type: 'app_mention', user: `U${rnd(4).toUpperCase()}`, text: 'héllo <@U0> ✓', ts: `${timestamp}.000100` },
		nonce: nonce(),
	});
	return {
		provider: 'slack',
		eventId: id,
		eventType: 'app_mention',
		body,
		headers: {
			'x-slack-request-timestamp': String(timestamp),
			'x-slack-signature': slackSignature(secret, timestamp, body),
		},
		signatureHeader: 'x-slack-signature',
		required: ['x-slack-signature', 'x-slack-request-timestamp'],
		resign: (ts) => slackDelivery({ secret, id, timestamp: ts, body }),
		withTimestamp: (ts) => slackDelivery({ secret, id, timestamp: ts }),
	};
}

/** Shopify by hand (SECURITY.md): HMAC-SHA256 base64 of the body. */
const shopifySignature = (secret, body) => createHmac('sha256', secret).update(body).digest('base64');

function shopifyDelivery({ secret = SECRET.shopify, id = randomUUID(), topic = 'orders/create', body } = {}) {
	body ??= JSON.stringify({
		id: Number.parseInt(rnd(5), 16),
		email: 'buyer@example.com',
		note: 'crème brûlée',
		line_items: [{ title: 'Ünïcödé mug', quantity: 1 }],
		nonce: nonce(),
	});
	return {
		provider: 'shopify',
		eventId: id,
		eventType: topic,
		body,
		headers: {
			'x-shopify-topic': topic,
			'x-shopify-hmac-sha256': shopifySignature(secret, body),
			'x-shopify-webhook-id': id,
			'x-shopify-shop-domain': `shop-${rnd(4)}.myshopify.com`,
		},
		signatureHeader: 'x-shopify-hmac-sha256',
		required: ['x-shopify-hmac-sha256'],
	};
}

function svixDelivery({ secret = SECRET.svix, id = `msg_${rnd()}`, timestamp = now(), body, family = 'webhook', provider = 'svix', webhookId } = {}) {
	body ??= JSON.stringify({ type: 'user.created', data: { id: `user_${rnd()}`, name: 'Ådne Øster' }, nonce: nonce() });
	const signature = new StandardWebhook(secret).sign(id, new Date(timestamp * 1000), body);
	return {
		provider,
		webhookId,
		eventId: id,
		eventType: 'user.created',
		body,
		headers: {
			[`${family}-id`]: id,
			[`${family}-timestamp`]: String(timestamp),
			[`${family}-signature`]: signature,
		},
		signatureHeader: `${family}-signature`,
		required: [`${family}-id`, `${family}-timestamp`, `${family}-signature`],
		resign: (ts) => svixDelivery({ secret, id, timestamp: ts, body, family, provider, webhookId }),
		withTimestamp: (ts) => svixDelivery({ secret, id, timestamp: ts, family, provider, webhookId }),
	};
}

const SCHEMES = [
	{ name: 'github', make: githubDelivery, secrets: [SECRET.github, SECRET.github_previous] },
	{ name: 'stripe', make: stripeDelivery, secrets: [SECRET.stripe] },
	{ name: 'slack', make: slackDelivery, secrets: [SECRET.slack] },
	{ name: 'shopify', make: shopifyDelivery, secrets: [SECRET.shopify] },
	{ name: 'svix', make: svixDelivery, secrets: [SECRET.svix] },
];

// ---------- the database side ----------

/**
 * One psql session for the whole file (as the superuser, over the stack's
 * socket): a fresh psql per query costs a connection and a process start,
 * which on a loaded machine is most of a test's time. Each query is followed
 * by an \echo marker on stdout and a \warn marker on stderr; anything else on
 * stderr before the marker is that query's error.
 */
class PsqlSession {
	constructor() {
		this.proc = spawn('psql', ['-X', '-q', '-A', '-t', '-h', PG_SOCKET_DIR, '-p', String(PG_PORT), '-U', 'postgres', '-d', 'intauth'], {
			stdio: ['pipe', 'pipe', 'pipe'],
			env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
		});
		this.out = '';
		this.err = '';
		this.n = 0;
		this.ended = false;
		this.wake = null;
		this.chain = Promise.resolve();
		const poke = () => this.wake && this.wake();
		this.proc.stdout.setEncoding('utf8').on('data', (d) => { this.out += d; poke(); });
		this.proc.stderr.setEncoding('utf8').on('data', (d) => { this.err += d; poke(); });
		this.proc.on('exit', () => { this.ended = true; poke(); });
		this.proc.stdin.on('error', () => {});
	}

	query(q) {
		const run = async () => {
			const mark = `__webhooks_test_${++this.n}__\n`;
			this.proc.stdin.write(`${q.trim().replace(/;?$/, ';')}\n\\echo ${mark}\\warn ${mark}`);
			const deadline = Date.now() + 30000;
			while (!this.out.includes(mark) || !this.err.includes(mark)) {
				if (this.ended) throw new Error(`psql ended: ${this.err}`);
				if (Date.now() > deadline) throw new Error(`psql: no answer in 30 s to ${q}`);
				await new Promise((r) => { this.wake = r; setTimeout(r, 200); });
			}
			const o = this.out.indexOf(mark);
			const e = this.err.indexOf(mark);
			const result = this.out.slice(0, o).trim();
			const error = this.err.slice(0, e).trim();
			this.out = this.out.slice(o + mark.length);
			this.err = this.err.slice(e + mark.length);
			if (error) throw new Error(`psql: ${error}\n(query: ${q})`);
			return result;
		};
		const p = this.chain.then(run);
		this.chain = p.catch(() => {});
		return p;
	}

	close() {
		this.proc.stdin.end();
	}
}

let session = null;
const sql = (q) => (session ??= new PsqlSession()).query(q);
after(() => session?.close());

const eventWhere = (provider, eventId) => `provider = ${lit(provider)} AND event_id = ${lit(eventId)}`;
const eventCount = async (provider, eventId) => Number(await sql(`SELECT count(*) FROM public.integration_events WHERE ${eventWhere(provider, eventId)}`));

/** The stored event as an object (null when there is none). */
async function eventRow(provider, eventId) {
	const out = await sql(`SELECT row_to_json(e) FROM (SELECT id, provider, event_id, webhook_id, integration_id, user_id,
		event_type, payload, body, processed_at FROM public.integration_events WHERE ${eventWhere(provider, eventId)}) e`);
	return out ? JSON.parse(out) : null;
}

/** The `webhook` jobs that name this event, with whether each was written in the event's transaction. */
async function eventJobs(eventRowId) {
	const out = await sql(`SELECT coalesce(json_agg(j), '[]') FROM (
		SELECT j.id, j.status, j.payload, j.integration_id, j.user_id, j.created_at = e.received_at AS same_tx
		FROM public.integration_sync_jobs j JOIN public.integration_events e ON e.id = ${lit(eventRowId)}::uuid
		WHERE j.kind = 'webhook' AND j.payload ->> 'event_id' = ${lit(eventRowId)}) j`);
	return JSON.parse(out);
}

/** Asserts one stored event for d and one job for it; answers the row. */
async function assertStoredOnce(d) {
	const rows = await eventCount(d.provider, d.eventId);
	assert.equal(rows, 1, `${d.provider} ${d.eventId}: ${rows} rows in integration_events`);
	const row = await eventRow(d.provider, d.eventId);
	const jobs = await eventJobs(row.id);
	assert.equal(jobs.length, 1, `${d.provider}: ${jobs.length} webhook jobs for event ${row.id}`);
	// now() is the transaction's start time: equal timestamps = one transaction
	assert.equal(jobs[0].same_tx, true, 'the job was not written in the event\'s transaction');
	assert.equal(jobs[0].payload.event_id, row.id);
	return { row, job: jobs[0] };
}

async function waitProcessed(provider, eventId) {
	const row = await poll(async () => {
		const r = await eventRow(provider, eventId);
		return r && r.processed_at ? r : null;
	}, { timeoutMs: 15000, intervalMs: 100 });
	assert.ok(row, `the worker did not set processed_at on ${provider} ${eventId} within 15 s\n${logTail(10, /worker|webhook/)}`);
	return row;
}

const DB_URL = ENV.DATABASE_URL || `host=${PG_SOCKET_DIR} port=${PG_PORT} dbname=intauth user=intauth_app`;

/** bin/intauthctl with the stack's configuration; { code, stdout, stderr }. */
async function intauthctl(args, { input } = {}) {
	try {
		const run = execFileP(INTAUTHCTL, args, {
			env: { ...process.env, ENV_FILE, DATABASE_URL: DB_URL },
			encoding: 'utf8',
			timeout: 20000,
		});
		// a command that fails on its arguments exits before reading stdin:
		// the write then meets a closed pipe, which is not the test's concern
		run.child.stdin.on('error', () => {});
		run.child.stdin.end(input ?? '');
		const { stdout, stderr } = await run;
		return { code: 0, stdout, stderr };
	} catch (e) {
		return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout || '', stderr: e.stderr || e.message };
	}
}

/** Replaces one character of the body's nonce: same length, same event id. */
function tamper(body) {
	const at = body.indexOf('"nonce":"n') + 10;
	assert.ok(at > 10, 'body has no nonce to tamper with');
	const c = body[at] === 'a' ? 'b' : 'a';
	return body.slice(0, at) + c + body.slice(at + 1);
}

/** A JSON body of exactly n bytes (UTF-8). */
function bodyOfSize(n, extra = {}) {
	const base = JSON.stringify({ ...extra, nonce: nonce(), pad: '' });
	assert.ok(n >= base.length);
	return `${base.slice(0, -2)}${'x'.repeat(n - base.length)}"}`;
}

// ---------- per scheme ----------

for (const scheme of SCHEMES) {
	describe(`webhooks: ${scheme.name}`, () => {
		test('a valid delivery: 200 {received:true,duplicate:false}, one event row with its job; the worker processes it', async () => {
			const d = await scheme.make();
			const res = await deliver(d);
			assert.deepEqual(assertOk(res), { received: true, duplicate: false }, show(res));
			const { row, job } = await assertStoredOnce(d);
			assert.equal(row.event_id, d.eventId);
			assert.equal(row.event_type, d.eventType);
			assert.deepEqual(row.payload, JSON.parse(d.body), 'the stored payload is not the body');
			assert.equal(row.body, null);
			assert.equal(row.webhook_id, null);
			assert.ok(['queued', 'running', 'succeeded'].includes(job.status), `job status ${job.status}`);
			const done = await waitProcessed(d.provider, d.eventId);
			assert.ok(Date.parse(done.processed_at) > 0);
			// the job's outcome is recorded just after its work commits
			const later = await poll(async () => {
				const jobs = await eventJobs(row.id);
				return jobs[0]?.status === 'succeeded' ? jobs : null;
			}, { timeoutMs: 10000, intervalMs: 100 });
			assert.ok(later, `the job did not end succeeded: ${JSON.stringify(await eventJobs(row.id))}`);
		});

		test('redelivered: 200 duplicate:true, still one row and one job', async () => {
			const d = await scheme.make();
			assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false });
			// the provider's retry: the same delivery, re-signed when the scheme has a timestamp
			const again = d.resign ? await d.resign(now() + 1) : d;
			for (const r of [again, d]) {
				const res = await deliver(r);
				assert.deepEqual(assertOk(res), { received: true, duplicate: true }, show(res));
			}
			await assertStoredOnce(d);
		});

		test('one byte of the body changed: 401, nothing stored', async () => {
			const d = await scheme.make();
			const bad = { ...d, body: tamper(d.body) };
			assert.equal(Buffer.byteLength(bad.body), Buffer.byteLength(d.body));
			assertRejected(await deliver(bad), bad, 'body changed');
			assert.equal(await eventCount(d.provider, d.eventId), 0);
			// and the untouched delivery still goes through afterwards
			assertOk(await deliver(d));
			assert.equal(await eventCount(d.provider, d.eventId), 1);
		});

		test('one character of the signature changed, or a wrong secret: 401, nothing stored', async () => {
			const d = await scheme.make();
			const sig = d.headers[d.signatureHeader];
			// inside the (last) MAC, before any base64 padding; '0' and '1' differ in
			// hex and in base64 alike (a case change would not, in hex)
			const i = sig.length - 5;
			const flipped = sig.slice(0, i) + (sig[i] === '0' ? '1' : '0') + sig.slice(i + 1);
			const bad = { ...d, headers: { ...d.headers, [d.signatureHeader]: flipped } };
			assertRejected(await deliver(bad), bad, 'signature changed');
			const other = await scheme.make({ secret: scheme.name === 'svix' || scheme.name === 'stripe' ? `whsec_${randomBytes(24).toString('base64')}` : rnd(24), id: d.eventId });
			assertRejected(await deliver(other), other, 'wrong secret');
			assert.equal(await eventCount(d.provider, d.eventId), 0);
		});

		test('a required header missing: 401', async () => {
			const d = await scheme.make();
			for (const h of d.required) {
				const headers = { ...d.headers };
				delete headers[h];
				assertRejected(await deliver(d, { headers }), { ...d, headers }, `${h} missing`);
			}
			// an empty value is no better than none
			const headers = { ...d.headers, [d.signatureHeader]: '' };
			assertRejected(await deliver(d, { headers }), { ...d, headers }, 'signature empty');
			assert.equal(await eventCount(d.provider, d.eventId), 0);
		});

		test('the signature header sent twice (both copies valid): 401', async () => {
			const d = await scheme.make();
			const pairs = Object.entries(d.headers);
			pairs.push([d.signatureHeader, d.headers[d.signatureHeader]]);
			assertRejected(await deliver(d, { headers: pairs }), d, 'signature header twice');
			if (d.required.length > 1) {
				// a timestamp or id header twice fails the same way
				for (const h of d.required.filter((x) => x !== d.signatureHeader)) {
					const p2 = [...Object.entries(d.headers), [h, d.headers[h]]];
					assertRejected(await deliver(d, { headers: p2 }), d, `${h} twice`);
				}
			}
			assert.equal(await eventCount(d.provider, d.eventId), 0);
		});

		if (scheme.name === 'stripe' || scheme.name === 'slack' || scheme.name === 'svix') {
			test('a stale or future timestamp (±400 s, tolerance 300 s): 401; within the tolerance: 200', async () => {
				const d = await scheme.make();
				for (const ts of [now() - 400, now() + 400, now() - 86400]) {
					const stale = await d.withTimestamp(ts);
					assertRejected(await deliver(stale), stale, `timestamp ${ts - now()} s`);
				}
				assert.equal(await eventCount(d.provider, d.eventId), 0);
				const late = await d.withTimestamp(now() - 200);
				assertOk(await deliver(late));
				assert.equal(await eventCount(d.provider, d.eventId), 1);
			});
		}

		test('a body over MAX_BODY_BYTES: 413 JSON, nothing stored', async () => {
			const d = await scheme.make({ body: undefined });
			const big = await scheme.make({ id: d.eventId, body: bodyOfSize(MAX_BODY_BYTES + 1, { id: d.eventId, event_id: d.eventId }) });
			const res = await deliver(big);
			assertError(res, 413, 'payload_too_large');
			assert.equal(await eventCount(d.provider, d.eventId), 0);
		});
	});
}

// ---------- scheme-specific behaviour ----------

describe('webhooks: details', () => {
	test('a body of exactly MAX_BODY_BYTES is accepted and stored', async () => {
		const id = randomUUID();
		const d = await githubDelivery({ id, body: bodyOfSize(MAX_BODY_BYTES, { zen: 'exactly the limit' }) });
		assert.equal(Buffer.byteLength(d.body), MAX_BODY_BYTES);
		assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false });
		assert.equal(await sql(`SELECT payload ->> 'zen' FROM public.integration_events WHERE ${eventWhere('github', id)};`), 'exactly the limit');
		// a body this size is compressed when stored: with lz4 (sql/009) where the server has it
		// (a server built without lz4 offers no 'lz4' for default_toast_compression)
		const hasLz4 = await sql(`SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression';`) === 't';
		const lz4 = await sql(`SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.integration_events'::regclass
			AND attname IN ('payload', 'body') AND attcompression = 'l';`);
		assert.equal(lz4, hasLz4 ? '2' : '0', `sql/009 sets lz4 on payload and body where the server has it (lz4: ${hasLz4})`);
		assert.equal(await sql(`SELECT pg_column_compression(payload) FROM public.integration_events WHERE ${eventWhere('github', id)};`),
			hasLz4 ? 'lz4' : 'pglz');
		// one byte more is refused before anything is stored
		const over = await githubDelivery({ body: bodyOfSize(MAX_BODY_BYTES + 1) });
		assertError(await deliver(over), 413, 'payload_too_large');
		assert.equal(await eventCount('github', over.eventId), 0);
	});

	test('Slack url_verification: answered with its challenge after verification, and only then', async () => {
		const challenge = `${rnd(20)}`;
		const ts = now();
		const body = JSON.stringify({ token: rnd(), challenge, type: 'url_verification' });
		const good = { provider: 'slack', body, headers: { 'x-slack-request-timestamp': String(ts), 'x-slack-signature': slackSignature(SECRET.slack, ts, body) } };
		const res = await deliver(good);
		assert.deepEqual(assertOk(res), { challenge }, show(res));

		const forged = { ...good, headers: { ...good.headers, 'x-slack-signature': slackSignature(rnd(16), ts, body) } };
		const bad = await deliver(forged);
		assertRejected(bad, forged, 'slack challenge forged');
		assert.ok(!bad.text.includes(challenge), 'the challenge was echoed without a valid signature');
		const unsigned = { ...good, headers: { 'x-slack-request-timestamp': String(ts) } };
		const bad2 = await deliver(unsigned);
		assertRejected(bad2, unsigned, 'slack challenge unsigned');
		assert.ok(!bad2.text.includes(challenge));
		const stale = { ...good, headers: { 'x-slack-request-timestamp': String(ts - 400), 'x-slack-signature': slackSignature(SECRET.slack, ts - 400, body) } };
		assertRejected(await deliver(stale), stale, 'slack challenge stale');
	});

	test('rotation: a delivery signed with GITHUB_WEBHOOK_PREVIOUS_SECRET verifies too', async () => {
		const d = await githubDelivery({ secret: SECRET.github_previous });
		assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false });
		await assertStoredOnce(d);
		// a secret that is neither current nor previous does not
		const other = await githubDelivery({ secret: rnd(32) });
		assertRejected(await deliver(other), other, 'github unknown secret');
		assert.equal(await eventCount('github', other.eventId), 0);
	});

	test('the same delivery 12 times at once: stored once, exactly one answer says duplicate:false', async () => {
		const d = await stripeDelivery();
		const answers = await Promise.all(Array.from({ length: 12 }, () => deliver(d)));
		for (const a of answers) assertOk(a);
		const fresh = answers.filter((a) => a.json.duplicate === false).length;
		assert.equal(fresh, 1, `answers: ${answers.map((a) => a.text).join(' ')}`);
		await assertStoredOnce(d);
	});

	test('Svix: the svix-* header aliases are accepted; one family per delivery', async () => {
		const d = svixDelivery({ family: 'svix' });
		assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false });
		const { row } = await assertStoredOnce(d);
		assert.equal(row.event_id, d.eventId);
		// the same message by its webhook-* name is the same event
		const again = svixDelivery({ id: d.eventId, body: d.body });
		assert.deepEqual(assertOk(await deliver(again)), { received: true, duplicate: true });

		// an id from one family and the signature from the other is refused
		const m = svixDelivery();
		const mixed = { ...m, headers: { 'webhook-id': m.eventId, 'svix-timestamp': m.headers['webhook-timestamp'], 'svix-signature': m.headers['webhook-signature'] } };
		assertRejected(await deliver(mixed), mixed, 'svix mixed families');
		assert.equal(await eventCount('svix', m.eventId), 0);
	});

	test('Standard Webhooks: several space-separated signatures, only the last one matches', async () => {
		const d = svixDelivery();
		const good = d.headers['webhook-signature'];
		const wrong = new StandardWebhook(`whsec_${randomBytes(24).toString('base64')}`).sign(d.eventId, new Date(Number(d.headers['webhook-timestamp']) * 1000), d.body);
		const list = `${wrong} v1a,${randomBytes(64).toString('base64')} v2,${good.slice(3)} ${good}`;
		const res = await deliver(d, { headers: { ...d.headers, 'webhook-signature': list } });
		assert.deepEqual(assertOk(res), { received: true, duplicate: false }, show(res));
		await assertStoredOnce(d);
		// the same list without the last one: nothing matches
		const d2 = svixDelivery();
		const bad = { ...d2, headers: { ...d2.headers, 'webhook-signature': `${wrong} v2,${d2.headers['webhook-signature'].slice(3)}` } };
		assertRejected(await deliver(bad), bad, 'standard no v1 match');
	});

	test('Stripe: several v1 signatures, one of them valid (a secret rolled on Stripe\'s side)', async () => {
		const d = stripeDelivery();
		const other = stripeDelivery({ secret: `whsec_${rnd(16)}`, id: d.eventId, body: d.body });
		const t = /t=(\d+)/.exec(d.headers['stripe-signature'])[1];
		const v1good = /v1=([0-9a-f]+)/.exec(d.headers['stripe-signature'])[1];
		const v1bad = /v1=([0-9a-f]+)/.exec(other.headers['stripe-signature'])[1];
		const res = await deliver(d, { headers: { 'stripe-signature': `t=${t},v1=${v1bad},v0=${v1bad},v1=${v1good}` } });
		assert.deepEqual(assertOk(res), { received: true, duplicate: false }, show(res));
		await assertStoredOnce(d);
		// only v0 (test mode scheme) carrying the right MAC is not enough
		const d2 = stripeDelivery();
		const t2 = /t=(\d+)/.exec(d2.headers['stripe-signature'])[1];
		const good2 = /v1=([0-9a-f]+)/.exec(d2.headers['stripe-signature'])[1];
		const v0only = { ...d2, headers: { 'stripe-signature': `t=${t2},v0=${good2}` } };
		assertRejected(await deliver(v0only), v0only, 'stripe v0 only');
		// two t= items are refused
		const twoT = { ...d2, headers: { 'stripe-signature': `t=${t2},t=${t2},v1=${good2}` } };
		assertRejected(await deliver(twoT), twoT, 'stripe two t');
		assert.equal(await eventCount('stripe', d2.eventId), 0);
	});

	test('non-JSON bodies are verified and stored too: form-encoded as text, binary as base64', async () => {
		const form = `payload=${encodeURIComponent(JSON.stringify({ zen: 'Keep it logically awesome.', n: rnd() }))}`;
		const d = await githubDelivery({ body: form, event: 'ping' });
		d.headers['content-type'] = 'application/x-www-form-urlencoded';
		assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false });
		const row = await eventRow('github', d.eventId);
		assert.equal(row.payload, null);
		assert.equal(row.body, form);
		assert.equal(row.event_type, 'ping');

		// GitHub's scheme by hand over bytes that are not UTF-8
		const bin = Buffer.concat([randomBytes(64), Buffer.from([0xff, 0xfe, 0x00, 0x80])]);
		const id = randomUUID();
		const bd = {
			provider: 'github', eventId: id, body: bin,
			headers: {
				'content-type': 'application/octet-stream', 'x-github-event': 'binary', 'x-github-delivery': id,
				'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET.github).update(bin).digest('hex')}`,
			},
		};
		assert.deepEqual(assertOk(await deliver(bd)), { received: true, duplicate: false });
		const brow = await eventRow('github', id);
		assert.equal(brow.payload, null);
		assert.equal(brow.body, `base64:${bin.toString('base64')}`);
	});

	test('a valid delivery whose bytes PostgreSQL refuses as JSON or UTF-8 is still stored (never 4xx/5xx for a verified body)', async () => {
		const bodies = [
			Buffer.from(`{"a":1} and then some text ${rnd()}`), // cJSON stops early; jsonb refuses trailing text
			Buffer.from(`{"a":"tab\there","n":"${rnd()}"}`), // raw control character inside a string
			Buffer.from(`{"a":+1,"n":"${rnd()}"}`), // a number form JSON does not have
			Buffer.from(`{"a":.5,"n":"${rnd()}"}`),
			Buffer.concat([Buffer.from(`{"n":"${rnd()}","s":"`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), // UTF-16 surrogate in UTF-8
			Buffer.concat([Buffer.from(`{"n":"${rnd()}","s":"`), Buffer.from([0xc0, 0x80]), Buffer.from('"}')]), // overlong NUL
			Buffer.concat([Buffer.from(`{"n":"${rnd()}","s":"`), Buffer.from([0xf5, 0x80, 0x80, 0x80]), Buffer.from('"}')]), // beyond U+10FFFF
			Buffer.from(`{"a":"\\u0000","n":"${rnd()}"}`), // jsonb refuses \u0000
			Buffer.from(`{"a":"\\ud800x","n":"${rnd()}"}`), // a lone surrogate escape
			Buffer.from(`{"a":1e999999,"n":"${rnd()}"}`), // beyond numeric
			Buffer.from(`${'['.repeat(3000)}"${rnd()}"${']'.repeat(3000)}`), // deeper than is reasonable
		];
		const failures = [];
		for (const body of bodies) {
			const id = randomUUID();
			const d = {
				provider: 'github', eventId: id, body,
				headers: {
					'x-github-event': 'push', 'x-github-delivery': id,
					'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET.github).update(body).digest('hex')}`,
				},
			};
			const res = await deliver(d);
			if (res.status !== 200 || await eventCount('github', id) !== 1) {
				failures.push(`${JSON.stringify(body.toString('latin1'))}: ${show(res)}`);
				continue;
			}
			const row = await eventRow('github', id);
			// kept losslessly: as text when it is UTF-8 text, else base64 of the bytes
			if (row.body?.startsWith('base64:')) assert.deepEqual(Buffer.from(row.body.slice(7), 'base64'), body);
			else assert.equal(row.body, body.toString('utf8'));
		}
		assert.deepEqual(failures, [], `verified deliveries not stored:\n${failures.join('\n')}`);
	});

	test('JSON that jsonb takes is stored as jsonb, in every form JSON allows', async () => {
		const bodies = [
			`\t\r\n [1, -7, 0.5, -1.25E+10, 3e-7, {"a": null, "b": [true, false]}, "${rnd()}"] \n`,
			`{"emoji":"\\ud83d\\ude00 \u{1F600}","esc":"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9","n":"${rnd()}"}`,
			`"${rnd()} just a string"`,
			`{"deep":${'['.repeat(100)}"${rnd()}"${']'.repeat(100)}}`,
		];
		for (const body of bodies) {
			const d = await githubDelivery({ body });
			assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false }, body);
			const row = await eventRow('github', d.eventId);
			assert.equal(row.body, null, `stored as text, not jsonb: ${body}`);
			assert.deepEqual(row.payload, JSON.parse(body));
		}
	});

	test('unknown provider, or one without webhooks: 400 unknown_provider; GET: 405', async () => {
		const d = await githubDelivery();
		assertError(await deliver(d, { provider: `nosuch${rnd(3)}` }), 400, 'unknown_provider');
		assertError(await deliver(d, { provider: 'airtable' }), 400, 'unknown_provider');
		assert.equal(await eventCount('github', d.eventId), 0);
		const res = await get(whPath('github'));
		assertError(res, 405, 'method_not_allowed');
		const res2 = await http('PUT', whPath('stripe'), { body: '{}' });
		assertError(res2, 405, 'method_not_allowed');
	});
});

// ---------- secrets per webhook_id (integration_webhooks rows) ----------

describe('webhooks: per-webhook secrets (intauthctl webhook-add)', () => {
	test('two secrets both verify; other secrets, other rows, unknown and garbage ids: 401; the event links the row\'s integration and user', async () => {
		const u = newUser();
		const integ = assertOk(await storeCredentials(u.token, oauthBody({ provider: 'github' }))).integration;
		const s1 = rnd(24);
		const s2 = `${rnd(10)}"\\é`; // needs JSON escaping inside the sealed list
		const add = await intauthctl(['webhook-add', '--user', u.id, '--provider', 'github', '--integration', integ.id, '--secret', s1, '--secret', s2]);
		assert.equal(add.code, 0, `webhook-add failed: ${add.stderr}`);
		const wid = add.stdout.trim();
		assert.match(wid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `webhook-add printed ${JSON.stringify(add.stdout)}`);

		// stored encrypted, bound to the current key
		const stored = JSON.parse(await sql(`SELECT row_to_json(w) FROM (SELECT user_id, integration_id, provider, key_id, secrets, active FROM public.integration_webhooks WHERE id = ${lit(wid)}) w;`));
		assert.equal(stored.user_id, u.id);
		assert.equal(stored.integration_id, integ.id);
		assert.equal(stored.provider, 'github');
		assert.equal(stored.active, true);
		assert.match(stored.secrets, /^v2\.[0-9a-f]{8}\./);
		assert.equal(stored.secrets.split('.')[1], stored.key_id);
		assertNoSecrets(stored.secrets, [s1, s2, Buffer.from(s1).toString('base64')], 'stored secrets');

		for (const secret of [s1, s2]) {
			const d = { ...(await githubDelivery({ secret })), webhookId: wid };
			const res = await deliver(d);
			assert.deepEqual(assertOk(res), { received: true, duplicate: false }, show(res));
			const { row, job } = await assertStoredOnce(d);
			assert.equal(row.webhook_id, wid);
			assert.equal(row.integration_id, integ.id);
			assert.equal(row.user_id, u.id);
			assert.equal(job.integration_id, integ.id);
			assert.equal(job.user_id, u.id);
		}

		// the id in upper case names the same row (UUIDs are case-insensitive)
		const upper = { ...(await githubDelivery({ secret: s1 })), webhookId: wid.toUpperCase() };
		assert.deepEqual(assertOk(await deliver(upper)), { received: true, duplicate: false });
		assert.equal((await eventRow('github', upper.eventId)).webhook_id, wid);

		// the environment's secret does not open a webhook that has its own
		const envSigned = { ...(await githubDelivery()), webhookId: wid };
		assertRejected(await deliver(envSigned), envSigned, 'env secret on a webhook row');

		// another user's webhook, with its own secret
		const v = newUser();
		const t = rnd(24);
		const add2 = await intauthctl(['webhook-add', '--user', v.id, '--provider', 'github', '--secret', t]);
		assert.equal(add2.code, 0, add2.stderr);
		const wid2 = add2.stdout.trim();
		const cross1 = { ...(await githubDelivery({ secret: s1 })), webhookId: wid2 };
		assertRejected(await deliver(cross1), cross1, 'secret of another webhook');
		const cross2 = { ...(await githubDelivery({ secret: t })), webhookId: wid };
		assertRejected(await deliver(cross2), cross2, 'secret of another webhook (2)');
		const own2 = { ...(await githubDelivery({ secret: t })), webhookId: wid2 };
		assertOk(await deliver(own2));
		const row2 = await eventRow('github', own2.eventId);
		assert.equal(row2.user_id, v.id);
		assert.equal(row2.integration_id, null);

		// unknown, garbage, and the right id under another provider
		for (const [what, id, provider] of [['unknown id', randomUUID(), 'github'], ['garbage id', 'not-a-uuid', 'github'],
			['sql-ish id', "x'%20OR%201=1--", 'github'], ['other provider', wid, 'shopify']]) {
			const d = { ...(await githubDelivery({ secret: s1 })), webhookId: id, provider };
			if (provider === 'shopify') d.headers['x-shopify-hmac-sha256'] = shopifySignature(s1, d.body);
			assertRejected(await deliver(d), d, what);
			assert.equal(await eventCount(provider, d.eventId), 0, what);
		}

		// a ciphertext copied into another row does not open there (bound to
		// its row): our fault, not the sender's, so 500 (the provider retries)
		// and an alarm in the log; nothing stored, whichever secret signed it
		await sql(`UPDATE public.integration_webhooks SET secrets = (SELECT secrets FROM public.integration_webhooks WHERE id = ${lit(wid)}) WHERE id = ${lit(wid2)};`);
		for (const secret of [s1, t]) {
			const moved = { ...(await githubDelivery({ secret })), webhookId: wid2 };
			const res = await deliver(moved);
			assertError(res, 500, 'internal_error');
			assertNoSecrets(res.text, [s1, t], 'the 500 answer');
			assert.equal(await eventCount('github', moved.eventId), 0, 'nothing stored for a row that does not decrypt');
		}
		assert.ok(/webhook_secret_decrypt_failed/.test(allLogs()), 'a ciphertext that fails to open is not logged as an alarm');

		// secrets on stdin, one per line (out of ps and shell history); both verify
		const p1 = rnd(24);
		const p2 = rnd(24);
		const viaStdin = await intauthctl(['webhook-add', '--user', u.id, '--provider', 'github', '--secrets-stdin'],
			{ input: `${p1}\r\n\n${p2}\n` });
		assert.equal(viaStdin.code, 0, `webhook-add --secrets-stdin: ${viaStdin.stderr}`);
		const wid3 = viaStdin.stdout.trim();
		for (const secret of [p1, p2]) {
			const d = { ...(await githubDelivery({ secret })), webhookId: wid3 };
			assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false }, `a secret read from stdin: ${secret === p1 ? 1 : 2}`);
		}
		const crossStdin = { ...(await githubDelivery({ secret: `${p1}\r` })), webhookId: wid3 };
		assertRejected(await deliver(crossStdin), crossStdin, 'the CR of a CRLF line is not part of the secret');
		for (const [what, args, input] of [['nothing on stdin', ['--secrets-stdin'], ''],
			['both ways', ['--secrets-stdin', '--secret', rnd(8)], `${rnd(8)}\n`]]) {
			const bad = await intauthctl(['webhook-add', '--user', u.id, '--provider', 'github', ...args], { input });
			assert.notEqual(bad.code, 0, `webhook-add with ${what} succeeded`);
		}

		// a deactivated webhook verifies nothing
		await sql(`UPDATE public.integration_webhooks SET active = false WHERE id = ${lit(wid)};`);
		const inactive = { ...(await githubDelivery({ secret: s1 })), webhookId: wid };
		assertRejected(await deliver(inactive), inactive, 'inactive webhook');
		assert.equal(await eventCount('github', inactive.eventId), 0);
	});

	test('Standard Webhooks secrets per row (whsec_ keys)', async () => {
		const u = newUser();
		const key = `whsec_${randomBytes(32).toString('base64')}`;
		const add = await intauthctl(['webhook-add', '--user', u.id, '--provider', 'svix', '--secret', key]);
		assert.equal(add.code, 0, add.stderr);
		const d = svixDelivery({ secret: key, webhookId: add.stdout.trim() });
		assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false });
		assert.equal((await eventRow('svix', d.eventId)).user_id, u.id);
		// the env file's svix secret does not open it
		const e = svixDelivery({ webhookId: add.stdout.trim() });
		assertRejected(await deliver(e), e, 'svix env secret on a row');
	});

	test('webhook-add refuses what it cannot store correctly', async () => {
		const u = newUser();
		const v = newUser();
		const integ = assertOk(await storeCredentials(u.token, oauthBody({ provider: 'github' }))).integration;
		const cases = [
			['no secret', ['--user', u.id, '--provider', 'github']],
			['bad user', ['--user', 'nope', '--provider', 'github', '--secret', 'x']],
			['unknown provider', ['--user', u.id, '--provider', `nosuch${rnd(3)}`, '--secret', 'x']],
			['provider without webhooks', ['--user', u.id, '--provider', 'airtable', '--secret', 'x']],
			['empty secret', ['--user', u.id, '--provider', 'github', '--secret', '']],
			['another user\'s integration', ['--user', v.id, '--provider', 'github', '--integration', integ.id, '--secret', 'x']],
			['integration of another provider', ['--user', u.id, '--provider', 'stripe', '--integration', integ.id, '--secret', 'x']],
		];
		for (const [what, args] of cases) {
			const r = await intauthctl(['webhook-add', ...args]);
			assert.notEqual(r.code, 0, `${what}: webhook-add succeeded: ${r.stdout}`);
			assert.equal(r.stdout.trim(), '', `${what}: printed an id`);
		}
		assert.equal(Number(await sql(`SELECT count(*) FROM public.integration_webhooks WHERE user_id IN (${lit(u.id)}, ${lit(v.id)});`)), 0);
		const usage = await intauthctl([]);
		assert.match(usage.stderr, /webhook-add --user UUID --provider NAME/);
	});
});

// ---------- every failure looks the same ----------

// A webhooks process sends one wake-up per IA_DB_WAKE_DEBOUNCE_MS (50 ms);
// the deliveries in between rely on the woken worker polling a while longer
// (IA_DB_WAKE_LINGER_MS). The stack's worker polls every 2 s otherwise.
describe('webhooks: the worker starts each job at once, also when the wake-up was left out', () => {
	test('deliveries 20 ms apart, the worker idle in between: each event processed within 300 ms', async () => {
		const rounds = 10;
		const ids = [];
		for (let i = 0; i < rounds; i++) {
			// the stack's two webhooks processes take turns (the one waiting
			// longest accepts): the first and the third delivery go to the
			// same one, 40 ms apart, so the third sends no wake-up. Between
			// them the worker has processed the first two and found the queue
			// empty.
			for (const gap of [20, 20, 400]) {
				const d = await githubDelivery();
				assert.deepEqual(assertOk(await deliver(d)), { received: true, duplicate: false });
				ids.push(d.eventId);
				await new Promise((r) => setTimeout(r, gap));
			}
		}
		const list = ids.map(lit).join(',');
		const done = await poll(async () => psql(`SELECT count(processed_at) FROM public.integration_events
			WHERE provider = 'github' AND event_id IN (${list});`) === String(ids.length) || null, { timeoutMs: 15000, intervalMs: 100 });
		assert.ok(done, 'not every event was processed');
		const lags = psql(`SELECT round(extract(epoch FROM processed_at - received_at) * 1000) FROM public.integration_events
			WHERE provider = 'github' AND event_id IN (${list}) ORDER BY received_at;`).split('\n').map(Number);
		const worst = Math.max(...lags);
		assert.ok(worst < 300, `an event waited ${worst} ms for the worker (its poll is 2 s): ${lags.join(' ')}`);
		console.log(`# ${ids.length} deliveries in threes 20 ms apart: processed after ${Math.min(...lags)}..${worst} ms`);
	});
});

describe('webhooks: failures', () => {
	test('every 401 has the same body, holding no body bytes, signature or secret; logs hold no secret', () => {
		assert.ok(rejections.length >= 30, `only ${rejections.length} rejections were collected`);
		const bodies = new Set(rejections.map((r) => r.text));
		assert.equal(bodies.size, 1, `different 401 bodies:\n${[...bodies].join('\n')}`);
		const allSecrets = Object.values(SECRET);
		for (const r of rejections) {
			assertNoSecrets(r.text, allSecrets, `401 answer (${r.what})`);
			assert.ok(!r.text.includes(r.body.slice(0, 40)), `the 401 answer (${r.what}) echoes the body`);
			const nonceMatch = /"nonce":"(n[0-9a-f]+)"/.exec(r.body);
			if (nonceMatch) assert.ok(!r.text.includes(nonceMatch[1]), `the 401 answer (${r.what}) echoes the body`);
			for (const v of Object.values(Array.isArray(r.headers) ? Object.fromEntries(r.headers) : r.headers || {})) {
				if (String(v).length >= 16) assert.ok(!r.text.includes(v), `the 401 answer (${r.what}) echoes a header`);
			}
		}
		assertNoSecrets(allLogs(), allSecrets, 'stack logs');
	});
});
