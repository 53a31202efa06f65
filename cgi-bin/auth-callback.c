/* GET /api/auth/{provider}/callback: the browser coming back from the
 * provider. Identity comes from the state alone. Redirects to the flow's
 * redirect_to with the outcome; a state that is not valid gets JSON 400. */
#include <stdlib.h>
#include <string.h>

#include "ia_app.h"
#include "ia_oauth.h"

static void handle(ia_app *app, ia_request *req)
{
	ia_err err = { 0 };
	char *location = NULL;
	int rc;

	ia_resp_header(req, "Cache-Control", "no-store");
	rc = ia_route_begin(app, req, "GET", 0, &err);
	if (rc == 0 && !(req->n_segments == 4 && strcmp(req->segments[3], "callback") == 0))
		rc = ia_err_set(&err, 404, "not_found", "No such route.");
	if (rc == 0)
		rc = ia_oauth_callback(app, req, req->segments[2], &location, &err);
	if (rc == 0)
		ia_resp_redirect(req, location);
	else if (rc < 0)
		ia_resp_err(req, &err);
	free(location);
}

int main(void)
{
	return ia_fcgi_main("auth-callback", handle);
}
