/* GET /api/auth/{provider}/start: begins the OAuth connect flow for the
 * caller. Answers {"url": ...}, or 302 to it with ?redirect=1. */
#include <stdlib.h>
#include <string.h>

#include "ia_app.h"
#include "ia_oauth.h"

static void handle(ia_app *app, ia_request *req)
{
	ia_err err = { 0 };
	ia_buf out;
	char *location = NULL;
	int rc;

	ia_buf_init(&out, 65536);
	ia_resp_header(req, "Cache-Control", "no-store");
	rc = ia_route_begin(app, req, "GET", IA_ALLOW_USER, &err);
	if (rc == 0 && !(req->n_segments == 4 && strcmp(req->segments[3], "start") == 0))
		rc = ia_err_set(&err, 404, "not_found", "No such route.");
	if (rc == 0)
		rc = ia_oauth_start(app, req, req->segments[2], &out, &location, &err);
	if (rc == 0) {
		const char *r = ia_request_query(req, "redirect");
		if (r && strcmp(r, "1") == 0)
			ia_resp_redirect(req, location);
	}
	if (rc <= 0)
		ia_resp_outcome(req, rc, &out, &err);
	free(location);
	ia_buf_release(&out);
}

int main(void)
{
	return ia_fcgi_main("auth-start", handle);
}
