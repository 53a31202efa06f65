/* The read side for users and operators:
 *   GET /api/integrations, GET|DELETE /api/integrations/{id},
 *   GET /api/integrations/{id}/logs, GET /api/providers, GET /healthz,
 *   GET /metrics (Prometheus text; nginx lets only loopback reach it) */
#include <stdlib.h>
#include <string.h>

#include "ia_app.h"
#include "ia_integrations.h"
#include "ia_metrics.h"

#define LOGS_DEFAULT_LIMIT 50
#define LOGS_MAX_LIMIT 200

static int logs_limit(const ia_request *req, long *limit, ia_err *err)
{
	const char *q = ia_request_query(req, "limit");
	char *end;

	*limit = LOGS_DEFAULT_LIMIT;
	if (!q)
		return 0;
	*limit = strtol(q, &end, 10);
	if (*end || end == q || *limit < 1 || *limit > LOGS_MAX_LIMIT)
		return ia_err_set(err, 400, "invalid_request", "limit must be 1..%d.", LOGS_MAX_LIMIT);
	return 0;
}

static int route(ia_app *app, ia_request *req, ia_buf *out, ia_err *err)
{
	char **seg = req->segments;
	size_t n = req->n_segments;
	int rc;

	if (n == 1 && strcmp(seg[0], "healthz") == 0) {
		if ((rc = ia_route_begin(app, req, "GET", 0, err)) != 0)
			return rc;
		if (ia_db_ping(&app->db, err))
			return -1;
		return ia_buf_puts(out, "{\"status\":\"ok\"}") ? ia_err_oom(err) : 0;
	}
	if (n == 1 && strcmp(seg[0], "metrics") == 0) {
		if ((rc = ia_route_begin(app, req, "GET", 0, err)) != 0)
			return rc;
		if (ia_metrics_render(ia_config_get(&app->cfg, "METRICS_DIR"), &app->db, out, err))
			return -1;
		ia_resp_body(req, 200, "text/plain; version=0.0.4", ia_buf_cstr(out), out->len);
		return 1;
	}
	if (n < 2 || strcmp(seg[0], "api") != 0)
		return ia_err_set(err, 404, "not_found", "No such route.");
	if (n == 2 && strcmp(seg[1], "providers") == 0) {
		if ((rc = ia_route_begin(app, req, "GET", 0, err)) != 0)
			return rc;
		return ia_buf_puts(out, app->providers_json) ? ia_err_oom(err) : 0;
	}
	if (strcmp(seg[1], "integrations") != 0 || n > 4)
		return ia_err_set(err, 404, "not_found", "No such route.");
	if (n == 2) {
		if ((rc = ia_route_begin(app, req, "GET", IA_ALLOW_USER, err)) != 0)
			return rc;
		return ia_integration_list(app, &req->claims, out, err);
	}
	if (n == 3) {
		if ((rc = ia_route_begin(app, req, "GET,DELETE", IA_ALLOW_USER, err)) != 0)
			return rc;
		if (strcmp(req->method, "DELETE") == 0)
			return ia_integration_delete(app, &req->claims, seg[2], out, err);
		return ia_integration_get(app, &req->claims, seg[2], out, err);
	}
	if (strcmp(seg[3], "logs") != 0)
		return ia_err_set(err, 404, "not_found", "No such route.");
	if ((rc = ia_route_begin(app, req, "GET", IA_ALLOW_USER, err)) != 0)
		return rc;
	long limit;
	if (logs_limit(req, &limit, err))
		return -1;
	return ia_integration_logs(app, &req->claims, seg[2], limit, out, err);
}

static void handle(ia_app *app, ia_request *req)
{
	ia_err err = { 0 };
	ia_buf out;
	int rc;

	ia_buf_init(&out, 8 << 20);
	rc = route(app, req, &out, &err);
	if (rc <= 0)
		ia_resp_outcome(req, rc, &out, &err);
	ia_buf_release(&out);
}

int main(void)
{
	return ia_fcgi_main("integrations", handle);
}
