/* ia_oauth: the OAuth 2.0 client side (RFC 6749, 7636, 9207, 9700).
 *
 * ia_oauth_start / ia_oauth_callback are the whole of the auth-start and
 * auth-callback routes. Token endpoint calls (code exchange now, refresh
 * later) go through ia_oauth_token_request, which adds the provider's client
 * authentication and parses JSON or form-encoded answers.
 *
 * Tokens are held in sodium_malloc'd strings (ia_token_set) and wiped when
 * released.
 */
#ifndef IA_OAUTH_H
#define IA_OAUTH_H

#include "ia_app.h"
#include "ia_buf.h"
#include "ia_err.h"
#include "ia_providers.h"

#define IA_OAUTH_STATE_TTL_SECONDS 600
#define IA_FLOW_COOKIE "intauth_flow"
/* The longest token lifetime stored (ten years): a larger expires_in is
 * clamped, so no provider's number can break the expiry arithmetic. */
#define IA_MAX_EXPIRES_IN_SECONDS (10L * 365 * 86400)

typedef struct ia_token_set {
	char *access_token;    /* required */
	char *refresh_token;   /* may be NULL */
	char *token_type;      /* required */
	char *id_token;        /* may be NULL */
	char *scope;           /* granted scopes (space-separated), may be NULL */
	long expires_in;       /* seconds (at most IA_MAX_EXPIRES_IN_SECONDS), -1 when none */
} ia_token_set;

void ia_token_set_release(ia_token_set *t);

/* Parses a token endpoint answer (JSON, or form-encoded as some providers
 * send). On an OAuth error answer, returns -1 with err: invalid_grant -> 422
 * reauthorization_required; anything else -> 502 provider_error. 5xx and 429
 * -> 502 provider_error. Missing access_token or token_type -> 502, and so
 * is a token or token_type with a byte outside VSCHAR (%x20-7E): nothing with
 * a CR or LF is stored or ever sent in a header. */
int ia_oauth_parse_token_response(long status, const char *content_type, const char *body,
				  size_t len, ia_token_set *out, ia_err *err);

/* POSTs form (grant parameters, form-encoded) to the provider's token_url
 * (placeholders filled from params_json, an object of validated values, or
 * NULL) with the provider's client authentication, and parses the answer. */
int ia_oauth_token_request(const ia_app *app, const ia_provider *p, const char *params_json,
			   ia_buf *form, ia_token_set *out, ia_err *err);

/* Prepares the same call without running it (for a multi handle): adds client
 * authentication to form and initialises call. Release call with
 * ia_outbound_release(). */
struct ia_outbound;
/* The same for any endpoint of the provider taking client authentication
 * (the token endpoint, RFC 7009 revocation): url_tmpl may hold {param}s. */
int ia_oauth_client_prepare(const ia_app *app, const ia_provider *p, const char *url_tmpl,
			    const char *params_json, ia_buf *form, struct ia_outbound *call,
			    ia_err *err);
int ia_oauth_token_prepare(const ia_app *app, const ia_provider *p, const char *params_json,
			   ia_buf *form, struct ia_outbound *call, ia_err *err);

/* Fills a provider URL template from a stored params object (NULL = none).
 * malloc'd, or NULL with err. */
char *ia_oauth_fill_url(const ia_provider *p, const char *tmpl, const char *params_json,
			ia_err *err);

/* The credential JSON sealed for a token set. keep_refresh: the refresh token
 * to keep when the answer carried none (RFC 6749 §6), or NULL. */
int ia_token_set_secret_json(const ia_token_set *t, const char *keep_refresh, ia_buf *out);

/* The context that binds a flow's sealed PKCE verifier to its oauth_states row. */
void ia_oauth_verifier_context(char out[256], const char *state_hash, const char *user_id,
			       const char *provider);

/* GET /api/auth/{provider}/start: out gets {"url":"..."}; *location the same
 * URL (malloc'd, caller frees) for ?redirect=1; the flow cookie is added to
 * req's answer headers. */
int ia_oauth_start(ia_app *app, ia_request *req, const char *provider, ia_buf *out,
		   char **location, ia_err *err);

/* GET /api/auth/{provider}/callback. Returns 0 with *location (malloc'd) to
 * redirect to, outcome included; or -1 with err (400 invalid_state) when the
 * state itself is not valid, so there is nowhere trusted to send the browser. */
int ia_oauth_callback(ia_app *app, ia_request *req, const char *provider, char **location,
		      ia_err *err);

#endif
