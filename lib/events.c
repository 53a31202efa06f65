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

/* Loads the active secrets of one integration_webhooks row. 0 with s->n >= 0;
 * -1 with err only for database trouble (an unknown row just yields none). */
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

static bool utf8_text(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (len == 0 || c == 0 || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++)
			if (((unsigned char)s[i + k] >> 6) != 2)
				return false;
		i += len;
	}
	return true;
}

static const char SQL_STORE_EVENT[] =
	"WITH e AS ("
	" INSERT INTO public.integration_events (provider, event_id, webhook_id, integration_id,"
	"  user_id, event_type, payload, body)"
	" VALUES ($1, $2, $3::uuid, nullif($4, '')::uuid, nullif($5, '')::uuid, nullif($6, ''),"
	"  CASE WHEN $8 = 'json' THEN $7::jsonb END, CASE WHEN $8 <> 'json' THEN $7 END)"
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
	if (webhook_id) {
		if (!ia_uuid_valid(webhook_id))
			goto rejected;
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
	/* the body is kept as jsonb when it is JSON PostgreSQL accepts, as text
	 * when it is other UTF-8, and base64 otherwise */
	const char *kind = "text";
	if (utf8_text(d.body, d.body_len)) {
		if (ia_buf_append(&body_text, d.body, d.body_len))
			goto oom;
		/* jsonb refuses \u0000 where json and cJSON take it */
		cJSON *probe = cJSON_ParseWithLength(d.body, d.body_len);
		if (probe && !strstr(ia_buf_cstr(&body_text), "\\u0000"))
			kind = "json";
		cJSON_Delete(probe);
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
		kind = "base64";
	}
	const char *params[] = {
		p->name, event_id, webhook_id, secrets.integration_id, secrets.user_id, event_type,
		ia_buf_cstr(&body_text), kind,
	};
	bool found;
	if (ia_db_run_one(&app->db, NULL, SQL_STORE_EVENT, 8, params, &stored, &found, err))
		goto out;
	bool duplicate = strcmp(ia_buf_cstr(&stored), "0") == 0;
	if (ia_buf_printf(out, "{\"received\":true,\"duplicate\":%s}", duplicate ? "true" : "false"))
		goto oom;
	rc = 0;
	goto out;
rejected:
	/* a counter for operators: the reason, never the body or a secret */
	ia_log(IA_LOG_WARN, "webhook_rejected", "provider %s: %s", p->name, why);
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
