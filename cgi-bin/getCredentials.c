/* POST /functions/v1/getCredentials (service role only): the one route that
 * answers secrets, decrypted, with Cache-Control: no-store. */
#include "ia_app.h"
#include "ia_integrations.h"

static int fetch(ia_app *app, ia_request *req, ia_buf *out, ia_err *err)
{
	return ia_credentials_fetch(app, &req->claims, req->body.data, req->body.len, out, err);
}

static const ia_route route = {
	.program = "getCredentials",
	.methods = "POST",
	.allow = IA_ALLOW_SERVICE,
	.max_answer = 1 << 20,
	.cache_control = "no-store",
	.call = fetch,
};

int main(void)
{
	return ia_route_main(&route);
}
