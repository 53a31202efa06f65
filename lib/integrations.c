#include "ia_integrations.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ia_codec.h"
#include "ia_crypto.h"
#include "ia_json.h"
#include "ia_log.h"
#include "ia_oauth.h"
#include "ia_tokens.h"

#define MAX_SECRET_FIELD 16384
#define MAX_SCOPES 100

void ia_credential_context(char out[IA_CREDENTIAL_CONTEXT_MAX], const char *credential_id,
			   const char *user_id, const char *provider)
{
	snprintf(out, IA_CREDENTIAL_CONTEXT_MAX, "credentials.secret|%s|%s|%s", credential_id,
		 user_id, provider);
}

bool ia_connection_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.:@-", *s))
			return false;
	return true;
}

/* ISO-8601 with a date, a time and an explicit zone: PostgreSQL alone would
 * also take 'tomorrow' or 'infinity'. */
static bool iso_timestamp_valid(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; shape[i]; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return false;
	}
	s += i;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (strcmp(s, "Z") == 0)
		return true;
	if (*s != '+' && *s != '-')
		return false;
	s++;
	return isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
	       (strcmp(s + 2, "") == 0 ||
		(s[2] == ':' && isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[4]) && !s[5]) ||
		(isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) && !s[4]));
}

/* "scope" as a space-separated string (RFC 6749 §3.3; commas too, as GitHub
 * and others answer it, and as the callback reads a token answer) or an
 * array of strings -> a JSON array text in scopes. */
static int parse_scopes(const cJSON *v, ia_buf *scopes, ia_err *err)
{
	size_t n = 0;

	if (ia_buf_putc(scopes, '['))
		return ia_err_oom(err);
	if (v && cJSON_IsString(v)) {
		if (ia_json_append_scope_list(scopes, &n, MAX_SCOPES, v->valuestring, " ,", false, err))
			return -1;
	} else if (v && cJSON_IsArray(v)) {
		const cJSON *item;
		cJSON_ArrayForEach(item, v) {
			if (!cJSON_IsString(item))
				return ia_err_set(err, 400, "invalid_request", "Scopes must be strings.");
			if (ia_json_append_scope(scopes, &n, MAX_SCOPES, item->valuestring,
						 strlen(item->valuestring), false, err))
				return -1;
		}
	} else if (v && !cJSON_IsNull(v)) {
		return ia_err_set(err, 400, "invalid_request",
				  "Field \"scope\" must be a string or an array of strings.");
	}
	if (ia_buf_putc(scopes, ']'))
		return ia_err_oom(err);
	return 0;
}

static int put_secret_field(ia_buf *secret, const char *name, const char *value, bool *first)
{
	if (!value)
		return 0;
	int rc = ia_buf_puts(secret, *first ? "{\"" : ",\"") || ia_buf_puts(secret, name) ||
		 ia_buf_puts(secret, "\":\"") || ia_buf_json_escape(secret, value) ||
		 ia_buf_putc(secret, '"');
	*first = false;
	return rc ? -1 : 0;
}

/* What storeCredentials takes out of "credentials", checked against the
 * provider's auth type; secret receives the JSON that gets encrypted. */
typedef struct stored_fields {
	ia_buf secret;
	ia_buf scopes;
	char expires_in[32];
	const char *expires_at;
} stored_fields;

static int collect_credentials(enum ia_auth_type type, const cJSON *creds, stored_fields *f,
			       ia_err *err)
{
	const char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	bool first = true;

	switch (type) {
	case IA_AUTH_API_KEY:
		if (ia_json_secret(creds, "api_key", true, false, MAX_SECRET_FIELD, &a, err))
			return -1;
		if (put_secret_field(&f->secret, "api_key", a, &first))
			return ia_err_oom(err);
		break;
	case IA_AUTH_BASIC:
		if (ia_json_string(creds, "username", true, MAX_SECRET_FIELD, &a, err) ||
		    ia_json_secret(creds, "password", true, true, MAX_SECRET_FIELD, &b, err))
			return -1;
		if (put_secret_field(&f->secret, "username", a, &first) ||
		    put_secret_field(&f->secret, "password", b, &first))
			return ia_err_oom(err);
		break;
	case IA_AUTH_OAUTH2: {
		if (ia_json_string(creds, "access_token", true, MAX_SECRET_FIELD, &a, err) ||
		    ia_json_string(creds, "refresh_token", false, MAX_SECRET_FIELD, &b, err) ||
		    ia_json_string(creds, "token_type", false, 64, &c, err) ||
		    ia_json_string(creds, "id_token", false, MAX_SECRET_FIELD, &d, err))
			return -1;
		if (put_secret_field(&f->secret, "access_token", a, &first) ||
		    put_secret_field(&f->secret, "refresh_token", b, &first) ||
		    put_secret_field(&f->secret, "token_type", c ? c : "Bearer", &first) ||
		    put_secret_field(&f->secret, "id_token", d, &first))
			return ia_err_oom(err);
		const cJSON *ein = cJSON_GetObjectItemCaseSensitive(creds, "expires_in");
		const cJSON *eat = cJSON_GetObjectItemCaseSensitive(creds, "expires_at");
		if (ein && !cJSON_IsNull(ein)) {
			if (!cJSON_IsNumber(ein) || !(ein->valuedouble > 0) ||
			    ein->valuedouble > (double)IA_MAX_EXPIRES_IN_SECONDS)
				return ia_err_set(err, 400, "invalid_request",
						  "Field \"expires_in\" must be a positive number of seconds.");
			long secs = (long)ein->valuedouble;
			if ((double)secs < ein->valuedouble)
				secs++;         /* round up: never claim a token lives shorter than it does */
			snprintf(f->expires_in, sizeof f->expires_in, "%ld", secs);
		} else if (eat && !cJSON_IsNull(eat)) {
			if (cJSON_IsNumber(eat) && eat->valuedouble > 0 && eat->valuedouble < 1e11) {
				/* epoch seconds */
				snprintf(f->expires_in, sizeof f->expires_in, "@%ld", (long)eat->valuedouble);
			} else if (cJSON_IsString(eat) && iso_timestamp_valid(eat->valuestring)) {
				f->expires_at = eat->valuestring;
			} else {
				return ia_err_set(err, 400, "invalid_request",
						  "Field \"expires_at\" must be an ISO-8601 time with a zone or epoch seconds.");
			}
		}
		if (parse_scopes(cJSON_GetObjectItemCaseSensitive(creds, "scope"), &f->scopes, err))
			return -1;
		break;
	}
	default:
		return ia_err_set(err, 400, "unsupported_auth_type", "Unsupported auth type.");
	}
	if (ia_buf_putc(&f->secret, '}'))
		return ia_err_oom(err);
	if (type != IA_AUTH_OAUTH2 && ia_buf_puts(&f->scopes, "[]"))
		return ia_err_oom(err);
	return 0;
}

static const char SQL_STORE[] =
	"WITH i AS ("
	" INSERT INTO public.integrations AS t (user_id, provider, connection, auth_type, status,"
	"  scopes, expires_at, metadata, provider_params, account_id)"
	" VALUES ($1, $2, $3, $4, 'connected', ARRAY(SELECT jsonb_array_elements_text($5::jsonb)),"
	"  CASE WHEN $6::text IS NOT NULL THEN $6::timestamptz"
	"       WHEN $7::text LIKE '@%' THEN to_timestamp(substr($7, 2)::double precision)"
	"       WHEN $7::text IS NOT NULL THEN now() + make_interval(secs => $7::double precision)"
	"  END,"
	"  coalesce($8::jsonb, '{}'), coalesce($15::jsonb, '{}'),"
	/* the account webhook events link through: the service's word only (a
	 * user's is dropped by the trigger of sql/012) */
	"  coalesce($8::jsonb #>> '{account,id}', $8::jsonb ->> 'account_id'))"
	" ON CONFLICT (user_id, provider, connection) DO UPDATE SET"
	"  auth_type = excluded.auth_type, status = 'connected', scopes = excluded.scopes,"
	"  expires_at = excluded.expires_at,"
	"  metadata = CASE WHEN $8::jsonb IS NULL THEN t.metadata ELSE excluded.metadata END,"
	"  account_id = CASE WHEN $8::jsonb IS NULL THEN t.account_id ELSE excluded.account_id END,"
	"  last_error = NULL, refresh_failures = 0, first_failure_at = NULL,"
	"  next_refresh_at = NULL, updated_at = now(),"
	"  provider_params = coalesce($15::jsonb, t.provider_params)"
	" RETURNING *),"
	" c AS ("
	" INSERT INTO public.credentials (id, integration_id, user_id, provider, key_id, secret)"
	" SELECT $9, i.id, i.user_id, i.provider, $10, $11 FROM i"
	" ON CONFLICT (integration_id) DO UPDATE SET id = excluded.id, key_id = excluded.key_id,"
	"  secret = excluded.secret, updated_at = now()),"
	" l AS ("
	" INSERT INTO public.integration_logs (integration_id, user_id, provider, action, message)"
	" SELECT i.id, i.user_id, i.provider, $12, $13 FROM i),"
	" j AS ("
	" INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id)"
	" SELECT 'bootstrap', i.id, i.user_id FROM i WHERE $14::boolean)"
	" SELECT json_build_object('integration',"
	"  intauth.integration_json(ROW(i.*)::public.integrations))::text FROM i";

int ia_integration_save(ia_app *app, const ia_claims *caller, const ia_integration_write *w,
			ia_buf *out, ia_err *err)
{
	char cred_id[37], context[IA_CREDENTIAL_CONTEXT_MAX];
	char *envelope = NULL;
	bool found;
	int rc = -1;

	ia_uuid_v4(cred_id);
	ia_credential_context(context, cred_id, w->user_id, w->provider);
	if (ia_crypto_seal(app->cfg.keys, w->secret, w->secret_len, context, &envelope))
		return ia_err_internal(err);
	const char *params[] = {
		w->user_id, w->provider, w->connection, ia_auth_type_names[w->auth_type],
		w->scopes_json, w->expires_at, w->expires_in, w->metadata_json, cred_id,
		ia_keyring_current_kid(app->cfg.keys), envelope, w->log_action, w->log_message,
		w->enqueue_bootstrap ? "true" : "false", w->provider_params_json,
	};
	if (ia_db_run_one_flags(&app->db, caller, SQL_STORE, 15, params,
				w->enqueue_bootstrap ? IA_DB_WAKE_WORKERS : 0, out, &found, err))
		goto out;
	if (!found) {
		ia_err_internal(err);
		goto out;
	}
	rc = 0;
out:
	free(envelope);
	return rc;
}

/* The user an action is for: a user acts for itself (naming another user is
 * 403); the service role must name one. */
int ia_acting_user(const ia_claims *caller, const cJSON *body, char buf[37], const char **user_id,
		   ia_err *err)
{
	const char *named;

	if (ia_json_string(body, "user_id", false, 64, &named, err))
		return -1;
	if (caller->role == IA_ROLE_USER) {
		if (named && strcasecmp(named, caller->sub) != 0)
			return ia_err_set(err, 403, "forbidden", "A user may only act for itself.");
		*user_id = caller->sub;
		return 0;
	}
	if (!named)
		return ia_err_set(err, 400, "invalid_request",
				  "Field \"user_id\" is required with the service role.");
	if (!ia_uuid_parse(named, buf))
		return ia_err_set(err, 400, "invalid_request", "Field \"user_id\" must be a UUID.");
	*user_id = buf;
	return 0;
}

int ia_selector_parse(const ia_claims *caller, const cJSON *body, ia_selector *sel, ia_err *err)
{
	memset(sel, 0, sizeof *sel);
	if (ia_json_string(body, "integration_id", false, 64, &sel->integration_id, err))
		return -1;
	if (sel->integration_id) {
		/* the id alone selects; a user_id beside it still must be the caller's
		 * own (SPEC §4), whatever row RLS would let through */
		const char *named;
		if (ia_json_string(body, "user_id", false, 64, &named, err))
			return -1;
		if (named && caller->role == IA_ROLE_USER && strcasecmp(named, caller->sub) != 0)
			return ia_err_set(err, 403, "forbidden", "A user may only act for itself.");
		if (!ia_uuid_parse(sel->integration_id, sel->id_buf))
			return ia_err_set(err, 404, "not_found", "No such integration.");
		sel->integration_id = sel->id_buf;
		return 0;
	}
	if (ia_json_string(body, "provider", false, 64, &sel->provider, err) ||
	    ia_json_string(body, "connection", false, 64, &sel->connection, err))
		return -1;
	if (!sel->provider)
		return ia_err_set(err, 400, "invalid_request",
				  "Give \"integration_id\", or \"provider\" and optionally \"connection\".");
	if (!sel->connection)
		sel->connection = "default";
	return ia_acting_user(caller, body, sel->user_buf, &sel->user_id, err);
}

int ia_integration_store(ia_app *app, const ia_claims *caller, const char *body, size_t len,
			 ia_buf *out, ia_err *err)
{
	cJSON *root = NULL;
	char *metadata = NULL;
	const char *provider_name = NULL, *auth_type = NULL, *connection = NULL, *user_id = NULL;
	char user_buf[37];
	const cJSON *creds = NULL, *meta = NULL;
	const ia_provider *provider;
	stored_fields f;
	int rc = -1;

	ia_buf_init(&f.secret, IA_SECRET_MAX);
	ia_buf_init(&f.scopes, 64 * 1024);
	f.expires_in[0] = '\0';
	f.expires_at = NULL;

	if (!(root = ia_json_parse_object(body, len, err)))
		goto out;
	if (ia_json_string(root, "provider", true, 64, &provider_name, err))
		goto out;
	if (!(provider = ia_providers_find(app->providers, provider_name))) {
		ia_err_set(err, 400, "unknown_provider", "Unknown provider.");
		goto out;
	}
	if (ia_json_string(root, "auth_type", false, 32, &auth_type, err))
		goto out;
	if (auth_type && ia_auth_type_parse(auth_type) != (int)provider->auth_type) {
		ia_err_set(err, 400, "unsupported_auth_type", "Provider %s uses auth type %s.",
			   provider->name, ia_auth_type_names[provider->auth_type]);
		goto out;
	}
	if (ia_json_string(root, "connection", false, 64, &connection, err))
		goto out;
	if (!connection)
		connection = "default";
	if (!ia_connection_valid(connection)) {
		ia_err_set(err, 400, "invalid_request",
			   "Field \"connection\" must be 1-64 characters of A-Z a-z 0-9 _ . : @ -.");
		goto out;
	}
	if (ia_acting_user(caller, root, user_buf, &user_id, err) ||
	    ia_json_object(root, "credentials", true, &creds, err) ||
	    ia_json_object(root, "metadata", false, &meta, err))
		goto out;
	if (collect_credentials(provider->auth_type, creds, &f, err))
		goto out;
	if (meta && !(metadata = cJSON_PrintUnformatted(meta))) {
		ia_err_oom(err);
		goto out;
	}
	if (metadata && strlen(metadata) > 64 * 1024) {
		ia_err_set(err, 400, "invalid_request", "Field \"metadata\" is too large.");
		goto out;
	}

	ia_integration_write w = {
		.user_id = user_id, .provider = provider->name, .connection = connection,
		.auth_type = provider->auth_type, .scopes_json = ia_buf_cstr(&f.scopes),
		.expires_at = f.expires_at, .expires_in = f.expires_in[0] ? f.expires_in : NULL,
		.metadata_json = metadata, .secret = f.secret.data, .secret_len = f.secret.len,
		.log_action = "credentials_stored", .log_message = "Credentials stored.",
	};
	if (ia_integration_save(app, caller, &w, out, err))
		goto out;
	ia_log(IA_LOG_INFO, "credentials_stored", "provider %s user %s", provider->name, user_id);
	rc = 0;
out:
	ia_buf_release(&f.secret);
	ia_buf_release(&f.scopes);
	if (metadata)
		cJSON_free(metadata);
	ia_json_free(root);
	return rc;
}

int ia_integration_list(ia_app *app, const ia_claims *caller, ia_buf *out, ia_err *err)
{
	bool found;
	const char *params[] = { caller->sub };

	return ia_db_run_one(&app->db, caller,
		       "SELECT json_build_object('integrations', coalesce(json_agg("
		       " intauth.integration_json(i) ORDER BY i.created_at, i.id), '[]'::json))::text"
		       " FROM public.integrations i WHERE i.user_id = $1",
		       1, params, out, &found, err);
}

int ia_integration_get(ia_app *app, const ia_claims *caller, const char *path_id, ia_buf *out,
		       ia_err *err)
{
	bool found;

	char id[37];
	if (!ia_uuid_parse(path_id, id))
		return ia_err_set(err, 404, "not_found", "No such integration.");
	const char *params[] = { id };
	/* no user filter in the SQL: RLS alone decides, and 0 rows is 404 */
	if (ia_db_run_one(&app->db, caller,
		    "SELECT json_build_object('integration', intauth.integration_json(i))::text"
		    " FROM public.integrations i WHERE i.id = $1",
		    1, params, out, &found, err))
		return -1;
	if (!found)
		return ia_err_set(err, 404, "not_found", "No such integration.");
	return 0;
}

/* Deleting a connection must not leave its tokens alive at the provider: the
 * credential is re-sealed for a revoke_retry job, which the worker runs after
 * the answer, and the rows go in the same transaction. */
int ia_integration_delete(ia_app *app, const ia_claims *caller, const char *path_id, ia_buf *out,
			  ia_err *err)
{
	PGresult *res = NULL, *done = NULL;
	char *plain = NULL, *retry = NULL;
	bool kept_unopened = false;
	size_t plain_len = 0;
	int rc = -1;

	char id[37];
	if (!ia_uuid_parse(path_id, id))
		return ia_err_set(err, 404, "not_found", "No such integration.");
	const char *params[] = { id };
	if (ia_db_begin(&app->db, caller, err))
		return -1;
	/* the lock first, then the credential as committed by whoever held it
	 * (a refresh): one statement would see the credential as of its start,
	 * and queue the revocation of tokens that refresh has just replaced */
	if (!(res = ia_db_exec(&app->db, "SELECT 1 FROM public.integrations WHERE id = $1::uuid FOR UPDATE",
			       1, params, err)))
		goto out;
	PQclear(res);
	res = ia_db_exec(&app->db,
			 "SELECT i.provider, i.user_id, i.auth_type, c.id, c.secret, i.provider_params::text"
			 " FROM public.integrations i LEFT JOIN public.credentials c ON c.integration_id = i.id"
			 " WHERE i.id = $1::uuid",
			 1, params, err);
	if (!res)
		goto out;
	if (PQntuples(res) != 1) {
		ia_err_set(err, 404, "not_found", "No such integration.");
		goto out;
	}
	const ia_provider *p = ia_providers_find(app->providers, PQgetvalue(res, 0, 0));
	if (p && p->revocation_url && !PQgetisnull(res, 0, 4) &&
	    strcmp(PQgetvalue(res, 0, 2), "oauth2") == 0) {
		char context[IA_CREDENTIAL_CONTEXT_MAX];
		ia_credential_context(context, PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 1), p->name);
		if (ia_crypto_open(app->cfg.keys, PQgetvalue(res, 0, 4), context, &plain, &plain_len)) {
			/* deleting still must work; the worker revokes the credential
			 * once the ring opens it again */
			ia_log(IA_LOG_ERROR, "credential_decrypt_failed", "integration %s: deleting anyway", id);
			kept_unopened = ia_revoke_retry_seal_unopened(app, PQgetvalue(res, 0, 3),
								      PQgetvalue(res, 0, 4), id,
								      PQgetvalue(res, 0, 1), p->name, &retry);
		} else if (ia_revoke_retry_seal(app, plain, plain_len, id, PQgetvalue(res, 0, 1), p->name,
						&retry, err)) {
			goto out;
		}
	}
	const char *del_params[] = { id, retry, PQgetvalue(res, 0, 5), kept_unopened ? "true" : "false" };
	done = ia_db_exec(&app->db,
			  "WITH d AS (DELETE FROM public.integrations WHERE id = $1::uuid"
			  "  RETURNING id, user_id, provider, connection),"
			  " l AS (INSERT INTO public.integration_logs (user_id, provider, action, message, details)"
			  "  SELECT d.user_id, d.provider, 'integration_deleted', 'Integration deleted.',"
			  "  jsonb_build_object('integration_id', d.id, 'connection', d.connection) FROM d),"
			  IA_SQL_REVOKE_RETRY_JOB("d WHERE")
			  " SELECT json_build_object('deleted', true, 'id', d.id)::text FROM d",
			  4, del_params, err);
	if (!done || ia_db_commit_flags(&app->db, IA_DB_WAKE_WORKERS, err))
		goto out;
	if (PQntuples(done) != 1 || ia_buf_puts(out, PQgetvalue(done, 0, 0))) {
		ia_err_internal(err);
		goto out;
	}
	rc = 0;
out:
	if (rc)
		ia_db_rollback(&app->db);
	ia_secret_free(plain, plain_len);
	free(retry);
	PQclear(res);
	PQclear(done);
	return rc;
}

int ia_integration_logs(ia_app *app, const ia_claims *caller, const char *path_id, long limit,
			ia_buf *out, ia_err *err)
{
	bool found;
	char lim[24];

	char id[37];
	if (!ia_uuid_parse(path_id, id))
		return ia_err_set(err, 404, "not_found", "No such integration.");
	snprintf(lim, sizeof lim, "%ld", limit);
	const char *params[] = { id, lim };
	if (ia_db_run_one(&app->db, caller,
		    "SELECT CASE WHEN EXISTS (SELECT 1 FROM public.integrations WHERE id = $1) THEN"
		    " (SELECT json_build_object('logs', coalesce(json_agg(json_build_object("
		    "  'id', l.id, 'level', l.level, 'action', l.action, 'message', l.message,"
		    "  'details', l.details, 'created_at', intauth.ts(l.created_at)) ORDER BY l.id DESC),"
		    "  '[]'::json))::text"
		    "  FROM (SELECT * FROM public.integration_logs WHERE integration_id = $1"
		    "   ORDER BY id DESC LIMIT $2::int) l) END",
		    2, params, out, &found, err))
		return -1;
	if (!found)
		return ia_err_set(err, 404, "not_found", "No such integration.");
	return 0;
}

/* Writes the "credentials" object of getCredentials from the decrypted JSON. */
static int answer_credentials(enum ia_auth_type type, const char *plain, size_t plain_len,
			      const char *expires_at, const char *scopes_json, ia_buf *out,
			      ia_err *err)
{
	cJSON *secret = cJSON_ParseWithLength(plain, plain_len);
	static const char *const oauth_fields[] = { "access_token", "token_type", NULL };
	static const char *const key_fields[] = { "api_key", NULL };
	static const char *const basic_fields[] = { "username", "password", NULL };
	const char *const *fields = type == IA_AUTH_OAUTH2 ? oauth_fields
				    : type == IA_AUTH_API_KEY ? key_fields : basic_fields;
	int rc = -1;

	if (!secret) {
		ia_log(IA_LOG_ERROR, "credential_corrupt", "decrypted credential is not JSON");
		ia_err_internal(err);
		goto out;
	}
	if (ia_buf_putc(out, '{'))
		goto oom;
	for (size_t i = 0; fields[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(secret, fields[i]);
		if (!cJSON_IsString(v))
			continue;
		if (ia_buf_puts(out, i ? ",\"" : "\"") || ia_buf_puts(out, fields[i]) ||
		    ia_buf_puts(out, "\":\"") || ia_buf_json_escape(out, v->valuestring) ||
		    ia_buf_putc(out, '"'))
			goto oom;
	}
	if (type == IA_AUTH_OAUTH2) {
		if (ia_buf_puts(out, ",\"expires_at\":"))
			goto oom;
		if (expires_at ? ia_buf_printf(out, "\"%s\"", expires_at) : ia_buf_puts(out, "null"))
			goto oom;
		if (ia_buf_printf(out, ",\"scopes\":%s", scopes_json))
			goto oom;
	}
	if (ia_buf_putc(out, '}'))
		goto oom;
	rc = 0;
	goto out;
oom:
	ia_err_oom(err);
out:
	ia_json_free(secret);
	return rc;
}

/* getCredentials' read: the integration, its credential, whether it is due
 * for a refresh (window: the parameter holding REFRESH_WINDOW_SECONDS), and
 * whether its access token has expired already. */
#define FETCH_SQL(window, where) \
	"SELECT intauth.integration_json(i)::text, i.status, i.auth_type, c.id, c.secret," \
	" i.user_id, i.provider, intauth.ts(i.expires_at), to_json(i.scopes)::text," \
	" (i.auth_type = 'oauth2' AND i.status = 'connected'" \
	"  AND i.expires_at <= now() + make_interval(secs => " window "::double precision)" \
	"  AND (i.next_refresh_at IS NULL OR i.next_refresh_at <= now())), i.id," \
	" (i.auth_type = 'oauth2' AND i.expires_at <= now())" \
	" FROM public.integrations i LEFT JOIN public.credentials c ON c.integration_id = i.id" \
	" WHERE " where

int ia_credentials_fetch(ia_app *app, const ia_claims *caller, const char *body, size_t len,
			 ia_buf *out, ia_err *err)
{
	cJSON *root = NULL;
	PGresult *res = NULL;
	char *plain = NULL;
	size_t plain_len = 0;
	const char *integration_id, *user_id, *provider, *connection;
	int rc = -1;

	if (!(root = ia_json_parse_object(body, len, err)))
		goto out;
	if (ia_json_string(root, "integration_id", false, 64, &integration_id, err) ||
	    ia_json_string(root, "user_id", false, 64, &user_id, err) ||
	    ia_json_string(root, "provider", false, 64, &provider, err) ||
	    ia_json_string(root, "connection", false, 64, &connection, err))
		goto out;
	if (!integration_id && !(user_id && provider)) {
		ia_err_set(err, 400, "invalid_request",
			   "Give \"integration_id\", or \"user_id\" and \"provider\".");
		goto out;
	}
	char id_buf[37], user_buf[37];
	if ((integration_id && !ia_uuid_parse(integration_id, id_buf)) ||
	    (user_id && !ia_uuid_parse(user_id, user_buf))) {
		ia_err_set(err, 404, "not_found", "No such integration.");
		goto out;
	}
	if (integration_id)
		integration_id = id_buf;
	if (user_id)
		user_id = user_buf;
	char window[24];
	snprintf(window, sizeof window, "%ld", app->cfg.refresh_window_seconds);
	/* two statements, not one with a CASE: each keeps a generic plan */
	const char *by_id[] = { integration_id, window };
	const char *by_name[] = { user_id, provider, connection ? connection : "default", window };
	for (int attempt = 0;; attempt++) {
		res = integration_id
		      ? ia_db_query(&app->db, caller, FETCH_SQL("$2", "i.id = $1::uuid"), 2, by_id, err)
		      : ia_db_query(&app->db, caller,
				    FETCH_SQL("$4", "i.user_id = $1::uuid AND i.provider = $2 AND i.connection = $3"),
				    4, by_name, err);
		if (!res)
			goto out;
		if (PQntuples(res) == 0) {
			ia_err_set(err, 404, "not_found", "No such integration.");
			goto out;
		}
		if (attempt > 0 || strcmp(PQgetvalue(res, 0, 9), "t") != 0)
			break;
		/* inside the refresh window: refresh first (one caller does; the
		 * others wait for it), then read again */
		bool still_valid;
		if (ia_tokens_refresh_if_due(app, caller, PQgetvalue(res, 0, 10), &still_valid, err) &&
		    !still_valid)
			goto out;
		PQclear(res);
		res = NULL;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "connected") != 0 || PQgetisnull(res, 0, 3)) {
		ia_err_set(err, 409, "not_connected", "The integration has no usable credential (%s).",
			   PQgetvalue(res, 0, 1));
		goto out;
	}
	/* expired, and its refresh failed a moment ago (now cooling down): a
	 * dead token is no credential */
	if (strcmp(PQgetvalue(res, 0, 11), "t") == 0) {
		ia_err_set(err, 409, "not_connected",
			   "The access token has expired and could not be refreshed yet; try again later.");
		goto out;
	}
	char context[IA_CREDENTIAL_CONTEXT_MAX];
	ia_credential_context(context, PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 5),
			      PQgetvalue(res, 0, 6));
	if (ia_crypto_open(app->cfg.keys, PQgetvalue(res, 0, 4), context, &plain, &plain_len)) {
		/* tampering, a moved row or a lost key: an alarm, never partial data */
		ia_log(IA_LOG_ERROR, "credential_decrypt_failed", "credential %s does not decrypt",
		       PQgetvalue(res, 0, 3));
		ia_err_set(err, 500, "internal_error", "The stored credential could not be decrypted.");
		goto out;
	}
	int type = ia_auth_type_parse(PQgetvalue(res, 0, 2));
	if (ia_buf_puts(out, "{\"integration\":") ||
	    ia_buf_append(out, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0)) ||
	    ia_buf_puts(out, ",\"credentials\":")) {
		ia_err_oom(err);
		goto out;
	}
	if (answer_credentials((enum ia_auth_type)type, plain, plain_len,
			       PQgetisnull(res, 0, 7) ? NULL : PQgetvalue(res, 0, 7),
			       PQgetvalue(res, 0, 8), out, err))
		goto out;
	if (ia_buf_putc(out, '}')) {
		ia_err_oom(err);
		goto out;
	}
	rc = 0;
out:
	if (rc)
		ia_db_rollback(&app->db);
	ia_secret_free(plain, plain_len);
	PQclear(res);
	ia_json_free(root);
	return rc;
}
