// DELETE /api/integrations/{id} of an OAuth connection: the answer is
// immediate, and the tokens do not stay alive at the provider: a revoke_retry
// job carrying the re-sealed credential is queued with the delete, and the
// worker revokes both tokens (RFC 7009).
import test from 'node:test';
import assert from 'node:assert/strict';
import { introspect } from '../oauth/consent.mjs';
import { connectTestOidc, del, getCredentials, assertOk, newUser, poll, psql, lit } from './lib.mjs';

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
