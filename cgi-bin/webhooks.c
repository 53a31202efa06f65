/* POST /functions/v1/webhooks/{provider}[/{webhook_id}]: a provider's signed
 * delivery. Trust comes only from the signature; the answer comes as soon as
 * the event and its job are committed. */
#include "ia_app.h"
#include "ia_events.h"

static int receive(ia_app *app, ia_request *req, ia_buf *out, ia_err *err)
{
	/* webhooks/{provider}[/{webhook_id}] */
	if (req->n_segments < 4 || req->n_segments > 5)
		return ia_err_set(err, 404, "not_found", "No such route.");
	return ia_event_receive(app, req, req->segments[3],
				req->n_segments == 5 ? req->segments[4] : NULL, out, err);
}

static const ia_route route = {
	.program = "webhooks",
	.methods = "POST",
	.allow = 0,
	.max_answer = 65536,
	.cache_control = NULL,
	.call = receive,
};

int main(void)
{
	return ia_route_main(&route);
}
