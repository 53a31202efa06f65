/* crypto: the credential envelope of SPEC §6 and the key ring behind it.
 *
 * The ring keeps only derived subkeys (never the master keys) in one
 * sodium_malloc'd block that is readonly after load: a stray write faults instead
 * of corrupting a key, and the guard pages catch overruns. Slot 0 is the current
 * key; the others only open old envelopes.
 */
#include "ia_crypto.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ia_codec.h"
#include "ia_err.h"

/* both versions: "vN." */
#define IA_ENV_PREFIX_LEN 3
/* v1: one subkey for every purpose (read only, for what older releases wrote) */
#define IA_V1_KDF_CONTEXT "credentl"
#define IA_V1_KDF_SUBKEY_ID 1
/* v2: a subkey per purpose (SECURITY.md), its id the purpose's index below */
#define IA_V2_KDF_CONTEXT "intauth2"

/* What a context is for, named by its first field: a credential key cannot
 * open (or forge) a webhook secret or a PKCE verifier even if the row ids in
 * the associated data were made to match. */
static const char *const purposes[] = {
	NULL,                                  /* 0: the v1 subkey */
	"credentials.secret",
	"integration_webhooks.secrets",
	"oauth_states.code_verifier",
	"integration_sync_jobs.revoke_retry",
};
#define IA_PURPOSES (sizeof purposes / sizeof *purposes)   /* subkeys per ring key */
#define IA_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define IA_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
/* longest raw (nonce || ciphertext+tag) and its unpadded base64url length */
#define IA_RAW_MAX (IA_NONCE_BYTES + IA_SECRET_MAX + IA_TAG_BYTES)
#define IA_B64_MAX ((IA_RAW_MAX / 3) * 4 + 3)

struct ia_keyring {
	size_t n;
	/* n * IA_PURPOSES subkeys of IA_KEY_BYTES, key i's purpose p at
	 * (i * IA_PURPOSES + p); sodium_malloc, readonly */
	unsigned char *subkeys;
	char (*kids)[IA_KID_CHARS + 1];   /* n kids; kids[0] is the current key's */
};

static bool ia_is_hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int ia_key_parse(const char *text, unsigned char key[IA_KEY_BYTES])
{
	unsigned char tmp[IA_KEY_BYTES + 3];
	int rc = -1;
	long got = -1;

	if (!text)
		return -1;
	size_t n = strnlen(text, 128);
	/* 64 hex chars would also be valid base64 (of 48 bytes): try hex first */
	if (n == 2 * IA_KEY_BYTES) {
		got = ia_hex_decode(text, n, tmp, sizeof tmp);
		goto out;
	}
	/* base64 of 32 bytes is 43 chars plus one optional '=' */
	size_t data = n;
	if (data == 44 && text[43] == '=')
		data = 43;
	if (data != 43)
		goto out;
	got = ia_b64url_decode(text, data, tmp, sizeof tmp);
	if (got < 0) {
		/* the standard alphabet, through the padded decoder */
		char padded[45];
		memcpy(padded, text, 43);
		padded[43] = '=';
		padded[44] = '\0';
		got = ia_b64_decode(padded, 44, tmp, sizeof tmp);
		sodium_memzero(padded, sizeof padded);
	}
out:
	if (got == IA_KEY_BYTES) {
		memcpy(key, tmp, IA_KEY_BYTES);
		rc = 0;
	}
	sodium_memzero(tmp, sizeof tmp);
	return rc;
}

/* kid = first 4 bytes of BLAKE2b-256 keyed with the master key over "intauth-kid":
 * names a key without revealing anything usable about it. */
static void ia_kid_of(const unsigned char master[IA_KEY_BYTES], char kid[IA_KID_CHARS + 1])
{
	static const char label[] = "intauth-kid";
	unsigned char h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof h, (const unsigned char *)label, sizeof label - 1,
			   master, IA_KEY_BYTES);
	ia_hex_encode(h, IA_KID_CHARS / 2, kid, IA_KID_CHARS + 1);
	sodium_memzero(h, sizeof h);
}

/* Trims spaces and tabs around [*s, *s+*n). */
static void ia_trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* Parses text[0..n) as a key into the ring's next slot. A key already in the ring
 * (the current key listed again as previous) is skipped. -1 on a bad key. */
static int ia_keyring_add(ia_keyring *kr, const char *text, size_t n)
{
	unsigned char *master = NULL;
	char *copy = NULL;
	int rc = -1;

	master = sodium_malloc(IA_KEY_BYTES);
	copy = sodium_malloc(n + 1);
	if (!master || !copy)
		goto out;
	memcpy(copy, text, n);
	copy[n] = '\0';
	if (ia_key_parse(copy, master) != 0)
		goto out;

	char kid[IA_KID_CHARS + 1];
	ia_kid_of(master, kid);
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->kids[i], kid) == 0) {
			rc = 0;
			goto out;
		}
	unsigned char *slot = kr->subkeys + kr->n * IA_PURPOSES * IA_KEY_BYTES;
	if (crypto_kdf_derive_from_key(slot, IA_KEY_BYTES, IA_V1_KDF_SUBKEY_ID, IA_V1_KDF_CONTEXT,
				       master) != 0)
		goto out;
	for (size_t p = 1; p < IA_PURPOSES; p++)
		if (crypto_kdf_derive_from_key(slot + p * IA_KEY_BYTES, IA_KEY_BYTES, p,
					       IA_V2_KDF_CONTEXT, master) != 0)
			goto out;
	memcpy(kr->kids[kr->n], kid, sizeof kid);
	kr->n++;
	rc = 0;
out:
	if (copy) {
		sodium_memzero(copy, n + 1);
		sodium_free(copy);
	}
	sodium_free(master); /* wipes */
	return rc;
}

int ia_keyring_load(ia_keyring **out, const char *current, const char *previous_csv,
		    char *err, size_t err_size)
{
	ia_keyring *kr = NULL;
	int rc = -1;

	if (out)
		*out = NULL;
	if (err && err_size)
		err[0] = '\0';
	if (!out) {
		ia_errmsg(err, err_size, "internal error: no key ring output");
		goto out;
	}
	if (sodium_init() < 0) {
		ia_errmsg(err, err_size, "libsodium failed to initialise");
		goto out;
	}
	if (!current || !*current) {
		ia_errmsg(err, err_size, "CREDENTIAL_ENCRYPTION_KEY is not set");
		goto out;
	}

	size_t slots = 1;
	if (previous_csv)
		for (const char *p = previous_csv; *p; p++)
			slots += *p == ',';
	slots += previous_csv && *previous_csv;

	kr = calloc(1, sizeof *kr);
	if (kr) {
		kr->kids = calloc(slots, sizeof *kr->kids);
		kr->subkeys = sodium_malloc(slots * IA_PURPOSES * IA_KEY_BYTES);
	}
	if (!kr || !kr->kids || !kr->subkeys) {
		ia_errmsg(err, err_size, "out of memory loading the key ring");
		goto out;
	}

	const char *s = current;
	size_t n = strlen(current);
	ia_trim(&s, &n);
	if (ia_keyring_add(kr, s, n) != 0 || kr->n != 1) {
		ia_errmsg(err, err_size,
			 "CREDENTIAL_ENCRYPTION_KEY must be 32 bytes in base64 or 64 hex characters");
		goto out;
	}
	size_t entry = 0;
	for (const char *p = previous_csv; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		s = p;
		n = len;
		ia_trim(&s, &n);
		entry++;
		/* an empty entry (trailing comma) is a harmless typo */
		if (n && ia_keyring_add(kr, s, n) != 0) {
			ia_errmsg(err, err_size,
				 "CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS entry %zu must be 32 bytes in "
				 "base64 or 64 hex characters", entry);
			goto out;
		}
		p = comma ? comma + 1 : p + len;
	}
	if (sodium_mprotect_readonly(kr->subkeys) != 0) {
		ia_errmsg(err, err_size, "could not protect the key ring");
		goto out;
	}
	*out = kr;
	kr = NULL;
	rc = 0;
out:
	ia_keyring_free(kr);
	return rc;
}

void ia_keyring_free(ia_keyring *kr)
{
	if (!kr)
		return;
	sodium_free(kr->subkeys); /* lifts the protection and wipes */
	free(kr->kids);
	free(kr);
}

const char *ia_keyring_current_kid(const ia_keyring *kr)
{
	return kr && kr->n ? kr->kids[0] : NULL;
}

/* The purpose index of a context (its first field), or 0 when it has none. */
static size_t ia_purpose_of(const char *context)
{
	size_t n = strcspn(context, "|");

	for (size_t p = 1; p < IA_PURPOSES; p++)
		if (strlen(purposes[p]) == n && memcmp(purposes[p], context, n) == 0)
			return p;
	return 0;
}

/* "intauth/v<version>|" kid "|" context, malloc'd (not secret). */
static unsigned char *ia_crypto_ad(char version, const char *kid, const char *context,
				   size_t *ad_len)
{
	static const char prefix[] = "intauth/vN|";
	size_t plen = sizeof prefix - 1, clen = strlen(context);
	size_t n = plen + IA_KID_CHARS + 1 + clen;
	unsigned char *ad = malloc(n);

	*ad_len = 0;
	if (!ad)
		return NULL;
	memcpy(ad, prefix, plen);
	ad[plen - 2] = (unsigned char)version;
	memcpy(ad + plen, kid, IA_KID_CHARS);
	ad[plen + IA_KID_CHARS] = '|';
	memcpy(ad + plen + IA_KID_CHARS + 1, context, clen);
	*ad_len = n;
	return ad;
}

int ia_crypto_seal(const ia_keyring *kr, const void *pt, size_t pt_len,
		   const char *context, char **out)
{
	unsigned char *raw = NULL, *ad = NULL;
	char *env = NULL;
	size_t ad_len, purpose;
	int rc = -1;

	if (out)
		*out = NULL;
	if (!kr || !kr->n || !out || !context || (!pt && pt_len) || pt_len > IA_SECRET_MAX)
		goto out;
	/* a context of no known purpose is a programming error: refuse it */
	if (!(purpose = ia_purpose_of(context)))
		goto out;

	size_t raw_len = IA_NONCE_BYTES + pt_len + IA_TAG_BYTES;
	raw = malloc(raw_len);
	ad = ia_crypto_ad('2', kr->kids[0], context, &ad_len);
	size_t b64_size = (raw_len / 3) * 4 + 4;
	size_t env_size = IA_ENV_PREFIX_LEN + IA_KID_CHARS + 1 + b64_size;
	env = malloc(env_size);
	if (!raw || !ad || !env)
		goto out;

	randombytes_buf(raw, IA_NONCE_BYTES);
	unsigned long long ct_len = 0;
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(raw + IA_NONCE_BYTES, &ct_len, pt, pt_len,
						       ad, ad_len, NULL, raw,
						       kr->subkeys + purpose * IA_KEY_BYTES) != 0)
		goto out;
	memcpy(env, IA_ENVELOPE_PREFIX, IA_ENV_PREFIX_LEN);
	memcpy(env + IA_ENV_PREFIX_LEN, kr->kids[0], IA_KID_CHARS);
	env[IA_ENV_PREFIX_LEN + IA_KID_CHARS] = '.';
	size_t off = IA_ENV_PREFIX_LEN + IA_KID_CHARS + 1;
	if (ia_b64url_encode(raw, IA_NONCE_BYTES + (size_t)ct_len, env + off, env_size - off) != 0)
		goto out;
	*out = env;
	env = NULL;
	rc = 0;
out:
	free(raw);
	free(ad);
	free(env);
	return rc;
}

/* Checks "v1.|v2.<8 lower hex>.<base64url>" and returns where the payload starts. */
static const char *ia_envelope_split(const char *envelope, size_t *b64_len)
{
	*b64_len = 0;
	if (!envelope || envelope[0] != 'v' || (envelope[1] != '1' && envelope[1] != '2') ||
	    envelope[2] != '.')
		return NULL;
	const char *kid = envelope + IA_ENV_PREFIX_LEN;
	if (strnlen(kid, IA_KID_CHARS + 1) < IA_KID_CHARS + 1 || !ia_is_hex_lower(kid, IA_KID_CHARS) ||
	    kid[IA_KID_CHARS] != '.')
		return NULL;
	const char *b64 = kid + IA_KID_CHARS + 1;
	/* bounded scan: the cap applies before anything else is done with the input */
	size_t n = strnlen(b64, IA_B64_MAX + 1);
	if (n == 0 || n > IA_B64_MAX)
		return NULL;
	*b64_len = n;
	return b64;
}

int ia_crypto_envelope_kid(const char *envelope, char out[IA_KID_CHARS + 1])
{
	size_t n;

	out[0] = '\0';
	if (!ia_envelope_split(envelope, &n))
		return -1;
	memcpy(out, envelope + IA_ENV_PREFIX_LEN, IA_KID_CHARS);
	out[IA_KID_CHARS] = '\0';
	return 0;
}

int ia_crypto_open(const ia_keyring *kr, const char *envelope, const char *context,
		   char **pt, size_t *pt_len)
{
	unsigned char *raw = NULL, *ad = NULL;
	char *plain = NULL;
	size_t b64_len, ad_len, plain_size = 0;
	int rc = -1;

	if (pt)
		*pt = NULL;
	if (pt_len)
		*pt_len = 0;
	if (!kr || !pt || !pt_len || !context)
		goto out;
	const char *b64 = ia_envelope_split(envelope, &b64_len);
	if (!b64)
		goto out;
	char version = envelope[1];
	size_t purpose = version == '1' ? 0 : ia_purpose_of(context);
	if (version == '2' && !purpose)
		goto out;

	const char *kid = envelope + IA_ENV_PREFIX_LEN;
	const unsigned char *subkey = NULL;
	for (size_t i = 0; i < kr->n; i++)
		if (memcmp(kr->kids[i], kid, IA_KID_CHARS) == 0)
			subkey = kr->subkeys + (i * IA_PURPOSES + purpose) * IA_KEY_BYTES;
	if (!subkey)
		goto out;

	size_t raw_size = b64_len / 4 * 3 + 3;
	raw = malloc(raw_size);
	if (!raw)
		goto out;
	long raw_len = ia_b64url_decode(b64, b64_len, raw, raw_size);
	if (raw_len < (long)(IA_NONCE_BYTES + IA_TAG_BYTES) || (size_t)raw_len > IA_RAW_MAX)
		goto out;
	size_t ct_len = (size_t)raw_len - IA_NONCE_BYTES;
	ad = ia_crypto_ad(version, kid, context, &ad_len);
	plain_size = ct_len - IA_TAG_BYTES + 1;
	plain = malloc(plain_size);
	if (!ad || !plain)
		goto out;

	unsigned long long got = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)plain, &got, NULL,
						       raw + IA_NONCE_BYTES, ct_len, ad, ad_len,
						       raw, subkey) != 0)
		goto out;
	plain[got] = '\0';
	*pt = plain;
	*pt_len = (size_t)got;
	plain = NULL;
	rc = 0;
out:
	if (plain)
		ia_secret_free(plain, plain_size);
	free(raw);
	free(ad);
	return rc;
}

void ia_secret_free(void *p, size_t len)
{
	if (!p)
		return;
	/* plain malloc: sodium_malloc's guard pages cost ten system calls and a
	 * TLB flush per secret, on every request; keys keep them */
	sodium_memzero(p, len);
	free(p);
}

char *ia_secret_dup(const char *s, size_t len)
{
	if ((!s && len) || len == SIZE_MAX || sodium_init() < 0)
		return NULL;
	char *p = malloc(len + 1);
	if (!p)
		return NULL;
	if (len)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}
