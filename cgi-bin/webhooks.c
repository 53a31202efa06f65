/* POST /functions/v1/webhooks/{provider}[/{webhook_id}]: a provider's signed
 * delivery. Trust comes only from the signature; the answer comes as soon as
 * the event and its job are committed. */
#include <string.h>

#include "ia_app.h"
#include "ia_events.h"

static void handle(ia_app *app, ia_request *req)
{
	ia_err err = { 0 };
	ia_buf out;
	int rc;

	ia_buf_init(&out, 65536);
	rc = ia_route_begin(app, req, "POST", 0, &err);
	if (rc == 0 && (req->n_segments < 4 || req->n_segments > 5))
		rc = ia_err_set(&err, 404, "not_found", "No such route.");
	if (rc == 0)
		rc = ia_event_receive(app, req, req->segments[3],
				      req->n_segments == 5 ? req->segments[4] : NULL, &out, &err);
	if (rc <= 0)
		ia_resp_outcome(req, rc, &out, &err);
	ia_buf_release(&out);
}

int main(void)
{
	return ia_fcgi_main("webhooks", handle);
}
