/* codec: RFC 4648 vectors, strict decoding, percent-encoding, UUIDs, SHA-256
 * (including RFC 7636's PKCE example). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ia_codec.h"
#include "ia_test.h"

static const char *const rfc4648_in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const rfc4648_b64[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };
static const char *const rfc4648_b64url[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
					      "Zm9vYmFy" };
static const char *const rfc4648_hex[] = { "", "66", "666f", "666f6f", "666f6f62", "666f6f6261",
					   "666f6f626172" };

/* Decoding s (whole string) must fail and leave out untouched. */
static bool b64_rejects(long (*dec)(const char *, size_t, unsigned char *, size_t), const char *s)
{
	unsigned char out[64];
	memset(out, 0xa5, sizeof out);
	long r = dec(s, strlen(s), out, sizeof out);
	for (size_t i = 0; i < sizeof out; i++)
		if (out[i] != 0xa5)
			return false;
	return r == -1;
}

static void test_base64(void)
{
	char enc[64];
	unsigned char dec[64];

	for (size_t i = 0; i < sizeof rfc4648_in / sizeof *rfc4648_in; i++) {
		const char *in = rfc4648_in[i];
		size_t n = strlen(in);
		CHECK(ia_b64_encode((const unsigned char *)in, n, enc, sizeof enc) == 0,
		      "b64 encode returns 0");
		CHECK_STR(enc, rfc4648_b64[i], "RFC 4648 §10 base64 encode");
		CHECK(ia_b64url_encode((const unsigned char *)in, n, enc, sizeof enc) == 0,
		      "b64url encode returns 0");
		CHECK_STR(enc, rfc4648_b64url[i], "RFC 4648 base64url encode, unpadded");
		CHECK(ia_hex_encode((const unsigned char *)in, n, enc, sizeof enc) == 0,
		      "hex encode returns 0");
		CHECK_STR(enc, rfc4648_hex[i], "RFC 4648 §10 base16 encode (lower case)");

		long r = ia_b64_decode(rfc4648_b64[i], strlen(rfc4648_b64[i]), dec, sizeof dec);
		CHECK(r == (long)n && memcmp(dec, in, n) == 0, "RFC 4648 base64 decode");
		r = ia_b64url_decode(rfc4648_b64url[i], strlen(rfc4648_b64url[i]), dec, sizeof dec);
		CHECK(r == (long)n && memcmp(dec, in, n) == 0, "RFC 4648 base64url decode");
		r = ia_hex_decode(rfc4648_hex[i], strlen(rfc4648_hex[i]), dec, sizeof dec);
		CHECK(r == (long)n && memcmp(dec, in, n) == 0, "RFC 4648 base16 decode");
	}

	/* the two alphabets differ exactly on 62 and 63 */
	const unsigned char hi[] = { 0xfb, 0xff, 0xbf };
	ia_b64_encode(hi, sizeof hi, enc, sizeof enc);
	CHECK_STR(enc, "+/+/", "standard alphabet uses + and /");
	ia_b64url_encode(hi, sizeof hi, enc, sizeof enc);
	CHECK_STR(enc, "-_-_", "url alphabet uses - and _");
	CHECK(ia_b64url_decode("-_-_", 4, dec, sizeof dec) == 3 && memcmp(dec, hi, 3) == 0,
	      "b64url decodes - and _");
	CHECK(b64_rejects(ia_b64_decode, "-_-_"), "standard decoder refuses - and _");
	CHECK(b64_rejects(ia_b64url_decode, "+/+/"), "url decoder refuses + and /");

	/* strictness of the standard (padded) variant */
	CHECK(b64_rejects(ia_b64_decode, "Zg"), "b64: missing padding refused");
	CHECK(b64_rejects(ia_b64_decode, "Zg="), "b64: short padding refused");
	CHECK(b64_rejects(ia_b64_decode, "Zg==="), "b64: extra padding refused");
	CHECK(b64_rejects(ia_b64_decode, "Z==="), "b64: three pad chars refused");
	CHECK(b64_rejects(ia_b64_decode, "===="), "b64: only padding refused");
	CHECK(b64_rejects(ia_b64_decode, "Zh=="), "b64: non-zero leftover bits refused");
	CHECK(b64_rejects(ia_b64_decode, "Zm9="), "b64: non-zero leftover bits (2 pad) refused");
	CHECK(b64_rejects(ia_b64_decode, "Zg==Zg=="), "b64: padding in the middle refused");
	CHECK(b64_rejects(ia_b64_decode, "Zm=v"), "b64: '=' inside a quantum refused");
	CHECK(b64_rejects(ia_b64_decode, "Zm9v\n"), "b64: newline refused");
	CHECK(b64_rejects(ia_b64_decode, "Zm 9v"), "b64: space refused");
	CHECK(b64_rejects(ia_b64_decode, "Zm9*"), "b64: foreign character refused");

	/* strictness of the url (unpadded) variant */
	CHECK(b64_rejects(ia_b64url_decode, "Zg=="), "b64url: padding refused");
	CHECK(b64_rejects(ia_b64url_decode, "Zm8="), "b64url: one pad char refused");
	CHECK(b64_rejects(ia_b64url_decode, "Z"), "b64url: impossible length refused");
	CHECK(b64_rejects(ia_b64url_decode, "Zm9vY"), "b64url: impossible length (5) refused");
	CHECK(b64_rejects(ia_b64url_decode, "Zh"), "b64url: non-zero leftover bits refused");
	CHECK(b64_rejects(ia_b64url_decode, "Zm9"), "b64url: non-zero leftover bits (3) refused");

	/* embedded NUL within the stated length */
	CHECK(ia_b64url_decode("Zm\0v", 4, dec, sizeof dec) == -1, "b64url: embedded NUL refused");

	/* capacities */
	memset(dec, 0xa5, sizeof dec);
	CHECK(ia_b64_decode("Zm9vYmFy", 8, dec, 5) == -1 && dec[0] == 0xa5,
	      "b64: too small output refused, nothing written");
	CHECK(ia_b64_decode("Zm9vYmFy", 8, dec, 6) == 6, "b64: exact output size is enough");
	CHECK(ia_b64_encode((const unsigned char *)"foo", 3, enc, 4) == -1 && enc[0] == '\0',
	      "b64 encode: no room for NUL refused");
	CHECK(ia_b64_encode((const unsigned char *)"foo", 3, enc, IA_B64_ENCODED_LEN(3)) == 0,
	      "b64 encode: IA_B64_ENCODED_LEN is enough");
	CHECK(ia_b64url_encode((const unsigned char *)"f", 1, enc, 3) == 0 &&
	      strcmp(enc, "Zg") == 0, "b64url encode: unpadded size is enough");

	/* a round trip over every byte value and length mod 3 */
	unsigned char all[256], back[256];
	char big[IA_B64_ENCODED_LEN(256)];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	bool ok = true;
	for (size_t n = 250; n <= 256; n++) {
		ok &= ia_b64_encode(all, n, big, sizeof big) == 0;
		ok &= ia_b64_decode(big, strlen(big), back, sizeof back) == (long)n;
		ok &= memcmp(all, back, n) == 0;
		ok &= ia_b64url_encode(all, n, big, sizeof big) == 0;
		ok &= ia_b64url_decode(big, strlen(big), back, sizeof back) == (long)n;
		ok &= memcmp(all, back, n) == 0;
	}
	CHECK(ok, "base64 and base64url round-trip all byte values");
}

/* Every character in every position: the branch-free digit decoders must agree
 * with a plain alphabet lookup, and with libsodium's decoder on ASCII (this
 * libsodium takes some bytes >= 0x80 as digits, which a strict decoder must not). */
static void test_digit_values(void)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	static const char hexd[] = "0123456789abcdefABCDEF";
	bool ok = true;

	for (int c = 1; c < 256; c++) {
		for (int pos = 0; pos < 4 && c != '='; pos++) { /* padding: test_base64 */
			char in[5] = "AAAA";
			unsigned char out[3], ref[3];
			size_t ref_len = 0;
			in[pos] = (char)c;
			const char *hit = strchr(std, c);
			long r = ia_b64_decode(in, 4, out, sizeof out);
			int sr = sodium_base642bin(ref, sizeof ref, in, 4, NULL, &ref_len, NULL,
						   sodium_base64_VARIANT_ORIGINAL);
			ok &= hit ? r == 3 && (sr == 0 && ref_len == 3 && memcmp(out, ref, 3) == 0)
				  : r == -1 && (sr != 0 || c >= 0x80);
			hit = strchr(url, c);
			r = ia_b64url_decode(in, 4, out, sizeof out);
			sr = sodium_base642bin(ref, sizeof ref, in, 4, NULL, &ref_len, NULL,
					       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
			ok &= hit ? r == 3 && (sr == 0 && ref_len == 3 && memcmp(out, ref, 3) == 0)
				  : r == -1 && (sr != 0 || c >= 0x80);
		}
		char hx[3] = { '0', (char)c, 0 };
		unsigned char b = 0;
		const char *hit = strchr(hexd, c);
		long r = ia_hex_decode(hx, 2, &b, 1);
		int want = !hit ? -1 : c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
		ok &= hit ? r == 1 && b == want : r == -1;
	}
	CHECK(ok, "base64, base64url and hex digits agree with a lookup and with libsodium for all 255 bytes");
}

static void test_hex(void)
{
	unsigned char out[8];

	CHECK(ia_hex_decode("DEADbeef", 8, out, sizeof out) == 4 && out[0] == 0xde && out[3] == 0xef,
	      "hex decode accepts either case");
	memset(out, 0xa5, sizeof out);
	CHECK(ia_hex_decode("abc", 3, out, sizeof out) == -1, "hex: odd length refused");
	CHECK(ia_hex_decode("abzz", 4, out, sizeof out) == -1 && out[0] == 0xa5,
	      "hex: bad digit refused, nothing written");
	CHECK(ia_hex_decode("0x12", 4, out, sizeof out) == -1, "hex: 0x prefix refused");
	CHECK(ia_hex_decode("001122", 6, out, 2) == -1, "hex: too small output refused");
	char s[5];
	CHECK(ia_hex_encode((const unsigned char *)"\x01\xab", 2, s, sizeof s) == 0 &&
	      strcmp(s, "01ab") == 0, "hex encode lower case");
	CHECK(ia_hex_encode((const unsigned char *)"\x01\xab", 2, s, 4) == -1, "hex encode: too small");
}

static void test_url(void)
{
	char out[64];

	CHECK(ia_url_decode("a%20b+c", 7, true, out, sizeof out) == 5, "url decode length");
	CHECK_STR(out, "a b c", "url decode: + is space in forms");
	CHECK(ia_url_decode("a%20b+c", 7, false, out, sizeof out) == 5, "url decode (no plus)");
	CHECK_STR(out, "a b+c", "url decode: + kept outside forms");
	CHECK(ia_url_decode("%C3%a9t%C3%A9", 13, false, out, sizeof out) == 5 &&
	      strcmp(out, "\xc3\xa9t\xc3\xa9") == 0, "url decode: escapes in either case");
	CHECK(ia_url_decode("", 0, true, out, sizeof out) == 0 && out[0] == '\0', "url decode: empty");
	CHECK(ia_url_decode("abc%", 4, true, out, sizeof out) == -1, "url decode: truncated % refused");
	CHECK(ia_url_decode("abc%4", 5, true, out, sizeof out) == -1,
	      "url decode: truncated %X refused");
	CHECK(ia_url_decode("%zz", 3, true, out, sizeof out) == -1, "url decode: bad escape refused");
	CHECK(ia_url_decode("a%00b", 5, true, out, sizeof out) == -1, "url decode: %00 refused");
	CHECK(ia_url_decode("a\0b", 3, true, out, sizeof out) == -1,
	      "url decode: embedded NUL refused");
	CHECK(ia_url_decode("abcd", 4, true, out, 4) == -1, "url decode: no room for NUL refused");
	CHECK(ia_url_decode("abcd", 4, true, out, 5) == 4, "url decode: exact room");
	/* stops at n, not at the NUL */
	CHECK(ia_url_decode("abcdef", 3, true, out, sizeof out) == 3 && strcmp(out, "abc") == 0,
	      "url decode reads only n bytes");

	/* in place, as form parsing does */
	char inplace[] = "code%3Dx%2By+z";
	CHECK(ia_url_decode(inplace, strlen(inplace), true, inplace, sizeof inplace) == 10 &&
	      strcmp(inplace, "code=x+y z") == 0, "url decode in place");
	char bad_inplace[] = "ok%zz";
	CHECK(ia_url_decode(bad_inplace, 5, true, bad_inplace, sizeof bad_inplace) == -1 &&
	      strcmp(bad_inplace, "ok%zz") == 0, "url decode in place: failure leaves input intact");
	memset(out, 'Q', sizeof out);
	CHECK(ia_url_decode("%zz", 3, true, out, sizeof out) == -1 && out[0] == 'Q',
	      "url decode: nothing written on failure");

	char *e = ia_url_encode("a b&c=d/\xc3\xa9~-._", 14);
	CHECK_STR(e, "a%20b%26c%3Dd%2F%C3%A9~-._", "url encode: all but unreserved");
	free(e);
	e = ia_url_encode("x\0y", 3);
	CHECK_STR(e, "x%00y", "url encode: NUL within n");
	free(e);
	e = ia_url_encode("", 0);
	CHECK_STR(e, "", "url encode: empty");
	free(e);
}

static void test_uuid(void)
{
	CHECK(ia_uuid_valid("123e4567-e89b-12d3-a456-426614174000"), "uuid: canonical accepted");
	CHECK(!ia_uuid_valid("123E4567-E89B-12D3-A456-426614174000"), "uuid: upper case refused");
	CHECK(!ia_uuid_valid("123e4567-e89b-12d3-a456-42661417400"), "uuid: short refused");
	CHECK(!ia_uuid_valid("123e4567-e89b-12d3-a456-4266141740000"), "uuid: long refused");
	CHECK(!ia_uuid_valid("123e4567e89b-12d3-a456-4266141740000"), "uuid: missing dash refused");
	char canon[37];
	CHECK(ia_uuid_parse("123E4567-e89B-12D3-A456-426614174000", canon) &&
	      strcmp(canon, "123e4567-e89b-12d3-a456-426614174000") == 0, "uuid parse: any case, lower-cased");
	CHECK(ia_uuid_parse("123e4567-e89b-12d3-a456-426614174000", canon) && ia_uuid_valid(canon),
	      "uuid parse: canonical kept");
	CHECK(!ia_uuid_parse("123e4567-e89b-12d3-a456-42661417400", canon), "uuid parse: short refused");
	CHECK(!ia_uuid_parse("123e4567-e89b-12d3-a456-4266141740000", canon), "uuid parse: long refused");
	CHECK(!ia_uuid_parse("123G4567-e89b-12d3-a456-426614174000", canon), "uuid parse: non-hex refused");
	CHECK(!ia_uuid_parse("123e4567_e89b-12d3-a456-426614174000", canon), "uuid parse: no dash refused");
	CHECK(!ia_uuid_parse("", canon) && !ia_uuid_parse(NULL, canon), "uuid parse: empty and NULL refused");
	CHECK(!ia_uuid_valid("{23e4567-e89b-12d3-a456-42661417400}"), "uuid: braces refused");
	CHECK(!ia_uuid_valid("123e4567-e89b-12d3-a456-42661417400g"), "uuid: non-hex refused");
	CHECK(!ia_uuid_valid(""), "uuid: empty refused");
	CHECK(!ia_uuid_valid(NULL), "uuid: NULL refused");

	char a[37], b[37];
	ia_uuid_v4(a);
	ia_uuid_v4(b);
	CHECK(ia_uuid_valid(a), "uuid v4 is canonical");
	CHECK(a[14] == '4', "uuid v4 has version 4");
	CHECK(strchr("89ab", a[19]) != NULL, "uuid v4 has the RFC 4122 variant");
	CHECK(strcmp(a, b) != 0, "two uuid v4 differ");
}

static void test_sha256(void)
{
	char hex[65], b64[44];

	ia_sha256_hex("abc", 3, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		  "sha256(abc) FIPS 180-2 vector");
	ia_sha256_hex("", 0, hex);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		  "sha256(empty)");
	const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	ia_sha256_b64url(verifier, strlen(verifier), b64);
	CHECK_STR(b64, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		  "RFC 7636 appendix B S256 code challenge");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_base64();
	test_digit_values();
	test_hex();
	test_url();
	test_uuid();
	test_sha256();
	return ia_test_done();
}
