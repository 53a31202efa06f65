/* Fuzz target: the base64, base64url and hex decoders (lib/codec.c).
 *
 * Input: byte 0 picks the decoder and whether the output buffer is cut short,
 * byte 1 how short; the rest is the text. Properties (ia_codec.h): the decoder
 * never writes past out_size (the buffer is exactly that big, so ASan sees any
 * overrun), a failure leaves the output untouched, and decoding is strict, so
 * encoding what was decoded gives back the very text that was accepted.
 */
#include "fuzz_common.h"

#include <sodium.h>

#include "ia_codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? 1 : 0;
}

static long decode(int kind, const char *in, size_t n, unsigned char *out, size_t out_size)
{
	switch (kind) {
	case 0:
		return ia_b64_decode(in, n, out, out_size);
	case 1:
		return ia_b64url_decode(in, n, out, out_size);
	default:
		return ia_hex_decode(in, n, out, out_size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int kind = data[0] % 3;
	bool shorten = data[0] & 0x80;
	const char *in = (const char *)data + 2;
	size_t n = size - 2;
	size_t cap = kind == 2 ? n / 2 + 1 : n / 4 * 3 + 3;
	size_t out_size = shorten ? data[1] % (cap + 1) : cap;

	unsigned char *out = malloc(out_size);
	FUZZ_CHECK(out != NULL || out_size == 0);
	if (out_size)
		memset(out, 0xa5, out_size);
	long r = decode(kind, in, n, out, out_size);
	if (r < 0) {
		for (size_t i = 0; i < out_size; i++)
			FUZZ_CHECK(out[i] == 0xa5);
		free(out);
		return 0;
	}
	FUZZ_CHECK((size_t)r <= out_size);

	/* the same text decodes into a buffer of exactly the decoded size */
	unsigned char *exact = malloc((size_t)r);
	FUZZ_CHECK(exact != NULL || r == 0);
	FUZZ_CHECK(decode(kind, in, n, exact, (size_t)r) == r);
	FUZZ_CHECK(r == 0 || memcmp(exact, out, (size_t)r) == 0);
	free(exact);

	/* strict: the canonical encoding of the bytes is the accepted text */
	size_t enc_size = kind == 2 ? IA_HEX_ENCODED_LEN((size_t)r) : IA_B64_ENCODED_LEN((size_t)r);
	char *enc = malloc(enc_size);
	FUZZ_CHECK(enc != NULL);
	int e = kind == 0 ? ia_b64_encode(out, (size_t)r, enc, enc_size)
		: kind == 1 ? ia_b64url_encode(out, (size_t)r, enc, enc_size)
			    : ia_hex_encode(out, (size_t)r, enc, enc_size);
	FUZZ_CHECK(e == 0);
	FUZZ_CHECK(strlen(enc) == n);
	if (kind == 2)
		FUZZ_CHECK(strncasecmp(enc, in, n) == 0);
	else
		FUZZ_CHECK(memcmp(enc, in, n) == 0);
	free(enc);
	free(out);
	return 0;
}
