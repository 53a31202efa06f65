/* ia_jwt: HS256 bearer tokens of SPEC §3 (RFC 8725 practices).
 *
 * Accepts exactly three base64url segments, at most IA_JWT_MAX bytes, header
 * alg exactly "HS256" (typ, if present, "JWT"; kid/jku/jwk never consulted),
 * signature checked in constant time before the payload is trusted, numeric
 * exp required (30 s leeway), nbf/iat not in the future (30 s leeway), aud
 * (string or array) must contain the expected audience when present, role
 * "authenticated" with a UUID sub, or "service_role". Anything else fails.
 */
#ifndef IA_JWT_H
#define IA_JWT_H

#include <stddef.h>
#include <time.h>

#define IA_JWT_MAX 8192
#define IA_JWT_LEEWAY 30

enum ia_role { IA_ROLE_NONE = 0, IA_ROLE_USER, IA_ROLE_SERVICE };

typedef struct ia_claims {
	enum ia_role role;
	char sub[37];   /* lower-case UUID for users; "" for service role without sub */
	char *json;     /* the verified payload JSON as sent, malloc'd: becomes request.jwt.claims */
} ia_claims;

/* 0 when valid (out filled; release with ia_claims_release), else -1 with *why set
 * to a short static reason for logs (never the token). */
int ia_jwt_verify(const char *token, size_t len, const unsigned char *secret, size_t secret_len,
		  const char *audience, time_t now, ia_claims *out, const char **why);
void ia_claims_release(ia_claims *c);

/* Mints a token (intauthctl mint-token, tests). role: "authenticated",
 * "service_role" or "anon" (no audience, like a Supabase anon key); sub may
 * be NULL except for "authenticated". Returns malloc'd token or NULL. */
char *ia_jwt_mint(const unsigned char *secret, size_t secret_len, const char *role,
		  const char *sub, const char *audience, time_t now, long ttl_seconds);

#endif
