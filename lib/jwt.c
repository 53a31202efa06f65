/* jwt: HS256 bearer tokens (SPEC §3, RFC 8725).
 *
 * Order matters: the token's shape is checked, then its signature, and only then
 * is any of it parsed as JSON, so an unauthenticated caller never reaches cJSON.
 * The algorithm is fixed by us, not read from the header: the header's alg must
 * merely agree with it.
 */
#include "ia_jwt.h"
#include "ia_json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>
#include <sodium.h>

#include "ia_buf.h"
#include "ia_codec.h"

#define IA_JWT_SIG_B64_LEN 43 /* 32 bytes, base64url without padding */

static bool ia_jwt_b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* HMAC-SHA256 with a key of any length (JWT_SECRET is whatever the operator set). */
static void ia_jwt_hmac(const unsigned char *secret, size_t secret_len, const char *msg,
			size_t msg_len, unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, msg_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof st);
}

/* Decodes one segment and parses it as a JSON object. A NUL inside the decoded
 * bytes is refused: C strings downstream would see a different document than
 * PostgreSQL. *raw (malloc'd, NUL-terminated) keeps the exact bytes. */
static cJSON *ia_jwt_segment_json(const char *seg, size_t n, char **raw)
{
	cJSON *json = NULL;
	size_t cap = n / 4 * 3 + 3;
	char *buf = malloc(cap + 1);

	*raw = NULL;
	if (!buf)
		return NULL;
	long len = ia_b64url_decode(seg, n, (unsigned char *)buf, cap);
	if (len <= 0 || ia_json_has_nul(buf, (size_t)len))
		goto out;
	buf[len] = '\0';
	const char *end = NULL;
	json = cJSON_ParseWithLengthOpts(buf, (size_t)len + 1, &end, 1);
	if (!json)
		goto out;
	if (!cJSON_IsObject(json)) {
		cJSON_Delete(json);
		json = NULL;
		goto out;
	}
	*raw = buf;
	buf = NULL;
out:
	free(buf);
	return json;
}

/* Duplicate member names are ambiguous: cJSON would read the first, PostgreSQL's
 * jsonb keeps the last, so the claims we check could differ from the claims RLS sees. */
static bool ia_jwt_has_duplicates(const cJSON *obj)
{
	for (const cJSON *a = obj->child; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (a->string && b->string && strcmp(a->string, b->string) == 0)
				return true;
	return false;
}

static bool ia_jwt_aud_ok(const cJSON *aud, const char *audience)
{
	if (cJSON_IsString(aud))
		return strcmp(aud->valuestring, audience) == 0;
	if (!cJSON_IsArray(aud))
		return false;
	const cJSON *it;
	cJSON_ArrayForEach(it, aud) {
		if (cJSON_IsString(it) && strcmp(it->valuestring, audience) == 0)
			return true;
	}
	return false;
}

/* Copies a UUID in either case into out as canonical lower case, or fails. */
static bool ia_jwt_uuid_lower(const char *s, char out[37])
{
	if (!s || strnlen(s, 37) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];
		out[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	out[36] = '\0';
	if (!ia_uuid_valid(out)) {
		out[0] = '\0';
		return false;
	}
	return true;
}

int ia_jwt_verify(const char *token, size_t len, const unsigned char *secret, size_t secret_len,
		  const char *audience, time_t now, ia_claims *out, const char **why)
{
	const char *reason = "malformed token";
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	unsigned char sig[crypto_auth_hmacsha256_BYTES + 3];
	cJSON *header = NULL, *payload = NULL;
	char *header_raw = NULL, *payload_raw = NULL;
	int rc = -1;

	if (out) {
		out->role = IA_ROLE_NONE;
		out->sub[0] = '\0';
		out->json = NULL;
	}
	if (why)
		*why = NULL;
	if (!out) {
		reason = "no output";
		goto out;
	}
	if (!secret || secret_len == 0) {
		reason = "no secret configured";
		goto out;
	}
	if (!audience || !*audience)
		audience = "authenticated";
	if (!token || len == 0)
		goto out;
	if (len > IA_JWT_MAX) {
		reason = "token too large";
		goto out;
	}

	/* shape: three non-empty base64url segments, nothing else (no '=', no spaces) */
	size_t dots[2], ndots = 0;
	for (size_t i = 0; i < len; i++) {
		if (token[i] == '.') {
			if (ndots == 2)
				goto out;
			dots[ndots++] = i;
		} else if (!ia_jwt_b64url_char((unsigned char)token[i])) {
			goto out;
		}
	}
	if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1)
		goto out;
	const char *sig_b64 = token + dots[1] + 1;
	size_t sig_len = len - dots[1] - 1;
	if (sig_len != IA_JWT_SIG_B64_LEN ||
	    ia_b64url_decode(sig_b64, sig_len, sig, sizeof sig) != (long)sizeof mac)
		goto out;

	ia_jwt_hmac(secret, secret_len, token, dots[1], mac);
	if (sodium_memcmp(mac, sig, sizeof mac) != 0) {
		reason = "bad signature";
		goto out;
	}

	header = ia_jwt_segment_json(token, dots[0], &header_raw);
	if (!header || ia_jwt_has_duplicates(header)) {
		reason = "malformed header";
		goto out;
	}
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
	if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "HS256") != 0) {
		reason = "alg not allowed";
		goto out;
	}
	const cJSON *typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
	/* typ is a media type name, case-insensitive (RFC 7515 §4.1.9) */
	if (typ && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0)) {
		reason = "typ not allowed";
		goto out;
	}
	/* extensions we do not understand must not be ignored (RFC 7515 §4.1.11) */
	if (cJSON_GetObjectItemCaseSensitive(header, "crit")) {
		reason = "crit not supported";
		goto out;
	}

	payload = ia_jwt_segment_json(token + dots[0] + 1, dots[1] - dots[0] - 1, &payload_raw);
	if (!payload || ia_jwt_has_duplicates(payload)) {
		reason = "malformed payload";
		goto out;
	}
	double t = (double)now;
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(payload, "exp");
	if (!cJSON_IsNumber(exp)) {
		reason = "exp missing or not a number";
		goto out;
	}
	if (!(t < exp->valuedouble + IA_JWT_LEEWAY)) {
		reason = "expired";
		goto out;
	}
	const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(payload, "nbf");
	if (nbf && (!cJSON_IsNumber(nbf) || nbf->valuedouble > t + IA_JWT_LEEWAY)) {
		reason = "nbf in the future";
		goto out;
	}
	const cJSON *iat = cJSON_GetObjectItemCaseSensitive(payload, "iat");
	if (iat && (!cJSON_IsNumber(iat) || iat->valuedouble > t + IA_JWT_LEEWAY)) {
		reason = "iat in the future";
		goto out;
	}
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(payload, "aud");
	if (aud && !ia_jwt_aud_ok(aud, audience)) {
		reason = "audience mismatch";
		goto out;
	}

	const cJSON *role = cJSON_GetObjectItemCaseSensitive(payload, "role");
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(payload, "sub");
	if (cJSON_IsString(role) && strcmp(role->valuestring, "authenticated") == 0) {
		if (!cJSON_IsString(sub) || !ia_jwt_uuid_lower(sub->valuestring, out->sub)) {
			reason = "sub missing or not a uuid";
			goto out;
		}
		out->role = IA_ROLE_USER;
	} else if (cJSON_IsString(role) && strcmp(role->valuestring, "service_role") == 0) {
		/* the backend may act without a user; keep sub only when it names one */
		if (!cJSON_IsString(sub) || !ia_jwt_uuid_lower(sub->valuestring, out->sub))
			out->sub[0] = '\0';
		out->role = IA_ROLE_SERVICE;
	} else {
		reason = "role not allowed";
		goto out;
	}
	out->json = payload_raw;
	payload_raw = NULL;
	reason = NULL;
	rc = 0;
out:
	if (rc != 0 && out) {
		out->role = IA_ROLE_NONE;
		out->sub[0] = '\0';
	}
	if (why)
		*why = reason;
	sodium_memzero(mac, sizeof mac);
	sodium_memzero(sig, sizeof sig);
	cJSON_Delete(header);
	cJSON_Delete(payload);
	free(header_raw);
	free(payload_raw);
	return rc;
}

void ia_claims_release(ia_claims *c)
{
	if (!c)
		return;
	free(c->json);
	c->json = NULL;
	c->role = IA_ROLE_NONE;
	c->sub[0] = '\0';
}

/* Appends base64url(s) to b. */
static int ia_jwt_put_b64(ia_buf *b, const char *s, size_t n)
{
	size_t size = IA_B64_ENCODED_LEN(n);
	char *enc = malloc(size);
	int rc = -1;

	if (!enc)
		return -1;
	if (ia_b64url_encode((const unsigned char *)s, n, enc, size) == 0)
		rc = ia_buf_puts(b, enc);
	free(enc);
	return rc;
}

char *ia_jwt_mint(const unsigned char *secret, size_t secret_len, const char *role,
		  const char *sub, const char *audience, time_t now, long ttl_seconds)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char mac_b64[IA_B64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES)];
	char sub_lc[37];
	ia_buf payload, tok;
	char *res = NULL;

	ia_buf_init(&payload, IA_JWT_MAX);
	ia_buf_init(&tok, IA_JWT_MAX);
	if (!secret || secret_len == 0 || !role || ttl_seconds <= 0)
		goto out;
	bool user = strcmp(role, "authenticated") == 0, anon = strcmp(role, "anon") == 0;
	if (!user && !anon && strcmp(role, "service_role") != 0)
		goto out;
	/* an anon key, as Supabase issues it, names no audience */
	if (anon)
		audience = NULL;
	if (sub && !ia_jwt_uuid_lower(sub, sub_lc))
		goto out;
	if (user && !sub)
		goto out;
	if ((long long)now > INT64_MAX - ttl_seconds)
		goto out;

	/* the claims Supabase's auth server puts in its tokens, in its order */
	int e = ia_buf_puts(&payload, "{");
	if (audience) {
		e |= ia_buf_puts(&payload, "\"aud\":\"");
		e |= ia_buf_json_escape(&payload, audience);
		e |= ia_buf_puts(&payload, "\",");
	}
	e |= ia_buf_printf(&payload, "\"exp\":%lld,\"iat\":%lld,",
			   (long long)now + ttl_seconds, (long long)now);
	if (sub)
		e |= ia_buf_printf(&payload, "\"sub\":\"%s\",", sub_lc);
	e |= ia_buf_printf(&payload, "\"role\":\"%s\"}", role);

	e |= ia_jwt_put_b64(&tok, header, sizeof header - 1);
	e |= ia_buf_putc(&tok, '.');
	e |= ia_jwt_put_b64(&tok, payload.data, payload.len);
	if (e != 0)
		goto out;
	ia_jwt_hmac(secret, secret_len, tok.data, tok.len, mac);
	if (ia_b64url_encode(mac, sizeof mac, mac_b64, sizeof mac_b64) != 0 ||
	    ia_buf_putc(&tok, '.') != 0 || ia_buf_puts(&tok, mac_b64) != 0)
		goto out;
	res = ia_buf_detach(&tok);
out:
	sodium_memzero(mac, sizeof mac);
	sodium_memzero(mac_b64, sizeof mac_b64);
	ia_buf_release(&payload);
	ia_buf_release(&tok);
	return res;
}
