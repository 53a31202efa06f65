#include "ia_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <sodium.h>

#include "ia_codec.h"
#include "ia_crypto.h"
#include "ia_json.h"
#include "ia_log.h"
#include "ia_metrics.h"
#include "ia_webhooks.h"

#define MAX_SECRETS 8

void ia_webhook_secret_context(char out[256], const char *webhook_id, const char *user_id,
			       const char *provider)
{
	snprintf(out, 256, "integration_webhooks.secrets|%s|%s|%s", webhook_id, user_id, provider);
}

static const char *request_header(void *ctx, const char *name, int *count)
{
	return ia_request_header_n(ctx, name, count);
}

typedef struct secret_set {
	char *plain;               /* decrypted JSON array (sodium memory), or NULL */
	size_t plain_len;
	cJSON *list;
	const char *values[MAX_SECRETS];
	size_t n;
	char integration_id[37];
	char user_id[37];
} secret_set;

static void secret_set_release(secret_set *s)
{
	ia_json_free(s->list);
	ia_secret_free(s->plain, s->plain_len);
	memset(s, 0, sizeof *s);
}

/* Loads the active secrets of one integration_webhooks row. 0 with s->n >= 0
 * (an unknown row just yields none); -1 with err for database trouble, and
 * 500 for a row whose secrets do not decrypt: that fault is ours, not the
 * sender's, so the provider is told to retry and the alarm is ours (SPEC §4). */
static int load_row_secrets(ia_app *app, const char *provider, const char *webhook_id,
			    secret_set *s, ia_err *err)
{
	const char *params[] = { webhook_id, provider };
	PGresult *res = NULL;
	char context[256];
	int rc = -1;

	if (ia_db_begin(&app->db, NULL, err))
		return -1;
	res = ia_db_exec(&app->db,
			 "SELECT secrets, user_id, coalesce(integration_id::text, '')"
			 " FROM public.integration_webhooks"
			 " WHERE id = $1::uuid AND provider = $2 AND active",
			 2, params, err);
	if (!res || ia_db_commit(&app->db, err))
		goto out;
	rc = 0;
	if (PQntuples(res) != 1)
		goto out;
	snprintf(s->user_id, sizeof s->user_id, "%s", PQgetvalue(res, 0, 1));
	snprintf(s->integration_id, sizeof s->integration_id, "%s", PQgetvalue(res, 0, 2));
	ia_webhook_secret_context(context, webhook_id, s->user_id, provider);
	if (ia_crypto_open(app->cfg.keys, PQgetvalue(res, 0, 0), context, &s->plain, &s->plain_len)) {
		ia_log(IA_LOG_ERROR, "webhook_secret_decrypt_failed", "webhook %s: secrets do not decrypt",
		       webhook_id);
		rc = ia_err_set(err, 500, "internal_error", "The webhook's stored secrets could not be decrypted.");
		goto out;
	}
	s->list = cJSON_ParseWithLength(s->plain, s->plain_len);
	const cJSON *item;
	cJSON_ArrayForEach(item, s->list) {
		if (cJSON_IsString(item) && *item->valuestring && s->n < MAX_SECRETS)
			s->values[s->n++] = item->valuestring;
	}
out:
	if (rc)
		ia_db_rollback(&app->db);
	PQclear(res);
	return rc;
}

static void env_secrets(const ia_app *app, const ia_provider *p, secret_set *s)
{
	char name[160];

	snprintf(name, sizeof name, "%s_WEBHOOK_SECRET", p->env_name);
	if ((s->values[s->n] = ia_config_get(&app->cfg, name)))
		s->n++;
	snprintf(name, sizeof name, "%s_WEBHOOK_PREVIOUS_SECRET", p->env_name);
	if ((s->values[s->n] = ia_config_get(&app->cfg, name)))
		s->n++;
}

/* UTF-8 as PostgreSQL checks it (RFC 3629): no overlong forms, no UTF-16
 * surrogates, nothing above U+10FFFF, and no NUL, which a text value cannot
 * hold. Anything else is kept as base64, or the INSERT of a verified delivery
 * would fail and the provider would retry it forever. */
static bool utf8_text(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i], lo = 0x80, hi = 0xBF;
		size_t len;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			if (c == 0xE0)
				lo = 0xA0;      /* overlong */
			else if (c == 0xED)
				hi = 0x9F;      /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			if (c == 0xF0)
				lo = 0x90;      /* overlong */
			else if (c == 0xF4)
				hi = 0x8F;      /* above U+10FFFF */
		} else {
			return false;
		}
		if (len > n - i || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k < len; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
		i += len;
	}
	return true;
}

/* A strict JSON check (RFC 8259) with jsonb's own limits, so that "json"
 * means the cast to jsonb cannot fail. cJSON is more lenient than PostgreSQL
 * (it stops at the end of the first value, takes raw control characters in
 * strings and numbers like +1 or .5), and jsonb refuses \u0000, lone
 * surrogates and numbers beyond numeric's range. Whatever this refuses is
 * stored as text instead, never lost. Input: valid UTF-8 without NUL. */
#define JSON_DEPTH_MAX 256
#define JSON_NUMBER_MAX 1000    /* characters; numeric takes far more, no payload needs it */

typedef struct json_scan {
	const unsigned char *p, *end;
	int depth;
} json_scan;

static bool js_value(json_scan *j);

static void js_ws(json_scan *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool js_digit(const json_scan *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

static bool js_hex4(json_scan *j, unsigned *out)
{
	unsigned v = 0;

	if (j->end - j->p < 4)
		return false;
	for (int k = 0; k < 4; k++) {
		unsigned char c = *j->p++;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return false;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return true;
}

static bool js_string(json_scan *j)
{
	j->p++; /* the opening quote */
	while (j->p < j->end) {
		unsigned char c = *j->p++;
		if (c == '"')
			return true;
		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (j->p >= j->end)
			return false;
		c = *j->p++;
		if (c == 'u') {
			unsigned u, low;
			if (!js_hex4(j, &u) || u == 0 || (u >= 0xDC00 && u <= 0xDFFF))
				return false;
			if (u >= 0xD800 && u <= 0xDBFF) {
				if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
					return false;
				j->p += 2;
				if (!js_hex4(j, &low) || low < 0xDC00 || low > 0xDFFF)
					return false;
			}
		} else if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
			   c != 'r' && c != 't') {
			return false;
		}
	}
	return false;
}

static bool js_number(json_scan *j)
{
	const unsigned char *start = j->p;

	if (*j->p == '-')
		j->p++;
	if (!js_digit(j))
		return false;
	if (*j->p == '0')
		j->p++;
	else
		while (js_digit(j))
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!js_digit(j))
			return false;
		while (js_digit(j))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		const unsigned char *exp = j->p;
		if (!js_digit(j))
			return false;
		while (js_digit(j))
			j->p++;
		if (j->p - exp > 3)     /* |exponent| < 1000: well inside numeric's range */
			return false;
	}
	return j->p - start <= JSON_NUMBER_MAX;
}

static bool js_literal(json_scan *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return false;
	j->p += n;
	return true;
}

/* An object or array: members separated by commas up to the closing byte. */
static bool js_container(json_scan *j, unsigned char close)
{
	bool ok = false;

	if (++j->depth > JSON_DEPTH_MAX)
		return false;
	j->p++;
	js_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		ok = true;
		goto out;
	}
	for (;;) {
		js_ws(j);
		if (close == '}') {
			if (j->p >= j->end || *j->p != '"' || !js_string(j))
				goto out;
			js_ws(j);
			if (j->p >= j->end || *j->p != ':')
				goto out;
			j->p++;
		}
		if (!js_value(j))
			goto out;
		js_ws(j);
		if (j->p >= j->end)
			goto out;
		if (*j->p == close) {
			j->p++;
			ok = true;
			goto out;
		}
		if (*j->p != ',')
			goto out;
		j->p++;
	}
out:
	j->depth--;
	return ok;
}

static bool js_value(json_scan *j)
{
	js_ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{':
		return js_container(j, '}');
	case '[':
		return js_container(j, ']');
	case '"':
		return js_string(j);
	case 't':
		return js_literal(j, "true");
	case 'f':
		return js_literal(j, "false");
	case 'n':
		return js_literal(j, "null");
	default:
		return (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) && js_number(j);
	}
}

static bool jsonb_acceptable(const char *s, size_t n)
{
	json_scan j = { (const unsigned char *)s, (const unsigned char *)s + n, 0 };

	if (!js_value(&j))
		return false;
	js_ws(&j);
	return j.p == j.end;
}

static const char SQL_STORE_EVENT[] =
	"WITH e AS ("
	" INSERT INTO public.integration_events (provider, event_id, webhook_id, integration_id,"
	"  user_id, event_type, payload, body)"
	" VALUES ($1, $2, $3::uuid, nullif($4, '')::uuid, nullif($5, '')::uuid, nullif($6, ''),"
	"  $7::text::jsonb, $8::text)"
	" ON CONFLICT (provider, event_id) DO NOTHING"
	" RETURNING id, integration_id, user_id),"
	" j AS ("
	" INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, payload)"
	" SELECT 'webhook', e.integration_id, e.user_id, jsonb_build_object('event_id', e.id) FROM e)"
	" SELECT count(*)::text FROM e";

int ia_event_receive(ia_app *app, ia_request *req, const char *provider_name,
		     const char *webhook_id, ia_buf *out, ia_err *err)
{
	const ia_provider *p = ia_providers_find(app->providers, provider_name);
	secret_set secrets;
	ia_webhook_delivery d;
	ia_buf stored, body_text;
	char event_id[IA_EVENT_ID_MAX + 1], event_type[128];
	const char *why = "no secret configured";
	char *challenge = NULL;
	int rc = -1;

	memset(&secrets, 0, sizeof secrets);
	ia_buf_init(&stored, 64);
	ia_buf_init(&body_text, 2 * app->cfg.max_body_bytes + 16);
	if (!p || p->webhook.scheme == IA_WH_NONE)
		return ia_err_set(err, 400, "unknown_provider", "No webhooks are configured for this provider.");
	char webhook_buf[37];
	if (webhook_id) {
		if (!ia_uuid_parse(webhook_id, webhook_buf))
			goto rejected;
		webhook_id = webhook_buf;
		if (load_row_secrets(app, p->name, webhook_id, &secrets, err))
			goto out;
	} else {
		env_secrets(app, p, &secrets);
	}
	d.header = request_header;
	d.header_ctx = req;
	d.body = req->body.data ? req->body.data : "";
	d.body_len = req->body.len;
	d.now = time(NULL);
	if (secrets.n == 0 || ia_webhook_verify(&p->webhook, &d, secrets.values, secrets.n, &why) != 0)
		goto rejected;
	ia_metrics_count(app->metrics, IA_WEBHOOK_VERIFIED);

	if (p->webhook.scheme == IA_WH_SLACK && (challenge = ia_webhook_slack_challenge(d.body, d.body_len))) {
		if (ia_buf_puts(out, "{\"challenge\":\"") || ia_buf_json_escape(out, challenge) ||
		    ia_buf_puts(out, "\"}"))
			ia_err_oom(err);
		else
			rc = 0;
		goto out;
	}

	ia_webhook_event_id(&p->webhook, &d, event_id);
	ia_webhook_event_type(&p->webhook, &d, event_type);
	/* The body is kept as jsonb when the cast cannot fail, as text when it is
	 * other UTF-8, and as "base64:..." otherwise: a verified delivery is
	 * always stored. Each goes in its own typed parameter (an untyped $n used
	 * as ::jsonb anywhere would be parsed as jsonb whatever the branch). The
	 * body is NUL-terminated (ia_buf) and holds no NUL when it is UTF-8 text,
	 * so it binds without a copy. */
	const char *payload = NULL, *text = NULL;
	if (utf8_text(d.body, d.body_len)) {
		if (jsonb_acceptable(d.body, d.body_len))
			payload = d.body;
		else
			text = d.body;
	} else {
		size_t n = IA_B64_ENCODED_LEN(d.body_len);
		char *b64 = malloc(n);
		if (!b64)
			goto oom;
		ia_b64_encode((const unsigned char *)d.body, d.body_len, b64, n);
		int bad = ia_buf_puts(&body_text, "base64:") || ia_buf_puts(&body_text, b64);
		free(b64);
		if (bad)
			goto oom;
		text = ia_buf_cstr(&body_text);
	}
	const char *params[] = {
		p->name, event_id, webhook_id, secrets.integration_id, secrets.user_id, event_type,
		payload, text,
	};
	bool found;
	if (ia_db_run_one_flags(&app->db, NULL, SQL_STORE_EVENT, 8, params, IA_DB_WAKE_WORKERS,
				&stored, &found, err))
		goto out;
	bool duplicate = strcmp(ia_buf_cstr(&stored), "0") == 0;
	if (ia_buf_printf(out, "{\"received\":true,\"duplicate\":%s}", duplicate ? "true" : "false"))
		goto oom;
	rc = 0;
	goto out;
rejected:
	/* a counter for operators: the reason, never the body or a secret */
	ia_log(IA_LOG_WARN, "webhook_rejected", "provider %s: %s", p->name, why);
	ia_metrics_count(app->metrics, IA_WEBHOOK_REJECTED);
	ia_err_set(err, 401, "invalid_signature", "The webhook signature could not be verified.");
	goto out;
oom:
	ia_err_oom(err);
out:
	free(challenge);
	secret_set_release(&secrets);
	ia_buf_release(&stored);
	ia_buf_release(&body_text);
	return rc;
}
