/* jwt: every acceptance and rejection of SPEC §3, plus vectors computed outside
 * libsodium (jwt.io's example, and Python's hmac for a key longer than a block). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ia_buf.h"
#include "ia_codec.h"
#include "ia_jwt.h"
#include "ia_test.h"

#define SECRET "super-secret-jwt-token-with-at-least-32-characters-long"
#define UUID "2b9c1f0e-3a4d-4e5f-8a6b-7c8d9e0f1a2b"
#define NOW 1700000000L
#define HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static const unsigned char *secret = (const unsigned char *)SECRET;
static const size_t secret_len = sizeof SECRET - 1;

/* base64url(header) "." base64url(payload) [extra] "." sig over everything before
 * the last dot: lets a test make tokens valid in every respect but one. */
static char *sign_raw(const char *signing_input, const unsigned char *key, size_t key_len)
{
	unsigned char mac[32];
	char mac_b64[IA_B64_ENCODED_LEN(32)];
	crypto_auth_hmacsha256_state st;
	ia_buf b;

	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing_input,
				      strlen(signing_input));
	crypto_auth_hmacsha256_final(&st, mac);
	ia_b64url_encode(mac, sizeof mac, mac_b64, sizeof mac_b64);
	ia_buf_init(&b, 1 << 20);
	ia_buf_puts(&b, signing_input);
	ia_buf_putc(&b, '.');
	ia_buf_puts(&b, mac_b64);
	return ia_buf_detach(&b);
}

static void put_b64url(ia_buf *b, const char *s, size_t n)
{
	char *enc = malloc(IA_B64_ENCODED_LEN(n));
	ia_b64url_encode((const unsigned char *)s, n, enc, IA_B64_ENCODED_LEN(n));
	ia_buf_puts(b, enc);
	free(enc);
}

static char *sign_json(const char *header, const char *payload)
{
	ia_buf b;
	ia_buf_init(&b, 1 << 20);
	put_b64url(&b, header, strlen(header));
	ia_buf_putc(&b, '.');
	put_b64url(&b, payload, strlen(payload));
	char *tok = sign_raw(ia_buf_cstr(&b), secret, secret_len);
	ia_buf_release(&b);
	return tok;
}

/* Verifies token at NOW with the default audience; returns the why. */
static const char *verify_why(const char *token, ia_claims *c)
{
	const char *why = "unset";
	ia_claims local;
	if (!c)
		c = &local;
	int rc = ia_jwt_verify(token, strlen(token), secret, secret_len, "authenticated", NOW, c, &why);
	if (c == &local)
		ia_claims_release(&local);
	return rc == 0 ? "ok" : why;
}

/* payload for a user token with one extra member spliced in */
static char *user_payload(const char *extra)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "{\"aud\":\"authenticated\",\"exp\":%ld,\"iat\":%ld,\"sub\":\"" UUID "\","
		 "\"role\":\"authenticated\"%s}", NOW + 3600, NOW, extra);
	return buf;
}

static bool rejects(const char *header, const char *payload, const char *want_why,
		    const char *name)
{
	char *tok = sign_json(header, payload);
	const char *why = verify_why(tok, NULL);
	free(tok);
	bool ok = strcmp(why, want_why) == 0;
	CHECK(ok, name);
	if (!ok)
		printf("#   why \"%s\", want \"%s\"\n", why, want_why);
	return ok;
}

static bool accepts(const char *header, const char *payload, const char *name)
{
	return rejects(header, payload, "ok", name);
}

static void test_valid(void)
{
	ia_claims c;
	const char *why = NULL;

	char *tok = ia_jwt_mint(secret, secret_len, "authenticated", UUID, "authenticated", NOW, 3600);
	CHECK(tok != NULL, "mint a user token");
	CHECK(ia_jwt_verify(tok, strlen(tok), secret, secret_len, "authenticated", NOW, &c, &why) == 0,
	      "valid user token accepted");
	CHECK(why == NULL, "no reason on success");
	CHECK(c.role == IA_ROLE_USER, "user role");
	CHECK_STR(c.sub, UUID, "user sub");
	CHECK(c.json && strstr(c.json, "\"role\":\"authenticated\"") && c.json[0] == '{',
	      "claims JSON is the payload");
	ia_claims_release(&c);
	CHECK(c.json == NULL && c.role == IA_ROLE_NONE, "release clears the claims");
	/* a token that is just a prefix of a longer buffer */
	char *longer = malloc(strlen(tok) + 8);
	memcpy(longer, tok, strlen(tok));
	memcpy(longer + strlen(tok), ".junk", 6);
	CHECK(ia_jwt_verify(longer, strlen(tok), secret, secret_len, "authenticated", NOW, &c, &why) == 0,
	      "verify reads only len bytes");
	ia_claims_release(&c);
	free(longer);
	free(tok);

	tok = ia_jwt_mint(secret, secret_len, "service_role", NULL, NULL, NOW, 60);
	CHECK(tok && ia_jwt_verify(tok, strlen(tok), secret, secret_len, NULL, NOW, &c, &why) == 0,
	      "valid service token accepted");
	CHECK(c.role == IA_ROLE_SERVICE && c.sub[0] == '\0', "service role, no sub");
	ia_claims_release(&c);
	free(tok);

	/* Supabase's service key: no aud, no sub, iss and ref */
	accepts(HDR, "{\"iss\":\"supabase\",\"ref\":\"abcdefghijklmnop\",\"role\":\"service_role\","
		"\"iat\":1600000000,\"exp\":1999999999}", "Supabase-shaped service key accepted");

	/* an upper-case UUID is stored lower-case */
	char p[512];
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"2B9C1F0E-3A4D-4E5F-8A6B-7C8D9E0F1A2B\","
		 "\"role\":\"authenticated\"}", NOW + 60);
	tok = sign_json(HDR, p);
	CHECK(ia_jwt_verify(tok, strlen(tok), secret, secret_len, "authenticated", NOW, &c, &why) == 0,
	      "upper-case UUID sub accepted");
	CHECK_STR(c.sub, UUID, "sub stored lower-case");
	CHECK(c.json && strstr(c.json, "2B9C1F0E"), "claims JSON kept as sent");
	ia_claims_release(&c);
	free(tok);

	accepts("{\"alg\":\"HS256\"}", user_payload(""), "header without typ accepted");
	accepts("{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"k1\"}", user_payload(""),
		"kid present (ignored) accepted");

	/* mint refuses what it must not produce */
	tok = ia_jwt_mint(secret, secret_len, "anon", NULL, "authenticated", NOW, 60);
	CHECK(tok && strstr(tok, ".") && ia_jwt_verify(tok, strlen(tok), secret, secret_len, NULL, NOW, &c,
						     &why) != 0,
	      "an anon token is minted, and refused like a Supabase anon key");
	ia_claims_release(&c);
	free(tok);
	CHECK(ia_jwt_mint(secret, secret_len, "postgres", NULL, NULL, NOW, 60) == NULL, "mint refuses other roles");
	CHECK(ia_jwt_mint(secret, secret_len, "authenticated", NULL, NULL, NOW, 60) == NULL,
	      "mint refuses a user token without sub");
	CHECK(ia_jwt_mint(secret, secret_len, "authenticated", "42", NULL, NOW, 60) == NULL,
	      "mint refuses a non-UUID sub");
	CHECK(ia_jwt_mint(secret, secret_len, "service_role", NULL, NULL, NOW, 0) == NULL,
	      "mint refuses ttl 0");
	CHECK(ia_jwt_mint(secret, 0, "service_role", NULL, NULL, NOW, 60) == NULL,
	      "mint refuses an empty secret");
}

static void test_vectors(void)
{
	/* jwt.io's example, checked against Python's hmac before being written here */
	const char *jwtio =
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
		"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
	const unsigned char *k = (const unsigned char *)"your-256-bit-secret";
	ia_buf b;
	ia_buf_init(&b, 4096);
	put_b64url(&b, HDR, strlen(HDR));
	ia_buf_putc(&b, '.');
	const char *p = "{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}";
	put_b64url(&b, p, strlen(p));
	char *tok = sign_raw(ia_buf_cstr(&b), k, 19);
	CHECK_STR(tok, jwtio, "jwt.io HS256 example reproduced");
	free(tok);
	ia_buf_release(&b);

	ia_claims c;
	const char *why = NULL;
	/* it has no exp: refused, but for that reason, i.e. its signature verified */
	CHECK(ia_jwt_verify(jwtio, strlen(jwtio), k, 19, NULL, NOW, &c, &why) == -1, "jwt.io: refused");
	CHECK_STR(why, "exp missing or not a number", "jwt.io: signature verified, exp missing");
	CHECK(c.json == NULL && c.role == IA_ROLE_NONE && c.sub[0] == '\0', "refusal leaves no claims");
	CHECK(ia_jwt_verify(jwtio, strlen(jwtio), (const unsigned char *)"your-256-bit-secreT", 19,
			    NULL, NOW, &c, &why) == -1, "jwt.io: other secret refused");
	CHECK_STR(why, "bad signature", "jwt.io: other secret is a bad signature");

	/* an 80-byte secret (longer than SHA-256's block: HMAC hashes it first);
	 * signature from Python's hmac module */
	const char *py =
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		"eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3MDAwMDAwMDAsInN1YiI6"
		"IjJCOUMxRjBFLTNBNEQtNEU1Ri04QTZCLTdDOEQ5RTBGMUEyQiIsInJvbGUiOiJhdXRoZW50aWNhdGVkIiwi"
		"ZW1haWwiOiJhQGV4YW1wbGUuY29tIn0."
		"iHp67SweH5aecEmESs89O0Px9fSDN39SoVYJWWJ7wO0";
	char key80[81];
	for (int i = 0; i < 5; i++)
		memcpy(key80 + 16 * i, "0123456789abcdef", 16);
	CHECK(ia_jwt_verify(py, strlen(py), (const unsigned char *)key80, 80, "authenticated", NOW,
			    &c, &why) == 0, "80-byte secret: Python-signed token accepted");
	CHECK_STR(c.sub, UUID, "80-byte secret: sub lower-cased");
	ia_claims_release(&c);
}

static void test_header_refusals(void)
{
	const char *pl = user_payload("");
	rejects("{\"alg\":\"none\",\"typ\":\"JWT\"}", pl, "alg not allowed", "alg none refused (signed)");
	rejects("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pl, "alg not allowed", "alg HS512 refused");
	rejects("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", pl, "alg not allowed", "alg RS256 refused");
	rejects("{\"alg\":\"hs256\"}", pl, "alg not allowed", "alg hs256 (case) refused");
	rejects("{\"typ\":\"JWT\"}", pl, "alg not allowed", "missing alg refused");
	rejects("{\"alg\":[\"HS256\"]}", pl, "alg not allowed", "alg as array refused");
	rejects("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", pl, "typ not allowed", "typ other than JWT refused");
	rejects("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", pl, "crit not supported", "crit refused");
	rejects("{\"alg\":\"HS256\",\"alg\":\"none\"}", pl, "malformed header",
		"duplicate header member refused");
	rejects("{\"alg\":\"HS256\"", pl, "malformed header", "malformed header JSON refused");
	rejects("[\"HS256\"]", pl, "malformed header", "header not an object refused");

	/* alg none the classic way: empty signature */
	ia_buf b;
	ia_buf_init(&b, 4096);
	const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
	put_b64url(&b, none, strlen(none));
	ia_buf_putc(&b, '.');
	put_b64url(&b, pl, strlen(pl));
	ia_buf_putc(&b, '.');
	CHECK_STR(verify_why(ia_buf_cstr(&b), NULL), "malformed token", "alg none, empty signature refused");
	ia_buf_release(&b);
}

static void test_signature_and_shape(void)
{
	char *tok = sign_json(HDR, user_payload(""));
	size_t n = strlen(tok);
	CHECK_STR(verify_why(tok, NULL), "ok", "baseline token accepted");

	char *t = strdup(tok);
	t[n - 10] = t[n - 10] == 'A' ? 'B' : 'A';
	CHECK_STR(verify_why(t, NULL), "bad signature", "altered signature refused");
	memcpy(t, tok, n + 1);
	char *dot = strchr(t, '.');
	dot[5] = dot[5] == 'A' ? 'B' : 'A';
	CHECK_STR(verify_why(t, NULL), "bad signature", "altered payload refused");
	free(t);

	ia_claims c;
	const char *why;
	CHECK(ia_jwt_verify(tok, n, (const unsigned char *)"another-secret-that-is-long-enough!!", 36,
			    NULL, NOW, &c, &why) == -1 && strcmp(why, "bad signature") == 0,
	      "other secret refused");
	CHECK(ia_jwt_verify(tok, n, secret, 0, NULL, NOW, &c, &why) == -1, "empty secret refused");
	CHECK(ia_jwt_verify(NULL, 0, secret, secret_len, NULL, NOW, &c, &why) == -1, "NULL token refused");
	CHECK(ia_jwt_verify(tok, 0, secret, secret_len, NULL, NOW, &c, &why) == -1, "empty token refused");

	/* segment counts */
	const char *last = strrchr(tok, '.');
	char two[4096];
	snprintf(two, sizeof two, "%.*s", (int)(last - tok), tok);
	CHECK_STR(verify_why(two, NULL), "malformed token", "2 segments refused");
	char four[4096];
	snprintf(four, sizeof four, "%s.%s", tok, last + 1);
	CHECK_STR(verify_why(four, NULL), "malformed token", "4 segments refused");
	snprintf(four, sizeof four, "%s.", tok);
	CHECK_STR(verify_why(four, NULL), "malformed token", "trailing dot refused");
	CHECK_STR(verify_why("..", NULL), "malformed token", "empty segments refused");
	snprintf(four, sizeof four, "%s=", tok);
	CHECK_STR(verify_why(four, NULL), "malformed token", "padding on the signature refused");
	snprintf(four, sizeof four, " %s", tok);
	CHECK_STR(verify_why(four, NULL), "malformed token", "leading space refused");
	snprintf(four, sizeof four, "%s\n", tok);
	CHECK_STR(verify_why(four, NULL), "malformed token", "trailing newline refused");
	free(tok);

	/* padding inside, with a signature that covers it: refused for the '=' itself */
	ia_buf b;
	ia_buf_init(&b, 4096);
	put_b64url(&b, HDR, strlen(HDR));
	ia_buf_putc(&b, '.');
	const char *pl = user_payload(",\"x\":1"); /* length chosen so base64 needs padding */
	size_t pn = strlen(pl);
	char *std = malloc(IA_B64_ENCODED_LEN(pn));
	ia_b64_encode((const unsigned char *)pl, pn, std, IA_B64_ENCODED_LEN(pn));
	CHECK(strchr(std, '=') != NULL, "test payload needs padding");
	for (char *q = std; *q; q++)
		*q = *q == '+' ? '-' : *q == '/' ? '_' : *q;
	ia_buf_puts(&b, std);
	free(std);
	tok = sign_raw(ia_buf_cstr(&b), secret, secret_len);
	CHECK_STR(verify_why(tok, NULL), "malformed token", "padded payload segment refused");
	free(tok);
	ia_buf_release(&b);

	/* size: at most IA_JWT_MAX, both sides of the line */
	char *fill = malloc(8192);
	char *big_pl = malloc(9000);
	size_t best = 0;
	bool at_max_ok = false, over_refused = false;
	for (size_t k = 5800; k < 6300; k++) {
		memset(fill, 'a', k);
		fill[k] = '\0';
		snprintf(big_pl, 9000, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\",\"pad\":\"%s\"}",
			 NOW + 60, fill);
		tok = sign_json(HDR, big_pl);
		size_t len = strlen(tok);
		const char *w = verify_why(tok, NULL);
		if (len <= IA_JWT_MAX && len > best) {
			best = len;
			at_max_ok = strcmp(w, "ok") == 0;
		}
		if (len > IA_JWT_MAX && len < IA_JWT_MAX + 8)
			over_refused = strcmp(w, "token too large") == 0;
		free(tok);
	}
	CHECK(best >= IA_JWT_MAX - 3 && at_max_ok, "token at the 8 KiB limit accepted");
	CHECK(over_refused, "token just over 8 KiB refused");
	free(fill);
	free(big_pl);
}

static void test_claims(void)
{
	char p[512];

	rejects(HDR, "{\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		"exp missing or not a number", "missing exp refused");
	rejects(HDR, "{\"exp\":\"9999999999\",\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		"exp missing or not a number", "string exp refused");
	rejects(HDR, "{\"exp\":true,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		"exp missing or not a number", "boolean exp refused");

	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}", NOW - 31);
	rejects(HDR, p, "expired", "expired beyond leeway refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}", NOW - 30);
	rejects(HDR, p, "expired", "expired exactly the leeway ago refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}", NOW - 29);
	accepts(HDR, p, "expired within the 30 s leeway accepted");

	snprintf(p, sizeof p, "{\"exp\":%ld,\"nbf\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 3600, NOW + 31);
	rejects(HDR, p, "nbf in the future", "nbf in the future refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"nbf\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 3600, NOW + 29);
	accepts(HDR, p, "nbf within leeway accepted");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"nbf\":\"0\",\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 3600);
	rejects(HDR, p, "nbf in the future", "non-numeric nbf refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"iat\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 3600, NOW + 31);
	rejects(HDR, p, "iat in the future", "iat in the future refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"iat\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 3600, NOW + 29);
	accepts(HDR, p, "iat within leeway accepted");

	/* audience */
	snprintf(p, sizeof p, "{\"aud\":\"anon\",\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 60);
	rejects(HDR, p, "audience mismatch", "aud mismatch refused");
	snprintf(p, sizeof p, "{\"aud\":\"Authenticated\",\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 60);
	rejects(HDR, p, "audience mismatch", "aud compared exactly");
	snprintf(p, sizeof p, "{\"aud\":[\"x\",\"authenticated\"],\"exp\":%ld,\"sub\":\"" UUID "\","
		 "\"role\":\"authenticated\"}", NOW + 60);
	accepts(HDR, p, "aud array containing the audience accepted");
	snprintf(p, sizeof p, "{\"aud\":[\"x\",\"y\"],\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 60);
	rejects(HDR, p, "audience mismatch", "aud array without the audience refused");
	snprintf(p, sizeof p, "{\"aud\":[],\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 60);
	rejects(HDR, p, "audience mismatch", "empty aud array refused");
	snprintf(p, sizeof p, "{\"aud\":1,\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\"}",
		 NOW + 60);
	rejects(HDR, p, "audience mismatch", "numeric aud refused");

	char *tok = ia_jwt_mint(secret, secret_len, "authenticated", UUID, "my-app", NOW, 60);
	ia_claims c;
	const char *why;
	CHECK(ia_jwt_verify(tok, strlen(tok), secret, secret_len, "my-app", NOW, &c, &why) == 0,
	      "configured audience accepted");
	ia_claims_release(&c);
	CHECK(ia_jwt_verify(tok, strlen(tok), secret, secret_len, "authenticated", NOW, &c, &why) == -1,
	      "other configured audience refused");
	free(tok);

	/* roles and subjects */
	snprintf(p, sizeof p, "{\"iss\":\"supabase\",\"role\":\"anon\",\"exp\":%ld}", NOW + 60);
	rejects(HDR, p, "role not allowed", "anon role refused");
	snprintf(p, sizeof p, "{\"role\":\"anon\",\"exp\":%ld,\"sub\":\"" UUID "\"}", NOW + 60);
	rejects(HDR, p, "role not allowed", "anon role with a sub refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\"}", NOW + 60);
	rejects(HDR, p, "role not allowed", "missing role refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"supabase_admin\"}", NOW + 60);
	rejects(HDR, p, "role not allowed", "other role refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":[\"service_role\"]}", NOW + 60);
	rejects(HDR, p, "role not allowed", "role as array refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"role\":\"authenticated\"}", NOW + 60);
	rejects(HDR, p, "sub missing or not a uuid", "user without sub refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"1234567890\",\"role\":\"authenticated\"}", NOW + 60);
	rejects(HDR, p, "sub missing or not a uuid", "non-UUID sub refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "x\",\"role\":\"authenticated\"}", NOW + 60);
	rejects(HDR, p, "sub missing or not a uuid", "UUID with a suffix refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":42,\"role\":\"authenticated\"}", NOW + 60);
	rejects(HDR, p, "sub missing or not a uuid", "numeric sub refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"role\":\"authenticated\","
		 "\"role\":\"service_role\"}", NOW + 60);
	rejects(HDR, p, "malformed payload", "duplicate claim refused");
	snprintf(p, sizeof p, "{\"exp\":%ld,\"sub\":\"" UUID "\",\"ROLE\":\"service_role\",\"role\":\"authenticated\"}",
		 NOW + 60);
	{
		char *t2 = sign_json(HDR, p);
		CHECK(ia_jwt_verify(t2, strlen(t2), secret, secret_len, NULL, NOW, &c, &why) == 0 &&
		      c.role == IA_ROLE_USER, "claim names are case-sensitive");
		ia_claims_release(&c);
		free(t2);
	}

	/* malformed JSON in the payload */
	rejects(HDR, "{\"exp\":1,", "malformed payload", "truncated payload JSON refused");
	rejects(HDR, "[1,2]", "malformed payload", "payload not an object refused");
	snprintf(p, sizeof p, "%sx", user_payload(""));
	rejects(HDR, p, "malformed payload", "trailing garbage after the payload refused");
	rejects(HDR, "not json", "malformed payload", "non-JSON payload refused");
	/* a NUL inside the decoded payload */
	{
		ia_buf b;
		ia_buf_init(&b, 4096);
		put_b64url(&b, HDR, strlen(HDR));
		ia_buf_putc(&b, '.');
		const char *pl = user_payload("");
		char withnul[600];
		size_t pn = strlen(pl);
		memcpy(withnul, pl, pn);
		withnul[pn] = '\0';
		memcpy(withnul + pn + 1, "{}", 2);
		put_b64url(&b, withnul, pn + 3);
		tok = sign_raw(ia_buf_cstr(&b), secret, secret_len);
		CHECK_STR(verify_why(tok, NULL), "malformed payload", "NUL inside the payload refused");
		free(tok);
		ia_buf_release(&b);
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_valid();
	test_vectors();
	test_header_refusals();
	test_signature_and_shape();
	test_claims();
	return ia_test_done();
}
