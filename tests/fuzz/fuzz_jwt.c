/* Fuzz target: bearer token verification (ia_jwt_verify, lib/jwt.c).
 *
 * Byte 0 picks the mode; the rest is:
 *   0  a raw token, passed with its exact length and not NUL-terminated (a
 *      read past len would be an ASan report);
 *   1  "<header JSON>\n<payload JSON>", which the harness base64url-encodes and
 *      signs with the test secret, so the claim checks behind the signature
 *      get fuzzed too;
 *   2  "<segment>.<segment>" as text, signed by the harness (odd base64url in
 *      otherwise valid tokens).
 * Properties on success (ia_jwt.h): a known role; a user's sub is a
 * lower-case UUID; the claims JSON is the payload, an object without NUL bytes.
 * On failure: a reason is given and no role is left behind.
 */
#include "fuzz_common.h"

#include <cJSON.h>
#include <sodium.h>

#include "ia_codec.h"
#include "ia_jwt.h"

#define NOW 1700000000L

static const unsigned char secret[] = "fuzz-jwt-secret-of-at-least-32-characters";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? 1 : 0;
}

/* Appends ".<signature>"; returns the token's whole length. */
static size_t sign_append(char *tok, size_t len, size_t cap)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, secret, sizeof secret - 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, len);
	crypto_auth_hmacsha256_final(&st, mac);
	FUZZ_CHECK(len + 1 < cap);
	tok[len] = '.';
	FUZZ_CHECK(ia_b64url_encode(mac, sizeof mac, tok + len + 1, cap - len - 1) == 0);
	return len + 1 + strlen(tok + len + 1);
}

static void check(const char *tok, size_t len)
{
	ia_claims c;
	const char *why = "unset";

	memset(&c, 0x41, sizeof c);
	int r = ia_jwt_verify(tok, len, secret, sizeof secret - 1, "authenticated", NOW, &c, &why);
#ifdef FUZZ_VERBOSE
	fprintf(stderr, "jwt: %s\n", r == 0 ? "verified" : why);
#endif
	if (r != 0) {
		FUZZ_CHECK(r == -1);
		FUZZ_CHECK(why != NULL);
		FUZZ_CHECK(c.role == IA_ROLE_NONE && c.sub[0] == '\0' && c.json == NULL);
		return;
	}
	FUZZ_CHECK(why == NULL);
	FUZZ_CHECK(c.role == IA_ROLE_USER || c.role == IA_ROLE_SERVICE);
	if (c.role == IA_ROLE_USER)
		FUZZ_CHECK(ia_uuid_valid(c.sub));
	else
		FUZZ_CHECK(c.sub[0] == '\0' || ia_uuid_valid(c.sub));
	FUZZ_CHECK(c.json != NULL);
	cJSON *j = cJSON_Parse(c.json);
	FUZZ_CHECK(cJSON_IsObject(j));
	cJSON_Delete(j);
	/* a token verifies the same from a differently sized copy */
	char *copy = fuzz_strndup((const uint8_t *)tok, len);
	ia_claims c2;
	FUZZ_CHECK(ia_jwt_verify(copy, len, secret, sizeof secret - 1, "authenticated", NOW, &c2, &why) == 0);
	FUZZ_CHECK(c2.role == c.role && strcmp(c2.sub, c.sub) == 0 && strcmp(c2.json, c.json) == 0);
	ia_claims_release(&c2);
	free(copy);
	ia_claims_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > IA_JWT_MAX + 1)
		return 0;
	int mode = data[0] % 3;
	data++;
	size--;

	if (mode == 0) {
		check((const char *)data, size);
		return 0;
	}
	size_t cap = 2 * size + 128;
	char *tok = malloc(cap);
	FUZZ_CHECK(tok != NULL);
	size_t len;
	if (mode == 1) {
		size_t hn, pn;
		const uint8_t *p;
		fuzz_split(data, size, "\n", &hn, &p, &pn);
		FUZZ_CHECK(ia_b64url_encode(data, hn, tok, cap) == 0);
		len = strlen(tok);
		tok[len++] = '.';
		FUZZ_CHECK(ia_b64url_encode(p, pn, tok + len, cap - len) == 0);
		len += strlen(tok + len);
	} else {
		memcpy(tok, data, size);
		len = size;
	}
	check(tok, sign_append(tok, len, cap));
	free(tok);
	return 0;
}
