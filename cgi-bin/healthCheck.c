/* POST /functions/v1/healthCheck (service role only): refreshes every
 * connected integration expiring within the window, in bounded parallel.
 * `intauthctl health-check` does the same from cron. */
#include "ia_app.h"
#include "ia_tokens.h"

static void handle(ia_app *app, ia_request *req)
{
	ia_err err = { 0 };
	ia_buf out;
	int rc;

	ia_buf_init(&out, 4096);
	rc = ia_route_begin(app, req, "POST", IA_ALLOW_SERVICE, &err);
	if (rc == 0)
		rc = ia_tokens_health_check(app, &out, &err);
	if (rc <= 0)
		ia_resp_outcome(req, rc, &out, &err);
	ia_buf_release(&out);
}

int main(void)
{
	return ia_fcgi_main("healthCheck", handle);
}
