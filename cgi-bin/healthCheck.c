/* POST /functions/v1/healthCheck (service role only): refreshes every
 * connected integration expiring within the window, in bounded parallel.
 * `intauthctl health-check` does the same from cron. */
#include "ia_app.h"
#include "ia_tokens.h"

static int health_check(ia_app *app, ia_request *req, ia_buf *out, ia_err *err)
{
	(void)req;
	return ia_tokens_health_check(app, out, err);
}

static const ia_route route = {
	.program = "healthCheck",
	.methods = "POST",
	.allow = IA_ALLOW_SERVICE,
	.max_answer = 4096,
	.cache_control = NULL,
	.call = health_check,
};

int main(void)
{
	return ia_route_main(&route);
}
