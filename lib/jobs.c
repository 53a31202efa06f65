#include "ia_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sodium.h>

#include "ia_codec.h"
#include "ia_crypto.h"
#include "ia_integrations.h"
#include "ia_json.h"
#include "ia_log.h"
#include "ia_oauth.h"
#include "ia_outbound.h"
#include "ia_tokens.h"

static int parse_int(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *end || v < 0 || v > 1000000 ? 0 : (int)v;
}

void ia_job_release(ia_job *job)
{
	free(job->payload);
	job->payload = NULL;
}

#define CLAIM_COLUMNS \
	" RETURNING id::text, kind, coalesce(integration_id::text, ''), coalesce(user_id::text, '')," \
	" payload::text, attempts, max_attempts"

/* Due queued jobs first; then jobs whose worker died holding them. A job
 * whose lease ran out during its last allowed attempt is dead, not run again:
 * a job that kills its worker every time (a poison job) would otherwise be
 * retried forever, once a lease. */
static const char *const claim_sql[] = {
	"UPDATE public.integration_sync_jobs SET status = 'running', attempts = attempts + 1,"
	" locked_until = now() + make_interval(secs => $1::double precision), locked_by = $2,"
	" updated_at = now()"
	" WHERE id = (SELECT id FROM public.integration_sync_jobs"
	"  WHERE status IN ('queued', 'failed') AND run_at <= now() ORDER BY run_at, id LIMIT 1"
	"  FOR UPDATE SKIP LOCKED)" CLAIM_COLUMNS,
	"WITH out_of_attempts AS (UPDATE public.integration_sync_jobs SET status = 'dead',"
	"  finished_at = now(), locked_until = NULL, locked_by = NULL, payload = payload - 'secret',"
	"  last_error = format('attempt %s/%s did not finish: the lease ran out (its worker died or hung)',"
	"   attempts, max_attempts), updated_at = now()"
	"  WHERE id IN (SELECT id FROM public.integration_sync_jobs"
	"   WHERE status = 'running' AND locked_until < now() AND attempts >= max_attempts"
	"   LIMIT 100 FOR UPDATE SKIP LOCKED))"
	" UPDATE public.integration_sync_jobs SET status = 'running', attempts = attempts + 1,"
	" locked_until = now() + make_interval(secs => $1::double precision), locked_by = $2,"
	" updated_at = now()"
	" WHERE id = (SELECT id FROM public.integration_sync_jobs"
	"  WHERE status = 'running' AND locked_until < now() AND attempts < max_attempts"
	"  ORDER BY locked_until LIMIT 1 FOR UPDATE SKIP LOCKED)" CLAIM_COLUMNS,
};

int ia_jobs_claim(ia_app *app, long lease_seconds, bool expired_first, ia_job *job, ia_err *err)
{
	char lease[24];
	unsigned char raw[16];

	memset(job, 0, sizeof *job);
	randombytes_buf(raw, sizeof raw);
	ia_hex_encode(raw, sizeof raw, job->claim, sizeof job->claim);
	snprintf(lease, sizeof lease, "%ld", lease_seconds);
	const char *params[] = { lease, job->claim };
	for (size_t n = 0; n < 2; n++) {
		size_t i = expired_first ? 1 - n : n;
		/* one round trip: BEGIN, the claim and COMMIT pipelined */
		PGresult *res = ia_db_query(&app->db, NULL, claim_sql[i], 2, params, err);
		if (!res)
			return -1;
		if (PQntuples(res) == 1) {
			snprintf(job->id, sizeof job->id, "%s", PQgetvalue(res, 0, 0));
			snprintf(job->kind, sizeof job->kind, "%s", PQgetvalue(res, 0, 1));
			snprintf(job->integration_id, sizeof job->integration_id, "%s", PQgetvalue(res, 0, 2));
			snprintf(job->user_id, sizeof job->user_id, "%s", PQgetvalue(res, 0, 3));
			job->payload = strdup(PQgetvalue(res, 0, 4));
			job->attempts = parse_int(PQgetvalue(res, 0, 5));
			job->max_attempts = parse_int(PQgetvalue(res, 0, 6));
			PQclear(res);
			return job->payload ? 1 : ia_err_oom(err);
		}
		PQclear(res);
	}
	return 0;
}

/* ---- the kinds ---- */

/* The integration's provider, params and decrypted credential JSON. 1 found,
 * 0 nothing to do (gone, not connected, no credential), -1 failure. */
static int load_connected(ia_app *app, const char *integration_id, const ia_provider **p,
			  char **params_json, char **plain, size_t *plain_len, char *why, size_t why_size)
{
	const char *params[] = { integration_id };
	ia_err err = { 0 };
	PGresult *res = NULL;
	int rc = -1;

	if (ia_db_begin(&app->db, NULL, &err))
		goto fail;
	res = ia_db_exec(&app->db,
			 "SELECT i.provider, i.user_id, c.id, c.secret, i.provider_params::text"
			 " FROM public.integrations i JOIN public.credentials c ON c.integration_id = i.id"
			 " WHERE i.id = $1::uuid AND i.status = 'connected'",
			 1, params, &err);
	if (!res || ia_db_commit(&app->db, &err))
		goto fail;
	if (PQntuples(res) != 1) {
		rc = 0;
		goto out;
	}
	*p = ia_providers_find(app->providers, PQgetvalue(res, 0, 0));
	if (!*p) {
		rc = 0;
		goto out;
	}
	char context[IA_CREDENTIAL_CONTEXT_MAX];
	ia_credential_context(context, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0));
	if (ia_crypto_open(app->cfg.keys, PQgetvalue(res, 0, 3), context, plain, plain_len)) {
		snprintf(why, why_size, "the stored credential does not decrypt");
		goto out;
	}
	*params_json = strdup(PQgetvalue(res, 0, 4));
	rc = *params_json ? 1 : -1;
	goto out;
fail:
	snprintf(why, why_size, "%s", err.message);
out:
	if (rc < 0)
		ia_db_rollback(&app->db);
	PQclear(res);
	return rc;
}

/* bootstrap: the account behind a new connection, from the provider's
 * userinfo endpoint, into the integration's metadata. */
static int run_bootstrap(ia_app *app, const ia_job *job, char *why, size_t why_size)
{
	const ia_provider *p = NULL;
	char *params_json = NULL, *plain = NULL, *url = NULL;
	size_t plain_len = 0;
	cJSON *secret = NULL, *info = NULL;
	ia_outbound call;
	ia_err err = { 0 };
	long status = 0;
	int rc = -1;

	memset(&call, 0, sizeof call);
	int found = load_connected(app, job->integration_id, &p, &params_json, &plain, &plain_len,
				   why, why_size);
	if (found <= 0) {
		rc = found == 0 ? 0 : -1;
		goto out;
	}
	if (p->auth_type != IA_AUTH_OAUTH2 || !p->userinfo_url) {
		rc = 0;
		goto out;
	}
	secret = cJSON_ParseWithLength(plain, plain_len);
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(secret, "access_token");
	if (!cJSON_IsString(at)) {
		snprintf(why, why_size, "the credential has no access token");
		goto out;
	}
	if (!(url = ia_oauth_fill_url(p, p->userinfo_url, params_json, &err)) ||
	    ia_outbound_init(&call, &app->cfg, url, NULL, at->valuestring, NULL, NULL, &err) ||
	    ia_outbound_perform(&call, &status, &err)) {
		snprintf(why, why_size, "userinfo: %s", err.message);
		goto out;
	}
	if (status != 200) {
		snprintf(why, why_size, "userinfo answered HTTP %ld", status);
		goto out;
	}
	info = cJSON_ParseWithLength(ia_buf_cstr(&call.response), call.response.len);
	/* Slack-style APIs answer errors with 200 and "ok": false */
	if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(info, "ok"))) {
		snprintf(why, why_size, "userinfo answered \"ok\": false");
		goto out;
	}
	char *text = info && cJSON_IsObject(info) ? cJSON_PrintUnformatted(info) : NULL;
	if (!text) {
		snprintf(why, why_size, "userinfo answered something that is not a JSON object");
		goto out;
	}
	const char *params[] = { job->integration_id, text };
	if (ia_db_begin(&app->db, NULL, &err) == 0) {
		PGresult *res = ia_db_exec(&app->db,
					   "WITH l AS (INSERT INTO public.integration_logs (integration_id, user_id,"
					   "  provider, action, message)"
					   "  SELECT id, user_id, provider, 'account_fetched', 'Account details fetched.'"
					   "  FROM public.integrations WHERE id = $1::uuid)"
					   " UPDATE public.integrations SET metadata = metadata ||"
					   "  jsonb_build_object('account', $2::jsonb),"
					   /* what the provider said, never a key a user wrote;
					    * an answer naming no account keeps the one known */
					   "  account_id = coalesce($2::jsonb ->> 'id', $2::jsonb ->> 'team_id',"
					   "   $2::jsonb ->> 'sub', account_id),"
					   "  last_health_check_at = now(), updated_at = now() WHERE id = $1::uuid",
					   2, params, &err);
		if (res && ia_db_commit(&app->db, &err) == 0)
			rc = 0;
		PQclear(res);
	}
	if (rc)
		snprintf(why, why_size, "saving the account: %s", err.message);
	cJSON_free(text);
out:
	if (rc)
		ia_db_rollback(&app->db);
	ia_outbound_release(&call);
	ia_json_free(secret);
	cJSON_Delete(info);
	ia_secret_free(plain, plain_len);
	free(params_json);
	free(url);
	return rc;
}

/* webhook: link the stored event to its integration when the body names an
 * account we know, and mark it processed. */
static int run_webhook(ia_app *app, const ia_job *job, char *why, size_t why_size)
{
	cJSON *payload = cJSON_Parse(job->payload);
	const cJSON *eid = cJSON_GetObjectItemCaseSensitive(payload, "event_id");
	ia_err err = { 0 };
	int rc = -1;

	if (!cJSON_IsString(eid) || !ia_uuid_valid(eid->valuestring)) {
		snprintf(why, why_size, "the job names no event");
		goto out;
	}
	const char *params[] = { eid->valuestring };
	if (ia_db_begin(&app->db, NULL, &err) == 0) {
		PGresult *res = ia_db_exec(&app->db,
			/* the account ids as one array: "= ANY (array)" is an index
			 * condition on integrations_provider_account_id_idx, where an IN
			 * list of the event's fields became an OR the planner could only
			 * filter with, over every integration of the provider. account_id
			 * is the account the service established (sql/012), not one a
			 * user wrote into metadata. */
			"WITH ev AS (SELECT e.provider, ARRAY[e.payload ->> 'account', e.payload ->> 'team_id',"
			"   e.payload #>> '{team,id}', e.payload #>> '{installation,id}',"
			"   e.payload #>> '{organization,id}'] AS accounts"
			"  FROM public.integration_events e"
			"  WHERE e.id = $1::uuid AND e.integration_id IS NULL AND e.payload IS NOT NULL),"
			" r AS (SELECT i.id, i.user_id FROM ev JOIN public.integrations i ON i.provider = ev.provider"
			"  AND i.account_id = ANY (ev.accounts)"
			"  WHERE i.status <> 'revoked' ORDER BY i.updated_at DESC LIMIT 1)"
			" UPDATE public.integration_events e SET processed_at = now(),"
			"  integration_id = coalesce(e.integration_id, (SELECT id FROM r)),"
			"  user_id = coalesce(e.user_id, (SELECT user_id FROM r))"
			" WHERE e.id = $1::uuid",
			1, params, &err);
		if (res && ia_db_commit(&app->db, &err) == 0)
			rc = 0;
		PQclear(res);
	}
	if (rc) {
		ia_db_rollback(&app->db);
		snprintf(why, why_size, "%s", err.message);
	}
out:
	cJSON_Delete(payload);
	return rc;
}

/* revoke_retry: the provider was unreachable at disconnect time. */
static int run_revoke_retry(ia_app *app, const ia_job *job, char *why, size_t why_size)
{
	cJSON *payload = cJSON_Parse(job->payload);
	const cJSON *iid = cJSON_GetObjectItemCaseSensitive(payload, "integration_id");
	const cJSON *prov = cJSON_GetObjectItemCaseSensitive(payload, "provider");
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(payload, "secret");
	const cJSON *pp = cJSON_GetObjectItemCaseSensitive(payload, "provider_params");
	char *plain = NULL, *params_json = NULL, *cred = NULL;
	size_t plain_len = 0, cred_len = 0;
	ia_err err = { 0 };
	char context[256];
	int rc = -1;

	if (!cJSON_IsString(iid) || !cJSON_IsString(prov) || !cJSON_IsString(sec)) {
		snprintf(why, why_size, "the job has no credential to revoke");
		goto out;
	}
	ia_revoke_retry_context(context, iid->valuestring, job->user_id, prov->valuestring);
	if (ia_crypto_open(app->cfg.keys, sec->valuestring, context, &plain, &plain_len)) {
		snprintf(why, why_size, "the credential to revoke does not decrypt");
		goto out;
	}
	/* a credential that did not open at disconnect time is opened now */
	if (ia_revoke_retry_credential(app, plain, plain_len, job->user_id, prov->valuestring, &cred,
				       &cred_len, &err)) {
		snprintf(why, why_size, "%s", err.message);
		goto out;
	}
	params_json = pp ? cJSON_PrintUnformatted(pp) : NULL;
	if (ia_tokens_revoke_remote(app, ia_providers_find(app->providers, prov->valuestring),
				    params_json, cred, cred_len, &err)) {
		snprintf(why, why_size, "%s", err.message);
		goto out;
	}
	rc = 0;
out:
	ia_secret_free(cred, cred_len);
	ia_secret_free(plain, plain_len);
	cJSON_free(params_json);
	ia_json_free(payload);
	return rc;
}

static int run_refresh(ia_app *app, const ia_job *job, char *why, size_t why_size)
{
	ia_err err = { 0 };
	bool still_valid;

	if (!ia_uuid_valid(job->integration_id))
		return 0;
	if (ia_tokens_refresh_if_due(app, NULL, job->integration_id, &still_valid, &err) == 0)
		return 0;
	/* a refused grant is recorded on the integration, a row gone or no
	 * longer connected has nothing to refresh: retrying can't help. A 409
	 * conflict (the row was held past the lock wait) can. */
	if (err.status == 422 || err.status == 404 ||
	    (err.status == 409 && (!err.code || strcmp(err.code, "conflict") != 0)))
		return 0;
	snprintf(why, why_size, "%s", err.message);
	return -1;
}

int ia_jobs_run(ia_app *app, const ia_job *job, char *why, size_t why_size)
{
	static const struct {
		const char *kind;
		int (*run)(ia_app *, const ia_job *, char *, size_t);
	} kinds[] = {
		{ "bootstrap", run_bootstrap },
		{ "webhook", run_webhook },
		{ "revoke_retry", run_revoke_retry },
		{ "refresh", run_refresh },
	};

	why[0] = '\0';
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(job->kind, kinds[i].kind) == 0)
			return kinds[i].run(app, job, why, why_size);
	snprintf(why, why_size, "unknown job kind");
	return -1;
}

int ia_jobs_finish(ia_app *app, const ia_job *job, bool ok, const char *why, long backoff_base_ms,
		   ia_err *err)
{
	char base[24];
	bool found;
	ia_buf none;
	int rc;

	snprintf(base, sizeof base, "%ld", backoff_base_ms);
	const char *params[] = { job->id, job->claim, base, why && *why ? why : "failed" };
	ia_buf_init(&none, 64);
	/* only the lease holder may finish; a sealed secret never outlives its job */
	if (ok)
		rc = ia_db_run_one(&app->db, NULL,
				   "UPDATE public.integration_sync_jobs SET status = 'succeeded',"
				   " finished_at = now(), locked_until = NULL, last_error = NULL,"
				   " payload = payload - 'secret', updated_at = now()"
				   " WHERE id = $1::bigint AND locked_by = $2 AND status = 'running'",
				   2, params, &none, &found, err);
	else
		rc = ia_db_run_one(&app->db, NULL,
				   "UPDATE public.integration_sync_jobs SET"
				   " status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,"
				   " run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE now() +"
				   "  make_interval(secs => least($3::double precision / 1000"
				   "   * power(2, least(attempts - 1, 20)), 3600) * (0.75 + random() * 0.5)) END,"
				   " finished_at = CASE WHEN attempts >= max_attempts THEN now() END,"
				   " payload = CASE WHEN attempts >= max_attempts THEN payload - 'secret' ELSE payload END,"
				   " last_error = left($4, 500), locked_until = NULL, locked_by = NULL, updated_at = now()"
				   " WHERE id = $1::bigint AND locked_by = $2 AND status = 'running'",
				   4, params, &none, &found, err);
	ia_buf_release(&none);
	return rc;
}

long ia_jobs_schedule(ia_app *app, ia_err *err)
{
	char window[24];
	ia_buf out;
	bool found;
	long n = -1;

	snprintf(window, sizeof window, "%ld", app->cfg.refresh_window_seconds);
	const char *params[] = { window };
	ia_buf_init(&out, 64);
	/* the other worker processes take these jobs too: wake them */
	if (ia_db_run_one_flags(&app->db, NULL,
			  "WITH due AS (SELECT i.id, i.user_id FROM public.integrations i"
			  "  WHERE i.status = 'connected' AND i.auth_type = 'oauth2'"
			  "  AND i.expires_at <= now() + make_interval(secs => $1::double precision)"
			  "  AND (i.next_refresh_at IS NULL OR i.next_refresh_at <= now())"
			  "  AND NOT EXISTS (SELECT 1 FROM public.integration_sync_jobs j"
			  "   WHERE j.integration_id = i.id AND j.kind = 'refresh'"
			  "   AND j.status IN ('queued', 'running', 'failed'))"
			  "  ORDER BY i.expires_at LIMIT 500),"
			  " ins AS (INSERT INTO public.integration_sync_jobs (kind, integration_id, user_id, max_attempts)"
			  "  SELECT 'refresh', id, user_id, 3 FROM due RETURNING 1)"
			  " SELECT count(*)::text FROM ins",
			  1, params, IA_DB_WAKE_WORKERS, &out, &found, err) == 0)
		n = strtol(ia_buf_cstr(&out), NULL, 10);
	ia_buf_release(&out);
	return n;
}

/* Bounded batches, each its own statement: a backlog is worked off over a few
 * rounds instead of one DELETE that outgrows the statement timeout every time
 * (and, when this shared a statement with the scheduling, stopped that too). */
long ia_jobs_clean(ia_app *app, ia_err *err)
{
	static const char *const sql[] = {
		"WITH d AS (DELETE FROM public.integration_sync_jobs WHERE id IN"
		" (SELECT id FROM public.integration_sync_jobs"
		"  WHERE finished_at < now() - interval '7 days' LIMIT 5000) RETURNING 1)"
		" SELECT count(*)::text FROM d",
		/* a state is single-use and lives 10 minutes: a day later it is only clutter */
		"WITH d AS (DELETE FROM public.oauth_states WHERE id IN"
		" (SELECT id FROM public.oauth_states"
		"  WHERE expires_at < now() - interval '1 day' LIMIT 5000) RETURNING 1)"
		" SELECT count(*)::text FROM d",
	};
	long total = 0;

	for (size_t i = 0; i < sizeof sql / sizeof *sql; i++) {
		ia_buf out;
		bool found;
		ia_buf_init(&out, 64);
		int rc = ia_db_run_one(&app->db, NULL, sql[i], 0, NULL, &out, &found, err);
		if (rc == 0)
			total += strtol(ia_buf_cstr(&out), NULL, 10);
		ia_buf_release(&out);
		if (rc)
			return -1;
	}
	return total;
}

int ia_jobs_report(ia_app *app, ia_buf *out, ia_err *err)
{
	bool found;

	return ia_db_run_one(&app->db, NULL,
		"SELECT coalesce((SELECT string_agg(format('%-14s %-10s %s', kind, status, n), E'\\n'"
		"   ORDER BY kind, status) FROM (SELECT kind, status, count(*) n"
		"   FROM public.integration_sync_jobs GROUP BY 1, 2) s), 'no jobs')"
		" || E'\\n' || coalesce((SELECT format('oldest due job: %s (%s, due since %s)', id, kind,"
		"   run_at) FROM public.integration_sync_jobs WHERE status IN ('queued', 'failed')"
		"   AND run_at <= now() ORDER BY run_at LIMIT 1), 'no job is due')"
		" || coalesce(E'\\ndead jobs:\\n' || (SELECT string_agg(format('  %s %s after %s attempts: %s',"
		"   id, kind, attempts, coalesce(last_error, '?')), E'\\n' ORDER BY finished_at DESC)"
		"   FROM (SELECT * FROM public.integration_sync_jobs WHERE status = 'dead'"
		"   ORDER BY finished_at DESC LIMIT 20) d), '')",
		0, NULL, out, &found, err);
}

int ia_jobs_retry(ia_app *app, const char *id, ia_err *err)
{
	ia_buf out;
	bool found;
	int rc;
	const char *params[] = { id };

	if (!*id || strlen(id) > 18)
		return ia_err_set(err, 400, "invalid_request", "A job id is a number.");
	for (const char *p = id; *p; p++)
		if (*p < '0' || *p > '9')
			return ia_err_set(err, 400, "invalid_request", "A job id is a number.");
	ia_buf_init(&out, 64);
	rc = ia_db_run_one(&app->db, NULL,
			   "UPDATE public.integration_sync_jobs SET status = 'queued', attempts = 0,"
			   " run_at = now(), finished_at = NULL, last_error = NULL, updated_at = now()"
			   " WHERE id = $1::bigint AND status IN ('dead', 'failed')"
			   /* an ended revoke_retry no longer holds its credential */
			   " AND (kind <> 'revoke_retry' OR jsonb_typeof(payload -> 'secret') = 'string')"
			   " RETURNING id::text",
			   1, params, &out, &found, err);
	ia_buf_release(&out);
	if (rc == 0 && !found)
		return ia_err_set(err, 404, "not_found",
				  "No dead or failed job with that id (a dead revoke_retry job no longer"
				  " holds the credential it was to revoke, so it cannot run again).");
	return rc;
}
