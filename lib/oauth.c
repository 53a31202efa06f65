#include "ia_oauth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>
#include <sodium.h>

#include "ia_codec.h"
#include "ia_crypto.h"
#include "ia_integrations.h"
#include "ia_json.h"
#include "ia_log.h"
#include "ia_outbound.h"

#define RANDOM_TOKEN_BYTES 32
#define RANDOM_TOKEN_CHARS 43   /* base64url of 32 bytes, unpadded */

void ia_token_set_release(ia_token_set *t)
{
	char **fields[] = { &t->access_token, &t->refresh_token, &t->token_type, &t->id_token,
			    &t->scope };

	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		if (*fields[i])
			ia_secret_free(*fields[i], strlen(*fields[i]));
		*fields[i] = NULL;
	}
	t->expires_in = -1;
}

static int take(char **dst, const char *value)
{
	if (!value || !*value || *dst)
		return 0;
	*dst = ia_secret_dup(value, strlen(value));
	return *dst ? 0 : -1;
}

/* RFC 6749 Appendix A: VSCHAR = %x20-7E. */
static bool vschars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* An OAuth error code is [a-z_]; anything else is not worth repeating. */
static void copy_error_code(char out[48], const char *code)
{
	size_t n = 0;

	out[0] = '\0';
	if (!code)
		return;
	for (; code[n] && n < 47; n++) {
		if (!islower((unsigned char)code[n]) && code[n] != '_') {
			snprintf(out, 48, "unknown");
			return;
		}
		out[n] = code[n];
	}
	out[n] = '\0';
}

/* Some providers send expires_in as a string; any positive number counts. */
static void set_expires_in(ia_token_set *t, double seconds)
{
	if (!(seconds >= 1))     /* also NaN */
		return;
	t->expires_in = seconds > (double)IA_MAX_EXPIRES_IN_SECONDS ? IA_MAX_EXPIRES_IN_SECONDS
								  : (long)seconds;
}

static int parse_form_answer(const char *body, size_t len, ia_token_set *t, char error[48])
{
	char *copy = ia_secret_dup(body, len);
	int rc = -1;

	if (!copy)
		return -1;
	for (char *p = copy; *p;) {
		char *amp = strchr(p, '&');
		if (amp)
			*amp = '\0';
		char *eq = strchr(p, '=');
		if (eq) {
			*eq = '\0';
			char *v = eq + 1;
			long n = ia_url_decode(v, strlen(v), true, v, strlen(v) + 1);
			if (n < 0)
				goto out;
			if (strcmp(p, "access_token") == 0 ? take(&t->access_token, v)
			    : strcmp(p, "refresh_token") == 0 ? take(&t->refresh_token, v)
			    : strcmp(p, "token_type") == 0 ? take(&t->token_type, v)
			    : strcmp(p, "id_token") == 0 ? take(&t->id_token, v)
			    : strcmp(p, "scope") == 0 ? take(&t->scope, v) : 0)
				goto out;
			if (strcmp(p, "error") == 0)
				copy_error_code(error, v);
			if (strcmp(p, "expires_in") == 0)
				set_expires_in(t, strtod(v, NULL));
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	rc = 0;
out:
	ia_secret_free(copy, len);
	return rc;
}

static int parse_json_answer(const char *body, size_t len, ia_token_set *t, char error[48])
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	int rc = -1;

	if (!root || !cJSON_IsObject(root))
		goto out;
	const char *names[] = { "access_token", "refresh_token", "token_type", "id_token", "scope" };
	char **dst[] = { &t->access_token, &t->refresh_token, &t->token_type, &t->id_token, &t->scope };
	for (size_t i = 0; i < 5; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, names[i]);
		if (cJSON_IsString(v) && take(dst[i], v->valuestring))
			goto out;
	}
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsString(e))
		copy_error_code(error, e->valuestring);
	const cJSON *ein = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
	if (cJSON_IsNumber(ein))
		set_expires_in(t, ein->valuedouble);
	else if (cJSON_IsString(ein))
		set_expires_in(t, strtod(ein->valuestring, NULL));
	rc = 0;
out:
	ia_json_free(root);
	return rc;
}

int ia_oauth_parse_token_response(long status, const char *content_type, const char *body,
				  size_t len, ia_token_set *out, ia_err *err)
{
	char error[48] = "";
	int parsed;

	memset(out, 0, sizeof *out);
	out->expires_in = -1;
	if (status >= 500 || status == 429)
		return ia_err_set(err, 502, "provider_error",
				  "The provider's token endpoint failed (HTTP %ld).", status);
	while (len && isspace((unsigned char)*body)) {
		body++;
		len--;
	}
	if ((content_type && strstr(content_type, "json")) || (len && *body == '{'))
		parsed = parse_json_answer(body, len, out, error);
	else if (content_type && (strstr(content_type, "x-www-form-urlencoded") ||
				  strstr(content_type, "text/plain")))
		parsed = parse_form_answer(body, len, out, error);
	else
		parsed = -1;
	if (parsed != 0) {
		ia_token_set_release(out);
		return ia_err_set(err, 502, "provider_error",
				  "The provider's token endpoint answered something unreadable.");
	}
	if (error[0] || status < 200 || status >= 300) {
		ia_token_set_release(out);
		if (strcmp(error, "invalid_grant") == 0)
			return ia_err_set(err, 422, "reauthorization_required",
					  "The provider no longer accepts this grant; the user must reconnect.");
		return ia_err_set(err, 502, "provider_error", "The provider refused the token request (%s).",
				  error[0] ? error : "no error code");
	}
	if (!out->access_token || !out->token_type) {
		ia_token_set_release(out);
		return ia_err_set(err, 502, "provider_error",
				  "The provider's token answer lacks access_token or token_type.");
	}
	/* RFC 6749 Appendix A: both are VSCHARs. A CR or LF would otherwise go
	 * into the Authorization header of a later call (libcurl does not check
	 * custom headers), so such an answer is refused before anything is stored. */
	if (!vschars(out->access_token) || (out->refresh_token && !vschars(out->refresh_token)) ||
	    !vschars(out->token_type)) {
		ia_token_set_release(out);
		return ia_err_set(err, 502, "provider_error",
				  "The provider's token answer holds characters a token may not have.");
	}
	return 0;
}

/* Placeholder values from a stored JSON object of validated params. */
char *ia_oauth_fill_url(const ia_provider *p, const char *tmpl, const char *params_json,
			ia_err *err)
{
	const char *names[16], *values[16];
	size_t n = 0;
	cJSON *root = params_json ? cJSON_Parse(params_json) : NULL;
	const cJSON *item;
	char *url;

	if (root && cJSON_IsObject(root)) {
		cJSON_ArrayForEach(item, root) {
			if (n < 16 && cJSON_IsString(item)) {
				names[n] = item->string;
				values[n] = item->valuestring;
				n++;
			}
		}
	}
	url = ia_provider_fill_url(p, tmpl, names, values, n, err);
	cJSON_Delete(root);
	return url;
}

int ia_oauth_token_prepare(const ia_app *app, const ia_provider *p, const char *params_json,
			   ia_buf *form, ia_outbound *call, ia_err *err)
{
	return ia_oauth_client_prepare(app, p, p->token_url, params_json, form, call, err);
}

int ia_oauth_client_prepare(const ia_app *app, const ia_provider *p, const char *url_tmpl,
			    const char *params_json, ia_buf *form, ia_outbound *call, ia_err *err)
{
	const char *id = ia_provider_client_id(p, &app->cfg);
	const char *secret = ia_provider_client_secret(p, &app->cfg);
	bool basic = p->token_endpoint_auth == IA_TOKEN_AUTH_BASIC && secret;
	char *url;
	int rc;

	memset(call, 0, sizeof *call);
	if (!id)
		return ia_err_set(err, 400, "invalid_request", "Provider %s is not configured.", p->name);
	if (!basic && (ia_form_add(form, "client_id", id) ||
		       (secret && ia_form_add(form, "client_secret", secret))))
		return ia_err_oom(err);
	if (!(url = ia_oauth_fill_url(p, url_tmpl, params_json, err)))
		return -1;
	rc = ia_outbound_init(call, &app->cfg, url, ia_buf_cstr(form), NULL, basic ? id : NULL,
			      basic ? secret : NULL, err);
	free(url);
	return rc;
}

int ia_oauth_token_request(const ia_app *app, const ia_provider *p, const char *params_json,
			   ia_buf *form, ia_token_set *out, ia_err *err)
{
	ia_outbound call;
	long status = 0;
	int rc = -1;

	memset(out, 0, sizeof *out);
	out->expires_in = -1;
	if (ia_oauth_token_prepare(app, p, params_json, form, &call, err))
		goto out;
	if (ia_outbound_perform(&call, &status, err))
		goto out;
	rc = ia_oauth_parse_token_response(status, call.content_type, ia_buf_cstr(&call.response),
					   call.response.len, out, err);
out:
	if (rc)
		ia_log(IA_LOG_WARN, "token_request_failed", "provider %s: HTTP %ld, %s", p->name,
		       status, err->code ? err->code : "error");
	ia_outbound_release(&call);
	return rc;
}

static int put_field(ia_buf *b, const char *name, const char *value)
{
	if (!value)
		return 0;
	return (ia_buf_puts(b, b->len > 1 ? ",\"" : "\"") || ia_buf_puts(b, name) ||
		ia_buf_puts(b, "\":\"") || ia_buf_json_escape(b, value) || ia_buf_putc(b, '"')) ? -1 : 0;
}

int ia_token_set_secret_json(const ia_token_set *t, const char *keep_refresh, ia_buf *out)
{
	if (ia_buf_putc(out, '{') || put_field(out, "access_token", t->access_token) ||
	    put_field(out, "refresh_token", t->refresh_token ? t->refresh_token : keep_refresh) ||
	    put_field(out, "token_type", t->token_type) || put_field(out, "id_token", t->id_token) ||
	    ia_buf_putc(out, '}'))
		return -1;
	return 0;
}

static bool random_token_shape(const char *s)
{
	size_t n = strlen(s);

	if (n != RANDOM_TOKEN_CHARS)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

static void random_token(char out[RANDOM_TOKEN_CHARS + 1])
{
	unsigned char raw[RANDOM_TOKEN_BYTES];

	randombytes_buf(raw, sizeof raw);
	ia_b64url_encode(raw, sizeof raw, out, RANDOM_TOKEN_CHARS + 1);
	sodium_memzero(raw, sizeof raw);
}

void ia_oauth_verifier_context(char out[256], const char *state_hash, const char *user_id,
			     const char *provider)
{
	snprintf(out, 256, "oauth_states.code_verifier|%s|%s|%s", state_hash, user_id, provider);
}

/* Splits a scope list on the given separators into a JSON array text. */
static int scopes_to_json(const char *list, const char *seps, ia_buf *json, ia_err *err)
{
	size_t n = 0;

	if (ia_buf_putc(json, '['))
		return ia_err_oom(err);
	if (ia_json_append_scope_list(json, &n, IA_SCOPE_REQUEST_MAX_ITEMS, list, seps, true, err))
		return -1;
	return ia_buf_putc(json, ']') ? ia_err_oom(err) : 0;
}

int ia_oauth_start(ia_app *app, ia_request *req, const char *provider_name, ia_buf *out,
		   char **location, ia_err *err)
{
	const ia_provider *p = ia_providers_find(app->providers, provider_name);
	char state[RANDOM_TOKEN_CHARS + 1], verifier[RANDOM_TOKEN_CHARS + 1];
	char flow[RANDOM_TOKEN_CHARS + 1], state_hash[44], flow_hash[44], challenge[44];
	char context[256];
	char *auth_url = NULL, *envelope = NULL, *redirect_default = NULL;
	ia_buf scopes, scope_param, params_json, url, cookie;
	bool found;
	int rc = -1;

	*location = NULL;
	ia_buf_init(&scopes, 16384);
	ia_buf_init(&scope_param, 16384);
	ia_buf_init(&params_json, 4096);
	ia_buf_init(&url, 32768);
	ia_buf_init(&cookie, 512);
	if (!p) {
		ia_err_set(err, 400, "unknown_provider", "Unknown provider.");
		goto out;
	}
	if (p->auth_type != IA_AUTH_OAUTH2) {
		ia_err_set(err, 400, "unsupported_auth_type", "Provider %s does not use OAuth.", p->name);
		goto out;
	}
	const char *client_id = ia_provider_client_id(p, &app->cfg);
	if (!client_id) {
		ia_err_set(err, 400, "invalid_request", "Provider %s is not configured.", p->name);
		goto out;
	}

	const char *redirect_to = ia_request_query(req, "redirect_to");
	if (!redirect_to) {
		size_t n = strlen(app->cfg.public_base_url) + 2;
		if (!(redirect_default = malloc(n))) {
			ia_err_oom(err);
			goto out;
		}
		snprintf(redirect_default, n, "%s/", app->cfg.public_base_url);
		redirect_to = redirect_default;
	}
	if (strlen(redirect_to) > 2048 || !ia_config_redirect_allowed(&app->cfg, redirect_to)) {
		ia_err_set(err, 400, "invalid_request", "redirect_to is not on an allowed origin.");
		goto out;
	}
	const char *connection = ia_request_query(req, "connection");
	if (!connection)
		connection = "default";
	if (!ia_connection_valid(connection)) {
		ia_err_set(err, 400, "invalid_request", "connection must be 1-64 of A-Z a-z 0-9 _ . : @ -.");
		goto out;
	}

	/* scopes: requested (comma-separated) or the catalog's defaults */
	const char *requested = ia_request_query(req, "scopes");
	if (requested) {
		if (scopes_to_json(requested, ",", &scopes, err))
			goto out;
	} else {
		size_t n = 0;
		if (ia_buf_putc(&scopes, '['))
			goto oom;
		for (size_t i = 0; i < p->n_default_scopes; i++)
			if (ia_json_append_scope(&scopes, &n, IA_SCOPE_REQUEST_MAX_ITEMS, p->default_scopes[i],
						 strlen(p->default_scopes[i]), true, err))
				goto out;
		if (ia_buf_putc(&scopes, ']'))
			goto oom;
	}
	cJSON *scope_list = cJSON_Parse(ia_buf_cstr(&scopes));
	const cJSON *item;
	cJSON_ArrayForEach(item, scope_list) {
		if ((scope_param.len && ia_buf_puts(&scope_param, p->scope_separator)) ||
		    ia_buf_puts(&scope_param, item->valuestring)) {
			cJSON_Delete(scope_list);
			goto oom;
		}
	}
	cJSON_Delete(scope_list);

	/* {param} values, validated by the catalog's patterns, kept for the callback */
	const char *names[16], *values[16];
	size_t n_params = 0;
	if (ia_buf_putc(&params_json, '{'))
		goto oom;
	for (size_t i = 0; i < p->n_params && i < 16; i++) {
		const char *v = ia_request_query(req, p->params[i].name);
		if (!v)
			continue;
		names[n_params] = p->params[i].name;
		values[n_params] = v;
		if ((n_params && ia_buf_putc(&params_json, ',')) || ia_buf_putc(&params_json, '"') ||
		    ia_buf_json_escape(&params_json, p->params[i].name) || ia_buf_puts(&params_json, "\":\"") ||
		    ia_buf_json_escape(&params_json, v) || ia_buf_putc(&params_json, '"'))
			goto oom;
		n_params++;
	}
	if (ia_buf_putc(&params_json, '}'))
		goto oom;
	if (!(auth_url = ia_provider_fill_url(p, p->authorization_url, names, values, n_params, err)))
		goto out;
	/* the token URL must be fillable too, or the callback would fail late */
	char *token_url = ia_provider_fill_url(p, p->token_url, names, values, n_params, err);
	if (!token_url)
		goto out;
	free(token_url);

	random_token(state);
	ia_sha256_b64url(state, strlen(state), state_hash);
	random_token(verifier);
	ia_sha256_b64url(verifier, strlen(verifier), challenge);
	ia_oauth_verifier_context(context, state_hash, req->claims.sub, p->name);
	if (p->pkce && ia_crypto_seal(app->cfg.keys, verifier, strlen(verifier), context, &envelope)) {
		ia_err_internal(err);
		goto out;
	}

	/* the browser binding: reuse the nonce the browser already holds, so two
	 * flows started in two tabs both finish */
	bool bind = app->cfg.oauth_bind_browser;
	if (bind) {
		if (ia_request_cookie(req, IA_FLOW_COOKIE, flow, sizeof flow) != 0 || !random_token_shape(flow))
			random_token(flow);
		ia_sha256_b64url(flow, strlen(flow), flow_hash);
		bool secure = strncmp(app->cfg.public_base_url, "https://", 8) == 0;
		/* the callback's path, under PUBLIC_BASE_URL's when a proxy adds one */
		if (ia_buf_printf(&cookie, "%s=%s; Path=%s/api/auth/; Max-Age=%d; HttpOnly; SameSite=Lax%s",
				  IA_FLOW_COOKIE, flow, ia_config_base_path(&app->cfg),
				  IA_OAUTH_STATE_TTL_SECONDS, secure ? "; Secure" : "") ||
		    ia_resp_header(req, "Set-Cookie", ia_buf_cstr(&cookie)))
			goto oom;
	}

	const char *params[] = {
		state_hash, req->claims.sub, p->name, connection, redirect_to, ia_buf_cstr(&scopes),
		ia_buf_cstr(&params_json), envelope, bind ? flow_hash : NULL,
	};
	ia_buf ignored;
	ia_buf_init(&ignored, 256);
	rc = ia_db_run_one(&app->db, &req->claims,
			   /* old states are the worker's to delete (ia_jobs_schedule) */
			   "INSERT INTO public.oauth_states (state_hash, user_id, provider, connection,"
			   "  redirect_to, scopes, params, code_verifier, flow_hash)"
			   " VALUES ($1, $2, $3, $4, $5, ARRAY(SELECT jsonb_array_elements_text($6::jsonb)),"
			   "  $7::jsonb, $8, $9) RETURNING id",
			   9, params, &ignored, &found, err);
	ia_buf_release(&ignored);
	if (rc)
		goto out;
	rc = -1;

	/* the authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3) */
	ia_buf query;
	ia_buf_init(&query, 32768);
	char redirect_uri[1024];
	snprintf(redirect_uri, sizeof redirect_uri, "%s/api/auth/%s/callback", app->cfg.public_base_url,
		 p->name);
	int bad = ia_form_add(&query, "response_type", "code") ||
		  ia_form_add(&query, "client_id", client_id) ||
		  ia_form_add(&query, "redirect_uri", redirect_uri) ||
		  (scope_param.len && ia_form_add(&query, "scope", ia_buf_cstr(&scope_param))) ||
		  ia_form_add(&query, "state", state) ||
		  (p->pkce && (ia_form_add(&query, "code_challenge", challenge) ||
			       ia_form_add(&query, "code_challenge_method", "S256")));
	for (size_t i = 0; !bad && i < p->n_auth_params; i++)
		bad = ia_form_add(&query, p->auth_param_keys[i], p->auth_param_values[i]);
	bad = bad || ia_buf_puts(&url, auth_url) || ia_buf_putc(&url, strchr(auth_url, '?') ? '&' : '?') ||
	      ia_buf_append(&url, query.data, query.len);
	ia_buf_release(&query);
	if (bad)
		goto oom;
	if (ia_buf_puts(out, "{\"url\":\"") || ia_buf_json_escape(out, ia_buf_cstr(&url)) ||
	    ia_buf_puts(out, "\"}"))
		goto oom;
	if (!(*location = strdup(ia_buf_cstr(&url))))
		goto oom;
	rc = 0;
	goto out;
oom:
	ia_err_oom(err);
out:
	sodium_memzero(state, sizeof state);
	sodium_memzero(verifier, sizeof verifier);
	sodium_memzero(flow, sizeof flow);
	free(auth_url);
	free(envelope);
	free(redirect_default);
	ia_buf_release(&scopes);
	ia_buf_release(&scope_param);
	ia_buf_release(&params_json);
	ia_buf_release(&url);
	ia_buf_release(&cookie);
	return rc;
}

/* redirect_to with the outcome added to its query (before any fragment). */
static char *outcome_location(const char *redirect_to, const char *provider, const char *error)
{
	ia_buf b, q;
	const char *hash = strchr(redirect_to, '#');
	size_t base_len = hash ? (size_t)(hash - redirect_to) : strlen(redirect_to);
	char *loc = NULL;

	ia_buf_init(&b, 8192);
	ia_buf_init(&q, 1024);
	if (ia_form_add(&q, "provider", provider) ||
	    ia_form_add(&q, "status", error ? "error" : "connected") ||
	    (error && ia_form_add(&q, "error", error)))
		goto out;
	if (ia_buf_append(&b, redirect_to, base_len) ||
	    ia_buf_putc(&b, memchr(redirect_to, '?', base_len) ? '&' : '?') ||
	    ia_buf_append(&b, q.data, q.len) || (hash && ia_buf_puts(&b, hash)))
		goto out;
	loc = ia_buf_detach(&b);
out:
	ia_buf_release(&b);
	ia_buf_release(&q);
	return loc;
}

static void log_connect_failure(ia_app *app, const char *user_id, const char *provider,
				const char *code)
{
	ia_err ignored = { 0 };
	ia_buf none;
	bool found;
	const char *params[] = { user_id, provider, code };

	ia_buf_init(&none, 64);
	ia_db_run_one(&app->db, NULL,
		      "INSERT INTO public.integration_logs (user_id, provider, level, action, message, details)"
		      " VALUES ($1, $2, 'warn', 'connect_failed', 'Connecting failed: ' || $3,"
		      " jsonb_build_object('error', $3::text))",
		      3, params, &none, &found, &ignored);
	ia_buf_release(&none);
}

static const char *provider_error_code(const char *e)
{
	static const char *const known[] = {
		"access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", NULL
	};
	for (size_t i = 0; known[i]; i++)
		if (strcmp(e, known[i]) == 0)
			return known[i];
	return "provider_error";
}

typedef struct consumed_state {
	PGresult *res;          /* the consumed row; fields below point into it */
	const char *user_id, *provider, *connection, *redirect_to, *scopes_json, *params_json;
	const char *verifier_envelope, *flow_hash;
	const char *state_hash;
	bool fresh;
} consumed_state;

/* Marks the state used, atomically: of any number of simultaneous callbacks
 * with one state, exactly one gets the row. */
static int consume_state(ia_app *app, const char *state_hash, consumed_state *cs, ia_err *err)
{
	const char *params[] = { state_hash };

	memset(cs, 0, sizeof *cs);
	if (ia_db_begin(&app->db, NULL, err))
		return -1;
	cs->res = ia_db_exec(&app->db,
			     "UPDATE public.oauth_states SET used_at = now()"
			     " WHERE state_hash = $1 AND used_at IS NULL"
			     " RETURNING user_id, provider, connection, redirect_to, to_json(scopes)::text,"
			     "  params::text, code_verifier, flow_hash, expires_at > now()",
			     1, params, err);
	if (!cs->res || ia_db_commit(&app->db, err)) {
		ia_db_rollback(&app->db);
		return -1;
	}
	if (PQntuples(cs->res) != 1)
		return ia_err_set(err, 400, "invalid_state", "Unknown or already used state.");
	PGresult *r = cs->res;
	cs->user_id = PQgetvalue(r, 0, 0);
	cs->provider = PQgetvalue(r, 0, 1);
	cs->connection = PQgetvalue(r, 0, 2);
	cs->redirect_to = PQgetvalue(r, 0, 3);
	cs->scopes_json = PQgetvalue(r, 0, 4);
	cs->params_json = PQgetvalue(r, 0, 5);
	cs->verifier_envelope = PQgetisnull(r, 0, 6) ? NULL : PQgetvalue(r, 0, 6);
	cs->flow_hash = PQgetisnull(r, 0, 7) ? NULL : PQgetvalue(r, 0, 7);
	cs->fresh = strcmp(PQgetvalue(r, 0, 8), "t") == 0;
	cs->state_hash = state_hash;
	return 0;
}

/* RFC 6749 §3.1: a response parameter comes at most once. With two, the one
 * checked (the first, e.g. iss) and the one a reader of the URL trusts could
 * differ, so a repeated one fails the flow. */
static bool query_repeated(const ia_request *req, const char *key)
{
	size_t n = 0;

	for (size_t i = 0; i < req->n_query; i++)
		if (strcmp(req->query_keys[i], key) == 0)
			n++;
	return n > 1;
}

/* The steps after a valid state; any failure is an error code for the redirect. */
static const char *finish_connect(ia_app *app, ia_request *req, const ia_provider *p,
				  const consumed_state *cs)
{
	const char *code = ia_request_query(req, "code");
	const char *iss = ia_request_query(req, "iss");
	const char *perror = ia_request_query(req, "error");
	char *verifier = NULL;
	size_t verifier_len = 0;
	char context[256], redirect_uri[1024];
	ia_token_set tokens = { 0 };
	ia_buf form, secret, scopes, out;
	ia_err err = { 0 };
	const char *failure = NULL;

	ia_buf_init(&form, 65536);
	ia_buf_init(&secret, IA_SECRET_MAX);
	ia_buf_init(&scopes, 16384);
	ia_buf_init(&out, 65536);
	if (query_repeated(req, "code") || query_repeated(req, "iss") ||
	    query_repeated(req, "error")) {
		failure = "invalid_request";
		goto out;
	}
	if (iss && p->issuer && strcmp(iss, p->issuer) != 0) {
		/* RFC 9207: a response from another issuer is a mix-up attempt, an
		 * error response too (§2.4). Without a configured issuer there is
		 * nothing to compare with. */
		failure = "invalid_issuer";
		goto out;
	}
	if (perror) {
		/* never reflect error_description: it is the provider's (or an attacker's) text */
		failure = provider_error_code(perror);
		goto out;
	}
	if (!code || !*code || strlen(code) > 4096) {
		failure = "invalid_request";
		goto out;
	}
	if (cs->verifier_envelope) {
		ia_oauth_verifier_context(context, cs->state_hash, cs->user_id, p->name);
		if (ia_crypto_open(app->cfg.keys, cs->verifier_envelope, context, &verifier, &verifier_len)) {
			ia_log(IA_LOG_ERROR, "verifier_decrypt_failed", "a PKCE verifier did not decrypt");
			failure = "internal_error";
			goto out;
		}
	}
	snprintf(redirect_uri, sizeof redirect_uri, "%s/api/auth/%s/callback", app->cfg.public_base_url,
		 p->name);
	if (ia_form_add(&form, "grant_type", "authorization_code") || ia_form_add(&form, "code", code) ||
	    ia_form_add(&form, "redirect_uri", redirect_uri) ||
	    (verifier && ia_form_add(&form, "code_verifier", verifier))) {
		failure = "internal_error";
		goto out;
	}
	if (ia_oauth_token_request(app, p, cs->params_json, &form, &tokens, &err)) {
		failure = strcmp(err.code, "reauthorization_required") == 0 ? "provider_error" : err.code;
		goto out;
	}
	if (ia_token_set_secret_json(&tokens, NULL, &secret)) {
		failure = "internal_error";
		goto out;
	}
	/* granted scopes when the provider says, else what was asked */
	if (tokens.scope) {
		if (scopes_to_json(tokens.scope, " ,", &scopes, &err)) {
			ia_buf_reset(&scopes);
			ia_buf_puts(&scopes, cs->scopes_json);
		}
	} else {
		ia_buf_puts(&scopes, cs->scopes_json);
	}
	char expires_in[24];
	if (tokens.expires_in > 0)
		snprintf(expires_in, sizeof expires_in, "%ld", tokens.expires_in);
	ia_integration_write w = {
		.user_id = cs->user_id, .provider = p->name, .connection = cs->connection,
		.auth_type = IA_AUTH_OAUTH2, .scopes_json = ia_buf_cstr(&scopes),
		.expires_in = tokens.expires_in > 0 ? expires_in : NULL,
		.secret = secret.data, .secret_len = secret.len,
		.log_action = "connected", .log_message = "Connected through OAuth.",
		.enqueue_bootstrap = true, .provider_params_json = cs->params_json,
	};
	if (ia_integration_save(app, NULL, &w, &out, &err)) {
		failure = err.status == 503 ? "unavailable" : "internal_error";
		goto out;
	}
	ia_log(IA_LOG_INFO, "connected", "provider %s user %s", p->name, cs->user_id);
out:
	if (failure)
		ia_log(IA_LOG_WARN, "connect_failed", "provider %s: %s", p->name, failure);
	ia_secret_free(verifier, verifier_len);
	ia_token_set_release(&tokens);
	ia_buf_release(&form);
	ia_buf_release(&secret);
	ia_buf_release(&scopes);
	ia_buf_release(&out);
	return failure;
}

int ia_oauth_callback(ia_app *app, ia_request *req, const char *provider_name, char **location,
		      ia_err *err)
{
	const char *state = ia_request_query(req, "state");
	char state_hash[44], cookie[RANDOM_TOKEN_CHARS + 1], cookie_hash[44];
	consumed_state cs = { 0 };
	int rc = -1;

	*location = NULL;
	/* a repeated state names no single flow: refused before any is consumed */
	if (!state || !random_token_shape(state) || query_repeated(req, "state"))
		return ia_err_set(err, 400, "invalid_state", "Missing, malformed or repeated state.");
	ia_sha256_b64url(state, strlen(state), state_hash);
	if (consume_state(app, state_hash, &cs, err))
		goto out;
	if (strcmp(cs.provider, provider_name) != 0) {
		ia_err_set(err, 400, "invalid_state", "The state belongs to another provider.");
		goto out;
	}
	if (!cs.fresh) {
		ia_err_set(err, 400, "invalid_state", "The state has expired; start again.");
		goto out;
	}
	/* A signed-in user can write their own oauth_states rows through the
	 * Data API, so the row proves nothing by itself: what auth-start always
	 * puts there (the browser binding, the PKCE verifier, an allowed
	 * redirect_to) is required here again, not merely honoured when present. */
	const ia_provider *p = ia_providers_find(app->providers, provider_name);
	if ((app->cfg.oauth_bind_browser && !cs.flow_hash) || (p && p->pkce && !cs.verifier_envelope) ||
	    !ia_config_redirect_allowed(&app->cfg, cs.redirect_to)) {
		ia_log(IA_LOG_WARN, "state_incomplete", "provider %s: a state row auth-start did not write",
		       provider_name);
		ia_err_set(err, 400, "invalid_state", "Unknown or already used state.");
		goto out;
	}
	if (cs.flow_hash) {
		if (ia_request_cookie(req, IA_FLOW_COOKIE, cookie, sizeof cookie) != 0 ||
		    !random_token_shape(cookie)) {
			ia_err_set(err, 400, "invalid_state", "This browser did not start the flow.");
			goto out;
		}
		ia_sha256_b64url(cookie, strlen(cookie), cookie_hash);
		if (strlen(cs.flow_hash) != strlen(cookie_hash) ||
		    sodium_memcmp(cs.flow_hash, cookie_hash, strlen(cookie_hash)) != 0) {
			ia_err_set(err, 400, "invalid_state", "This browser did not start the flow.");
			goto out;
		}
	}
	/* the state is valid: from here on the outcome goes back to redirect_to */
	const char *failure = p ? finish_connect(app, req, p, &cs) : "unknown_provider";
	if (failure)
		log_connect_failure(app, cs.user_id, provider_name, failure);
	if (!(*location = outcome_location(cs.redirect_to, provider_name, failure))) {
		ia_err_oom(err);
		goto out;
	}
	rc = 0;
out:
	PQclear(cs.res);
	return rc;
}
