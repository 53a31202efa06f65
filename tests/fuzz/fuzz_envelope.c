/* Fuzz target: the ciphertext envelope and the key ring (lib/crypto.c).
 *
 * Byte 0 picks the mode; the rest is:
 *   0  an envelope opened with a fixed ring (current + previous key) and a
 *      fixed row context: ia_crypto_open and ia_crypto_envelope_kid;
 *   1  "<context>\n<plaintext>" (the context after "credentials.secret|"): sealed, opened again (same bytes), opened
 *      with another context (fails), and opened after one character of the
 *      envelope is changed (fails: tampering never yields data);
 *   2  key text "<current>\n<previous csv>" for ia_key_parse / ia_keyring_load,
 *      the CREDENTIAL_ENCRYPTION_* variables.
 * Properties (ia_crypto.h): all or nothing, plaintext NUL-terminated, kid is 8
 * lower-case hex; a key-ring error message never repeats the key text.
 */
#include "fuzz_common.h"

#include <sodium.h>

#include "ia_codec.h"
#include "ia_crypto.h"

#define KEY_CURRENT "8f1e0c4b7a2d9e6f3c5b8a1d4e7f0a2c6b9d3e5f8a1c4b7e0d2f5a8c1e4b7d0a"
#define KEY_PREVIOUS "N2Q5ZWQ0YzAzOGE1ZjFiNmUyYzk3ZDhhNGYwYjNlNjE"
#define CONTEXT "credentials.secret|6a0f1d8e-2b4c-4e7a-9f13-5c8d2e6b0a91|0b0e8f5c-3b7a-4c61-9d7e-2f1a6c9e4b10|github"

static ia_keyring *ring;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0 || ia_keyring_load(&ring, KEY_CURRENT, KEY_PREVIOUS, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_envelope: key ring: %s\n", err);
		return 1;
	}
	return 0;
}

static bool is_kid(const char *k)
{
	if (strlen(k) != IA_KID_CHARS)
		return false;
	for (size_t i = 0; i < IA_KID_CHARS; i++)
		if (!strchr("0123456789abcdef", k[i]))
			return false;
	return true;
}

static void open_any(const char *envelope)
{
	char *pt = (char *)1, kid[IA_KID_CHARS + 1];
	size_t len = 99;

	if (ia_crypto_open(ring, envelope, CONTEXT, &pt, &len) == 0) {
		FUZZ_CHECK(pt != NULL && pt[len] == '\0' && len <= IA_SECRET_MAX);
		ia_secret_free(pt, len);
	} else {
		FUZZ_CHECK(pt == NULL && len == 0);
	}
	if (ia_crypto_envelope_kid(envelope, kid) == 0)
		FUZZ_CHECK(is_kid(kid) && (strncmp(envelope, "v1.", 3) == 0 || strncmp(envelope, "v2.", 3) == 0));
	else
		FUZZ_CHECK(kid[0] == '\0');
}

static void roundtrip(const uint8_t *data, size_t size)
{
	/* a context of a known purpose (a subkey each), the rest of it fuzzed */
	static const char purpose[] = "credentials.secret|";
	size_t tn, pn;
	const uint8_t *p;
	fuzz_split(data, size, "\n", &tn, &p, &pn);
	size_t cn = sizeof purpose - 1 + tn;
	char *context = malloc(cn + 1);
	FUZZ_CHECK(context != NULL);
	memcpy(context, purpose, sizeof purpose - 1);
	memcpy(context + sizeof purpose - 1, data, tn);
	context[cn] = '\0';
	char *env = NULL, *pt = NULL;
	size_t len = 0;

	if (ia_crypto_seal(ring, p, pn, context, &env) != 0) {
		FUZZ_CHECK(pn > IA_SECRET_MAX);
		free(context);
		return;
	}
	char kid[IA_KID_CHARS + 1];
	FUZZ_CHECK(ia_crypto_envelope_kid(env, kid) == 0);
	FUZZ_CHECK(strcmp(kid, ia_keyring_current_kid(ring)) == 0);
	FUZZ_CHECK(ia_crypto_open(ring, env, context, &pt, &len) == 0);
	FUZZ_CHECK(len == pn && (pn == 0 || memcmp(pt, p, pn) == 0) && pt[len] == '\0');
	ia_secret_free(pt, len);

	/* another row's context */
	char *other = malloc(cn + 2);
	FUZZ_CHECK(other != NULL);
	memcpy(other, context, cn + 1);
	if (cn && context[cn - 1] != 'x') {
		other[cn - 1] = 'x';
	} else {
		other[cn] = 'y';
		other[cn + 1] = '\0';
	}
	if (strlen(context) == cn) {
		FUZZ_CHECK(ia_crypto_open(ring, env, other, &pt, &len) == -1);
		FUZZ_CHECK(pt == NULL);
	}
	free(other);

	/* one character changed anywhere: never opens */
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
	size_t el = strlen(env);
	size_t pos = (pn ? p[0] : cn) % el;
	char *bad = strdup(env);
	FUZZ_CHECK(bad != NULL);
	const char *a = strchr(alphabet, bad[pos]);
	bad[pos] = a && a[1] ? a[1] : 'A';
	if (strcmp(bad, env) != 0) {
		FUZZ_CHECK(ia_crypto_open(ring, bad, context, &pt, &len) == -1);
		FUZZ_CHECK(pt == NULL);
	}
	free(bad);
	free(env);
	free(context);
}

static void keys(const uint8_t *data, size_t size)
{
	size_t cn, pn;
	const uint8_t *p;
	fuzz_split(data, size, "\n", &cn, &p, &pn);
	char *cur = fuzz_strndup(data, cn), *prev = fuzz_strndup(p, pn);
	unsigned char key[IA_KEY_BYTES];
	char err[256];
	ia_keyring *kr = NULL;

	if (ia_key_parse(cur, key) == 0) {
		size_t n = strlen(cur);
		FUZZ_CHECK(n == 64 || n == 43 || n == 44);
	}
	if (ia_keyring_load(&kr, cur, pn ? prev : NULL, err, sizeof err) == 0) {
		FUZZ_CHECK(kr != NULL && is_kid(ia_keyring_current_kid(kr)));
		char *env = NULL, *pt = NULL;
		size_t len = 0;
		FUZZ_CHECK(ia_crypto_seal(kr, "x", 1, "credentials.secret|c", &env) == 0);
		FUZZ_CHECK(ia_crypto_open(kr, env, "credentials.secret|c", &pt, &len) == 0 && len == 1);
		ia_secret_free(pt, len);
		free(env);
		ia_keyring_free(kr);
	} else {
		FUZZ_CHECK(kr == NULL && err[0] != '\0');
		/* the message names the variable, never the key */
		if (strlen(cur) >= 8)
			FUZZ_CHECK(strstr(err, cur) == NULL);
	}
	free(cur);
	free(prev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 2 * IA_SECRET_MAX)
		return 0;
	int mode = data[0] % 3;
	if (mode == 0) {
		char *env = fuzz_strndup(data + 1, size - 1);
		open_any(env);
		free(env);
	} else if (mode == 1) {
		roundtrip(data + 1, size - 1);
	} else {
		keys(data + 1, size - 1);
	}
	return 0;
}
