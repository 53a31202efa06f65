/* Fuzz target: percent / form decoding (ia_url_decode) and UUID checks
 * (ia_uuid_valid), the decoders of query strings, form bodies and path
 * parameters.
 *
 * Input: byte 0 picks plus_is_space and whether the output buffer is cut
 * short (byte 1 says how short); the rest is the encoded text. Properties
 * (ia_codec.h): nothing is written past out_size, a failure writes nothing,
 * the output is NUL-terminated with no NUL inside, "%00" and raw NULs are
 * refused, decoding in place gives the same bytes, and percent-encoding the
 * result decodes back to it.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	bool plus = data[0] & 1;
	bool shorten = data[0] & 0x80;
	const char *in = (const char *)data + 2;
	size_t n = size - 2;
	size_t out_size = shorten ? data[1] % (n + 2) : n + 1;

	/* ia_uuid_valid reads a C string: the text up to any NUL */
	char *text = fuzz_strndup(data + 2, n);
	bool uuid = ia_uuid_valid(text);
	if (uuid) {
		FUZZ_CHECK(strlen(text) == 36);
		for (size_t i = 0; i < 36; i++)
			FUZZ_CHECK((i == 8 || i == 13 || i == 18 || i == 23) ? text[i] == '-'
				   : strchr("0123456789abcdef", text[i]) != NULL);
	}

	char *out = malloc(out_size);
	FUZZ_CHECK(out != NULL || out_size == 0);
	if (out_size)
		memset(out, 0x5a, out_size);
	long r = ia_url_decode(in, n, plus, out, out_size);
	if (r < 0) {
		for (size_t i = 0; i < out_size; i++)
			FUZZ_CHECK(out[i] == 0x5a);
		free(out);
		free(text);
		return 0;
	}
	FUZZ_CHECK((size_t)r < out_size);
	FUZZ_CHECK(out[r] == '\0');
	FUZZ_CHECK(memchr(out, '\0', (size_t)r) == NULL);
	FUZZ_CHECK(memchr(in, '\0', n) == NULL);
	FUZZ_CHECK(!memmem(in, n, "%00", 3));
	FUZZ_CHECK((size_t)r <= n);
	if (uuid)
		FUZZ_CHECK(r == 36 && memcmp(out, text, 36) == 0);

	/* in place, as callers do */
	char *inplace = fuzz_strndup(data + 2, n);
	FUZZ_CHECK(ia_url_decode(inplace, n, plus, inplace, n + 1) == r);
	FUZZ_CHECK(memcmp(inplace, out, (size_t)r + 1) == 0);
	free(inplace);

	/* encode and decode again: the same bytes */
	char *enc = ia_url_encode(out, (size_t)r);
	FUZZ_CHECK(enc != NULL);
	size_t en = strlen(enc);
	char *back = malloc(en + 1);
	FUZZ_CHECK(back != NULL);
	FUZZ_CHECK(ia_url_decode(enc, en, false, back, en + 1) == r);
	FUZZ_CHECK(memcmp(back, out, (size_t)r) == 0);
	free(back);
	free(enc);
	free(out);
	free(text);
	return 0;
}
