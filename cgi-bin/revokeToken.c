/* POST /functions/v1/revokeToken: disconnects: RFC 7009 revocation at the provider
 * (retried later when unreachable), the credential deleted, status revoked. */
#include "ia_app.h"
#include "ia_tokens.h"

static int revoke(ia_app *app, ia_request *req, ia_buf *out, ia_err *err)
{
	return ia_tokens_revoke(app, &req->claims, req->body.data, req->body.len, out, err);
}

static const ia_route route = {
	.program = "revokeToken",
	.methods = "POST",
	.allow = IA_ALLOW_USER | IA_ALLOW_SERVICE,
	.max_answer = 1 << 20,
	.cache_control = NULL,
	.call = revoke,
};

int main(void)
{
	return ia_route_main(&route);
}
