/* ia_tokens: keeping OAuth connections alive and ending them (SPEC §8).
 *
 * One refresh per integration at a time, across processes: the integration
 * row is locked (SELECT ... FOR UPDATE) for the length of the provider call,
 * which the outbound timeouts bound, and re-read after the lock is taken, so a
 * caller that waited sees what the one before it did. Rotated refresh tokens
 * are sealed and stored in the same transaction as the success. invalid_grant
 * marks the connection expired; network trouble leaves the credential as it
 * was, records the failure and sets a cooldown, and after failures over days
 * marks the connection `error`.
 */
#ifndef IA_TOKENS_H
#define IA_TOKENS_H

#include <stdbool.h>

#include "ia_app.h"
#include "ia_buf.h"
#include "ia_err.h"

/* refreshToken: out gets {"integration":{..},"refreshed":bool}. arrived:
 * when the request reached the server (epoch seconds as text, from
 * ia_request's started_at), or NULL: a forced refresh is satisfied by any
 * refresh that completed after it. */
int ia_tokens_refresh(ia_app *app, const ia_claims *caller, const char *body, size_t len,
		      const char *arrived, ia_buf *out, ia_err *err);

/* Refreshes when due (inside REFRESH_WINDOW_SECONDS and not cooling down);
 * for getCredentials. *still_valid tells whether the stored token had not yet
 * expired, so a failed refresh may still serve it. */
int ia_tokens_refresh_if_due(ia_app *app, const ia_claims *caller, const char *integration_id,
			     bool *still_valid, ia_err *err);

/* revokeToken: out gets {"integration":{..}}. Idempotent. */
int ia_tokens_revoke(ia_app *app, const ia_claims *caller, const char *body, size_t len,
		     ia_buf *out, ia_err *err);

/* healthCheck: refreshes what is due, then shows the connections no refresh
 * verifies to userinfo (once per HEALTHCHECK_INTERVAL_SECONDS). out gets
 * {"checked":n,"refreshed":n,"failed":n,"expired":n}. */
int ia_tokens_health_check(ia_app *app, ia_buf *out, ia_err *err);

/* The context binding a revoke_retry job's sealed credential to its job. */
void ia_revoke_retry_context(char out[256], const char *integration_id, const char *user_id,
			     const char *provider);

/* Seals a disconnected credential for the revoke_retry job that carries it
 * (bound to that job by ia_revoke_retry_context). 0 and *envelope (the
 * caller frees it), or -1 with err. */
int ia_revoke_retry_seal(const ia_app *app, const char *plain, size_t plain_len,
			 const char *integration_id, const char *user_id, const char *provider,
			 char **envelope, ia_err *err);

/* The same for a credential that no key of the ring opens now (a key left
 * out of it, say during a rotation): its envelope and id, sealed as
 * {"unopened": envelope, "credential_id": id}, so the worker can revoke it
 * once the key is back. Sealed by us, so nobody can queue revocations of
 * envelopes of his choosing (a user can read his own). true with *envelope
 * (the caller frees it); false, with nothing to queue, for an envelope over
 * IA_UNOPENED_ENVELOPE_MAX, whose job would outgrow a payload, or one no key
 * could have sealed. Either way logged: a disconnect goes ahead regardless. */
#define IA_UNOPENED_ENVELOPE_MAX (24 * 1024)
bool ia_revoke_retry_seal_unopened(const ia_app *app, const char *credential_id,
				   const char *credential_envelope, const char *integration_id,
				   const char *user_id, const char *provider, char **envelope);

/* What a revoke_retry job's opened payload holds: the credential JSON itself,
 * or (ia_revoke_retry_seal_unopened) the credential to open first. 0 with
 * *credential (sodium memory, the caller frees it with ia_secret_free) when
 * it holds one that opens; -1 with err when it does not open yet. */
int ia_revoke_retry_credential(const ia_app *app, const char *plain, size_t plain_len,
			       const char *user_id, const char *provider, char **credential,
			       size_t *credential_len, ia_err *err);

/* The CTE queueing that job, for a statement whose $2 is the envelope from
 * ia_revoke_retry_seal (NULL: nothing to retry, no job), $3 the provider
 * parameters and $4 whether it came from ia_revoke_retry_seal_unopened (the
 * payload says "unopened", so rotate-keys looks inside it); ROWS names the
 * integration's row (id, user_id, provider) and ends with WHERE or AND, e.g.
 * "d WHERE". */
#define IA_SQL_REVOKE_RETRY_JOB(ROWS)                                                     \
	" j AS (INSERT INTO public.integration_sync_jobs (kind, user_id, payload, max_attempts)" \
	"  SELECT 'revoke_retry', user_id, jsonb_build_object('integration_id', id,"          \
	"   'provider', provider, 'secret', $2::text, 'provider_params', $3::jsonb)"           \
	"   || CASE WHEN $4::boolean THEN '{\"unopened\": true}'::jsonb ELSE '{}' END, 8"       \
	"  FROM " ROWS " $2::text IS NOT NULL)"

/* RFC 7009 revocation of the tokens in a credential JSON (refresh token first).
 * 0 when the provider accepted (or has no revocation endpoint), -1 with err
 * when it should be retried later. */
int ia_tokens_revoke_remote(const ia_app *app, const ia_provider *p, const char *params_json,
			    const char *secret_json, size_t secret_len, ia_err *err);

#endif
