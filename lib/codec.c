/* codec: base64, hex, percent-encoding, UUIDs and SHA-256 helpers.
 *
 * Decoders validate the whole input before writing a byte, so a malformed input
 * never leaves partial output behind (callers decode secrets into their buffers).
 * Decoding is strict: no whitespace, no stray padding, no non-zero leftover bits,
 * so one byte string has exactly one accepted encoding (tokens compare by value).
 */
#include "ia_codec.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_digits[] = "0123456789abcdef";

/* All-ones when lo <= x <= hi, else 0, without a branch (x, lo, hi < 256). */
static unsigned ct_in_range(unsigned x, unsigned lo, unsigned hi)
{
	return 0u - ((((lo - 1u - x) & (x - hi - 1u)) >> 8) & 1u);
}

/* Value of c in the chosen alphabet, or -1. Branch-free and table-free, so
 * the time taken says nothing about the character: webhook secrets and keys
 * are decoded here, some of them on every request. */
static int ia_b64_value(unsigned char c, bool url)
{
	unsigned x = c;
	unsigned upper = ct_in_range(x, 'A', 'Z'), lower = ct_in_range(x, 'a', 'z');
	unsigned digit = ct_in_range(x, '0', '9');
	unsigned c62 = ct_in_range(x, url ? '-' : '+', url ? '-' : '+');
	unsigned c63 = ct_in_range(x, url ? '_' : '/', url ? '_' : '/');
	unsigned ok = upper | lower | digit | c62 | c63;
	unsigned v = (upper & (x - 'A')) | (lower & (x - 'a' + 26)) | (digit & (x - '0' + 52)) |
		     (c62 & 62u) | (c63 & 63u);

	return (int)(v & ok & 63u) - (int)(~ok & 1u);
}

static int ia_b64_encode_alpha(const unsigned char *in, size_t n, char *out, size_t out_size,
			       const char *alpha, bool pad)
{
	if (!out || out_size == 0)
		return -1;
	out[0] = '\0';
	if (n > (SIZE_MAX - 3) / 4 * 3 - 3)
		return -1;
	size_t need = pad ? IA_B64_ENCODED_LEN(n) : (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0) + 1;
	if (out_size < need || (n && !in))
		return -1;

	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return 0;
}

int ia_b64_encode(const unsigned char *in, size_t n, char *out, size_t out_size)
{
	return ia_b64_encode_alpha(in, n, out, out_size, b64_std, true);
}

int ia_b64url_encode(const unsigned char *in, size_t n, char *out, size_t out_size)
{
	return ia_b64_encode_alpha(in, n, out, out_size, b64_url, false);
}

/* pad_required: the standard variant (length a multiple of 4, '=' to fill);
 * otherwise '=' is refused outright (JWT segments, state values). */
static long ia_b64_decode_alpha(const char *in, size_t n, unsigned char *out, size_t out_size,
				bool url, bool pad_required)
{
	size_t data = n;

	if (!in && n)
		return -1;
	if (n > (size_t)LONG_MAX)
		return -1;
	if (pad_required) {
		if (n % 4 != 0)
			return -1;
		if (n >= 1 && in[n - 1] == '=')
			data--;
		if (n >= 2 && in[n - 2] == '=')
			data--;
	}
	/* one leftover character carries only 6 bits: never a whole byte */
	if (data % 4 == 1)
		return -1;
	size_t len = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);
	if (len > out_size || (len && !out))
		return -1;

	/* validation pass: alphabet, and zero bits after the last whole byte;
	 * the whole input is read whatever it holds (see ia_b64_value) */
	int invalid = 0;
	for (size_t i = 0; i < data; i++)
		invalid |= ia_b64_value((unsigned char)in[i], url);
	if (invalid < 0)
		return -1;
	if (data % 4 == 2 && (ia_b64_value((unsigned char)in[data - 1], url) & 0x0f))
		return -1;
	if (data % 4 == 3 && (ia_b64_value((unsigned char)in[data - 1], url) & 0x03))
		return -1;

	size_t o = 0, i = 0;
	for (; i + 4 <= data; i += 4) {
		uint32_t v = (uint32_t)ia_b64_value((unsigned char)in[i], url) << 18 |
			     (uint32_t)ia_b64_value((unsigned char)in[i + 1], url) << 12 |
			     (uint32_t)ia_b64_value((unsigned char)in[i + 2], url) << 6 |
			     (uint32_t)ia_b64_value((unsigned char)in[i + 3], url);
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
		out[o++] = (unsigned char)v;
	}
	if (data - i >= 2) {
		uint32_t v = (uint32_t)ia_b64_value((unsigned char)in[i], url) << 18 |
			     (uint32_t)ia_b64_value((unsigned char)in[i + 1], url) << 12;
		if (data - i == 3)
			v |= (uint32_t)ia_b64_value((unsigned char)in[i + 2], url) << 6;
		out[o++] = (unsigned char)(v >> 16);
		if (data - i == 3)
			out[o++] = (unsigned char)(v >> 8);
	}
	return (long)o;
}

long ia_b64_decode(const char *in, size_t n, unsigned char *out, size_t out_size)
{
	return ia_b64_decode_alpha(in, n, out, out_size, false, true);
}

long ia_b64url_decode(const char *in, size_t n, unsigned char *out, size_t out_size)
{
	return ia_b64_decode_alpha(in, n, out, out_size, true, false);
}

int ia_hex_encode(const unsigned char *in, size_t n, char *out, size_t out_size)
{
	if (!out || out_size == 0)
		return -1;
	out[0] = '\0';
	if (n > (SIZE_MAX - 1) / 2 || out_size < IA_HEX_ENCODED_LEN(n) || (n && !in))
		return -1;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_digits[in[i] >> 4];
		out[2 * i + 1] = hex_digits[in[i] & 15];
	}
	out[2 * n] = '\0';
	return 0;
}

/* Value of a hex digit, or -1; branch-free like ia_b64_value (keys are hex). */
static int ia_hex_value(unsigned char c)
{
	unsigned x = c;
	unsigned digit = ct_in_range(x, '0', '9'), lower = ct_in_range(x, 'a', 'f');
	unsigned upper = ct_in_range(x, 'A', 'F');
	unsigned ok = digit | lower | upper;
	unsigned v = (digit & (x - '0')) | (lower & (x - 'a' + 10)) | (upper & (x - 'A' + 10));

	return (int)(v & ok & 15u) - (int)(~ok & 1u);
}

long ia_hex_decode(const char *in, size_t n, unsigned char *out, size_t out_size)
{
	if ((!in && n) || n % 2 != 0 || n / 2 > out_size || n / 2 > LONG_MAX || (n && !out))
		return -1;
	int invalid = 0;
	for (size_t i = 0; i < n; i++)
		invalid |= ia_hex_value((unsigned char)in[i]);
	if (invalid < 0)
		return -1;
	for (size_t i = 0; i < n; i += 2)
		out[i / 2] = (unsigned char)(ia_hex_value((unsigned char)in[i]) << 4 |
					     ia_hex_value((unsigned char)in[i + 1]));
	return (long)(n / 2);
}

long ia_url_decode(const char *in, size_t n, bool plus_is_space, char *out, size_t out_size)
{
	size_t len = 0;

	/* Callers decode in place (out == in): the output index never passes the
	 * input index, and nothing is written before the input is known good. */
	if (!in && n)
		return -1;
	for (size_t i = 0; i < n; i++, len++) {
		if (in[i] == '\0')
			return -1;
		if (in[i] != '%')
			continue;
		if (n - i < 3)
			return -1;
		int hi = ia_hex_value((unsigned char)in[i + 1]);
		int lo = ia_hex_value((unsigned char)in[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		i += 2;
	}
	if (!out || len >= out_size || len > LONG_MAX)
		return -1;

	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '%') {
			out[o++] = (char)(ia_hex_value((unsigned char)in[i + 1]) << 4 |
					  ia_hex_value((unsigned char)in[i + 2]));
			i += 2;
		} else if (in[i] == '+' && plus_is_space) {
			out[o++] = ' ';
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
	return (long)o;
}

static bool ia_url_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *ia_url_encode(const char *in, size_t n)
{
	/* RFC 3986 §2.1 prefers upper-case digits in percent-encodings */
	static const char upper[] = "0123456789ABCDEF";

	if (!in && n)
		return NULL;
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (ia_url_unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = upper[c >> 4];
			out[o++] = upper[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

bool ia_uuid_valid(const char *s)
{
	if (!s)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false; /* also stops at a short string's NUL */
		}
	}
	return s[36] == '\0';
}

bool ia_uuid_parse(const char *s, char out[37])
{
	if (!s)
		return false;
	for (size_t i = 0; i < 36 && s[i]; i++)
		out[i] = s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] - 'A' + 'a') : s[i];
	size_t n = strnlen(s, 37);
	if (n != 36)
		return false;
	out[36] = '\0';
	return ia_uuid_valid(out);
}

void ia_uuid_v4(char out[37])
{
	unsigned char b[16];
	size_t o = 0;

	randombytes_buf(b, sizeof b);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex_digits[b[i] >> 4];
		out[o++] = hex_digits[b[i] & 15];
	}
	out[o] = '\0';
	sodium_memzero(b, sizeof b);
}

void ia_sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, n);
	ia_hex_encode(h, sizeof h, out, 65);
	/* the input is often a secret (state, verifier): so is its hash, as a lookup key */
	sodium_memzero(h, sizeof h);
}

void ia_sha256_b64url(const void *data, size_t n, char out[44])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, n);
	ia_b64url_encode(h, sizeof h, out, 44);
	sodium_memzero(h, sizeof h);
}
