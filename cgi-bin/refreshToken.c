/* POST /functions/v1/refreshToken: refreshes an OAuth token when it expires within
 * REFRESH_WINDOW_SECONDS or when forced; one provider call however many callers. */
#include "ia_app.h"
#include "ia_tokens.h"

static void handle(ia_app *app, ia_request *req)
{
	ia_err err = { 0 };
	ia_buf out;
	int rc;

	ia_buf_init(&out, 1 << 20);
	rc = ia_route_begin(app, req, "POST", IA_ALLOW_USER | IA_ALLOW_SERVICE, &err);
	if (rc == 0)
		rc = ia_tokens_refresh(app, &req->claims, req->body.data, req->body.len, req->started_at,
				       &out, &err);
	if (rc <= 0)
		ia_resp_outcome(req, rc, &out, &err);
	ia_buf_release(&out);
}

int main(void)
{
	return ia_fcgi_main("refreshToken", handle);
}
