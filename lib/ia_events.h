/* ia_events: receiving a webhook delivery: choose the secrets, verify, store
 * the event once per (provider, event id) together with its `webhook` job in
 * one transaction, and answer before any slow work.
 *
 * Secrets: the integration_webhooks row named by webhook_id (its encrypted
 * list, several during a rotation), else <NAME>_WEBHOOK_SECRET and optionally
 * <NAME>_WEBHOOK_PREVIOUS_SECRET from the configuration.
 */
#ifndef IA_EVENTS_H
#define IA_EVENTS_H

#include "ia_app.h"
#include "ia_buf.h"
#include "ia_err.h"

/* out gets {"received":true,"duplicate":bool} or, for Slack's
 * url_verification, {"challenge":"..."}. Failures: 400 unknown_provider,
 * 401 invalid_signature (the same for every verification failure, nothing
 * stored), 503 unavailable (the provider will retry). */
int ia_event_receive(ia_app *app, ia_request *req, const char *provider, const char *webhook_id,
		     ia_buf *out, ia_err *err);

/* The context that binds an integration_webhooks ciphertext to its row. */
void ia_webhook_secret_context(char out[256], const char *webhook_id, const char *user_id,
			       const char *provider);

#endif
