/* POST /functions/v1/getCredentials (service role only): the one route that
 * answers secrets, decrypted, with Cache-Control: no-store. */
#include "ia_app.h"
#include "ia_integrations.h"

static void handle(ia_app *app, ia_request *req)
{
	ia_err err = { 0 };
	ia_buf out;
	int rc;

	ia_buf_init(&out, 1 << 20);
	ia_resp_header(req, "Cache-Control", "no-store");
	rc = ia_route_begin(app, req, "POST", IA_ALLOW_SERVICE, &err);
	if (rc == 0)
		rc = ia_credentials_fetch(app, &req->claims, req->body.data, req->body.len, &out, &err);
	if (rc <= 0)
		ia_resp_outcome(req, rc, &out, &err);
	ia_buf_release(&out);
}

int main(void)
{
	return ia_fcgi_main("getCredentials", handle);
}
