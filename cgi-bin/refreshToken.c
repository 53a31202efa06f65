/* POST /functions/v1/refreshToken: refreshes an OAuth token when it expires within
 * REFRESH_WINDOW_SECONDS or when forced; one provider call however many callers. */
#include "ia_app.h"
#include "ia_tokens.h"

static int refresh(ia_app *app, ia_request *req, ia_buf *out, ia_err *err)
{
	return ia_tokens_refresh(app, &req->claims, req->body.data, req->body.len, req->started_at, out, err);
}

static const ia_route route = {
	.program = "refreshToken",
	.methods = "POST",
	.allow = IA_ALLOW_USER | IA_ALLOW_SERVICE,
	.max_answer = 1 << 20,
	.cache_control = NULL,
	.call = refresh,
};

int main(void)
{
	return ia_route_main(&route);
}
