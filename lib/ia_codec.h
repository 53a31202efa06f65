/* ia_codec: encodings of untrusted and outgoing text.
 *
 * All decoders take a length, write into a caller buffer of stated size, never
 * read past the input, and fail (-1) without partial output on any malformed input.
 * Encoders NUL-terminate. No allocation unless stated.
 */
#ifndef IA_CODEC_H
#define IA_CODEC_H

#include <stdbool.h>
#include <stddef.h>

/* Output sizes including the NUL. */
#define IA_B64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4 + 1)
#define IA_HEX_ENCODED_LEN(n) ((n) * 2 + 1)

/* base64 (RFC 4648 §4, padded) and base64url (§5, unpadded on output).
 * Decoding: the standard variant requires correct padding; the url variant
 * accepts no padding (JWT, state). Returns decoded length or -1. out_size is the
 * capacity of out. */
int ia_b64_encode(const unsigned char *in, size_t n, char *out, size_t out_size);
int ia_b64url_encode(const unsigned char *in, size_t n, char *out, size_t out_size);
long ia_b64_decode(const char *in, size_t n, unsigned char *out, size_t out_size);
long ia_b64url_decode(const char *in, size_t n, unsigned char *out, size_t out_size);

/* Lower-case hex. Decoding accepts either case; -1 on odd length or bad digit. */
int ia_hex_encode(const unsigned char *in, size_t n, char *out, size_t out_size);
long ia_hex_decode(const char *in, size_t n, unsigned char *out, size_t out_size);

/* application/x-www-form-urlencoded / percent decoding of one component:
 * '+' becomes a space when plus_is_space. Rejects bad escapes and %00 / embedded
 * NUL. Returns length written (NUL-terminated) or -1. */
long ia_url_decode(const char *in, size_t n, bool plus_is_space, char *out, size_t out_size);
/* Percent-encodes everything but RFC 3986 unreserved characters. Returns a
 * malloc'd string (caller frees) or NULL on OOM. */
char *ia_url_encode(const char *in, size_t n);

/* A canonical lower-case UUID (8-4-4-4-12 hex)? */
bool ia_uuid_valid(const char *s);
/* A UUID as a caller may write it (hex digits of either case, RFC 9562):
 * true with its canonical lower-case form in out, which is what the database
 * answers and what encryption contexts are bound to. */
bool ia_uuid_parse(const char *s, char out[37]);
/* Random version-4 UUID into out[37]. */
void ia_uuid_v4(char out[37]);

/* SHA-256 of data, as lower-case hex into out[65]. */
void ia_sha256_hex(const void *data, size_t n, char out[65]);
/* SHA-256 of data, base64url without padding into out[44] (state and flow-cookie hashes). */
void ia_sha256_b64url(const void *data, size_t n, char out[44]);

#endif
