/* webhooks: verification of providers' signed deliveries (SPEC §8, SECURITY.md).
 *
 * Each scheme is reduced to the same three steps: read and check its headers
 * (present exactly once, well formed, timestamp fresh), feed the signed string
 * into a streaming HMAC per secret, and compare the result with every received
 * candidate MAC, each decoded into a fixed 32-byte buffer and compared with
 * sodium_memcmp. The body is never copied or concatenated: the signed string's
 * pieces go into the HMAC one after another.
 *
 * Nothing here parses the body before the signature has been checked; the
 * event-id, event-type and challenge helpers are documented as post-verification.
 */
#include "ia_webhooks.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sodium.h>

#include "ia_codec.h"

#define IA_WH_MAC_LEN crypto_auth_hmacsha256_BYTES
#define IA_WH_MAC_HEX_LEN (IA_WH_MAC_LEN * 2)
#define IA_WH_MAC_B64_LEN 44            /* 32 bytes, padded base64 */
#define IA_WH_TS_DIGITS_MAX 15          /* far beyond any plausible epoch; no overflow */
#define IA_WH_KEY_MAX 128               /* decoded Standard Webhooks key (spec: 24-64 bytes) */
#define IA_WH_TYPE_MAX 128

/* How the received signature header holds its candidate MACs. */
enum ia_wh_sigform {
	IA_WH_SIG_ONE,          /* [prefix]<hex|base64>: one candidate */
	IA_WH_SIG_STRIPE,       /* t=..,v1=<hex>[,v1=..]: every v1 is a candidate */
	IA_WH_SIG_STANDARD,     /* v1,<b64>[ v1,<b64>..]: every v1 is a candidate */
};

/* The checked pieces of one delivery. Pointers are into header values, which
 * stay valid for the duration of the call. */
typedef struct ia_wh_parts {
	enum ia_wh_sigform form;
	const char *sig;                /* candidate(s), after any prefix */
	enum ia_mac_encoding enc;       /* IA_WH_SIG_ONE only */
	const char *ts;                 /* digits, or NULL when unsigned */
	size_t ts_len;
	const char *id;                 /* standard only */
} ia_wh_parts;

static void ia_wh_set_why(const char **why, const char *s)
{
	if (why)
		*why = s;
}

/* The header's single value. NULL when absent, empty or sent more than once:
 * *dup tells the two apart for the log. A duplicate is refused rather than
 * resolved because the proxy and we might pick different copies. */
static const char *ia_wh_header1(const ia_webhook_delivery *d, const char *name, bool *dup)
{
	int count = 0;
	const char *v = d->header(d->header_ctx, name, &count);

	*dup = count > 1;
	if (count != 1 || !v || !*v)
		return NULL;
	return v;
}

/* Digits only (no sign, no space) and within the tolerance either way. A stale
 * timestamp is what stops a captured delivery being replayed later. */
static int ia_wh_check_ts(const char *ts, size_t n, time_t now)
{
	long long v = 0;

	if (n == 0 || n > IA_WH_TS_DIGITS_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (ts[i] < '0' || ts[i] > '9')
			return -1;
		v = v * 10 + (ts[i] - '0');
	}
	long long diff = v - (long long)now;
	if (diff > IA_WEBHOOK_TOLERANCE || diff < -IA_WEBHOOK_TOLERANCE)
		return -1;
	return 0;
}

/* One candidate (exactly n bytes of text) decoded into a 32-byte buffer; any
 * other length is a failed candidate, never a shorter comparison. */
static int ia_wh_decode_mac(const char *s, size_t n, enum ia_mac_encoding enc,
			    unsigned char out[IA_WH_MAC_LEN])
{
	if (enc == IA_MAC_HEX) {
		if (n != IA_WH_MAC_HEX_LEN)
			return -1;
		return ia_hex_decode(s, n, out, IA_WH_MAC_LEN) == IA_WH_MAC_LEN ? 0 : -1;
	}
	if (n != IA_WH_MAC_B64_LEN)
		return -1;
	return ia_b64_decode(s, n, out, IA_WH_MAC_LEN) == IA_WH_MAC_LEN ? 0 : -1;
}

static bool ia_wh_candidate_matches(const char *s, size_t n, enum ia_mac_encoding enc,
				    const unsigned char mac[IA_WH_MAC_LEN])
{
	unsigned char got[IA_WH_MAC_LEN];
	bool ok = false;

	if (ia_wh_decode_mac(s, n, enc, got) == 0)
		ok = sodium_memcmp(got, mac, IA_WH_MAC_LEN) == 0;
	sodium_memzero(got, sizeof got);
	return ok;
}

/* Walks Stripe-Signature. With mac NULL it only checks the syntax: every item
 * is key=value, t exactly once and all digits, at least one v1; it then sets
 * *ts. With mac set it reports whether any v1 matches. v0 (a test-mode scheme)
 * and unknown keys are ignored, as Stripe's libraries do. */
static int ia_wh_stripe_walk(const char *h, const unsigned char *mac, const char **ts,
			     size_t *ts_len, bool *matched)
{
	size_t n_t = 0, n_v1 = 0;
	const char *p = h;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);

		/* Stripe never puts blanks in the header; ", " is how a proxy (nginx
		 * from 1.23) joins a repeated header into one, and a repeated
		 * header must fail closed */
		if (!eq || eq == p || memchr(p, ' ', len) || memchr(p, '\t', len))
			return -1;
		size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
		const char *v = eq + 1;
		if (klen == 1 && p[0] == 't') {
			if (++n_t > 1)
				return -1;
			*ts = v;
			*ts_len = vlen;
		} else if (klen == 2 && p[0] == 'v' && p[1] == '1') {
			n_v1++;
			if (mac && !*matched && ia_wh_candidate_matches(v, vlen, IA_MAC_HEX, mac))
				*matched = true;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return n_t == 1 && n_v1 >= 1 ? 0 : -1;
}

/* Walks a Standard Webhooks signature list: single-space separated
 * "<version>,<base64>" items; versions other than v1 (v1a is asymmetric) are
 * skipped. An item without a comma, or an empty item, fails the whole header,
 * as the reference libraries do when the split cannot unpack. */
static int ia_wh_standard_walk(const char *h, const unsigned char *mac, bool *matched)
{
	const char *p = h;

	for (;;) {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *comma = memchr(p, ',', len);

		/* a second comma in an item: two headers joined into one by a
		 * proxy ("v1,a, v1,b"), which must fail closed like a repeat */
		if (!comma || comma == p || memchr(comma + 1, ',', len - (size_t)(comma - p) - 1))
			return -1;
		size_t vlen = (size_t)(comma - p);
		if (vlen == 2 && p[0] == 'v' && p[1] == '1' && mac && !*matched &&
		    ia_wh_candidate_matches(comma + 1, len - vlen - 1, IA_MAC_BASE64, mac))
			*matched = true;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* The Standard Webhooks header family: webhook-* when any of those was sent,
 * else the svix-* aliases. All three must then come from that one family, so a
 * delivery cannot mix an id from one with a signature from the other. */
static const char *const ia_wh_std_names[2][3] = {
	{ "webhook-id", "webhook-timestamp", "webhook-signature" },
	{ "svix-id", "svix-timestamp", "svix-signature" },
};

static const char *const *ia_wh_std_family(const ia_webhook_delivery *d)
{
	for (int i = 0; i < 3; i++) {
		int count = 0;
		d->header(d->header_ctx, ia_wh_std_names[0][i], &count);
		if (count > 0)
			return ia_wh_std_names[0];
	}
	return ia_wh_std_names[1];
}

/* Reads and checks the scheme's headers into *pp. 0, or -1 with *why. */
static int ia_wh_parse(const ia_webhook_conf *conf, const ia_webhook_delivery *d, ia_wh_parts *pp,
		       const char **why)
{
	const char *sig_name, *ts_name = NULL, *prefix = NULL;
	const char *const *std = NULL;
	bool dup = false;

	memset(pp, 0, sizeof *pp);
	pp->form = IA_WH_SIG_ONE;
	pp->enc = IA_MAC_HEX;
	switch (conf->scheme) {
	case IA_WH_GITHUB:
		sig_name = "X-Hub-Signature-256";
		prefix = "sha256=";
		break;
	case IA_WH_STRIPE:
		sig_name = "Stripe-Signature";
		pp->form = IA_WH_SIG_STRIPE;
		break;
	case IA_WH_SLACK:
		sig_name = "X-Slack-Signature";
		ts_name = "X-Slack-Request-Timestamp";
		prefix = "v0=";
		break;
	case IA_WH_STANDARD:
		std = ia_wh_std_family(d);
		sig_name = std[2];
		ts_name = std[1];
		pp->form = IA_WH_SIG_STANDARD;
		break;
	case IA_WH_SHOPIFY:
		sig_name = "X-Shopify-Hmac-Sha256";
		pp->enc = IA_MAC_BASE64;
		break;
	case IA_WH_HMAC:
		if (!conf->signature_header) {
			ia_wh_set_why(why, "hmac scheme without a signature header");
			return -1;
		}
		sig_name = conf->signature_header;
		ts_name = conf->timestamp_header;
		prefix = conf->signature_prefix;
		pp->enc = conf->encoding;
		break;
	default:
		ia_wh_set_why(why, "no webhook scheme");
		return -1;
	}

	const char *sig = ia_wh_header1(d, sig_name, &dup);
	if (!sig) {
		ia_wh_set_why(why, dup ? "signature header sent twice" : "signature header missing");
		return -1;
	}
	if (ts_name) {
		pp->ts = ia_wh_header1(d, ts_name, &dup);
		if (!pp->ts) {
			ia_wh_set_why(why, dup ? "timestamp header sent twice" : "timestamp header missing");
			return -1;
		}
		pp->ts_len = strlen(pp->ts);
	}
	if (std) {
		pp->id = ia_wh_header1(d, std[0], &dup);
		if (!pp->id) {
			ia_wh_set_why(why, dup ? "id header sent twice" : "id header missing");
			return -1;
		}
	}

	if (prefix && *prefix) {
		size_t plen = strlen(prefix);
		if (strncmp(sig, prefix, plen) != 0) {
			ia_wh_set_why(why, "signature header malformed");
			return -1;
		}
		sig += plen;
	}
	pp->sig = sig;

	bool unused = false;
	if (pp->form == IA_WH_SIG_STRIPE &&
	    ia_wh_stripe_walk(sig, NULL, &pp->ts, &pp->ts_len, &unused) != 0) {
		ia_wh_set_why(why, "signature header malformed");
		return -1;
	}
	if (pp->form == IA_WH_SIG_STANDARD && ia_wh_standard_walk(sig, NULL, &unused) != 0) {
		ia_wh_set_why(why, "signature header malformed");
		return -1;
	}
	if (pp->ts && ia_wh_check_ts(pp->ts, pp->ts_len, d->now) != 0) {
		ia_wh_set_why(why, "timestamp malformed or outside tolerance");
		return -1;
	}
	return 0;
}

static void ia_wh_update(crypto_auth_hmacsha256_state *st, const void *p, size_t n)
{
	if (n)
		crypto_auth_hmacsha256_update(st, (const unsigned char *)p, n);
}

/* The key one secret stands for under this scheme. Standard Webhooks keys are
 * the base64 after an optional "whsec_" (as the reference libraries read them);
 * every other scheme uses the secret's bytes as they are, Stripe's whole
 * "whsec_..." string included. An empty key is refused: HMAC under an empty key
 * is something anyone can compute. */
static int ia_wh_key(enum ia_webhook_scheme scheme, const char *secret,
		     unsigned char buf[IA_WH_KEY_MAX], const unsigned char **key, size_t *key_len)
{
	if (!secret || !*secret)
		return -1;
	if (scheme != IA_WH_STANDARD) {
		*key = (const unsigned char *)secret;
		*key_len = strlen(secret);
		return 0;
	}
	if (strncmp(secret, "whsec_", 6) == 0)
		secret += 6;
	long n = ia_b64_decode(secret, strlen(secret), buf, IA_WH_KEY_MAX);
	if (n <= 0)
		return -1;
	*key = buf;
	*key_len = (size_t)n;
	return 0;
}

/* The HMAC of the scheme's signed string (SECURITY.md), fed piece by piece. */
static void ia_wh_mac(enum ia_webhook_scheme scheme, const ia_wh_parts *pp,
		      const ia_webhook_delivery *d, const unsigned char *key, size_t key_len,
		      unsigned char mac[IA_WH_MAC_LEN])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, key_len);
	if (scheme == IA_WH_SLACK) {
		ia_wh_update(&st, "v0:", 3);
		ia_wh_update(&st, pp->ts, pp->ts_len);
		ia_wh_update(&st, ":", 1);
	} else if (scheme == IA_WH_STANDARD) {
		ia_wh_update(&st, pp->id, strlen(pp->id));
		ia_wh_update(&st, ".", 1);
		ia_wh_update(&st, pp->ts, pp->ts_len);
		ia_wh_update(&st, ".", 1);
	} else if (pp->ts) {
		/* Stripe, and hmac with a timestamp header */
		ia_wh_update(&st, pp->ts, pp->ts_len);
		ia_wh_update(&st, ".", 1);
	}
	ia_wh_update(&st, d->body, d->body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof st);
}

static bool ia_wh_matches(const ia_wh_parts *pp, const unsigned char mac[IA_WH_MAC_LEN])
{
	bool matched = false;
	const char *ts;
	size_t ts_len;

	switch (pp->form) {
	case IA_WH_SIG_STRIPE:
		(void)ia_wh_stripe_walk(pp->sig, mac, &ts, &ts_len, &matched);
		return matched;
	case IA_WH_SIG_STANDARD:
		(void)ia_wh_standard_walk(pp->sig, mac, &matched);
		return matched;
	case IA_WH_SIG_ONE:
	default:
		return ia_wh_candidate_matches(pp->sig, strlen(pp->sig), pp->enc, mac);
	}
}

int ia_webhook_verify(const ia_webhook_conf *conf, const ia_webhook_delivery *d,
		      const char *const *secrets, size_t n_secrets, const char **why)
{
	unsigned char keybuf[IA_WH_KEY_MAX], mac[IA_WH_MAC_LEN];
	ia_wh_parts pp;
	int rc = -1;

	ia_wh_set_why(why, NULL);
	if (!conf || !d || !d->header || (!d->body && d->body_len)) {
		ia_wh_set_why(why, "bad arguments");
		return -1;
	}
	if (!secrets || n_secrets == 0) {
		ia_wh_set_why(why, "no secret configured");
		return -1;
	}
	if (ia_wh_parse(conf, d, &pp, why) != 0)
		return -1;

	ia_wh_set_why(why, "signature mismatch");
	for (size_t i = 0; i < n_secrets && rc != 0; i++) {
		const unsigned char *key;
		size_t key_len;

		if (ia_wh_key(conf->scheme, secrets[i], keybuf, &key, &key_len) != 0)
			continue;
		ia_wh_mac(conf->scheme, &pp, d, key, key_len, mac);
		if (ia_wh_matches(&pp, mac))
			rc = 0;
	}
	if (rc == 0)
		ia_wh_set_why(why, NULL);
	sodium_memzero(keybuf, sizeof keybuf);
	sodium_memzero(mac, sizeof mac);
	return rc;
}

/* Printable ASCII only: the value becomes a database key and a log field, so a
 * control character, a non-UTF-8 byte or an over-long value is not kept. */
static bool ia_wh_printable(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
			return false;
	return true;
}

/* Copies the header's single value when it is acceptable. */
static bool ia_wh_copy_header(const ia_webhook_delivery *d, const char *name, char *out, size_t out_size)
{
	bool dup;
	const char *v = ia_wh_header1(d, name, &dup);

	if (!ia_wh_printable(v, out_size - 1))
		return false;
	memcpy(out, v, strlen(v) + 1);
	return true;
}

/* A string member of obj, copied when acceptable. */
static bool ia_wh_copy_member(const cJSON *obj, const char *name, char *out, size_t out_size)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsString(v) || !ia_wh_printable(v->valuestring, out_size - 1))
		return false;
	memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
	return true;
}

static cJSON *ia_wh_body_json(const ia_webhook_delivery *d)
{
	if (!d->body || d->body_len == 0)
		return NULL;
	cJSON *json = cJSON_ParseWithLength(d->body, d->body_len);
	if (json && !cJSON_IsObject(json)) {
		cJSON_Delete(json);
		json = NULL;
	}
	return json;
}

void ia_webhook_event_id(const ia_webhook_conf *conf, const ia_webhook_delivery *d,
			 char out[IA_EVENT_ID_MAX + 1])
{
	const size_t size = IA_EVENT_ID_MAX + 1;
	cJSON *json = NULL;
	bool found = false;

	out[0] = '\0';
	if (!conf || !d)
		return;
	switch (conf->scheme) {
	case IA_WH_GITHUB:
		found = d->header && ia_wh_copy_header(d, "X-GitHub-Delivery", out, size);
		break;
	case IA_WH_STRIPE:
	case IA_WH_SLACK:
		json = ia_wh_body_json(d);
		found = json && ia_wh_copy_member(json, conf->scheme == IA_WH_STRIPE ? "id" : "event_id",
						  out, size);
		break;
	case IA_WH_STANDARD:
		found = d->header && ia_wh_copy_header(d, ia_wh_std_family(d)[0], out, size);
		break;
	case IA_WH_SHOPIFY:
		found = d->header && ia_wh_copy_header(d, "X-Shopify-Webhook-Id", out, size);
		break;
	case IA_WH_HMAC:
		found = d->header && conf->event_id_header &&
			ia_wh_copy_header(d, conf->event_id_header, out, size);
		break;
	default:
		break;
	}
	cJSON_Delete(json);
	if (found)
		return;
	/* the same body delivered twice then stores once, which is the point of an id */
	_Static_assert(IA_EVENT_ID_MAX >= 64, "a body hash fits an event id");
	ia_sha256_hex(d->body ? d->body : "", d->body ? d->body_len : 0, out);
}

void ia_webhook_event_type(const ia_webhook_conf *conf, const ia_webhook_delivery *d, char out[128])
{
	cJSON *json = NULL;

	out[0] = '\0';
	if (!conf || !d)
		return;
	switch (conf->scheme) {
	case IA_WH_GITHUB:
		if (d->header)
			ia_wh_copy_header(d, "X-GitHub-Event", out, IA_WH_TYPE_MAX);
		break;
	case IA_WH_SHOPIFY:
		if (d->header)
			ia_wh_copy_header(d, "X-Shopify-Topic", out, IA_WH_TYPE_MAX);
		break;
	case IA_WH_STRIPE:
	case IA_WH_STANDARD:
		json = ia_wh_body_json(d);
		if (json)
			ia_wh_copy_member(json, "type", out, IA_WH_TYPE_MAX);
		break;
	case IA_WH_SLACK:
		/* event_callback envelopes carry the interesting type inside "event" */
		json = ia_wh_body_json(d);
		if (json && !ia_wh_copy_member(cJSON_GetObjectItemCaseSensitive(json, "event"), "type",
					       out, IA_WH_TYPE_MAX))
			ia_wh_copy_member(json, "type", out, IA_WH_TYPE_MAX);
		break;
	default:
		break;
	}
	cJSON_Delete(json);
}

char *ia_webhook_slack_challenge(const char *body, size_t len)
{
	cJSON *json = NULL;
	char *out = NULL;

	if (!body || len == 0)
		return NULL;
	json = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(json))
		goto out;
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(json, "type");
	const cJSON *challenge = cJSON_GetObjectItemCaseSensitive(json, "challenge");
	if (!cJSON_IsString(type) || strcmp(type->valuestring, "url_verification") != 0 ||
	    !cJSON_IsString(challenge))
		goto out;
	out = strdup(challenge->valuestring);
out:
	cJSON_Delete(json);
	return out;
}
