/* ia_integrations: integrations and their encrypted credentials (SPEC §5, §8).
 *
 * Each call runs in one request transaction as the caller (RLS applies to
 * users; service_role acts for any user), writes its JSON answer into out
 * (caller-owned ia_buf; wiped on release because getCredentials puts secrets
 * there) and returns 0, or returns -1 with err. Nothing is written to the
 * database unless the whole call succeeds.
 */
#ifndef IA_INTEGRATIONS_H
#define IA_INTEGRATIONS_H

#include "ia_app.h"
#include "ia_buf.h"
#include "ia_err.h"

/* The associated-data context that binds a credential ciphertext to its row. */
#define IA_CREDENTIAL_CONTEXT_MAX 256
void ia_credential_context(char out[IA_CREDENTIAL_CONTEXT_MAX], const char *credential_id,
			   const char *user_id, const char *provider);

/* storeCredentials: body of SPEC §8 -> {"integration":{..}} */
int ia_integration_store(ia_app *app, const ia_claims *caller, const char *body, size_t len,
			 ia_buf *out, ia_err *err);
/* GET /api/integrations -> {"integrations":[..]} (the caller's own) */
int ia_integration_list(ia_app *app, const ia_claims *caller, ia_buf *out, ia_err *err);
/* GET /api/integrations/{id} -> {"integration":{..}}; 404 when not the caller's */
int ia_integration_get(ia_app *app, const ia_claims *caller, const char *id, ia_buf *out,
		       ia_err *err);
/* DELETE /api/integrations/{id} -> {"deleted":true,"id":".."} */
int ia_integration_delete(ia_app *app, const ia_claims *caller, const char *id, ia_buf *out,
			  ia_err *err);
/* GET /api/integrations/{id}/logs?limit=n -> {"logs":[..]} newest first */
int ia_integration_logs(ia_app *app, const ia_claims *caller, const char *id, long limit,
			ia_buf *out, ia_err *err);
/* getCredentials (service role): {"integration":{..},"credentials":{..}} */
int ia_credentials_fetch(ia_app *app, const ia_claims *caller, const char *body, size_t len,
			 ia_buf *out, ia_err *err);

#endif
