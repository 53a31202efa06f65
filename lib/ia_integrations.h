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

#include <stdbool.h>

#include <cJSON.h>

#include "ia_app.h"
#include "ia_buf.h"
#include "ia_err.h"

/* The associated-data context that binds a credential ciphertext to its row. */
#define IA_CREDENTIAL_CONTEXT_MAX 256
void ia_credential_context(char out[IA_CREDENTIAL_CONTEXT_MAX], const char *credential_id,
			   const char *user_id, const char *provider);

/* Is a connection label valid? 1-64 of [A-Za-z0-9_.:@-]. */
bool ia_connection_valid(const char *s);

/* What a successful connect writes: the integration upserted on (user,
 * provider, connection) as connected, its credential sealed under a fresh
 * credential id, a log row, and optionally a bootstrap job: one statement,
 * one transaction. Borrowed pointers; NULL means absent. */
typedef struct ia_integration_write {
	const char *user_id;
	const char *provider;
	const char *connection;
	enum ia_auth_type auth_type;
	const char *scopes_json;      /* JSON array of strings */
	const char *expires_at;       /* ISO-8601 with zone */
	const char *expires_in;       /* seconds, or "@<epoch seconds>" */
	const char *metadata_json;    /* object; NULL keeps what is there */
	const char *secret;           /* the credential JSON to seal */
	size_t secret_len;
	const char *log_action;
	const char *log_message;
	bool enqueue_bootstrap;
	const char *provider_params_json; /* object of {param} values; NULL keeps what is there */
} ia_integration_write;

/* The user a request acts for: a user acts for itself (naming another
 * user_id is 403); the service role must name one in "user_id". *user_id
 * points to the caller's sub or to buf, which receives the canonical form. */
int ia_acting_user(const ia_claims *caller, const cJSON *body, char buf[37], const char **user_id,
		   ia_err *err);

/* Which integration a lifecycle request means: {"integration_id"} or
 * {"provider", "connection"?} of the acting user. Pointers borrow from body
 * and from sel itself. */
typedef struct ia_selector {
	const char *integration_id;     /* NULL or id_buf */
	const char *user_id;            /* the caller's sub or user_buf */
	const char *provider;
	const char *connection;
	char id_buf[37], user_buf[37];  /* canonical (lower-case) UUIDs */
} ia_selector;
int ia_selector_parse(const ia_claims *caller, const cJSON *body, ia_selector *sel, ia_err *err);

/* out gets {"integration":{..}}. */
int ia_integration_save(ia_app *app, const ia_claims *caller, const ia_integration_write *w,
			ia_buf *out, ia_err *err);

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
