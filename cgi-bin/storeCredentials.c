/* POST /functions/v1/storeCredentials: store an API key, a username and
 * password, or OAuth tokens for the caller (or, with the service role, for any
 * user), encrypted. Answers {"integration":{..}}, never a secret. */
#include "ia_app.h"
#include "ia_integrations.h"

static int store(ia_app *app, ia_request *req, ia_buf *out, ia_err *err)
{
	return ia_integration_store(app, &req->claims, req->body.data, req->body.len, out, err);
}

static const ia_route route = {
	.program = "storeCredentials",
	.methods = "POST",
	.allow = IA_ALLOW_USER | IA_ALLOW_SERVICE,
	.max_answer = 1 << 20,
	.cache_control = NULL,
	.call = store,
};

int main(void)
{
	return ia_route_main(&route);
}
