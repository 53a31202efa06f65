// GET /metrics: Prometheus text of every program's shared counters and the
// job queue. nginx lets only loopback reach it (the tests run on loopback).
import test from 'node:test';
import assert from 'node:assert/strict';
import { get, fn, newUser, post, storeCredentials, assertOk } from './lib.mjs';

async function scrape() {
	const res = await get('/metrics');
	assert.equal(res.status, 200, 'GET /metrics answers 200');
	assert.match(res.headers.get('content-type') || '', /^text\/plain/);
	const samples = new Map();
	for (const line of res.text.split('\n')) {
		if (!line || line.startsWith('#')) continue;
		const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/);
		assert.ok(m, `a well-formed sample line: ${line}`);
		samples.set(m[1], Number(m[2]));
	}
	return { text: res.text, samples };
}

const value = (s, key) => s.samples.get(key) ?? 0;

test('request counters grow by route and status', async () => {
	const before = await scrape();
	for (let i = 0; i < 3; i++)
		assert.equal((await get('/api/providers')).status, 200);
	const bad = await post(fn('storeCredentials'), { provider: 'openai' }, { token: 'not-a-jwt' });
	assert.equal(bad.status, 401);
	const after = await scrape();
	assert.ok(value(after, 'intauth_requests_total{route="integrations",status="200"}') >=
		value(before, 'intauth_requests_total{route="integrations",status="200"}') + 3);
	assert.equal(value(after, 'intauth_requests_total{route="storeCredentials",status="401"}'),
		value(before, 'intauth_requests_total{route="storeCredentials",status="401"}') + 1);
});

test('the latency histogram is cumulative and ends at the count', async () => {
	const user = newUser();
	const res = await storeCredentials(user.token, {
		provider: 'openai', auth_type: 'api_key', credentials: { api_key: 'sk-metrics-' + user.id },
	});
	assertOk(res);
	const { samples } = await scrape();
	const buckets = [...samples.entries()]
		.filter(([k]) => k.startsWith('intauth_request_duration_seconds_bucket{route="storeCredentials"'));
	assert.equal(buckets.length, 13, 'thirteen buckets including +Inf');
	for (let i = 1; i < buckets.length; i++)
		assert.ok(buckets[i][1] >= buckets[i - 1][1], 'buckets never decrease');
	const inf = samples.get('intauth_request_duration_seconds_bucket{route="storeCredentials",le="+Inf"}');
	assert.equal(inf, samples.get('intauth_request_duration_seconds_count{route="storeCredentials"}'));
	assert.ok(inf >= 1);
	assert.ok(samples.get('intauth_request_duration_seconds_sum{route="storeCredentials"}') > 0);
});

test('webhook verifications are counted by result', async () => {
	const before = await scrape();
	const bad = await post(fn('webhooks/github'), '{"zen":"x"}', {
		headers: { 'x-hub-signature-256': 'sha256=' + '0'.repeat(64), 'x-github-delivery': 'metrics-test' },
	});
	assert.equal(bad.status, 401);
	const after = await scrape();
	assert.equal(value(after, 'intauth_webhook_verifications_total{result="rejected"}'),
		value(before, 'intauth_webhook_verifications_total{result="rejected"}') + 1);
});

test('refresh, webhook and queue series are exported', async () => {
	const { samples, text } = await scrape();
	for (const key of [
		'intauth_token_refreshes_total{outcome="refreshed"}',
		'intauth_token_refreshes_total{outcome="failed"}',
		'intauth_token_refreshes_total{outcome="rejected"}',
		'intauth_webhook_verifications_total{result="verified"}',
		'intauth_webhook_verifications_total{result="rejected"}',
		'intauth_jobs{status="queued"}', 'intauth_jobs{status="dead"}',
		'intauth_jobs_oldest_due_seconds',
	])
		assert.ok(samples.has(key), `${key} is exported`);
	assert.doesNotMatch(text, /secret|token=/i, 'no secret-looking text');
});
