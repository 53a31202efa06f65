/* crypto: key parsing, the key ring, and the envelope's refusals (wrong row,
 * tampering, unknown key, oversize). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ia_codec.h"
#include "ia_crypto.h"
#include "ia_test.h"

#define KEY_A_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B_HEX "fbffbfffbfffbfffbfffbfffbfffbfffbfffbfffbfffbfffbfffbfffbfffbffe"
#define CTX "credentials.secret|7d2c1d2e-0f6a-4c55-9d0e-3b7b7a2a9f10|user|github"
#define WEBHOOK_CTX "integration_webhooks.secrets|7d2c1d2e-0f6a-4c55-9d0e-3b7b7a2a9f10|user|github"

static void replace_chars(char *s, char from, char to)
{
	for (; *s; s++)
		if (*s == from)
			*s = to;
}

static void test_key_parse(void)
{
	unsigned char want[IA_KEY_BYTES], key[IA_KEY_BYTES];
	char b64[IA_B64_ENCODED_LEN(IA_KEY_BYTES)], text[128];

	CHECK(ia_key_parse(KEY_A_HEX, key) == 0, "key: 64 hex chars accepted");
	for (int i = 0; i < IA_KEY_BYTES; i++)
		want[i] = (unsigned char)i;
	CHECK(memcmp(key, want, sizeof key) == 0, "key: hex decoded");

	/* key B encodes with + and / in the standard alphabet: every base64 form */
	CHECK(ia_hex_decode(KEY_B_HEX, 64, want, sizeof want) == IA_KEY_BYTES, "key B decodes");
	CHECK(ia_b64_encode(want, sizeof want, b64, sizeof b64) == 0, "key B encodes");
	CHECK(strchr(b64, '+') && strchr(b64, '/') && b64[43] == '=',
	      "key B's base64 uses + / and padding");

	memset(key, 0, sizeof key);
	CHECK(ia_key_parse(b64, key) == 0 && memcmp(key, want, sizeof key) == 0,
	      "key: standard base64, padded");
	memcpy(text, b64, 43);
	text[43] = '\0';
	memset(key, 0, sizeof key);
	CHECK(ia_key_parse(text, key) == 0 && memcmp(key, want, sizeof key) == 0,
	      "key: standard base64, unpadded");
	replace_chars(text, '+', '-');
	replace_chars(text, '/', '_');
	memset(key, 0, sizeof key);
	CHECK(ia_key_parse(text, key) == 0 && memcmp(key, want, sizeof key) == 0,
	      "key: base64url, unpadded");
	text[43] = '=';
	text[44] = '\0';
	memset(key, 0, sizeof key);
	CHECK(ia_key_parse(text, key) == 0 && memcmp(key, want, sizeof key) == 0,
	      "key: base64url, padded");
	for (char *p = KEY_B_HEX, *q = text; (*q = *p) != '\0'; p++, q++)
		if (*q >= 'a' && *q <= 'f')
			*q = (char)(*q - 'a' + 'A');
	CHECK(ia_key_parse(text, key) == 0 && memcmp(key, want, sizeof key) == 0,
	      "key: upper-case hex");

	/* refusals, and nothing written on failure */
	unsigned char b31[31], b33[33];
	memset(b31, 7, sizeof b31);
	memset(b33, 7, sizeof b33);
	memset(key, 0xa5, sizeof key);
	ia_b64_encode(b31, sizeof b31, text, sizeof text);
	CHECK(ia_key_parse(text, key) == -1, "key: 31 bytes of base64 refused");
	CHECK(key[0] == 0xa5 && key[31] == 0xa5, "key: nothing written on failure");
	ia_b64_encode(b33, sizeof b33, text, sizeof text);
	CHECK(ia_key_parse(text, key) == -1, "key: 33 bytes of base64 refused");
	ia_hex_encode(b31, sizeof b31, text, sizeof text);
	CHECK(ia_key_parse(text, key) == -1, "key: 62 hex chars refused");
	ia_hex_encode(b33, sizeof b33, text, sizeof text);
	CHECK(ia_key_parse(text, key) == -1, "key: 66 hex chars refused");
	CHECK(ia_key_parse(KEY_A_HEX "0", key) == -1, "key: 65 hex chars refused");
	CHECK(ia_key_parse("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", key) == -1,
	      "key: 64 chars with a non-hex digit refused");
	CHECK(ia_key_parse("not a key at all, just some words here....", key) == -1,
	      "key: garbage of base64 length refused");
	CHECK(ia_key_parse("changeme", key) == -1, "key: short password refused");
	CHECK(ia_key_parse("", key) == -1, "key: empty refused");
	CHECK(ia_key_parse(NULL, key) == -1, "key: NULL refused");
	CHECK(ia_key_parse(" " KEY_A_HEX, key) == -1, "key: surrounding space refused by the parser");
	/* mixing the two alphabets is no known encoding */
	ia_b64_encode(want, sizeof want, b64, sizeof b64);
	b64[43] = '\0';
	char *plus = strchr(b64, '+');
	*plus = '-';
	if (strchr(b64, '+') || strchr(b64, '/')) /* still has a standard-only char */
		CHECK(ia_key_parse(b64, key) == -1, "key: mixed alphabets refused");
	else
		CHECK(0, "key B should keep a standard-only char");
	CHECK(key[0] == 0xa5, "key: still nothing written");
}

static void test_keyring(void)
{
	ia_keyring *kr = (ia_keyring *)1, *kr2 = NULL;
	char err[200];

	CHECK(ia_keyring_load(&kr, NULL, NULL, err, sizeof err) == -1 && kr == NULL,
	      "ring: no current key refused, *out NULL");
	CHECK_STR(err, "CREDENTIAL_ENCRYPTION_KEY is not set", "ring: message for a missing key");
	CHECK(ia_keyring_load(&kr, "", NULL, err, sizeof err) == -1, "ring: empty current key refused");

	const char *secretish = "c2hvcnQtYnV0LXNlY3JldA==";
	CHECK(ia_keyring_load(&kr, secretish, NULL, err, sizeof err) == -1, "ring: short key refused");
	CHECK(strstr(err, "CREDENTIAL_ENCRYPTION_KEY") != NULL, "ring: message names the variable");
	CHECK(strstr(err, secretish) == NULL, "ring: message does not quote the key");

	CHECK(ia_keyring_load(&kr, KEY_A_HEX, " , " KEY_B_HEX ", garbage", err, sizeof err) == -1,
	      "ring: bad previous key refused");
	CHECK(strstr(err, "CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS entry 3") != NULL,
	      "ring: message names the variable and entry");
	CHECK(strstr(err, "garbage") == NULL, "ring: message does not quote the entry");

	CHECK(ia_keyring_load(&kr, KEY_A_HEX, NULL, err, sizeof err) == 0 && kr, "ring: loads one key");
	const char *kid = ia_keyring_current_kid(kr);
	CHECK(kid && strlen(kid) == IA_KID_CHARS && strspn(kid, "0123456789abcdef") == IA_KID_CHARS,
	      "ring: kid is 8 lower-case hex chars");
	CHECK(ia_keyring_load(&kr2, " " KEY_A_HEX "\t", "", err, sizeof err) == 0,
	      "ring: blanks around a key are trimmed");
	CHECK_STR(ia_keyring_current_kid(kr2), kid, "ring: kid is a function of the key");
	ia_keyring_free(kr2);
	kr2 = NULL;
	CHECK(ia_keyring_load(&kr2, KEY_B_HEX, KEY_A_HEX ",", err, sizeof err) == 0,
	      "ring: current + previous (trailing comma) loads");
	CHECK(strcmp(ia_keyring_current_kid(kr2), kid) != 0, "ring: different keys, different kids");
	ia_keyring_free(kr2);
	ia_keyring_free(kr);
	ia_keyring_free(NULL);
}

static void test_envelope(void)
{
	ia_keyring *a = NULL, *b = NULL, *c = NULL;
	char err[200], kid[IA_KID_CHARS + 1];
	char *env = NULL, *env2 = NULL, *pt = (char *)1;
	size_t pt_len = 99;
	const char *secret = "{\"access_token\":\"gho_abc\",\"refresh_token\":\"ghr_def\"}";

	ia_keyring_load(&a, KEY_A_HEX, NULL, err, sizeof err);
	/* b: rotated (B current, A previous); c: only B */
	ia_keyring_load(&b, KEY_B_HEX, KEY_A_HEX, err, sizeof err);
	ia_keyring_load(&c, KEY_B_HEX, NULL, err, sizeof err);
	CHECK(a && b && c, "rings load");

	CHECK(ia_crypto_seal(a, secret, strlen(secret), CTX, &env) == 0 && env, "seal");
	CHECK(strncmp(env, "v2.", 3) == 0 && strncmp(env + 3, ia_keyring_current_kid(a), 8) == 0 &&
	      env[11] == '.', "envelope is v2.<kid>.<data>");
	CHECK(strstr(env, "gho_abc") == NULL, "envelope does not show the plaintext");
	CHECK(ia_crypto_envelope_kid(env, kid) == 0, "envelope kid read");
	CHECK_STR(kid, ia_keyring_current_kid(a), "envelope kid is the sealing key's");
	CHECK(ia_crypto_seal(a, secret, strlen(secret), CTX, &env2) == 0 && strcmp(env, env2) != 0,
	      "two seals of one plaintext differ (fresh nonce)");
	free(env2);
	env2 = NULL;

	CHECK(ia_crypto_open(a, env, CTX, &pt, &pt_len) == 0, "open");
	CHECK(pt && pt_len == strlen(secret) && memcmp(pt, secret, pt_len) == 0 && pt[pt_len] == '\0',
	      "open returns the plaintext, NUL-terminated");
	ia_secret_free(pt, pt_len);

	pt = (char *)1;
	pt_len = 99;
	CHECK(ia_crypto_open(a, env, CTX "x", &pt, &pt_len) == -1, "wrong context fails");
	CHECK(pt == NULL && pt_len == 0, "failure leaves no output");
	/* the same row's context with another user id: same length, one byte apart */
	char other_row[] = CTX;
	other_row[strlen(other_row) - 12] ^= 1;
	CHECK(ia_crypto_open(a, env, other_row, &pt, &pt_len) == -1,
	      "ciphertext moved to another row (same-length context) fails");
	CHECK(ia_crypto_open(a, env, "", &pt, &pt_len) == -1, "empty context fails");
	CHECK(ia_crypto_open(a, env, NULL, &pt, &pt_len) == -1, "NULL context fails");

	/* flip one character in the nonce, the ciphertext and the tag */
	size_t n = strlen(env);
	size_t spots[] = { 13, 12 + 40, n / 2, n - 2 };
	bool all_fail = true;
	for (size_t i = 0; i < sizeof spots / sizeof *spots; i++) {
		char *t = strdup(env);
		t[spots[i]] = t[spots[i]] == 'A' ? 'B' : 'A';
		all_fail &= ia_crypto_open(a, t, CTX, &pt, &pt_len) == -1 && pt == NULL;
		free(t);
	}
	CHECK(all_fail, "a tampered byte anywhere fails");
	char *t = strdup(env);
	t[n - 5] = '\0';
	CHECK(ia_crypto_open(a, t, CTX, &pt, &pt_len) == -1, "a truncated envelope fails");
	free(t);

	/* rotation */
	CHECK(ia_crypto_open(b, env, CTX, &pt, &pt_len) == 0 && pt_len == strlen(secret),
	      "a previous key still decrypts");
	ia_secret_free(pt, pt_len);
	CHECK(ia_crypto_open(c, env, CTX, &pt, &pt_len) == -1, "unknown kid fails");
	CHECK(ia_crypto_seal(b, secret, strlen(secret), CTX, &env2) == 0, "rotated ring seals");
	CHECK(ia_crypto_envelope_kid(env2, kid) == 0 &&
	      strcmp(kid, ia_keyring_current_kid(c)) == 0, "the rotated ring seals with the new key");
	CHECK(ia_crypto_open(a, env2, CTX, &pt, &pt_len) == -1, "old ring cannot open new envelopes");

	/* a kid swapped to another key of the ring fails too */
	t = strdup(env);
	memcpy(t + 3, ia_keyring_current_kid(b), 8);
	CHECK(ia_crypto_open(b, t, CTX, &pt, &pt_len) == -1, "swapped kid fails");
	free(t);
	free(env2);
	env2 = NULL;

	/* malformed */
	const char *bad[] = { "", "v1.", "v2.", "v1.0011223.AAAA", "v1.0011223g.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			      "v1.0011AABB.AAAA", "v1.00112233", "v1.00112233.", "plaintext" };
	bool all_bad = true;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		all_bad &= ia_crypto_open(a, bad[i], CTX, &pt, &pt_len) == -1;
	CHECK(all_bad, "malformed envelopes fail");
	CHECK(ia_crypto_open(a, NULL, CTX, &pt, &pt_len) == -1, "NULL envelope fails");
	CHECK(ia_crypto_envelope_kid("v1.0011AABB.AAAA", kid) == -1, "kid: upper case refused");
	CHECK(ia_crypto_envelope_kid("v1.00112233", kid) == -1 && kid[0] == '\0',
	      "kid: missing data refused");
	CHECK(ia_crypto_envelope_kid("v3.00112233.AAAA", kid) == -1, "kid: unknown version refused");
	CHECK(ia_crypto_envelope_kid("v1.00112233.AAAA", kid) == 0 && strcmp(kid, "00112233") == 0,
	      "kid: a v1 envelope's kid read");

	/* size caps */
	char *big = malloc(IA_SECRET_MAX + 1);
	memset(big, 'x', IA_SECRET_MAX + 1);
	CHECK(ia_crypto_seal(a, big, IA_SECRET_MAX + 1, CTX, &env2) == -1 && env2 == NULL,
	      "seal refuses more than IA_SECRET_MAX");
	CHECK(ia_crypto_seal(a, big, IA_SECRET_MAX, CTX, &env2) == 0, "seal takes IA_SECRET_MAX");
	CHECK(ia_crypto_open(a, env2, CTX, &pt, &pt_len) == 0 && pt_len == IA_SECRET_MAX,
	      "open takes IA_SECRET_MAX");
	ia_secret_free(pt, pt_len);
	free(env2);
	env2 = NULL;
	size_t huge = 200 * 1024;
	char *over = malloc(huge + 1);
	memcpy(over, env, 12);
	memset(over + 12, 'A', huge - 12);
	over[huge] = '\0';
	CHECK(ia_crypto_open(a, over, CTX, &pt, &pt_len) == -1 && pt == NULL,
	      "oversized envelope refused");
	free(over);
	free(big);

	CHECK(ia_crypto_seal(a, "", 0, CTX, &env2) == 0, "empty plaintext seals");
	CHECK(ia_crypto_open(a, env2, CTX, &pt, &pt_len) == 0 && pt_len == 0 && pt[0] == '\0',
	      "empty plaintext opens");
	ia_secret_free(pt, pt_len);
	free(env2);

	char *d = ia_secret_dup("s3cret", 6);
	CHECK(d && strcmp(d, "s3cret") == 0, "secret_dup copies and terminates");
	ia_secret_free(d, 6);
	ia_secret_free(NULL, 0);

	free(env);
	ia_keyring_free(a);
	ia_keyring_free(b);
	ia_keyring_free(c);
}

/* The documented format, rebuilt here with libsodium alone: v2 seals under
 * the purpose's subkey, v1 envelopes of older releases still open. */
static int raw_open(const unsigned char key[IA_KEY_BYTES], const char *env, const char *ad_text,
		    unsigned char *out, unsigned long long *out_len)
{
	unsigned char raw[512];
	long n = ia_b64url_decode(env + 12, strlen(env + 12), raw, sizeof raw);
	if (n < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return -1;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
		out, out_len, NULL, raw + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
		(unsigned long long)n - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
		(const unsigned char *)ad_text, strlen(ad_text), raw, key);
}

static void test_envelope_versions(void)
{
	ia_keyring *a = NULL;
	unsigned char master[IA_KEY_BYTES], legacy[IA_KEY_BYTES], cred_key[IA_KEY_BYTES],
		hook_key[IA_KEY_BYTES], out[256];
	unsigned long long out_len = 0;
	char err[200], ad[512], *env = NULL, *pt = NULL;
	size_t pt_len = 0;
	const char *secret = "{\"api_key\":\"sk_live_versions\"}";

	ia_keyring_load(&a, KEY_A_HEX, NULL, err, sizeof err);
	ia_hex_decode(KEY_A_HEX, 64, master, sizeof master);
	crypto_kdf_derive_from_key(legacy, sizeof legacy, 1, "credentl", master);
	crypto_kdf_derive_from_key(cred_key, sizeof cred_key, 1, "intauth2", master);
	crypto_kdf_derive_from_key(hook_key, sizeof hook_key, 2, "intauth2", master);
	const char *kid = ia_keyring_current_kid(a);

	/* v2: the credential purpose's subkey and the v2 AD open it, the
	 * webhook purpose's subkey (same master key, same AD) does not */
	CHECK(ia_crypto_seal(a, secret, strlen(secret), CTX, &env) == 0, "v2 seal");
	snprintf(ad, sizeof ad, "intauth/v2|%s|%s", kid, CTX);
	CHECK(raw_open(cred_key, env, ad, out, &out_len) == 0 && out_len == strlen(secret) &&
	      memcmp(out, secret, out_len) == 0, "v2: subkey 1 of \"intauth2\" and AD intauth/v2|kid|context");
	CHECK(raw_open(hook_key, env, ad, out, &out_len) != 0, "v2: another purpose's subkey does not open it");
	CHECK(raw_open(legacy, env, ad, out, &out_len) != 0, "v2: the v1 subkey does not open it");
	free(env);
	env = NULL;
	CHECK(ia_crypto_seal(a, secret, strlen(secret), WEBHOOK_CTX, &env) == 0, "v2 seal, webhook purpose");
	snprintf(ad, sizeof ad, "intauth/v2|%s|%s", kid, WEBHOOK_CTX);
	CHECK(raw_open(hook_key, env, ad, out, &out_len) == 0, "v2: the webhook purpose has subkey 2");
	free(env);
	env = NULL;
	CHECK(ia_crypto_seal(a, secret, strlen(secret), "credentials|secret|x|y|z", &env) == -1 && !env,
	      "a context naming no known purpose is refused");

	/* v1, as older releases wrote it */
	unsigned char raw[24 + 64 + 16];
	unsigned long long ct_len = 0;
	char v1[200];
	snprintf(ad, sizeof ad, "intauth/v1|%s|%s", kid, CTX);
	randombytes_buf(raw, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(raw + 24, &ct_len, (const unsigned char *)secret,
						   strlen(secret), (const unsigned char *)ad, strlen(ad),
						   NULL, raw, legacy);
	snprintf(v1, sizeof v1, "v1.%s.", kid);
	ia_b64url_encode(raw, 24 + (size_t)ct_len, v1 + 12, sizeof v1 - 12);
	CHECK(ia_crypto_open(a, v1, CTX, &pt, &pt_len) == 0 && pt_len == strlen(secret) &&
	      memcmp(pt, secret, pt_len) == 0, "a v1 envelope still opens");
	ia_secret_free(pt, pt_len);
	pt = NULL;
	CHECK(ia_crypto_open(a, v1, WEBHOOK_CTX, &pt, &pt_len) == -1, "a v1 envelope stays bound to its context");
	v1[1] = '2';
	CHECK(ia_crypto_open(a, v1, CTX, &pt, &pt_len) == -1 && !pt, "a v1 envelope relabelled v2 does not open");

	sodium_memzero(master, sizeof master);
	sodium_memzero(legacy, sizeof legacy);
	sodium_memzero(cred_key, sizeof cred_key);
	sodium_memzero(hook_key, sizeof hook_key);
	ia_keyring_free(a);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_key_parse();
	test_keyring();
	test_envelope();
	test_envelope_versions();
	return ia_test_done();
}
