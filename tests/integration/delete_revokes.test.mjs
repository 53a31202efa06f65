// DELETE /api/integrations/{id} of an OAuth connection: the answer is
// immediate, and the tokens do not stay alive at the provider: a revoke_retry
// job carrying the re-sealed credential is queued with the delete, and the
// worker revokes both tokens (RFC 7009).
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { introspect } from '../oauth/consent.mjs';
import {
	assertOk, connectTestOidc, del, getCredentials, holdRowLock, lit, newUser, poll, psql, storeCredentials,
} from './lib.mjs';

const ISSUER = process.env.OAUTH_ISSUER;
const CLIENT = { id: process.env.TESTOIDC_CLIENT_ID, secret: process.env.TESTOIDC_CLIENT_SECRET };

test('deleting an OAuth connection revokes its tokens at the provider', { timeout: 60000 }, async () => {
	const user = newUser();
	const { id } = await connectTestOidc(user);
	const creds = assertOk(await getCredentials({ integration_id: id })).credentials;
	assert.equal((await introspect(ISSUER, creds.access_token, CLIENT)).active, true);

	const res = assertOk(await del(`/api/integrations/${id}`, { token: user.token }));
	assert.equal(res.deleted, true);
	assert.equal((await del(`/api/integrations/${id}`, { token: user.token })).status, 404);

	// the worker may already have run it: then its sealed credential is gone too
	const job = psql(`SELECT status || ' ' || coalesce(payload->>'secret', '-') || ' ' || payload::text
		FROM public.integration_sync_jobs
		WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(id)};`);
	assert.match(job, /^(queued|running) v2\.|^(succeeded|failed) /, `a revoke_retry job was queued with the delete: ${job.slice(0, 40)}`);
	assert.ok(!job.includes(creds.access_token), 'the job holds a sealed credential, never plaintext');
	assert.ok(await poll(async () => (await introspect(ISSUER, creds.access_token, CLIENT)).active === false,
		{ timeoutMs: 20000, intervalMs: 300 }), 'the worker revoked the access token at the provider');
	assert.ok(await poll(async () => psql(`SELECT status FROM public.integration_sync_jobs
		WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(id)};`) === 'succeeded',
	{ timeoutMs: 10000 }), 'the job ended succeeded');
	assert.equal(psql(`SELECT payload ? 'secret' FROM public.integration_sync_jobs
		WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(id)};`), 'f',
	'the sealed credential is dropped once the job is done');
});

test('a delete queued behind a credential write revokes the tokens that write stored, not the ones it replaced', { timeout: 60000 }, async () => {
	// Played with psql as the writer (a refresh or a reconnect): the row
	// holds an older credential (an access token only, of no grant), the lock
	// holder writes the live one and commits while the DELETE waits for the
	// lock. Revoking the older one would leave the live grant alive.
	const user = newUser();
	const { id } = await connectTestOidc(user);
	const cred = () => psql(`SELECT id || ' ' || secret FROM public.credentials WHERE integration_id = ${lit(id)};`).split(' ');
	const [liveId, liveSecret] = cred();
	const live = assertOk(await getCredentials({ integration_id: id })).credentials.access_token;
	assert.equal((await introspect(ISSUER, live, CLIENT)).active, true);
	assertOk(await storeCredentials(user.token, {
		provider: 'testoidc', auth_type: 'oauth2', credentials: { access_token: `older-${randomUUID()}`, token_type: 'Bearer' },
	}));
	assert.notEqual(cred()[0], liveId, 'the older credential is in place');

	const holder = holdRowLock(id, {
		then: `UPDATE public.credentials SET id = ${lit(liveId)}, secret = ${lit(liveSecret)} WHERE integration_id = ${lit(id)};`,
	});
	await holder.ready;
	// the holder writes the live credential and commits only once the DELETE waits for its lock
	const deleting = del(`/api/integrations/${id}`, { token: user.token });
	await holder.done;
	assert.equal(assertOk(await deleting).deleted, true);
	assert.ok(await poll(() => psql(`SELECT status FROM public.integration_sync_jobs
		WHERE kind = 'revoke_retry' AND payload->>'integration_id' = ${lit(id)};`) === 'succeeded',
	{ timeoutMs: 20000, intervalMs: 200 }), 'the revoke_retry job ended succeeded');
	assert.equal((await introspect(ISSUER, live, CLIENT)).active, false, 'the live grant was revoked');
});
