/* ia_crypto: encryption at rest (SPEC §6) and the key ring.
 *
 * Envelope (text, safe in a text column):  "v2.<kid>.<base64url(nonce || ciphertext+tag)>"
 *   kid   = 8 hex chars naming the master key (first 4 bytes of BLAKE2b(key, "intauth-kid")).
 *   AEAD  = XChaCha20-Poly1305-IETF, fresh 24-byte random nonce per seal.
 *   key   = a subkey per purpose: crypto_kdf_derive_from_key(subkey p, context
 *           "intauth2") of the master key, p chosen by the context's first field
 *           (credentials.secret 1, integration_webhooks.secrets 2,
 *           oauth_states.code_verifier 3, integration_sync_jobs.revoke_retry 4);
 *           a context naming none of them is refused.
 *   AD    = "intauth/v2|" kid "|" caller's context string, so a ciphertext bound to
 *           one row (the caller puts table, column, row id, user id and provider in
 *           the context) fails to open anywhere else, and the kid cannot be swapped.
 * "v1." envelopes (one subkey 1 of context "credentl" for every purpose, AD
 * "intauth/v1|...") still open; rotate-keys rewrites them as v2.
 *
 * Keys live in sodium_malloc'd memory, readonly after load, wiped when freed.
 * Plaintexts returned by ia_crypto_open are heap memory that must be freed
 * with ia_secret_free(), which wipes them first.
 */
#ifndef IA_CRYPTO_H
#define IA_CRYPTO_H

#include <stddef.h>

#define IA_KEY_BYTES 32
/* what every envelope sealed now begins with (rotate-keys looks for others) */
#define IA_ENVELOPE_PREFIX "v2."
#define IA_KID_CHARS 8
/* Largest plaintext we seal or open (a credential JSON); larger envelopes are
 * refused before any decryption work. */
#define IA_SECRET_MAX (64 * 1024)

typedef struct ia_keyring ia_keyring;

/* Parses one 32-byte key given as base64 (standard or url, padded or not) or
 * 64 hex chars. Returns 0 or -1 (wrong length or encoding). Writes nothing on failure. */
int ia_key_parse(const char *text, unsigned char key[IA_KEY_BYTES]);

/* current: required. previous_csv: NULL/empty or comma-separated old keys (decrypt only).
 * On failure returns -1 and writes a message naming the variable at fault (never a key). */
int ia_keyring_load(ia_keyring **out, const char *current, const char *previous_csv,
		    char *err, size_t err_size);
void ia_keyring_free(ia_keyring *kr);
/* kid of the current key (static storage of the ring, valid until free). */
const char *ia_keyring_current_kid(const ia_keyring *kr);

/* Seals pt under the current key. *out: malloc'd NUL-terminated envelope, caller frees.
 * Returns 0 or -1 (size over IA_SECRET_MAX, OOM). */
int ia_crypto_seal(const ia_keyring *kr, const void *pt, size_t pt_len,
		   const char *context, char **out);
/* Opens an envelope with whichever ring key its kid names. *pt: malloc'd,
 * NUL-terminated after pt_len bytes; free with ia_secret_free(*pt, *pt_len).
 * Returns 0, or -1 for anything wrong (unknown kid, tampered, wrong context,
 * malformed): never partial data. */
int ia_crypto_open(const ia_keyring *kr, const char *envelope, const char *context,
		   char **pt, size_t *pt_len);
/* kid written in an envelope, or -1 if malformed; out gets IA_KID_CHARS+1 bytes. */
int ia_crypto_envelope_kid(const char *envelope, char out[IA_KID_CHARS + 1]);

/* Wipes and frees memory from ia_crypto_open / ia_secret_dup. NULL is fine. */
void ia_secret_free(void *p, size_t len);
/* A copy of s (NUL-terminated) to free with ia_secret_free(), or NULL. */
char *ia_secret_dup(const char *s, size_t len);

#endif
