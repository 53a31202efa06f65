/* Fuzz target: webhook signature verification (ia_webhook_verify, lib/webhooks.c)
 * for every scheme, and the post-verification helpers that read headers and
 * the body (event id, event type, Slack's challenge).
 *
 * Input: byte 0 picks the scheme (low bits) and "sign" mode (0x80); then
 * "Name: value" header lines up to an empty line; the rest is the body, passed
 * with its exact length and not NUL-terminated. In sign mode every "@@" in a
 * header value is replaced by the correct MAC for the first secret, computed
 * here from the pieces SECURITY.md names, so the fuzzer also explores
 * deliveries that verify.
 * Properties (ia_webhooks.h): success only when the signature (and timestamp
 * and id) headers came exactly once and the timestamp is within tolerance; a
 * reason on failure and none on success; event ids are 1..256 printable ASCII
 * characters; event types under 128 printable characters.
 */
#include "fuzz_common.h"

#include <cJSON.h>
#include <sodium.h>

#include "ia_codec.h"
#include "ia_providers.h"
#include "ia_webhooks.h"

#define NOW 1700000000L
#define N_CONFS 8

static char std_secret[64];
static const char plain_secret[] = "fuzz-webhook-secret-0123456789";
static const char old_secret[] = "fuzz-webhook-previous-secret";

static ia_webhook_conf confs[N_CONFS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char key[32];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		return 1;
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)(i * 7 + 3);
	memcpy(std_secret, "whsec_", 6);
	ia_b64_encode(key, sizeof key, std_secret + 6, sizeof std_secret - 6);
	confs[0].scheme = IA_WH_GITHUB;
	confs[1].scheme = IA_WH_STRIPE;
	confs[2].scheme = IA_WH_SLACK;
	confs[3].scheme = IA_WH_STANDARD;
	confs[4].scheme = IA_WH_SHOPIFY;
	/* the catalog's generic scheme: hex with prefix and timestamp; base64 bare */
	confs[5] = (ia_webhook_conf){ .scheme = IA_WH_HMAC, .signature_header = "X-Signature",
				      .signature_prefix = "sha256=", .encoding = IA_MAC_HEX,
				      .timestamp_header = "X-Timestamp", .event_id_header = "X-Event-Id" };
	confs[6] = (ia_webhook_conf){ .scheme = IA_WH_HMAC, .signature_header = "X-Signature",
				      .encoding = IA_MAC_BASE64 };
	confs[7] = (ia_webhook_conf){ .scheme = IA_WH_HMAC, .signature_header = "X-Sig",
				      .signature_prefix = "", .encoding = IA_MAC_HEX,
				      .event_id_header = "X-Event-Id" };
	return 0;
}

static const char *first_secret(const ia_webhook_conf *c)
{
	return c->scheme == IA_WH_STANDARD ? std_secret : plain_secret;
}

static bool is_base64_scheme(const ia_webhook_conf *c)
{
	return c->scheme == IA_WH_STANDARD || c->scheme == IA_WH_SHOPIFY ||
	       (c->scheme == IA_WH_HMAC && c->encoding == IA_MAC_BASE64);
}

/* The Standard Webhooks header family the verifier will read. */
static const char *std_name(fuzz_headers *h, int which)
{
	static const char *const names[2][3] = {
		{ "webhook-id", "webhook-timestamp", "webhook-signature" },
		{ "svix-id", "svix-timestamp", "svix-signature" },
	};
	int count;
	for (int i = 0; i < 3; i++) {
		fuzz_header_get(h, names[0][i], &count);
		if (count)
			return names[0][which];
	}
	return names[1][which];
}

/* The MAC the first secret gives this delivery, encoded as the scheme sends it. */
static void expected_mac(const ia_webhook_conf *c, fuzz_headers *h, const char *body, size_t len,
			 char *out, size_t out_size)
{
	unsigned char key[128], mac[crypto_auth_hmacsha256_BYTES];
	const unsigned char *k = (const unsigned char *)plain_secret;
	size_t klen = strlen(plain_secret);
	crypto_auth_hmacsha256_state st;
	int count;
	const char *ts = NULL;

	if (c->scheme == IA_WH_STANDARD) {
		long n = ia_b64_decode(std_secret + 6, strlen(std_secret + 6), key, sizeof key);
		FUZZ_CHECK(n > 0);
		k = key;
		klen = (size_t)n;
	}
	crypto_auth_hmacsha256_init(&st, k, klen);
	switch (c->scheme) {
	case IA_WH_STRIPE: {
		const char *sig = fuzz_header_get(h, "Stripe-Signature", &count);
		const char *t = sig ? strstr(sig, "t=") : NULL;
		if (t) {
			t += 2;
			size_t tn = strcspn(t, ",@");
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, tn);
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
		}
		break;
	}
	case IA_WH_SLACK:
		ts = fuzz_header_get(h, "X-Slack-Request-Timestamp", &count);
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)"v0:", 3);
		if (ts)
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)":", 1);
		break;
	case IA_WH_STANDARD: {
		const char *id = fuzz_header_get(h, std_name(h, 0), &count);
		ts = fuzz_header_get(h, std_name(h, 1), &count);
		if (id)
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
		if (ts)
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
		break;
	}
	case IA_WH_HMAC:
		if (c->timestamp_header && (ts = fuzz_header_get(h, c->timestamp_header, &count))) {
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
		}
		break;
	default:
		break;
	}
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	if (is_base64_scheme(c))
		FUZZ_CHECK(ia_b64_encode(mac, sizeof mac, out, out_size) == 0);
	else
		FUZZ_CHECK(ia_hex_encode(mac, sizeof mac, out, out_size) == 0);
}

/* Replaces every "@@" in the header values by mac (new strings kept in pool). */
static void fill_macs(fuzz_headers *h, const char *mac, char **pool)
{
	size_t ml = strlen(mac);
	for (size_t i = 0; i < h->n; i++) {
		const char *v = h->value[i];
		size_t n = 0;
		for (const char *p = v; (p = strstr(p, "@@")); p += 2)
			n++;
		if (!n)
			continue;
		char *nv = malloc(strlen(v) + n * ml + 1), *w = nv;
		FUZZ_CHECK(nv != NULL);
		for (const char *p = v;;) {
			const char *at = strstr(p, "@@");
			size_t seg = at ? (size_t)(at - p) : strlen(p);
			memcpy(w, p, seg);
			w += seg;
			if (!at)
				break;
			memcpy(w, mac, ml);
			w += ml;
			p = at + 2;
		}
		*w = '\0';
		pool[i] = nv;
		h->value[i] = nv;
	}
}

static void once(fuzz_headers *h, const char *name)
{
	int count;
	const char *v = fuzz_header_get(h, name, &count);
	FUZZ_CHECK(count == 1 && v && *v);
}

static void fresh(fuzz_headers *h, const char *name)
{
	int count;
	const char *v = fuzz_header_get(h, name, &count);
	char *end;
	FUZZ_CHECK(v && *v >= '0' && *v <= '9');
	long long t = strtoll(v, &end, 10);
	FUZZ_CHECK(*end == '\0');
	FUZZ_CHECK(t - NOW <= IA_WEBHOOK_TOLERANCE && NOW - t <= IA_WEBHOOK_TOLERANCE);
}

static bool printable(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const ia_webhook_conf *c = &confs[(data[0] & 0x7f) % N_CONFS];
	bool sign = data[0] & 0x80;
	size_t head_len, body_len;
	const uint8_t *body;
	fuzz_split(data + 1, size - 1, "\n\n", &head_len, &body, &body_len);

	char *head = fuzz_strndup(data + 1, head_len);
	fuzz_headers h;
	char *pool[FUZZ_HEADERS_MAX] = { 0 };
	fuzz_headers_parse(&h, head);
	if (sign) {
		char mac[96];
		expected_mac(c, &h, (const char *)body, body_len, mac, sizeof mac);
		fill_macs(&h, mac, pool);
	}

	ia_webhook_delivery d = {
		.header = fuzz_header_get, .header_ctx = &h,
		.body = (const char *)body, .body_len = body_len, .now = NOW,
	};
	const char *secrets[] = { first_secret(c), old_secret };
	const char *why = "unset";
	int r = ia_webhook_verify(c, &d, secrets, 2, &why);
#ifdef FUZZ_VERBOSE
	fprintf(stderr, "scheme %d: %s\n", (int)c->scheme, r == 0 ? "verified" : why);
#endif
	if (r != 0) {
		FUZZ_CHECK(r == -1 && why != NULL);
	} else {
		FUZZ_CHECK(why == NULL);
		switch (c->scheme) {
		case IA_WH_GITHUB:
			once(&h, "X-Hub-Signature-256");
			break;
		case IA_WH_STRIPE:
			once(&h, "Stripe-Signature");
			break;
		case IA_WH_SLACK:
			once(&h, "X-Slack-Signature");
			once(&h, "X-Slack-Request-Timestamp");
			fresh(&h, "X-Slack-Request-Timestamp");
			break;
		case IA_WH_STANDARD:
			for (int i = 0; i < 3; i++)
				once(&h, std_name(&h, i));
			fresh(&h, std_name(&h, 1));
			break;
		case IA_WH_SHOPIFY:
			once(&h, "X-Shopify-Hmac-Sha256");
			break;
		default:
			once(&h, c->signature_header);
			if (c->timestamp_header) {
				once(&h, c->timestamp_header);
				fresh(&h, c->timestamp_header);
			}
			break;
		}
	}

	char id[IA_EVENT_ID_MAX + 1], type[128];
	ia_webhook_event_id(c, &d, id);
	FUZZ_CHECK(printable(id, IA_EVENT_ID_MAX));
	ia_webhook_event_type(c, &d, type);
	FUZZ_CHECK(type[0] == '\0' || printable(type, 127));
	char *challenge = ia_webhook_slack_challenge(d.body, d.body_len);
	free(challenge);

	for (size_t i = 0; i < FUZZ_HEADERS_MAX; i++)
		free(pool[i]);
	free(head);
	return 0;
}
