#include "ia_tokens.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "ia_codec.h"
#include "ia_crypto.h"
#include "ia_integrations.h"
#include "ia_json.h"
#include "ia_log.h"
#include "ia_metrics.h"
#include "ia_oauth.h"
#include "ia_outbound.h"

/* a healthCheck call stops claiming new batches after this long */
#define HEALTH_CHECK_BUDGET_SECONDS 40
/* One parallel wave per batch: the batch's row locks are held across its
 * provider calls, so a getCredentials or refresh of one of its rows waits at
 * most one refresh timeout (not four, past the 20 s lock_timeout). */
#define HEALTH_BATCH_PER_SLOT 1

/* A forced refresh is satisfied by a refresh that completed after the request
 * arrived. Arrival is when nginx took the request (REQUEST_START): a burst of
 * forced refreshes waits in the listen queue while one child calls the
 * provider, and is accepted only after that refresh committed; measured from
 * our own transaction each of them would refresh again and, with rotation,
 * spend refresh tokens for nothing. Without an arrival time, our transaction's
 * start stands in. A refresh that completed at most FORCE_DEBOUNCE_SECONDS
 * before the arrival counts too: last_refreshed_at is taken before that
 * refresh commits, and callers fired "at once" reach nginx spread over some
 * milliseconds; a second forced refresh within that time gets the fresh token. */
#define FORCE_DEBOUNCE_SECONDS "2"

/* The columns every lifecycle query reads, in this order. */
#define ROW_COLUMNS \
	" i.id, i.user_id, i.provider, i.status, i.auth_type, c.id, c.secret," \
	" (i.expires_at IS NOT NULL AND i.expires_at <= now() + make_interval(secs => $W::double precision))," \
	" (i.last_refreshed_at IS NOT NULL" \
	"  AND i.last_refreshed_at >= coalesce(to_timestamp($A::double precision), now())" \
	"   - interval '" FORCE_DEBOUNCE_SECONDS " seconds')," \
	" (i.next_refresh_at IS NOT NULL AND i.next_refresh_at > now())," \
	" (i.expires_at IS NULL OR i.expires_at > now())," \
	" i.provider_params::text, intauth.integration_json(i)::text, i.expires_at::text"

enum { COL_ID, COL_USER, COL_PROVIDER, COL_STATUS, COL_AUTH_TYPE, COL_CRED_ID, COL_SECRET, COL_DUE,
       COL_REFRESHED_SINCE_ARRIVAL, COL_COOLING, COL_STILL_VALID, COL_PARAMS, COL_JSON, COL_EXPIRES };

typedef struct token_row {
	const char *id, *user_id, *provider, *status, *auth_type, *cred_id, *envelope;
	const char *params_json, *json;
	const char *expires_at;   /* as the database prints it, NULL when none */
	bool due, refreshed_since_arrival, cooling, still_valid;
} token_row;

static bool flag(PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

static void row_from(PGresult *res, int i, token_row *r)
{
	r->id = PQgetvalue(res, i, COL_ID);
	r->user_id = PQgetvalue(res, i, COL_USER);
	r->provider = PQgetvalue(res, i, COL_PROVIDER);
	r->status = PQgetvalue(res, i, COL_STATUS);
	r->auth_type = PQgetvalue(res, i, COL_AUTH_TYPE);
	r->cred_id = PQgetisnull(res, i, COL_CRED_ID) ? NULL : PQgetvalue(res, i, COL_CRED_ID);
	r->envelope = PQgetisnull(res, i, COL_SECRET) ? NULL : PQgetvalue(res, i, COL_SECRET);
	r->due = flag(res, i, COL_DUE);
	r->refreshed_since_arrival = flag(res, i, COL_REFRESHED_SINCE_ARRIVAL);
	r->cooling = flag(res, i, COL_COOLING);
	r->still_valid = flag(res, i, COL_STILL_VALID);
	r->params_json = PQgetvalue(res, i, COL_PARAMS);
	r->json = PQgetvalue(res, i, COL_JSON);
	r->expires_at = PQgetisnull(res, i, COL_EXPIRES) ? NULL : PQgetvalue(res, i, COL_EXPIRES);
}

/* Taking a row's lock and reading it are two statements. Under READ
 * COMMITTED a statement that waits for a lock sees the locked row as the
 * holder committed it, but every other row it joins as of its own start: one
 * statement joining the credential would hand a caller that waited behind a
 * refresh (or a reconnect) the refresh token that refresh just spent. The
 * read after the lock sees what was committed before it. The lock statements
 * answer the ids; "$W" (the window) is spliced per query. */
static const char SQL_LOCK_BY_ID[] =
	"SELECT i.id FROM public.integrations i WHERE i.id = $1::uuid FOR UPDATE";
static const char SQL_LOCK_BY_NAME[] =
	"SELECT i.id FROM public.integrations i"
	" WHERE i.user_id = $1::uuid AND i.provider = $2 AND i.connection = $3 FOR UPDATE";
/* healthCheck's claim, from a cursor ($2, $3: the last row of the batch
 * before, in the index's order): a scan from the start would walk again the
 * entries of every row refreshed so far in this call, dead versions that
 * nothing may remove while any older snapshot lives (a long autovacuum, a
 * report), and a call would cost the square of its rows. */
static const char SQL_CLAIM_DUE[] =
	"SELECT i.id FROM public.integrations i"
	" WHERE i.status = 'connected' AND i.auth_type = 'oauth2'"
	"  AND i.expires_at <= now() + make_interval(secs => $W::double precision)"
	"  AND (i.expires_at, i.id) > ($2::timestamptz, $3::uuid)"
	"  AND (i.next_refresh_at IS NULL OR i.next_refresh_at <= now())"
	"  AND EXISTS (SELECT 1 FROM public.credentials c WHERE c.integration_id = i.id)"
	" ORDER BY i.expires_at, i.id LIMIT $1::int FOR UPDATE SKIP LOCKED";
/* The locked rows: $1 their ids as a uuid[] literal */
static const char SQL_READ_LOCKED[] =
	"SELECT" ROW_COLUMNS
	" FROM public.integrations i LEFT JOIN public.credentials c ON c.integration_id = i.id"
	" WHERE i.id = ANY($1::uuid[]) ORDER BY i.expires_at, i.id";

/* Copies sql replacing "$W" (the window) with "$<n>" and "$A" (the arrival
 * time) with "$<n+1>". */
static char *with_window_param(const char *sql, int n)
{
	ia_buf b;
	char num[8];
	const char *p = sql, *w;

	ia_buf_init(&b, 65536);
	while ((w = strpbrk(p, "$"))) {
		if (w[1] != 'W' && w[1] != 'A') {
			if (ia_buf_append(&b, p, (size_t)(w - p) + 1))
				goto fail;
			p = w + 1;
			continue;
		}
		snprintf(num, sizeof num, "$%d", w[1] == 'W' ? n : n + 1);
		if (ia_buf_append(&b, p, (size_t)(w - p)) || ia_buf_puts(&b, num))
			goto fail;
		p = w + 2;
	}
	if (ia_buf_puts(&b, p) == 0)
		return ia_buf_detach(&b);
fail:
	ia_buf_release(&b);
	return NULL;
}

/* Runs tmpl with params (plus the window when tmpl has "$W") and answers
 * ROW_COLUMNS of the rows it locked (caller PQclear()s), or NULL with err. */
static PGresult *lock_rows(ia_app *app, const char *tmpl, int n, const char *const *params,
			   const char *arrived, ia_err *err)
{
	char window[24];
	const char *all[4];
	char *sql = NULL, *read_sql = NULL;
	PGresult *locked = NULL, *res = NULL;
	ia_buf ids;

	if (n < 0 || n > (int)(sizeof all / sizeof *all) - 1) {
		ia_err_internal(err);
		return NULL;
	}
	ia_buf_init(&ids, 65536);
	snprintf(window, sizeof window, "%ld", app->cfg.refresh_window_seconds);
	if (!(sql = with_window_param(tmpl, n + 1)) || !(read_sql = with_window_param(SQL_READ_LOCKED, 2))) {
		ia_err_oom(err);
		goto out;
	}
	for (int i = 0; i < n; i++)
		all[i] = params[i];
	all[n] = window;
	if (!(locked = ia_db_exec(&app->db, sql, strstr(tmpl, "$W") ? n + 1 : n, all, err)))
		goto out;
	if (ia_buf_putc(&ids, '{'))
		goto oom;
	for (int i = 0; i < PQntuples(locked); i++)
		if ((i && ia_buf_putc(&ids, ',')) || ia_buf_puts(&ids, PQgetvalue(locked, i, 0)))
			goto oom;
	if (ia_buf_putc(&ids, '}'))
		goto oom;
	const char *read_params[] = { ids.data, window, arrived };
	res = ia_db_exec(&app->db, read_sql, 3, read_params, err);
	goto out;
oom:
	ia_err_oom(err);
out:
	PQclear(locked);
	ia_buf_release(&ids);
	free(read_sql);
	free(sql);
	return res;
}

static PGresult *lock_selected(ia_app *app, const ia_selector *sel, const char *arrived,
			       ia_err *err)
{
	if (sel->integration_id) {
		const char *params[] = { sel->integration_id };
		return lock_rows(app, SQL_LOCK_BY_ID, 1, params, arrived, err);
	}
	const char *params[] = { sel->user_id, sel->provider, sel->connection };
	return lock_rows(app, SQL_LOCK_BY_NAME, 3, params, arrived, err);
}

/* The selected integration, locked in a new request transaction as the
 * caller: 404 when the caller has none such. *row points into *res, which the
 * caller PQclear()s (also on failure); the transaction is the caller's to end. */
static int begin_locked(ia_app *app, const ia_claims *caller, const ia_selector *sel,
			const char *arrived, PGresult **res, token_row *row, ia_err *err)
{
	*res = NULL;
	if (ia_db_begin(&app->db, caller, err) || !(*res = lock_selected(app, sel, arrived, err)))
		return -1;
	if (PQntuples(*res) != 1)
		return ia_err_set(err, 404, "not_found", "No such integration.");
	row_from(*res, 0, row);
	return 0;
}

/* ---- one refresh, in steps so many can share a multi handle ---- */

typedef struct refresh_call {
	ia_outbound call;         /* first: CURLOPT_PRIVATE points here */
	token_row row;
	const ia_provider *p;
	char *plain;              /* decrypted credential JSON (ia_secret_free) */
	size_t plain_len;
	cJSON *secret;
	const char *refresh_token;
	ia_buf form;
	bool ready;               /* prepared and waiting for its transfer */
	bool no_refresh_token;    /* prepare found the credential has none */
	CURLcode result;
	char *access_token;       /* healthCheck: the token to show userinfo (ia_secret_free) */
	char token_cred_id[37];   /* the credential it belongs to */
	bool probed;              /* a stored token, not one a refresh just obtained */
} refresh_call;

static void refresh_call_release(refresh_call *c)
{
	if (c->access_token)
		ia_secret_free(c->access_token, strlen(c->access_token));
	c->access_token = NULL;
	ia_outbound_release(&c->call);
	ia_json_free(c->secret);
	ia_secret_free(c->plain, c->plain_len);
	ia_buf_release(&c->form);
	c->secret = NULL;
	c->plain = NULL;
}

static int open_credential(const ia_app *app, const token_row *r, char **plain, size_t *len,
			   ia_err *err)
{
	char context[IA_CREDENTIAL_CONTEXT_MAX];

	if (!r->cred_id || !r->envelope)
		return ia_err_set(err, 409, "not_connected", "The integration has no stored credential.");
	ia_credential_context(context, r->cred_id, r->user_id, r->provider);
	if (ia_crypto_open(app->cfg.keys, r->envelope, context, plain, len)) {
		ia_log(IA_LOG_ERROR, "credential_decrypt_failed", "credential %s does not decrypt",
		       r->cred_id);
		return ia_err_set(err, 500, "internal_error", "The stored credential could not be decrypted.");
	}
	return 0;
}

static int refresh_prepare(ia_app *app, refresh_call *c, ia_err *err)
{
	ia_buf_init(&c->form, 65536);
	memset(&c->call, 0, sizeof c->call);
	if (!(c->p = ia_providers_find(app->providers, c->row.provider)))
		return ia_err_set(err, 409, "not_connected", "The provider is no longer in the catalog.");
	if (open_credential(app, &c->row, &c->plain, &c->plain_len, err))
		return -1;
	c->secret = cJSON_ParseWithLength(c->plain, c->plain_len);
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(c->secret, "refresh_token");
	if (!cJSON_IsString(rt) || !*rt->valuestring) {
		c->no_refresh_token = true;
		return ia_err_set(err, 409, "not_connected",
				  "There is no refresh token; the user must reconnect.");
	}
	c->refresh_token = rt->valuestring;
	if (ia_form_add(&c->form, "grant_type", "refresh_token") ||
	    ia_form_add(&c->form, "refresh_token", c->refresh_token))
		return ia_err_oom(err);
	if (ia_oauth_token_prepare(app, c->p, c->row.params_json, &c->form, &c->call, err))
		return -1;
	c->ready = true;
	return 0;
}

static int record_success(ia_app *app, refresh_call *c, const ia_token_set *t, ia_buf *json,
			  ia_err *err)
{
	ia_buf secret, scopes;
	char cred_id[37], context[IA_CREDENTIAL_CONTEXT_MAX], expires_in[24];
	char *envelope = NULL;
	PGresult *res = NULL;
	int rc = -1;

	ia_buf_init(&secret, IA_SECRET_MAX);
	ia_buf_init(&scopes, 16384);
	/* no new refresh token in the answer: keep the old one (RFC 6749 §6) */
	if (ia_token_set_secret_json(t, c->refresh_token, &secret))
		goto oom;
	if (t->scope) {
		cJSON *arr = cJSON_CreateArray();
		char *copy = strdup(t->scope);
		for (char *s = copy, *save = NULL, *tok; copy && (tok = strtok_r(s, " ,", &save)); s = NULL)
			cJSON_AddItemToArray(arr, cJSON_CreateString(tok));
		char *text = cJSON_PrintUnformatted(arr);
		if (text)
			ia_buf_puts(&scopes, text);
		cJSON_free(text);
		cJSON_Delete(arr);
		free(copy);
	}
	ia_uuid_v4(cred_id);
	ia_credential_context(context, cred_id, c->row.user_id, c->row.provider);
	if (ia_crypto_seal(app->cfg.keys, secret.data, secret.len, context, &envelope)) {
		ia_err_internal(err);
		goto out;
	}
	/* expires_in arrives clamped (ia_oauth_parse_token_response): the
	 * provider has already rotated the grant, and a write failing on an
	 * absurd expiry now would lose it */
	if (t->expires_in > 0)
		snprintf(expires_in, sizeof expires_in, "%ld", t->expires_in);
	const char *params[] = {
		c->row.id, cred_id, ia_keyring_current_kid(app->cfg.keys), envelope,
		t->expires_in > 0 ? expires_in : NULL, scopes.len ? ia_buf_cstr(&scopes) : NULL,
	};
	res = ia_db_exec(&app->db,
			 "WITH c AS (UPDATE public.credentials SET id = $2::uuid, key_id = $3, secret = $4,"
			 "  updated_at = now() WHERE integration_id = $1::uuid),"
			 " l AS (INSERT INTO public.integration_logs (integration_id, user_id, provider, action, message)"
			 "  SELECT id, user_id, provider, 'token_refreshed', 'Access token refreshed.'"
			 "  FROM public.integrations WHERE id = $1::uuid)"
			 " UPDATE public.integrations i SET status = 'connected',"
			 "  expires_at = CASE WHEN $5::text IS NULL THEN NULL"
			 "   ELSE now() + make_interval(secs => $5::double precision) END,"
			 "  scopes = CASE WHEN $6::jsonb IS NULL THEN i.scopes"
			 "   ELSE ARRAY(SELECT jsonb_array_elements_text($6::jsonb)) END,"
			 "  last_refreshed_at = clock_timestamp(), last_health_check_at = now(),"
			 "  last_error = NULL, refresh_failures = 0,"
			 "  first_failure_at = NULL, next_refresh_at = NULL, updated_at = now()"
			 " WHERE i.id = $1::uuid RETURNING intauth.integration_json(i)::text",
			 6, params, err);
	if (!res)
		goto out;
	if (json && PQntuples(res) == 1 && ia_buf_puts(json, PQgetvalue(res, 0, 0)))
		goto oom;
	memcpy(c->token_cred_id, cred_id, sizeof c->token_cred_id);
	rc = 0;
	goto out;
oom:
	ia_err_oom(err);
out:
	PQclear(res);
	free(envelope);
	ia_buf_release(&secret);
	ia_buf_release(&scopes);
	return rc;
}

/* The provider refused the grant: the user has to connect again. */
static void record_expired(ia_app *app, const token_row *r)
{
	ia_err ignored = { 0 };
	const char *params[] = { r->id };
	PQclear(ia_db_exec(&app->db,
			   "WITH l AS (INSERT INTO public.integration_logs (integration_id, user_id, provider,"
			   "  level, action, message)"
			   "  SELECT id, user_id, provider, 'error', 'refresh_rejected',"
			   "  'The provider rejected the refresh token; the user must reconnect.'"
			   "  FROM public.integrations WHERE id = $1::uuid)"
			   " UPDATE public.integrations SET status = 'expired',"
			   "  last_error = jsonb_build_object('code', 'reauthorization_required',"
			   "   'message', 'The provider no longer accepts this grant; reconnect.'),"
			   "  last_health_check_at = now(), updated_at = now() WHERE id = $1::uuid",
			   1, params, &ignored));
}

/* Network trouble or a provider fault: the credential stays; a cooldown that
 * doubles per failure (with jitter) keeps automatic attempts polite, and after
 * ten failures over three days the connection is left to the user. */
static void record_failure(ia_app *app, const token_row *r, const ia_err *why)
{
	ia_err ignored = { 0 };
	const char *params[] = { r->id, why->code, why->message };
	PQclear(ia_db_exec(&app->db,
			   "WITH l AS (INSERT INTO public.integration_logs (integration_id, user_id, provider,"
			   "  level, action, message, details)"
			   "  SELECT id, user_id, provider, 'warn', 'refresh_failed', $3,"
			   "  jsonb_build_object('code', $2::text) FROM public.integrations WHERE id = $1::uuid)"
			   " UPDATE public.integrations SET refresh_failures = refresh_failures + 1,"
			   "  first_failure_at = coalesce(first_failure_at, now()),"
			   "  next_refresh_at = now() + make_interval(secs =>"
			   "   least(60 * power(2, least(refresh_failures, 12)), 3600) * (0.8 + random() * 0.4)),"
			   "  last_error = jsonb_build_object('code', $2::text, 'message', $3::text),"
			   "  status = CASE WHEN refresh_failures + 1 >= 10"
			   "   AND first_failure_at < now() - interval '3 days' THEN 'error' ELSE status END,"
			   "  last_health_check_at = now(), updated_at = now() WHERE id = $1::uuid",
			   3, params, &ignored));
}

/* A refresh that could not even be attempted. Without a refresh token the
 * connection simply ends at its expiry: look again then, or mark it expired
 * now. Anything else (the provider gone from the catalog, a credential that
 * does not decrypt, a client not configured) is a failure like a provider's:
 * the same cooldown, and the status left alone. Either way the row is not due
 * again at once, so the scheduler does not queue it every round. */
static void record_unrefreshable(ia_app *app, const refresh_call *c, const ia_err *why)
{
	ia_err ignored = { 0 };
	const char *params[] = { c->row.id };

	if (!c->no_refresh_token) {
		record_failure(app, &c->row, why);
		return;
	}
	PQclear(ia_db_exec(&app->db, c->row.still_valid
			   ? "UPDATE public.integrations SET next_refresh_at = expires_at WHERE id = $1::uuid"
			   : "UPDATE public.integrations SET status = 'expired', last_error ="
			     " jsonb_build_object('code', 'not_connected', 'message',"
			     " 'The token expired and there is no refresh token.'), updated_at = now()"
			     " WHERE id = $1::uuid",
			   1, params, &ignored));
}

/* Applies a finished transfer. 0 when refreshed (json gets the integration);
 * -1 with err, the outcome recorded in the transaction either way. */
static int refresh_finish(ia_app *app, refresh_call *c, ia_buf *json, ia_err *err)
{
	ia_token_set tokens = { 0 };
	long status = 0;
	int rc;

	rc = ia_outbound_result(&c->call, c->result, &status, err);
	if (rc == 0)
		rc = ia_oauth_parse_token_response(status, c->call.content_type,
						   ia_buf_cstr(&c->call.response), c->call.response.len,
						   &tokens, err);
	if (rc == 0) {
		rc = record_success(app, c, &tokens, json, err);
		if (rc == 0) {
			ia_log(IA_LOG_INFO, "token_refreshed", "integration %s", c->row.id);
			ia_metrics_count(app->metrics, IA_REFRESH_OK);
			/* kept for healthCheck's userinfo call */
			c->access_token = tokens.access_token;
			tokens.access_token = NULL;
		}
	} else if (err->status == 422) {
		ia_log(IA_LOG_WARN, "refresh_rejected", "integration %s: invalid_grant", c->row.id);
		ia_metrics_count(app->metrics, IA_REFRESH_REJECTED);
		record_expired(app, &c->row);
	} else {
		ia_log(IA_LOG_WARN, "refresh_failed", "integration %s: %s", c->row.id, err->code);
		ia_metrics_count(app->metrics, IA_REFRESH_FAILED);
		record_failure(app, &c->row, err);
	}
	ia_token_set_release(&tokens);
	return rc;
}

/* Locked row in hand: refresh it now. */
static int refresh_locked(ia_app *app, const token_row *row, ia_buf *json, ia_err *err)
{
	refresh_call c;
	int rc;

	memset(&c, 0, sizeof c);
	c.row = *row;
	rc = refresh_prepare(app, &c, err);
	if (rc == 0) {
		c.result = curl_easy_perform(c.call.easy);
		rc = refresh_finish(app, &c, json, err);
	} else {
		record_unrefreshable(app, &c, err);
	}
	refresh_call_release(&c);
	return rc;
}

/* Commits what the transaction recorded; a failed commit replaces err. */
static int commit_outcome(ia_app *app, int rc, ia_err *err)
{
	ia_err commit_err = { 0 };

	if (ia_db_commit(&app->db, &commit_err)) {
		*err = commit_err;
		return -1;
	}
	return rc;
}

int ia_tokens_refresh(ia_app *app, const ia_claims *caller, const char *body, size_t len,
		      const char *arrived, ia_buf *out, ia_err *err)
{
	cJSON *root = NULL;
	PGresult *res = NULL;
	ia_selector sel;
	ia_buf json;
	bool force = false, refreshed = false;
	int rc = -1;

	ia_buf_init(&json, 65536);
	token_row row;
	if (!(root = ia_json_parse_object(body, len, err)) || ia_selector_parse(caller, root, &sel, err) ||
	    ia_json_bool(root, "force", false, &force, err) ||
	    begin_locked(app, caller, &sel, arrived, &res, &row, err))
		goto out;
	if (strcmp(row.status, "connected") != 0 || !row.envelope) {
		ia_err_set(err, 409, "not_connected", "The integration has no usable credential (%s).",
			   row.status);
		goto out;
	}
	/* Re-read under the lock: whoever held it before may have refreshed. */
	bool needed = strcmp(row.auth_type, "oauth2") == 0 &&
		      (force ? !row.refreshed_since_arrival : row.due);
	if (needed) {
		rc = refresh_locked(app, &row, &json, err);
		rc = commit_outcome(app, rc, err);
		if (rc)
			goto out;
		refreshed = true;
	} else {
		if (ia_db_commit(&app->db, err))
			goto out;
		refreshed = force && row.refreshed_since_arrival;
		if (ia_buf_puts(&json, row.json)) {
			ia_err_oom(err);
			goto out;
		}
	}
	if (ia_buf_puts(out, "{\"integration\":") || ia_buf_append(out, json.data, json.len) ||
	    ia_buf_printf(out, ",\"refreshed\":%s}", refreshed ? "true" : "false")) {
		ia_err_oom(err);
		goto out;
	}
	rc = 0;
out:
	if (rc)
		ia_db_rollback(&app->db);
	PQclear(res);
	ia_json_free(root);
	ia_buf_release(&json);
	return rc;
}

int ia_tokens_refresh_if_due(ia_app *app, const ia_claims *caller, const char *integration_id,
			     bool *still_valid, ia_err *err)
{
	PGresult *res = NULL;
	ia_selector sel = { .integration_id = integration_id };
	int rc = -1;

	*still_valid = false;
	token_row row;
	if (begin_locked(app, caller, &sel, NULL, &res, &row, err))
		goto out;
	*still_valid = row.still_valid;
	if (strcmp(row.status, "connected") != 0 || !row.envelope || strcmp(row.auth_type, "oauth2") != 0 ||
	    !row.due || row.cooling) {
		rc = ia_db_commit(&app->db, err);
		goto out;
	}
	rc = refresh_locked(app, &row, NULL, err);
	rc = commit_outcome(app, rc, err);
out:
	if (rc)
		ia_db_rollback(&app->db);
	PQclear(res);
	return rc;
}

/* ---- revocation (RFC 7009) ---- */

void ia_revoke_retry_context(char out[256], const char *integration_id, const char *user_id,
			     const char *provider)
{
	snprintf(out, 256, "integration_sync_jobs.revoke_retry|%s|%s|%s", integration_id, user_id,
		 provider);
}

int ia_revoke_retry_seal(const ia_app *app, const char *plain, size_t plain_len,
			 const char *integration_id, const char *user_id, const char *provider,
			 char **envelope, ia_err *err)
{
	char context[256];

	ia_revoke_retry_context(context, integration_id, user_id, provider);
	if (ia_crypto_seal(app->cfg.keys, plain, plain_len, context, envelope))
		return ia_err_internal(err);
	return 0;
}

bool ia_revoke_retry_seal_unopened(const ia_app *app, const char *credential_id,
				   const char *credential_envelope, const char *integration_id,
				   const char *user_id, const char *provider, char **envelope)
{
	ia_buf json;
	ia_err err = { 0 };
	char kid[IA_KID_CHARS + 1];
	bool kept = false;

	ia_buf_init(&json, 1024 * 1024);
	/* what no key could ever have sealed (a row its owner rewrote), or too
	 * big to seal again within a job's payload, is not worth a job */
	if (strlen(credential_envelope) > IA_UNOPENED_ENVELOPE_MAX ||
	    ia_crypto_envelope_kid(credential_envelope, kid) != 0)
		goto out;
	kept = ia_buf_puts(&json, "{\"unopened\":\"") == 0 &&
	       ia_buf_json_escape(&json, credential_envelope) == 0 &&
	       ia_buf_puts(&json, "\",\"credential_id\":\"") == 0 &&
	       ia_buf_json_escape(&json, credential_id) == 0 && ia_buf_puts(&json, "\"}") == 0 &&
	       ia_revoke_retry_seal(app, json.data, json.len, integration_id, user_id, provider, envelope,
				    &err) == 0;
out:
	if (kept)
		ia_log(IA_LOG_WARN, "revoke_deferred",
		       "integration %s: the credential does not decrypt; a job keeps it", integration_id);
	else    /* never a reason to keep a connection the user ends */
		ia_log(IA_LOG_ERROR, "revoke_lost",
		       "integration %s: the credential does not decrypt and cannot be kept for a later revocation",
		       integration_id);
	ia_buf_release(&json);
	return kept;
}

int ia_revoke_retry_credential(const ia_app *app, const char *plain, size_t plain_len,
			       const char *user_id, const char *provider, char **credential,
			       size_t *credential_len, ia_err *err)
{
	cJSON *json = cJSON_ParseWithLength(plain, plain_len);
	const cJSON *unopened = cJSON_GetObjectItemCaseSensitive(json, "unopened");
	const cJSON *cred_id = cJSON_GetObjectItemCaseSensitive(json, "credential_id");
	int rc = -1;

	*credential = NULL;
	*credential_len = 0;
	if (!cJSON_IsString(unopened)) {
		/* the credential JSON itself */
		if (!(*credential = ia_secret_dup(plain, plain_len))) {
			ia_err_oom(err);
			goto out;
		}
		*credential_len = plain_len;
		rc = 0;
		goto out;
	}
	char context[IA_CREDENTIAL_CONTEXT_MAX];
	if (!cJSON_IsString(cred_id) || !ia_uuid_valid(cred_id->valuestring)) {
		ia_err_set(err, 500, "internal_error", "The job's credential has no id.");
		goto out;
	}
	ia_credential_context(context, cred_id->valuestring, user_id, provider);
	if (ia_crypto_open(app->cfg.keys, unopened->valuestring, context, credential, credential_len)) {
		ia_err_set(err, 500, "internal_error",
			   "The credential to revoke still does not decrypt: is a key missing from the ring?");
		goto out;
	}
	rc = 0;
out:
	ia_json_free(json);
	return rc;
}

static int revoke_one(const ia_app *app, const ia_provider *p, const char *params_json,
		      const char *token, const char *hint, ia_err *err)
{
	ia_outbound call;
	ia_buf form;
	long status = 0;
	int rc = -1;

	memset(&call, 0, sizeof call);
	ia_buf_init(&form, 65536);
	if (ia_form_add(&form, "token", token) || ia_form_add(&form, "token_type_hint", hint)) {
		ia_err_oom(err);
		goto out;
	}
	if (ia_oauth_client_prepare(app, p, p->revocation_url, params_json, &form, &call, err) ||
	    ia_outbound_perform(&call, &status, err))
		goto out;
	/* 200 also for a token that was already invalid; a 400 about the token
	 * itself means there is nothing left to revoke */
	if (status == 200 ||
	    (status == 400 && (strstr(ia_buf_cstr(&call.response), "unsupported_token_type") ||
			       strstr(ia_buf_cstr(&call.response), "invalid_token")))) {
		rc = 0;
		goto out;
	}
	ia_err_set(err, 502, "provider_error", "The provider's revocation endpoint answered HTTP %ld.",
		   status);
out:
	ia_outbound_release(&call);
	ia_buf_release(&form);
	return rc;
}

int ia_tokens_revoke_remote(const ia_app *app, const ia_provider *p, const char *params_json,
			    const char *secret_json, size_t secret_len, ia_err *err)
{
	cJSON *secret;
	int rc = 0;

	if (!p || p->auth_type != IA_AUTH_OAUTH2 || !p->revocation_url)
		return 0;
	if (!(secret = cJSON_ParseWithLength(secret_json, secret_len)))
		return ia_err_internal(err);
	/* the refresh token first: revoking it usually ends the whole grant */
	static const char *const kinds[] = { "refresh_token", "access_token" };
	for (size_t i = 0; i < 2 && rc == 0; i++) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(secret, kinds[i]);
		if (cJSON_IsString(t) && *t->valuestring)
			rc = revoke_one(app, p, params_json, t->valuestring, kinds[i], err);
	}
	ia_json_free(secret);
	return rc;
}

int ia_tokens_revoke(ia_app *app, const ia_claims *caller, const char *body, size_t len,
		     ia_buf *out, ia_err *err)
{
	cJSON *root = NULL;
	PGresult *res = NULL, *done = NULL;
	char *plain = NULL, *retry_envelope = NULL;
	size_t plain_len = 0;
	ia_selector sel;
	int rc = -1;

	token_row row;
	if (!(root = ia_json_parse_object(body, len, err)) || ia_selector_parse(caller, root, &sel, err) ||
	    begin_locked(app, caller, &sel, NULL, &res, &row, err))
		goto out;
	const ia_provider *p = ia_providers_find(app->providers, row.provider);
	ia_err unopened = { 0 };
	bool kept_unopened = false;
	bool revocable = row.envelope && strcmp(row.auth_type, "oauth2") == 0 && p && p->revocation_url;
	if (revocable && open_credential(app, &row, &plain, &plain_len, &unopened) != 0) {
		/* logged as an alarm; the local disconnect still happens, and the
		 * worker revokes it once the ring opens it again */
		kept_unopened = ia_revoke_retry_seal_unopened(app, row.cred_id, row.envelope, row.id,
							      row.user_id, row.provider, &retry_envelope);
	} else if (revocable) {
		ia_err remote = { 0 };
		if (ia_tokens_revoke_remote(app, p, row.params_json, plain, plain_len, &remote)) {
			/* the local disconnect happens anyway; the provider call is retried */
			if (ia_revoke_retry_seal(app, plain, plain_len, row.id, row.user_id, row.provider,
						 &retry_envelope, err))
				goto out;
			ia_log(IA_LOG_WARN, "revoke_deferred", "integration %s: %s", row.id, remote.code);
		}
	}
	const char *params[] = { row.id, retry_envelope, row.params_json, kept_unopened ? "true" : "false" };
	done = ia_db_exec(&app->db,
			  "WITH d AS (DELETE FROM public.credentials WHERE integration_id = $1::uuid),"
			  IA_SQL_REVOKE_RETRY_JOB("public.integrations WHERE id = $1::uuid AND") ","
			  " l AS (INSERT INTO public.integration_logs (integration_id, user_id, provider, action, message)"
			  "  SELECT id, user_id, provider, 'revoked', CASE WHEN $2::text IS NULL"
			  "   THEN 'Disconnected.' ELSE 'Disconnected; revocation at the provider will be retried.' END"
			  "  FROM public.integrations WHERE id = $1::uuid AND status <> 'revoked')"
			  " UPDATE public.integrations i SET status = 'revoked', expires_at = NULL,"
			  "  last_error = NULL, refresh_failures = 0, first_failure_at = NULL,"
			  "  next_refresh_at = NULL, updated_at = now()"
			  " WHERE i.id = $1::uuid RETURNING intauth.integration_json(i)::text",
			  4, params, err);
	if (!done || ia_db_commit_flags(&app->db, IA_DB_WAKE_WORKERS, err))
		goto out;
	if (ia_buf_puts(out, "{\"integration\":") || ia_buf_puts(out, PQgetvalue(done, 0, 0)) ||
	    ia_buf_putc(out, '}')) {
		ia_err_oom(err);
		goto out;
	}
	ia_log(IA_LOG_INFO, "revoked", "integration %s", row.id);
	rc = 0;
out:
	if (rc)
		ia_db_rollback(&app->db);
	ia_secret_free(plain, plain_len);
	free(retry_envelope);
	PQclear(res);
	PQclear(done);
	ia_json_free(root);
	return rc;
}

/* ---- healthCheck ---- */

typedef struct health_counts {
	long checked, refreshed, failed, expired;
} health_counts;

static void run_transfers(refresh_call *calls, size_t n, long concurrency)
{
	CURLM *multi = curl_multi_init();
	size_t next = 0;
	long running = 0;

	if (!multi) {
		for (size_t i = 0; i < n; i++)
			if (calls[i].ready)
				calls[i].result = curl_easy_perform(calls[i].call.easy);
		return;
	}
	while (next < n || running > 0) {
		while (running < concurrency && next < n) {
			refresh_call *c = &calls[next++];
			if (c->ready && curl_multi_add_handle(multi, c->call.easy) == CURLM_OK)
				running++;
			else if (c->ready)
				c->result = curl_easy_perform(c->call.easy);
		}
		int active = 0, left = 0;
		curl_multi_perform(multi, &active);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			ia_outbound *o = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&o);
			/* the outbound call is the first member of its refresh_call */
			((refresh_call *)(void *)o)->result = msg->data.result;
			curl_multi_remove_handle(multi, msg->easy_handle);
			running--;
		}
		if (running > 0)
			curl_multi_poll(multi, NULL, 0, 500, NULL);
	}
	curl_multi_cleanup(multi);
}

/* Whether a userinfo answer says the token no longer works: 401 (RFC 6750
 * invalid_token), or a Slack-style 200 with "ok": false naming an
 * authentication error. A 403 is not: it means insufficient_scope for a valid
 * token, and GitHub answers it to a rate-limited caller. Any other failure is
 * the provider's trouble, not the connection's. */
static bool userinfo_refused(long status, const ia_buf *response)
{
	static const char *const auth_errors[] = {
		"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
	};
	bool refused = false;

	if (status == 401)
		return true;
	if (status != 200)
		return false;
	cJSON *body = cJSON_ParseWithLength(ia_buf_cstr(response), response->len);
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(body, "error");
	if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "ok")) && cJSON_IsString(error))
		for (size_t i = 0; i < sizeof auth_errors / sizeof *auth_errors && !refused; i++)
			refused = strcmp(error->valuestring, auth_errors[i]) == 0;
	cJSON_Delete(body);
	return refused;
}

/* What a refusal means depends on the token. One a refresh has just
 * obtained: the grant is broken (an alarm: `error`). A stored one, with a
 * refresh token beside it: that access token is dead, so it is made due, and
 * a refresh tells whether the grant still is alive. A stored one without:
 * the user must connect again, like a refused refresh token (`expired`).
 * $1 the integration, $2 the credential the token came from. */
static const char SQL_REFUSED_FRESH[] =
	"WITH u AS (UPDATE public.integrations SET status = 'error', last_error ="
	"  jsonb_build_object('code', 'userinfo_rejected', 'message',"
	"  'The provider refused a token it had just issued; reconnect.'), updated_at = now()"
	"  WHERE id = $1::uuid AND status = 'connected' AND EXISTS (SELECT 1 FROM public.credentials c"
	"   WHERE c.integration_id = $1::uuid AND c.id = $2::uuid)"
	"  RETURNING id, user_id, provider)"
	" INSERT INTO public.integration_logs (integration_id, user_id, provider, level, action, message)"
	" SELECT id, user_id, provider, 'error', 'userinfo_rejected',"
	"  'The provider refused the fresh token at its userinfo endpoint.'"
	" FROM u RETURNING 'recorded'";
static const char SQL_REFUSED_STORED[] =
	"WITH u AS (UPDATE public.integrations SET status = 'expired', last_error ="
	"  jsonb_build_object('code', 'userinfo_rejected', 'message',"
	"  'The provider no longer accepts this connection; reconnect.'), updated_at = now()"
	"  WHERE id = $1::uuid AND status = 'connected' AND EXISTS (SELECT 1 FROM public.credentials c"
	"   WHERE c.integration_id = $1::uuid AND c.id = $2::uuid)"
	"  RETURNING id, user_id, provider)"
	" INSERT INTO public.integration_logs (integration_id, user_id, provider, level, action, message)"
	" SELECT id, user_id, provider, 'error', 'userinfo_rejected',"
	"  'The provider refused the stored access token, and there is no refresh token.'"
	" FROM u RETURNING 'recorded'";
static const char SQL_REFUSED_REFRESHABLE[] =
	"WITH u AS (UPDATE public.integrations SET expires_at = now(), next_refresh_at = NULL,"
	"  updated_at = now()"
	"  WHERE id = $1::uuid AND status = 'connected' AND EXISTS (SELECT 1 FROM public.credentials c"
	"   WHERE c.integration_id = $1::uuid AND c.id = $2::uuid)"
	"  RETURNING id, user_id, provider)"
	" INSERT INTO public.integration_logs (integration_id, user_id, provider, level, action, message)"
	" SELECT id, user_id, provider, 'warn', 'access_token_refused',"
	"  'The provider refused the stored access token; it is due for a refresh.'"
	" FROM u RETURNING 'recorded'";

/* Records a refusal unless the row changed since the token was read: lock,
 * then look, in two statements (see lock_rows: a statement that waited for
 * the lock would see the credential as of its own start, and mark the one a
 * reconnect has just stored). A row someone holds now is being refreshed,
 * reconnected or revoked: left to them. true when recorded. */
static bool record_refusal(ia_app *app, const refresh_call *c, const char *sql)
{
	ia_err why = { 0 };
	const char *params[] = { c->row.id, c->token_cred_id };
	PGresult *res = NULL;
	bool recorded = false;

	if (ia_db_begin(&app->db, NULL, &why))
		return false;
	res = ia_db_exec(&app->db, "SELECT 1 FROM public.integrations WHERE id = $1::uuid"
			 " FOR UPDATE SKIP LOCKED", 1, params, &why);
	if (res && PQntuples(res) == 1) {
		PQclear(res);
		res = ia_db_exec(&app->db, sql, 2, params, &why);
		recorded = res && PQntuples(res) == 1;
	}
	PQclear(res);
	if (!recorded || ia_db_commit(&app->db, &why)) {
		ia_db_rollback(&app->db);
		return false;
	}
	return true;
}

typedef struct userinfo_outcome {
	long called;   /* calls made */
	long broken;   /* fresh tokens refused: `error` */
	long expired;  /* stored tokens refused, no refresh token: `expired` */
	long due;      /* stored tokens refused, made due for a refresh */
} userinfo_outcome;

/* Shows each call's access_token to its provider's userinfo_url and records
 * the refusals (see SQL_REFUSED_FRESH). This runs outside any transaction:
 * after a refresh batch has committed, the rotated tokens are safe and the
 * row locks gone before a second round of provider calls. */
static userinfo_outcome check_userinfo(ia_app *app, refresh_call *calls, long n)
{
	userinfo_outcome o = { 0 };

	for (long i = 0; i < n; i++) {
		refresh_call *c = &calls[i];
		ia_err ignored = { 0 };
		char *url = NULL;
		ia_outbound_release(&c->call);
		if (!c->access_token || !c->p->userinfo_url ||
		    !(url = ia_oauth_fill_url(c->p, c->p->userinfo_url, c->row.params_json, &ignored)))
			continue;
		c->ready = ia_outbound_init(&c->call, &app->cfg, url, NULL, c->access_token, NULL, NULL,
					    &ignored) == 0;
		free(url);
		o.called += c->ready;
	}
	run_transfers(calls, (size_t)n, app->cfg.healthcheck_concurrency);
	for (long i = 0; i < n; i++) {
		refresh_call *c = &calls[i];
		ia_err why = { 0 };
		long status = 0;
		if (!c->ready)
			continue;
		c->ready = false;
		if (ia_outbound_result(&c->call, c->result, &status, &why) ||
		    !userinfo_refused(status, &c->call.response))
			continue;
		const char *sql = !c->probed ? SQL_REFUSED_FRESH
				  : c->no_refresh_token ? SQL_REFUSED_STORED : SQL_REFUSED_REFRESHABLE;
		if (!record_refusal(app, c, sql))
			continue;
		long *count = !c->probed ? &o.broken : c->no_refresh_token ? &o.expired : &o.due;
		(*count)++;
		ia_log(IA_LOG_WARN, c->probed && !c->no_refresh_token ? "access_token_refused" : "userinfo_rejected",
		       "integration %s: userinfo refused the %s token (HTTP %ld)", c->row.id,
		       c->probed ? "stored" : "fresh", status);
	}
	return o;
}

/* A zeroed refresh_call for each row of res, holding that row: the caller
 * releases each and frees the array. n gets the rows; NULL with err (n -1)
 * when out of memory. An empty result answers a 1-element array. */
static refresh_call *claimed_calls(PGresult *res, long *n, ia_err *err)
{
	*n = PQntuples(res);
	refresh_call *calls = calloc(*n > 0 ? (size_t)*n : 1, sizeof *calls);
	if (!calls) {
		*n = -1;
		ia_err_oom(err);
		return NULL;
	}
	for (long i = 0; i < *n; i++)
		row_from(res, (int)i, &calls[i].row);
	return calls;
}

/* Where the next claim of one healthCheck call starts (SQL_CLAIM_DUE). */
typedef struct health_cursor {
	char expires_at[64];
	char id[37];
} health_cursor;

static const health_cursor HEALTH_CURSOR_START = {
	"-infinity", "00000000-0000-0000-0000-000000000000",
};

/* One batch: claim due rows nobody else holds from *cursor on (moved past
 * them), refresh them in parallel, record each outcome, commit. Returns the
 * rows claimed, or -1. */
static long health_batch(ia_app *app, long limit, health_cursor *cursor, health_counts *counts,
			 ia_err *err)
{
	char lim[24];
	PGresult *res = NULL;
	refresh_call *calls = NULL;
	long n = -1;

	snprintf(lim, sizeof lim, "%ld", limit);
	const char *params[] = { lim, cursor->expires_at, cursor->id };
	if (ia_db_begin(&app->db, NULL, err))
		return -1;
	/* the batch's locks are held across its provider calls, bounded by the
	 * outbound timeouts: allow for that instead of the usual idle limit */
	PQclear(ia_db_exec(&app->db, "SET LOCAL idle_in_transaction_session_timeout = '300s'", 0, NULL, err));
	if (!(res = lock_rows(app, SQL_CLAIM_DUE, 3, params, NULL, err)) ||
	    !(calls = claimed_calls(res, &n, err)))
		goto out;
	/* the read is in the claim's order: its last row is the furthest */
	if (n > 0 && calls[n - 1].row.expires_at) {
		snprintf(cursor->expires_at, sizeof cursor->expires_at, "%s", calls[n - 1].row.expires_at);
		snprintf(cursor->id, sizeof cursor->id, "%s", calls[n - 1].row.id);
	}
	/* each row's outcome in a savepoint of its own (ia_db_row_next) */
	if (n > 0 && ia_db_row_begin(&app->db, err)) {
		n = -1;
		goto out;
	}
	long skipped = 0;
	for (long i = 0; i < n; i++) {
		ia_err why = { 0 };
		bool row_failed;
		/* the claim saw the row as of its start: one refreshed (or
		 * disconnected) by another caller since then is left alone */
		const token_row *r = &calls[i].row;
		if (!r->due || r->cooling || strcmp(r->status, "connected") != 0 || !r->envelope) {
			skipped++;
			continue;
		}
		if (refresh_prepare(app, &calls[i], &why) == 0)
			continue;
		counts->failed++;
		record_unrefreshable(app, &calls[i], &why);
		if (ia_db_row_next(&app->db, &row_failed, err)) {
			n = -1;
			goto out;
		}
	}
	run_transfers(calls, (size_t)n, app->cfg.healthcheck_concurrency);
	for (long i = 0; i < n; i++) {
		if (!calls[i].ready)
			continue;
		ia_err why = { 0 };
		bool row_failed;
		calls[i].ready = false;
		int rc = refresh_finish(app, &calls[i], NULL, &why);
		if (ia_db_row_next(&app->db, &row_failed, err)) {
			n = -1;
			goto out;
		}
		if (rc == 0 && !row_failed)
			counts->refreshed++;
		else if (why.status == 422 && !row_failed)
			counts->expired++;
		else
			counts->failed++;
	}
	if (ia_db_commit(&app->db, err)) {
		n = -1;
		goto out;
	}
	counts->checked += n - skipped;
	userinfo_outcome seen = check_userinfo(app, calls, n);
	counts->refreshed -= seen.broken;
	counts->failed += seen.broken;
out:
	if (n < 0)
		ia_db_rollback(&app->db);
	for (long i = 0; calls && i < PQntuples(res); i++)
		refresh_call_release(&calls[i]);
	free(calls);
	PQclear(res);
	return n;
}

/* Connections no refresh verifies (tokens that never expire, like GitHub's,
 * or that expire far beyond the window) are shown to userinfo once per
 * HEALTHCHECK_INTERVAL_SECONDS ($2), counted from their last check or else
 * their creation, so a connection just made is not probed at once. $1: the
 * providers that have a userinfo_url, a text[] literal. The claim records the
 * check as it takes the rows (even one the provider then fails to answer), so
 * a second healthCheck, or the next one during a provider's outage, does not
 * probe them again at once; no lock is held across the calls. One provider
 * at a time, longest unchecked first: each is an ordered scan of
 * integrations_probe_due_idx that stops at $3 rows, where one scan for all
 * providers would sort the whole backlog (or walk the table) per batch.
 * "provider <> ''" is that index's own predicate clause (sql/018): no other
 * query implies it, so no other plan can walk that index. */
static const char SQL_CLAIM_PROBES[] =
	"WITH due AS (SELECT d.id FROM unnest($1::text[]) AS p (name) CROSS JOIN LATERAL"
	" (SELECT i.id FROM public.integrations i"
	"  WHERE i.provider = p.name AND i.provider <> '' AND i.status = 'connected' AND i.auth_type = 'oauth2'"
	"   AND coalesce(i.last_health_check_at, i.created_at)"
	"    <= now() - make_interval(secs => $2::double precision)"
	"   AND (i.expires_at IS NULL OR i.expires_at > now() + make_interval(secs => $W::double precision))"
	"   AND EXISTS (SELECT 1 FROM public.credentials c WHERE c.integration_id = i.id)"
	"  ORDER BY coalesce(i.last_health_check_at, i.created_at) LIMIT $3::int"
	"  FOR UPDATE OF i SKIP LOCKED) d"
	" LIMIT $3::int)"
	" UPDATE public.integrations i SET last_health_check_at = now()"
	" WHERE i.id = ANY (ARRAY(SELECT id FROM due)) RETURNING i.id";

/* The providers SQL_CLAIM_PROBES probes at, as a text[] literal (names are
 * [a-z0-9_], nothing to quote); "{}" when none. The caller frees it. */
static char *probed_providers(const ia_providers *providers)
{
	ia_buf b;
	bool first = true;

	ia_buf_init(&b, 1 << 20);
	if (ia_buf_putc(&b, '{'))
		goto fail;
	for (size_t i = 0; i < providers->n; i++) {
		const ia_provider *p = &providers->items[i];
		if (p->auth_type != IA_AUTH_OAUTH2 || !p->userinfo_url)
			continue;
		if ((!first && ia_buf_putc(&b, ',')) || ia_buf_puts(&b, p->name))
			goto fail;
		first = false;
	}
	if (ia_buf_putc(&b, '}') == 0)
		return ia_buf_detach(&b);
fail:
	ia_buf_release(&b);
	return NULL;
}

/* The access token of a claimed row, for check_userinfo, and whether a
 * refresh token stands beside it. A credential that does not open is an
 * alarm (logged by open_credential): -1. */
static int probe_prepare(ia_app *app, refresh_call *c)
{
	ia_err why = { 0 };
	int rc = 0;

	c->probed = true;
	if (!(c->p = ia_providers_find(app->providers, c->row.provider)))
		return 0;
	if (open_credential(app, &c->row, &c->plain, &c->plain_len, &why))
		return -1;
	c->secret = cJSON_ParseWithLength(c->plain, c->plain_len);
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(c->secret, "access_token");
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(c->secret, "refresh_token");
	c->no_refresh_token = !cJSON_IsString(rt) || !*rt->valuestring;
	if (cJSON_IsString(at) && *at->valuestring) {
		if (!(c->access_token = ia_secret_dup(at->valuestring, strlen(at->valuestring))))
			rc = -1;
		snprintf(c->token_cred_id, sizeof c->token_cred_id, "%s", c->row.cred_id);
	}
	/* the token's copy is all the check needs */
	ia_json_free(c->secret);
	ia_secret_free(c->plain, c->plain_len);
	c->secret = NULL;
	c->plain = NULL;
	return rc;
}

/* One batch of probes: claim (and commit the claim), call, record the
 * refusals. A row made due for a refresh is counted by the refresh that
 * follows (*due), not here. Returns the rows claimed, or -1. */
static long probe_batch(ia_app *app, const char *providers, long limit, health_counts *counts,
			long *due, ia_err *err)
{
	char lim[24], interval[24];
	PGresult *res = NULL;
	refresh_call *calls = NULL;
	long n = -1;

	snprintf(lim, sizeof lim, "%ld", limit);
	snprintf(interval, sizeof interval, "%ld", app->cfg.healthcheck_interval_seconds);
	const char *params[] = { providers, interval, lim };
	if (ia_db_begin(&app->db, NULL, err))
		return -1;
	if (!(res = lock_rows(app, SQL_CLAIM_PROBES, 3, params, NULL, err)) || ia_db_commit(&app->db, err) ||
	    !(calls = claimed_calls(res, &n, err)))
		goto out;
	long unopened = 0;
	for (long i = 0; i < n; i++)
		unopened += probe_prepare(app, &calls[i]) != 0;
	userinfo_outcome seen = check_userinfo(app, calls, n);
	counts->checked += unopened + seen.called - seen.due;
	counts->failed += unopened;
	counts->expired += seen.expired;
	*due += seen.due;
out:
	if (n < 0)
		ia_db_rollback(&app->db);
	for (long i = 0; calls && i < n; i++)
		refresh_call_release(&calls[i]);
	free(calls);
	PQclear(res);
	return n;
}

int ia_tokens_health_check(ia_app *app, ia_buf *out, ia_err *err)
{
	health_counts counts = { 0 };
	time_t start = time(NULL);
	long batch = app->cfg.healthcheck_concurrency * HEALTH_BATCH_PER_SLOT;

	health_cursor cursor = HEALTH_CURSOR_START;
	for (;;) {
		long n = health_batch(app, batch, &cursor, &counts, err);
		if (n < 0)
			return -1;
		if (n < batch || time(NULL) - start >= HEALTH_CHECK_BUDGET_SECONDS)
			break;
	}
	/* what the budget leaves goes to the connections no refresh verifies */
	if (app->cfg.healthcheck_interval_seconds > 0) {
		char *providers = probed_providers(app->providers);
		long due = 0;
		if (!providers)
			return ia_err_oom(err);
		long n = strcmp(providers, "{}") != 0 ? batch : 0;
		while (n == batch && time(NULL) - start < HEALTH_CHECK_BUDGET_SECONDS)
			n = probe_batch(app, providers, batch, &counts, &due, err);
		free(providers);
		/* refused access tokens with a refresh token: whether the grant
		 * lives is known after one more batch while the budget lasts (the
		 * worker's refresh jobs take the others: they are due now) */
		if (n >= 0 && due > 0 && time(NULL) - start < HEALTH_CHECK_BUDGET_SECONDS) {
			/* from the start: they are due as of now, before the cursor */
			cursor = HEALTH_CURSOR_START;
			n = health_batch(app, batch, &cursor, &counts, err);
		}
		if (n < 0)
			return -1;
	}
	if (ia_buf_printf(out, "{\"checked\":%ld,\"refreshed\":%ld,\"failed\":%ld,\"expired\":%ld}",
			  counts.checked, counts.refreshed, counts.failed, counts.expired))
		return ia_err_oom(err);
	ia_log(IA_LOG_INFO, "health_check", "checked %ld refreshed %ld failed %ld expired %ld",
	       counts.checked, counts.refreshed, counts.failed, counts.expired);
	return 0;
}
