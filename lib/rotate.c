/* rotate: re-encrypting stored secrets under the current key (ia_rotate.h).
 *
 * Each table is walked in primary-key order (keyset pagination), so a row that
 * cannot be opened or is locked by someone else is passed over instead of
 * being picked again forever. A batch is one transaction: claim up to `batch`
 * rows not under the current key with FOR UPDATE SKIP LOCKED, open and re-seal
 * each with its own row context, write them back in one statement whose
 * WHERE clause also names the old ciphertext (compare-and-set), commit.
 *
 * A row is done when its envelope has the current version and kid
 * (IA_ENVELOPE_PREFIX + kid), so older-version envelopes are rewritten too.
 * What is under which key is read from the envelope itself, never from the
 * key_id column beside it: the column is only a hint (the owner's role may
 * write it), and trusting it would report a row done that still needs the
 * old key, which the operator then drops.
 */
#include "ia_rotate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ia_buf.h"
#include "ia_crypto.h"
#include "ia_db.h"
#include "ia_events.h"
#include "ia_integrations.h"
#include "ia_log.h"
#include "ia_oauth.h"
#include "ia_tokens.h"

#define CONTEXT_MAX 256
/* one row of the update list: an id, two envelopes of at most this, punctuation */
#define ENVELOPE_MAX ((size_t)(IA_SECRET_MAX + 64) / 3 * 4 + 64)
#define UPDATE_ROW_MAX (2 * ENVELOPE_MAX + 128)
/* one UPDATE's JSON parameter: past this a batch ends early (the rest of its
 * claimed rows come in the next one), so large secrets never push a statement
 * towards PostgreSQL's 1 GB limit or the client's memory */
#define UPDATE_BYTES_MAX ((size_t)16 << 20)

_Static_assert(IA_CREDENTIAL_CONTEXT_MAX <= CONTEXT_MAX, "context buffers");

/* SQL: the envelope in column col is not of the current version and key ($1,
 * the current kid): its first 12 characters are the prefix, the kid, a dot */
#define NOT_CURRENT(col) "left(" col ", 12) <> '" IA_ENVELOPE_PREFIX "' || $1 || '.'"
_Static_assert(sizeof IA_ENVELOPE_PREFIX - 1 + IA_KID_CHARS + 1 == 12, "envelope head length");

typedef void (*context_fn)(char out[CONTEXT_MAX], const char *a, const char *b, const char *c);
/* What is sealed again instead of what was opened (NULL: the same): 0 with
 * *plain replaced (the old one freed), -1 leaving it as it is. b and c are
 * the row's second and third context parts. */
typedef int (*unwrap_fn)(const ia_app *app, char **plain, size_t *plain_len, const char *b,
			 const char *c);

/* Which rows of each table still need re-sealing: one filter, used by both the
 * batch select and the count, so the two can never disagree. */
#define CREDENTIAL_PENDING NOT_CURRENT("c.secret")
#define WEBHOOK_PENDING NOT_CURRENT("w.secrets")
/* only flows still in progress: a used or expired state is never opened again
 * (and is deleted a day later) */
#define STATE_PENDING                                                                    \
	"s.code_verifier IS NOT NULL AND " NOT_CURRENT("s.code_verifier")                \
	" AND s.used_at IS NULL AND s.expires_at > now()"
/* a dead job can be queued again (intauthctl jobs retry): only succeeded ones
 * are done for good. One that keeps a credential no key opened at disconnect
 * time ("unopened") is pending whatever its own seal: the credential inside
 * may be under a key about to be dropped. */
#define REVOKE_JOB_PENDING                                                               \
	"j.kind = 'revoke_retry' AND j.status <> 'succeeded'"                            \
	" AND jsonb_typeof(j.payload->'secret') = 'string'"                              \
	" AND (" NOT_CURRENT("j.payload->>'secret'") " OR j.payload ? 'unopened')"

/* One kind of sealed value. select: $1 current kid, $2 last id seen, $3 batch;
 * columns id, envelope, then the three context parts. update: $1 current kid
 * (when n_update_params is 2), $2 (or $1) a JSON array of {id, old, new};
 * updates only rows whose envelope is still `old`. count: $1 current kid. */
typedef struct rotate_table {
	const char *name;
	const char *first_id;
	const char *select_sql;
	const char *update_sql;
	const char *count_sql;
	int n_update_params;
	context_fn context;
	unwrap_fn unwrap;
} rotate_table;

/* A revoke_retry job that keeps an unopened credential is sealed again
 * holding the credential itself, which the ring opens now (context parts:
 * integration id, user id, provider). */
static int unwrap_revoke_credential(const ia_app *app, char **plain, size_t *plain_len,
				    const char *user_id, const char *provider)
{
	char *cred = NULL;
	size_t cred_len = 0;
	ia_err ignored = { 0 };

	if (ia_revoke_retry_credential(app, *plain, *plain_len, user_id, provider, &cred, &cred_len,
				       &ignored))
		return -1;
	ia_secret_free(*plain, *plain_len);
	*plain = cred;
	*plain_len = cred_len;
	return 0;
}

static const rotate_table tables[] = {
	{
		"credentials", "00000000-0000-0000-0000-000000000000",
		/* the integration's user and provider: what the readers bind with */
		"SELECT c.id::text, c.secret, c.id::text, i.user_id::text, i.provider"
		" FROM public.credentials c JOIN public.integrations i ON i.id = c.integration_id"
		" WHERE " CREDENTIAL_PENDING " AND c.id > $2::uuid"
		" ORDER BY c.id LIMIT $3::int FOR UPDATE OF c SKIP LOCKED",
		"UPDATE public.credentials c SET key_id = $1, secret = r.new"
		" FROM jsonb_to_recordset($2::jsonb) AS r(id uuid, old text, new text)"
		" WHERE c.id = r.id AND c.secret = r.old",
		"SELECT count(*) FROM public.credentials c WHERE " CREDENTIAL_PENDING,
		2, ia_credential_context, NULL,
	},
	{
		"integration_webhooks", "00000000-0000-0000-0000-000000000000",
		"SELECT w.id::text, w.secrets, w.id::text, w.user_id::text, w.provider"
		" FROM public.integration_webhooks w"
		" WHERE " WEBHOOK_PENDING " AND w.id > $2::uuid"
		" ORDER BY w.id LIMIT $3::int FOR UPDATE SKIP LOCKED",
		"UPDATE public.integration_webhooks w SET key_id = $1, secrets = r.new"
		" FROM jsonb_to_recordset($2::jsonb) AS r(id uuid, old text, new text)"
		" WHERE w.id = r.id AND w.secrets = r.old",
		"SELECT count(*) FROM public.integration_webhooks w WHERE " WEBHOOK_PENDING,
		2, ia_webhook_secret_context, NULL,
	},
	{
		"oauth_states", "00000000-0000-0000-0000-000000000000",
		"SELECT s.id::text, s.code_verifier, s.state_hash, s.user_id::text, s.provider"
		" FROM public.oauth_states s"
		" WHERE " STATE_PENDING " AND s.id > $2::uuid"
		" ORDER BY s.id LIMIT $3::int FOR UPDATE SKIP LOCKED",
		"UPDATE public.oauth_states s SET code_verifier = r.new"
		" FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, old text, new text)"
		" WHERE s.id = r.id AND s.code_verifier = r.old",
		"SELECT count(*) FROM public.oauth_states s WHERE " STATE_PENDING,
		1, ia_oauth_verifier_context, NULL,
	},
	{
		"revoke_retry jobs", "0",
		"SELECT j.id::text, j.payload->>'secret', j.payload->>'integration_id',"
		"  coalesce(j.user_id::text, ''), j.payload->>'provider'"
		" FROM public.integration_sync_jobs j"
		" WHERE " REVOKE_JOB_PENDING " AND j.id > $2::bigint"
		" ORDER BY j.id LIMIT $3::int FOR UPDATE SKIP LOCKED",
		"UPDATE public.integration_sync_jobs j"
		" SET payload = jsonb_set(j.payload, '{secret}', to_jsonb(r.new)) - 'unopened'"
		" FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, old text, new text)"
		" WHERE j.id = r.id AND j.payload->>'secret' = r.old",
		"SELECT count(*) FROM public.integration_sync_jobs j WHERE " REVOKE_JOB_PENDING,
		1, ia_revoke_retry_context, unwrap_revoke_credential,
	},
};

/* Appends {"id":..,"old":..,"new":..} to the update list. */
static int add_update(ia_buf *json, const char *id, const char *old_env, const char *new_env)
{
	return (json->len > 1 && ia_buf_putc(json, ',')) || ia_buf_puts(json, "{\"id\":\"") ||
	       ia_buf_json_escape(json, id) || ia_buf_puts(json, "\",\"old\":\"") ||
	       ia_buf_json_escape(json, old_env) || ia_buf_puts(json, "\",\"new\":\"") ||
	       ia_buf_json_escape(json, new_env) || ia_buf_puts(json, "\"}") ? -1 : 0;
}

/* One batch: 1 when rows were claimed (more may follow), 0 when the table is
 * done, -1 with err. *last is the id to continue after. */
static int rotate_batch(ia_app *app, const rotate_table *t, const char *kid, const char *limit,
			char last[40], ia_rotate_table_counts *c, ia_err *err)
{
	const char *sel_params[] = { kid, last, limit };
	PGresult *res = NULL, *upd = NULL;
	ia_buf json;
	long claimed = 0, written = 0, attempted = 0, processed = 0;
	int rc = -1;

	ia_buf_init(&json, 0);
	if (ia_db_begin(&app->db, NULL, err))
		goto out;
	if (!(res = ia_db_exec(&app->db, t->select_sql, 3, sel_params, err)))
		goto out;
	claimed = PQntuples(res);
	if (claimed == 0) {
		rc = ia_db_commit(&app->db, err) ? -1 : 0;
		goto out;
	}
	ia_buf_init(&json, UPDATE_BYTES_MAX + UPDATE_ROW_MAX + 16);
	if (ia_buf_putc(&json, '[')) {
		ia_err_oom(err);
		goto out;
	}
	for (long i = 0; i < claimed && json.len < UPDATE_BYTES_MAX; i++, processed++) {
		const char *id = PQgetvalue(res, (int)i, 0), *old_env = PQgetvalue(res, (int)i, 1);
		char context[CONTEXT_MAX], *plain = NULL, *sealed = NULL;
		size_t plain_len = 0;

		t->context(context, PQgetvalue(res, (int)i, 2), PQgetvalue(res, (int)i, 3),
			   PQgetvalue(res, (int)i, 4));
		if (ia_crypto_open(app->cfg.keys, old_env, context, &plain, &plain_len) != 0) {
			/* a key missing from the ring, or a row not as it was written:
			 * leave it exactly as it is for someone to look at */
			ia_log(IA_LOG_ERROR, "rotate_decrypt_failed", "%s row %s does not decrypt",
			       t->name, id);
			c->failed++;
			continue;
		}
		if (t->unwrap && t->unwrap(app, &plain, &plain_len, PQgetvalue(res, (int)i, 3),
					   PQgetvalue(res, (int)i, 4)) != 0) {
			ia_log(IA_LOG_ERROR, "rotate_decrypt_failed",
			       "%s row %s: the credential it keeps does not decrypt", t->name, id);
			ia_secret_free(plain, plain_len);
			c->failed++;
			continue;
		}
		int sealed_ok = ia_crypto_seal(app->cfg.keys, plain, plain_len, context, &sealed) == 0;
		ia_secret_free(plain, plain_len);
		if (!sealed_ok || add_update(&json, id, old_env, sealed)) {
			free(sealed);
			ia_err_oom(err);
			goto out;
		}
		free(sealed);
		attempted++;
	}
	if (attempted > 0) {
		if (ia_buf_putc(&json, ']')) {
			ia_err_oom(err);
			goto out;
		}
		const char *upd_params[] = { kid, ia_buf_cstr(&json) };
		upd = ia_db_exec(&app->db, t->update_sql, t->n_update_params,
				 t->n_update_params == 2 ? upd_params : upd_params + 1, err);
		if (!upd)
			goto out;
		written = strtol(PQcmdTuples(upd), NULL, 10);
	}
	if (ia_db_commit(&app->db, err))
		goto out;
	/* only now, after the commit, do the counts say it happened */
	c->rotated += written;
	c->changed += attempted - written;
	snprintf(last, 40, "%s", PQgetvalue(res, (int)processed - 1, 0));
	rc = 1;
out:
	if (rc < 0)
		ia_db_rollback(&app->db);
	PQclear(res);
	PQclear(upd);
	ia_buf_release(&json);
	return rc;
}

static int count_remaining(ia_app *app, const char *sql, const char *kid, long *out, ia_err *err)
{
	const char *params[] = { kid };
	PGresult *res = NULL;
	int rc = -1;

	if (ia_db_begin(&app->db, NULL, err))
		return -1;
	if (!(res = ia_db_exec(&app->db, sql, 1, params, err)) || ia_db_commit(&app->db, err))
		goto out;
	*out = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	rc = 0;
out:
	if (rc)
		ia_db_rollback(&app->db);
	PQclear(res);
	return rc;
}

int ia_rotate_keys(ia_app *app, long batch, ia_rotate_counts *counts, ia_err *err)
{
	ia_rotate_table_counts *per[] = {
		&counts->credentials, &counts->webhooks, &counts->oauth_states, &counts->revoke_jobs,
	};
	char limit[24];

	memset(counts, 0, sizeof *counts);
	if (batch < 1 || batch > IA_ROTATE_BATCH_MAX)
		return ia_err_set(err, 400, "invalid_request", "The batch size must be 1 to %d.",
				  IA_ROTATE_BATCH_MAX);
	if (!app->cfg.keys)
		return ia_err_set(err, 500, "internal_error", "No key ring is loaded.");
	const char *kid = ia_keyring_current_kid(app->cfg.keys);
	snprintf(limit, sizeof limit, "%ld", batch);

	for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
		char last[40];
		int r;

		snprintf(last, sizeof last, "%s", tables[t].first_id);
		while ((r = rotate_batch(app, &tables[t], kid, limit, last, per[t], err)) == 1)
			counts->batches++;
		if (r < 0)
			return -1;
		if (count_remaining(app, tables[t].count_sql, kid, &per[t]->remaining, err))
			return -1;
		ia_log(IA_LOG_INFO, "rotate_table_done",
		       "%s: %ld rotated, %ld changed meanwhile, %ld failed, %ld remaining",
		       tables[t].name, per[t]->rotated, per[t]->changed, per[t]->failed,
		       per[t]->remaining);
	}
	return 0;
}
