// Encryption at rest (SPEC §5, §6): a full pg_dump holds no plaintext secret;
// a ciphertext moved to another row fails to decrypt (500, an alarm) and never
// answers the other row's secret.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
	ENV, allLogs, apiKeyBody, assertError, assertOk, basicBody, getCredentials, lit, logTail,
	newUser, oauthBody, pgDump, psql, serviceToken, storeCredentials,
} from './lib.mjs';

describe('encryption at rest', () => {
	test('a full pg_dump of the database contains none of the stored secrets', async () => {
		const u = newUser();
		const bodies = [
			apiKeyBody(),
			basicBody(),
			oauthBody(),
			apiKeyBody({ provider: 'stripe', connection: 'acct-2' }),
			{ ...apiKeyBody({ user_id: randomUUID() }) },
		];
		const secrets = [];
		for (const [n, b] of bodies.entries()) {
			const token = b.user_id ? serviceToken() : u.token;
			assert.equal((await storeCredentials(token, b)).status, 200, `store #${n}`);
			for (const v of Object.values(b.credentials)) if (typeof v === 'string' && v.length >= 20) secrets.push(v);
		}
		// and an overwritten (upserted) secret must not linger either
		const old = apiKeyBody({ connection: 'rotated' });
		assertOk(await storeCredentials(u.token, old));
		secrets.push(old.credentials.api_key);
		assertOk(await storeCredentials(u.token, apiKeyBody({ connection: 'rotated' })));

		const dump = await pgDump();
		assert.ok(dump.length > 1000 && dump.includes('credentials'), 'pg_dump produced no dump');
		// the dump does hold our rows (so the check below is meaningful)
		assert.ok(dump.includes(u.id), 'the dump lacks the test user\'s rows');
		for (const s of secrets) {
			assert.ok(!dump.includes(s), `plaintext secret (${s.slice(0, 4)}...) found in pg_dump`);
			assert.ok(!dump.includes(Buffer.from(s).toString('base64')), 'base64 of a secret found in pg_dump');
			assert.ok(!dump.includes(Buffer.from(s).toString('hex')), 'hex of a secret found in pg_dump');
		}
		// the encryption key is not in the database either
		const key = ENV.CREDENTIAL_ENCRYPTION_KEY;
		assert.ok(key && !dump.includes(key), 'the encryption key is in the dump');
		// stored values are envelopes naming their key
		const rows = psql(`SELECT key_id || ' ' || left(secret, 3) FROM public.credentials WHERE user_id = ${lit(u.id)};`).split('\n');
		assert.ok(rows.length >= 5);
		for (const r of rows) assert.match(r, /^\S+ v2\.$/);
	});

	test('no secret reaches the stack\'s logs', async () => {
		const u = newUser();
		const b = oauthBody();
		const i = assertOk(await storeCredentials(u.token, b)).integration;
		assertOk(await getCredentials({ integration_id: i.id }));
		// a failing request with a secret in it, too
		await storeCredentials(u.token, { ...b, provider: 'no_such_provider' });
		const logs = allLogs();
		for (const s of [b.credentials.access_token, b.credentials.refresh_token]) {
			assert.ok(!logs.includes(s), 'a secret is in a log file');
		}
	});

	test('two stores of the same secret give different ciphertexts (fresh nonce)', async () => {
		const u = newUser();
		const key = apiKeyBody().credentials.api_key;
		const i1 = assertOk(await storeCredentials(u.token, { provider: 'openai', credentials: { api_key: key } })).integration;
		const i2 = assertOk(await storeCredentials(u.token, { provider: 'openai', connection: 'b', credentials: { api_key: key } })).integration;
		const [c1, c2] = [i1, i2].map((i) => psql(`SELECT secret FROM public.credentials WHERE integration_id = ${lit(i.id)};`));
		assert.notEqual(c1, c2);
	});
});

describe('a ciphertext bound to its row', () => {
	async function swapCase(a, b, bodyA, bodyB) {
		const ia = assertOk(await storeCredentials(a.token, bodyA)).integration;
		const ib = assertOk(await storeCredentials(b.token, bodyB)).integration;
		// sanity: both decrypt before the swap
		assert.equal(assertOk(await getCredentials({ integration_id: ib.id })).credentials.api_key, bodyB.credentials.api_key);
		psql(`UPDATE public.credentials c SET secret = s.secret, key_id = s.key_id
		      FROM (SELECT secret, key_id FROM public.credentials WHERE integration_id = ${lit(ia.id)}) s
		      WHERE c.integration_id = ${lit(ib.id)};`);
		assert.equal(
			psql(`SELECT count(DISTINCT secret) FROM public.credentials WHERE integration_id IN (${lit(ia.id)}, ${lit(ib.id)});`),
			'1', 'the copy did not happen');
		const res = await getCredentials({ integration_id: ib.id });
		assertError(res, 500, 'internal_error');
		assert.ok(!res.text.includes(bodyA.credentials.api_key), 'the moved secret was answered');
		assert.ok(!res.text.includes(bodyB.credentials.api_key), 'the overwritten secret was answered');
		const byUser = await getCredentials({ user_id: b.id, provider: bodyB.provider, connection: bodyB.connection || 'default' });
		assertError(byUser, 500, 'internal_error');
		assert.ok(!byUser.text.includes(bodyA.credentials.api_key));
		// the original row still decrypts
		assert.equal(assertOk(await getCredentials({ integration_id: ia.id })).credentials.api_key, bodyA.credentials.api_key);
		return ib;
	}

	test('copied into another user\'s row → 500 internal_error, never the other secret', async () => {
		const a = newUser();
		const b = newUser();
		await swapCase(a, b, apiKeyBody(), apiKeyBody());
		const lines = logTail(200, /decrypt/i);
		assert.ok(/decrypt/i.test(lines), `no decrypt alarm in the logs:\n${logTail(10)}`);
	});

	test('copied into the same user\'s other connection (same provider) → 500', async () => {
		const a = newUser();
		await swapCase(a, a, apiKeyBody(), apiKeyBody({ connection: 'other' }));
	});

	test('user_id of the credentials row changed (row moved to another user) → 500', async () => {
		const a = newUser();
		const b = newUser();
		const bodyA = apiKeyBody();
		const ia = assertOk(await storeCredentials(a.token, bodyA)).integration;
		const ib = assertOk(await storeCredentials(b.token, apiKeyBody())).integration;
		// hand A's whole credentials row to B's integration
		psql(`BEGIN;
		      DELETE FROM public.credentials WHERE integration_id = ${lit(ib.id)};
		      UPDATE public.credentials SET integration_id = ${lit(ib.id)}, user_id = ${lit(b.id)} WHERE integration_id = ${lit(ia.id)};
		      COMMIT;`);
		const res = await getCredentials({ integration_id: ib.id });
		assertError(res, 500, 'internal_error');
		assert.ok(!res.text.includes(bodyA.credentials.api_key));
	});

	test('a tampered ciphertext → 500 internal_error', async () => {
		const a = newUser();
		const body = apiKeyBody();
		const ia = assertOk(await storeCredentials(a.token, body)).integration;
		const ct = psql(`SELECT secret FROM public.credentials WHERE integration_id = ${lit(ia.id)};`);
		// flip one character near the end (in the ciphertext or tag)
		const pos = ct.length - 5;
		const ch = ct[pos] === 'A' ? 'B' : 'A';
		const tampered = ct.slice(0, pos) + ch + ct.slice(pos + 1);
		psql(`UPDATE public.credentials SET secret = ${lit(tampered)} WHERE integration_id = ${lit(ia.id)};`);
		const res = await getCredentials({ integration_id: ia.id });
		assertError(res, 500, 'internal_error');
		assert.ok(!res.text.includes(body.credentials.api_key));
		// a truncated envelope too
		psql(`UPDATE public.credentials SET secret = ${lit(ct.slice(0, 12))} WHERE integration_id = ${lit(ia.id)};`);
		assertError(await getCredentials({ integration_id: ia.id }), 500, 'internal_error');
	});
});
