/* webhooks: every scheme's acceptance and rejections (SECURITY.md, SPEC §8).
 *
 * Expected MACs are computed here with libsodium over the signed strings as
 * SECURITY.md documents them, and encoded with libsodium's own hex/base64, so a
 * mistake in lib/webhooks.c cannot cancel out against the same mistake here.
 * GitHub's and Standard Webhooks' published vectors pin the schemes to the
 * providers' own reference values.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ia_providers.h"
#include "ia_test.h"
#include "ia_webhooks.h"

#define NOW 1700000000L
#define HTAB_MAX 16

/* A tiny request-header table: the ia_header_fn context. Names compare
 * case-insensitively, as HTTP header names do. */
typedef struct htab {
	const char *name[HTAB_MAX];
	const char *value[HTAB_MAX];
	size_t n;
} htab;

static const char *htab_get(void *ctx, const char *name, int *count)
{
	const htab *h = ctx;
	const char *first = NULL;

	*count = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (strcasecmp(h->name[i], name) != 0)
			continue;
		if (!first)
			first = h->value[i];
		++*count;
	}
	return first;
}

static void htab_add(htab *h, const char *name, const char *value)
{
	if (h->n < HTAB_MAX) {
		h->name[h->n] = name;
		h->value[h->n] = value;
		h->n++;
	}
}

static ia_webhook_delivery delivery(htab *h, const char *body, size_t len, time_t now)
{
	ia_webhook_delivery d;

	d.header = htab_get;
	d.header_ctx = h;
	d.body = body;
	d.body_len = len;
	d.now = now;
	return d;
}

static int verify_n(const ia_webhook_conf *c, htab *h, const char *body, size_t len, time_t now,
		    const char *const *secrets, size_t n)
{
	ia_webhook_delivery d = delivery(h, body, len, now);
	const char *why = "unset";
	int r = ia_webhook_verify(c, &d, secrets, n, &why);

	/* the reason is for logs: always there on failure, cleared on success */
	if ((r == 0 && why != NULL) || (r != 0 && why == NULL))
		return 99;
	return r;
}

static int verify1(const ia_webhook_conf *c, htab *h, const char *body, time_t now, const char *secret)
{
	const char *s[1] = { secret };
	return verify_n(c, h, body, strlen(body), now, s, 1);
}

/* HMAC-SHA256 over the concatenation of up to four pieces (NULL ends). */
static void mac4(const void *key, size_t key_len, const char *a, const char *b, const char *c,
		 const char *body, size_t body_len, unsigned char mac[32])
{
	crypto_auth_hmacsha256_state st;
	const char *pre[3] = { a, b, c };

	crypto_auth_hmacsha256_init(&st, key, key_len);
	for (int i = 0; i < 3; i++)
		if (pre[i])
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)pre[i], strlen(pre[i]));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
}

static void to_hex(const unsigned char mac[32], char out[65])
{
	sodium_bin2hex(out, 65, mac, 32);
}

static void to_b64(const unsigned char *in, size_t n, char *out, size_t out_size)
{
	sodium_bin2base64(out, out_size, in, n, sodium_base64_VARIANT_ORIGINAL);
}

static void hex_sig(const char *prefix, const void *key, size_t key_len, const char *a, const char *b,
		    const char *c, const char *body, size_t body_len, char *out, size_t out_size)
{
	unsigned char mac[32];
	char hex[65];

	mac4(key, key_len, a, b, c, body, body_len, mac);
	to_hex(mac, hex);
	snprintf(out, out_size, "%s%s", prefix, hex);
}

static void b64_sig(const char *prefix, const void *key, size_t key_len, const char *a, const char *b,
		    const char *c, const char *body, size_t body_len, char *out, size_t out_size)
{
	unsigned char mac[32];
	char b64[64];

	mac4(key, key_len, a, b, c, body, body_len, mac);
	to_b64(mac, 32, b64, sizeof b64);
	snprintf(out, out_size, "%s%s", prefix, b64);
}

static void body_hash_id(const char *body, size_t len, char out[72])
{
	unsigned char h[32];
	char hex[65];

	crypto_hash_sha256(h, (const unsigned char *)body, len);
	to_hex(h, hex);
	snprintf(out, 72, "%s", hex);
}

/* pre + the first n chars of mid (all of it when n < 0) + post: malformed
 * variants of a good value without non-literal format strings. */
static const char *splice(char *out, size_t out_size, const char *pre, const char *mid, int n,
			  const char *post)
{
	int len = n < 0 ? (int)strlen(mid) : n;
	snprintf(out, out_size, "%s%.*s%s", pre, len, mid, post);
	return out;
}

/* ---------------------------------------------------------------- GitHub */

#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIG "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static void test_github(void)
{
	ia_webhook_conf c = { .scheme = IA_WH_GITHUB };
	char buf[256];

	htab h = { .n = 0 };
	htab_add(&h, "x-hub-signature-256", GH_SIG);
	CHECK(verify1(&c, &h, GH_BODY, NOW, GH_SECRET) == 0, "github: published vector verifies");
	CHECK(verify1(&c, &h, "Hello, World?", NOW, GH_SECRET) == -1, "github: one body byte changed");
	CHECK(verify1(&c, &h, GH_BODY, NOW, "It's a Secret to Everybody!") == -1, "github: wrong secret");
	{
		const char *s[2] = { "old secret", GH_SECRET };
		CHECK(verify_n(&c, &h, GH_BODY, strlen(GH_BODY), NOW, s, 2) == 0,
		      "github: second of two secrets (rotation)");
		CHECK(verify_n(&c, &h, GH_BODY, strlen(GH_BODY), NOW, s, 1) == -1,
		      "github: only the old secret");
		CHECK(verify_n(&c, &h, GH_BODY, strlen(GH_BODY), NOW, s, 0) == -1, "github: no secrets");
		CHECK(verify_n(&c, &h, GH_BODY, strlen(GH_BODY), NOW, NULL, 0) == -1,
		      "github: NULL secret list");
	}
	/* GitHub has no timestamp: any clock verifies */
	CHECK(verify1(&c, &h, GH_BODY, 0, GH_SECRET) == 0, "github: no timestamp involved");

	htab none = { .n = 0 };
	CHECK(verify1(&c, &none, GH_BODY, NOW, GH_SECRET) == -1, "github: missing header");
	htab two = { .n = 0 };
	htab_add(&two, "X-Hub-Signature-256", GH_SIG);
	htab_add(&two, "X-Hub-Signature-256", GH_SIG);
	CHECK(verify1(&c, &two, GH_BODY, NOW, GH_SECRET) == -1, "github: duplicated header (both valid)");

	static const struct { const char *v, *name; } bad[] = {
		{ "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g", "bad hex digit" },
		{ "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e", "short hex" },
		{ "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1700", "extra hex" },
		{ "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 ", "trailing space" },
		{ "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "no sha256= prefix" },
		{ "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "other prefix" },
		{ "sha256=", "prefix only" },
		{ "", "empty value" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		htab m = { .n = 0 };
		htab_add(&m, "X-Hub-Signature-256", bad[i].v);
		snprintf(buf, sizeof buf, "github: malformed (%s)", bad[i].name);
		CHECK(verify1(&c, &m, GH_BODY, NOW, GH_SECRET) == -1, buf);
	}

	/* an empty secret would make the MAC computable by anyone */
	{
		char sig[80];
		hex_sig("sha256=", "", 0, NULL, NULL, NULL, GH_BODY, strlen(GH_BODY), sig, sizeof sig);
		htab e = { .n = 0 };
		htab_add(&e, "X-Hub-Signature-256", sig);
		CHECK(verify1(&c, &e, GH_BODY, NOW, "") == -1, "github: empty secret never verifies");
		const char *s[2] = { NULL, GH_SECRET };
		CHECK(verify_n(&c, &h, GH_BODY, strlen(GH_BODY), NOW, s, 2) == 0,
		      "github: NULL secret skipped, next one tried");
	}

	/* bodies are bytes: a NUL inside counts, and so does everything after it */
	{
		static const char bin[] = "a\0b\xff\x00z";
		size_t len = sizeof bin - 1;
		char sig[80], bin2[sizeof bin];
		hex_sig("sha256=", GH_SECRET, strlen(GH_SECRET), NULL, NULL, NULL, bin, len, sig, sizeof sig);
		htab b = { .n = 0 };
		htab_add(&b, "X-Hub-Signature-256", sig);
		const char *s[1] = { GH_SECRET };
		CHECK(verify_n(&c, &b, bin, len, NOW, s, 1) == 0, "github: binary body with NULs");
		memcpy(bin2, bin, sizeof bin);
		bin2[len - 1] = 'y';
		CHECK(verify_n(&c, &b, bin2, len, NOW, s, 1) == -1, "github: byte after a NUL changed");
		CHECK(verify_n(&c, &b, bin, 1, NOW, s, 1) == -1, "github: body cut at the NUL");
	}

	/* event id and type */
	char id[IA_EVENT_ID_MAX + 1], type[128], hash[72];
	htab ev = { .n = 0 };
	htab_add(&ev, "X-Hub-Signature-256", GH_SIG);
	htab_add(&ev, "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	htab_add(&ev, "X-GitHub-Event", "push");
	ia_webhook_delivery d = delivery(&ev, GH_BODY, strlen(GH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, "72d3162e-cc78-11e3-81ab-4c9367dc0958", "github: event id from X-GitHub-Delivery");
	ia_webhook_event_type(&c, &d, type);
	CHECK_STR(type, "push", "github: event type from X-GitHub-Event");

	d = delivery(&h, GH_BODY, strlen(GH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f",
		  "github: no delivery id -> sha256 of the body (known digest)");
	ia_webhook_event_type(&c, &d, type);
	CHECK_STR(type, "", "github: no event header -> empty type");

	body_hash_id(GH_BODY, strlen(GH_BODY), hash);
	htab ctl = { .n = 0 };
	htab_add(&ctl, "X-GitHub-Delivery", "abc\x01" "def");
	d = delivery(&ctl, GH_BODY, strlen(GH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, hash, "github: control character in id -> hash");
	htab utf = { .n = 0 };
	htab_add(&utf, "X-GitHub-Delivery", "caf\xc3\xa9");
	d = delivery(&utf, GH_BODY, strlen(GH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, hash, "github: non-ASCII byte in id -> hash");

	char longid[IA_EVENT_ID_MAX + 2];
	memset(longid, 'a', IA_EVENT_ID_MAX);
	longid[IA_EVENT_ID_MAX] = '\0';
	htab lim = { .n = 0 };
	htab_add(&lim, "X-GitHub-Delivery", longid);
	d = delivery(&lim, GH_BODY, strlen(GH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, longid, "github: id of exactly IA_EVENT_ID_MAX chars kept");
	memset(longid, 'a', IA_EVENT_ID_MAX + 1);
	longid[IA_EVENT_ID_MAX + 1] = '\0';
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, hash, "github: id over IA_EVENT_ID_MAX -> hash");

	htab dupid = { .n = 0 };
	htab_add(&dupid, "X-GitHub-Delivery", "one");
	htab_add(&dupid, "X-GitHub-Delivery", "two");
	d = delivery(&dupid, GH_BODY, strlen(GH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, hash, "github: duplicated delivery id -> hash");
}

/* ---------------------------------------------------------------- Stripe */

#define ST_SECRET "whsec_test_0123456789abcdefABCDEF"
#define ST_BODY "{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\"}"

/* "t=<ts>,v1=<hex over ts.body>" under key */
static void stripe_header(const char *key, long ts, const char *body, char *out, size_t out_size)
{
	char t[32], sig[80];

	snprintf(t, sizeof t, "%ld", ts);
	hex_sig("", key, strlen(key), t, ".", NULL, body, strlen(body), sig, sizeof sig);
	snprintf(out, out_size, "t=%s,v1=%s", t, sig);
}

static int stripe_try(const char *header, const char *body, const char *secret)
{
	ia_webhook_conf c = { .scheme = IA_WH_STRIPE };
	htab h = { .n = 0 };
	htab_add(&h, "Stripe-Signature", header);
	return verify1(&c, &h, body, NOW, secret);
}

static void test_stripe(void)
{
	ia_webhook_conf c = { .scheme = IA_WH_STRIPE };
	char hdr[512], good[80], wrong[80], t[32], buf[600];

	stripe_header(ST_SECRET, NOW - 5, ST_BODY, hdr, sizeof hdr);
	CHECK(stripe_try(hdr, ST_BODY, ST_SECRET) == 0, "stripe: valid");

	char body2[sizeof ST_BODY];
	memcpy(body2, ST_BODY, sizeof ST_BODY);
	body2[10] ^= 1;
	CHECK(stripe_try(hdr, body2, ST_SECRET) == -1, "stripe: one body byte changed");
	CHECK(stripe_try(hdr, ST_BODY, "whsec_test_0123456789abcdefABCDEG") == -1, "stripe: wrong secret");
	{
		const char *s[2] = { "whsec_old", ST_SECRET };
		htab h = { .n = 0 };
		htab_add(&h, "stripe-signature", hdr);
		CHECK(verify_n(&c, &h, ST_BODY, strlen(ST_BODY), NOW, s, 2) == 0,
		      "stripe: second of two secrets (rotation)");
	}

	/* the key is the whole "whsec_..." string, not what follows the prefix and
	 * not its base64 decoding */
	{
		const char *bare = &ST_SECRET[6];
		stripe_header(bare, NOW, ST_BODY, buf, sizeof buf);
		CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1,
		      "stripe: MAC under the secret without whsec_ refused");
		CHECK(stripe_try(hdr, ST_BODY, bare) == -1, "stripe: secret configured without whsec_ fails");
	}

	htab none = { .n = 0 };
	CHECK(verify1(&c, &none, ST_BODY, NOW, ST_SECRET) == -1, "stripe: missing header");
	htab two = { .n = 0 };
	htab_add(&two, "Stripe-Signature", hdr);
	htab_add(&two, "Stripe-Signature", hdr);
	CHECK(verify1(&c, &two, ST_BODY, NOW, ST_SECRET) == -1, "stripe: duplicated header");
	/* nginx from 1.23 hands a repeated header over as one, joined by ", " */
	{
		char joined[1200], other[400];
		stripe_header(ST_SECRET, NOW - 10, ST_BODY, other, sizeof other);
		snprintf(joined, sizeof joined, "%s, %s", hdr, other);
		CHECK(stripe_try(joined, ST_BODY, ST_SECRET) == -1, "stripe: two headers joined by a proxy");
		snprintf(joined, sizeof joined, "%s,\tv1=00", hdr);
		CHECK(stripe_try(joined, ST_BODY, ST_SECRET) == -1, "stripe: a blank inside the header");
	}

	/* timestamps: ±300 s accepted, 301 s either way refused */
	stripe_header(ST_SECRET, NOW - 300, ST_BODY, buf, sizeof buf);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == 0, "stripe: 300 s old accepted");
	stripe_header(ST_SECRET, NOW + 300, ST_BODY, buf, sizeof buf);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == 0, "stripe: 300 s ahead accepted");
	stripe_header(ST_SECRET, NOW - 301, ST_BODY, buf, sizeof buf);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, "stripe: 301 s old refused");
	stripe_header(ST_SECRET, NOW + 301, ST_BODY, buf, sizeof buf);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, "stripe: 301 s in the future refused");

	/* several v1: any may match; v0 and unknown schemes are ignored */
	snprintf(t, sizeof t, "%ld", NOW);
	hex_sig("", ST_SECRET, strlen(ST_SECRET), t, ".", NULL, ST_BODY, strlen(ST_BODY), good, sizeof good);
	hex_sig("", "whsec_other", 11, t, ".", NULL, ST_BODY, strlen(ST_BODY), wrong, sizeof wrong);

	snprintf(buf, sizeof buf, "t=%s,v1=%s,v1=%s", t, wrong, good);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == 0, "stripe: two v1, the second matches");
	snprintf(buf, sizeof buf, "t=%s,v1=%s,v1=%s", t, good, wrong);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == 0, "stripe: two v1, the first matches");
	snprintf(buf, sizeof buf, "t=%s,v1=%s,v1=%s", t, wrong, wrong);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, "stripe: two v1, neither matches");
	snprintf(buf, sizeof buf, "t=%s,v1=%s,v0=%s", t, good, wrong);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == 0, "stripe: v0 alongside is ignored");
	snprintf(buf, sizeof buf, "v1=%s,t=%s,x9=whatever", good, t);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == 0, "stripe: order free, unknown scheme ignored");
	snprintf(buf, sizeof buf, "t=%s,v0=%s", t, good);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, "stripe: a matching v0 alone is not enough");
	snprintf(buf, sizeof buf, "t=%s,v1=zz,v1=%s", t, good);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == 0, "stripe: a bad v1 candidate fails alone");

	char tpre[48], tbad[48];
	snprintf(tpre, sizeof tpre, "t=%s,v1=", t);
	/* no_t: "v1=<good>" alone; else "t=<now>,v1=" + the spliced value */
	static const struct { bool no_t; int n; const char *post, *name; } bad[] = {
		{ true, -1, "", "no t" },
		{ false, 63, "", "short hex" },
		{ false, -1, "00", "extra hex" },
		{ false, 63, "g", "bad hex digit" },
		{ false, -1, ",", "trailing comma" },
		{ false, -1, ",junk", "item without =" },
		{ false, -1, ",=x", "empty key" },
		{ false, -1, " ", "trailing space" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char name[96];
		splice(buf, sizeof buf, bad[i].no_t ? "v1=" : tpre, good, bad[i].n, bad[i].post);
		snprintf(name, sizeof name, "stripe: malformed (%s)", bad[i].name);
		CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, name);
	}
	static const char *const bad_t[] = { "t not digits", "t with sign", "t twice",
					     "space before v1", "junk item", "only v0" };
	for (size_t i = 0; i < sizeof bad_t / sizeof *bad_t; i++) {
		char name[96];
		switch (i) {
		case 0: snprintf(tbad, sizeof tbad, "t=%ldx,v1=", NOW); break;
		case 1: snprintf(tbad, sizeof tbad, "t=+%ld,v1=", NOW); break;
		case 2: snprintf(tbad, sizeof tbad, "t=%ld,t=%ld,v1=", NOW + 1, NOW); break;
		case 3: snprintf(tbad, sizeof tbad, "t=%ld, v1=", NOW); break;
		case 4: snprintf(tbad, sizeof tbad, "t=%ld,junk,v1=", NOW); break;
		default: snprintf(tbad, sizeof tbad, "t=%ld,v0=", NOW); break;
		}
		splice(buf, sizeof buf, tbad, good, -1, "");
		snprintf(name, sizeof name, "stripe: malformed (%s)", bad_t[i]);
		CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, name);
	}
	splice(buf, sizeof buf, "t=,v1=", good, -1, "");
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, "stripe: malformed (t empty)");
	splice(buf, sizeof buf, "", t, -1, "");
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, "stripe: malformed (bare timestamp)");
	snprintf(buf, sizeof buf, "t=%s", t);
	CHECK(stripe_try(buf, ST_BODY, ST_SECRET) == -1, "stripe: malformed (no v1)");

	/* event id from the body's "id", type from "type" */
	char id[IA_EVENT_ID_MAX + 1], type[128], hash[72];
	htab h = { .n = 0 };
	htab_add(&h, "Stripe-Signature", hdr);
	ia_webhook_delivery d = delivery(&h, ST_BODY, strlen(ST_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, "evt_1NG8Du2eZvKYlo2CUI79vXWy", "stripe: event id from body id");
	ia_webhook_event_type(&c, &d, type);
	CHECK_STR(type, "payment_intent.succeeded", "stripe: event type from body type");

	/* bodies are not NUL-terminated: an exact-size copy (ASan watches the edge) */
	{
		size_t n = strlen(ST_BODY);
		char *exact = malloc(n);
		if (exact) {
			memcpy(exact, ST_BODY, n);
			const char *s[1] = { ST_SECRET };
			CHECK(verify_n(&c, &h, exact, n, NOW, s, 1) == 0, "stripe: unterminated body verifies");
			d = delivery(&h, exact, n, NOW);
			ia_webhook_event_id(&c, &d, id);
			CHECK_STR(id, "evt_1NG8Du2eZvKYlo2CUI79vXWy", "stripe: event id from unterminated body");
			ia_webhook_event_type(&c, &d, type);
			CHECK_STR(type, "payment_intent.succeeded", "stripe: event type from unterminated body");
			CHECK(ia_webhook_slack_challenge(exact, n) == NULL, "challenge: unterminated body");
			free(exact);
		}
	}

	static const char *const no_id[] = { "{\"object\":\"event\"}", "{\"id\":42}", "not json",
					     "[\"id\"]", "{\"id\":\"\"}" };
	for (size_t i = 0; i < sizeof no_id / sizeof *no_id; i++) {
		d = delivery(&h, no_id[i], strlen(no_id[i]), NOW);
		ia_webhook_event_id(&c, &d, id);
		body_hash_id(no_id[i], strlen(no_id[i]), hash);
		CHECK_STR(id, hash, "stripe: no usable body id -> sha256 fallback");
		ia_webhook_event_type(&c, &d, type);
		CHECK_STR(type, "", "stripe: no type -> empty");
	}
}

/* ---------------------------------------------------------------- Slack */

#define SL_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define SL_BODY "{\"token\":\"x\",\"team_id\":\"T1\",\"type\":\"event_callback\"," \
	"\"event_id\":\"Ev08MFMKH6\",\"event\":{\"type\":\"app_mention\",\"text\":\"hi\"}}"

static int slack_try(const char *sig, const char *ts, const char *body, time_t now, const char *secret)
{
	ia_webhook_conf c = { .scheme = IA_WH_SLACK };
	htab h = { .n = 0 };
	if (sig)
		htab_add(&h, "X-Slack-Signature", sig);
	if (ts)
		htab_add(&h, "X-Slack-Request-Timestamp", ts);
	return verify1(&c, &h, body, now, secret);
}

static void test_slack(void)
{
	ia_webhook_conf c = { .scheme = IA_WH_SLACK };
	char sig[80], ts[32], buf[160];

	snprintf(ts, sizeof ts, "%ld", NOW);
	hex_sig("v0=", SL_SECRET, strlen(SL_SECRET), "v0:", ts, ":", SL_BODY, strlen(SL_BODY), sig, sizeof sig);
	CHECK(slack_try(sig, ts, SL_BODY, NOW, SL_SECRET) == 0, "slack: valid");

	char body2[sizeof SL_BODY];
	memcpy(body2, SL_BODY, sizeof SL_BODY);
	body2[sizeof SL_BODY - 3] = 'X';
	CHECK(slack_try(sig, ts, body2, NOW, SL_SECRET) == -1, "slack: one body byte changed");
	CHECK(slack_try(sig, ts, SL_BODY, NOW, "8f742231b10e8888abcd99yyyzzz85a6") == -1, "slack: wrong secret");
	{
		const char *s[2] = { "previous-signing-secret", SL_SECRET };
		htab h = { .n = 0 };
		htab_add(&h, "x-slack-signature", sig);
		htab_add(&h, "x-slack-request-timestamp", ts);
		CHECK(verify_n(&c, &h, SL_BODY, strlen(SL_BODY), NOW, s, 2) == 0,
		      "slack: second of two secrets (rotation)");
	}
	CHECK(slack_try(NULL, ts, SL_BODY, NOW, SL_SECRET) == -1, "slack: missing signature header");
	CHECK(slack_try(sig, NULL, SL_BODY, NOW, SL_SECRET) == -1, "slack: missing timestamp header");
	{
		htab h = { .n = 0 };
		htab_add(&h, "X-Slack-Signature", sig);
		htab_add(&h, "X-Slack-Signature", sig);
		htab_add(&h, "X-Slack-Request-Timestamp", ts);
		CHECK(verify1(&c, &h, SL_BODY, NOW, SL_SECRET) == -1, "slack: duplicated signature header");
		htab g = { .n = 0 };
		htab_add(&g, "X-Slack-Signature", sig);
		htab_add(&g, "X-Slack-Request-Timestamp", ts);
		htab_add(&g, "X-Slack-Request-Timestamp", ts);
		CHECK(verify1(&c, &g, SL_BODY, NOW, SL_SECRET) == -1, "slack: duplicated timestamp header");
	}
	/* the signature is fresh for its own timestamp; only the clock moves */
	CHECK(slack_try(sig, ts, SL_BODY, NOW + 301, SL_SECRET) == -1, "slack: 301 s old refused");
	CHECK(slack_try(sig, ts, SL_BODY, NOW - 301, SL_SECRET) == -1, "slack: 301 s in the future refused");
	CHECK(slack_try(sig, ts, SL_BODY, NOW + 300, SL_SECRET) == 0, "slack: 300 s old accepted");
	CHECK(slack_try(sig, ts, SL_BODY, NOW - 300, SL_SECRET) == 0, "slack: 300 s ahead accepted");
	/* a different timestamp than the signed one */
	{
		char ts2[32];
		snprintf(ts2, sizeof ts2, "%ld", NOW + 1);
		CHECK(slack_try(sig, ts2, SL_BODY, NOW, SL_SECRET) == -1, "slack: timestamp is signed");
	}

	static const char *const bad_ts[] = { "", "17e8", "-1700000000", " 1700000000", "1700000000 ",
					      "0x65", "99999999999999999999999999" };
	for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++) {
		char s2[80];
		hex_sig("v0=", SL_SECRET, strlen(SL_SECRET), "v0:", bad_ts[i], ":", SL_BODY, strlen(SL_BODY),
			s2, sizeof s2);
		snprintf(buf, sizeof buf, "slack: malformed timestamp \"%s\"", bad_ts[i]);
		CHECK(slack_try(s2, bad_ts[i], SL_BODY, NOW, SL_SECRET) == -1, buf);
	}

	const char *hex = sig + 3;
	static const struct { const char *pre; int n; const char *post, *name; } bad[] = {
		{ "v0=", 63, "q", "bad hex digit" },
		{ "v0=", 62, "", "short hex" },
		{ "v0=", -1, "ab", "extra hex" },
		{ "v0=", -1, ";", "extra junk" },
		{ "", -1, "", "no v0= prefix" },
		{ "v1=", -1, "", "v1= prefix" },
		{ "V0=", -1, "", "upper-case prefix" },
		{ " v0=", -1, "", "leading space" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char s2[100];
		splice(s2, sizeof s2, bad[i].pre, hex, bad[i].n, bad[i].post);
		snprintf(buf, sizeof buf, "slack: malformed signature (%s)", bad[i].name);
		CHECK(slack_try(s2, ts, SL_BODY, NOW, SL_SECRET) == -1, buf);
	}

	/* event id, type, challenge */
	char id[IA_EVENT_ID_MAX + 1], type[128], hash[72];
	htab h = { .n = 0 };
	ia_webhook_delivery d = delivery(&h, SL_BODY, strlen(SL_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, "Ev08MFMKH6", "slack: event id from body event_id");
	ia_webhook_event_type(&c, &d, type);
	CHECK_STR(type, "app_mention", "slack: event type from event.type");
	CHECK(ia_webhook_slack_challenge(SL_BODY, strlen(SL_BODY)) == NULL,
	      "slack: event_callback is not a challenge");

	static const char uv[] = "{\"token\":\"Jhj5dZrVaK7ZwHHjRyZWjbDl\","
		"\"challenge\":\"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P\","
		"\"type\":\"url_verification\"}";
	char *ch = ia_webhook_slack_challenge(uv, strlen(uv));
	CHECK_STR(ch, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
		  "slack: url_verification challenge returned");
	free(ch);
	/* the challenge request still has to be signed */
	{
		char s2[80];
		hex_sig("v0=", SL_SECRET, strlen(SL_SECRET), "v0:", ts, ":", uv, strlen(uv), s2, sizeof s2);
		CHECK(slack_try(s2, ts, uv, NOW, SL_SECRET) == 0, "slack: url_verification delivery verifies");
		CHECK(slack_try(s2, ts, uv, NOW, "not-the-secret") == -1,
		      "slack: url_verification with a wrong secret refused");
	}
	d = delivery(&h, uv, strlen(uv), NOW);
	ia_webhook_event_id(&c, &d, id);
	body_hash_id(uv, strlen(uv), hash);
	CHECK_STR(id, hash, "slack: no event_id -> sha256 fallback");
	ia_webhook_event_type(&c, &d, type);
	CHECK_STR(type, "url_verification", "slack: top-level type when no event object");

	static const char *const not_ch[] = {
		"{\"type\":\"url_verification\"}",
		"{\"type\":\"url_verification\",\"challenge\":5}",
		"{\"type\":\"event_callback\",\"challenge\":\"x\"}",
		"{\"challenge\":\"x\"}",
		"token=x&challenge=y&type=url_verification",
		"",
	};
	for (size_t i = 0; i < sizeof not_ch / sizeof *not_ch; i++) {
		char *x = ia_webhook_slack_challenge(not_ch[i], strlen(not_ch[i]));
		CHECK(x == NULL, "slack: not a url_verification challenge");
		free(x);
	}
	/* the length bounds the parse: a challenge after body_len is not seen */
	CHECK(ia_webhook_slack_challenge(uv, 40) == NULL, "slack: challenge parse honours the length");
}

/* ---------------------------------------------------------------- Standard Webhooks */

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS "1614265330"
#define SW_NOW 1614265340L
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static int std_try3(const char *family, const char *id, const char *ts, const char *sig, const char *body,
		    time_t now, const char *secret)
{
	ia_webhook_conf c = { .scheme = IA_WH_STANDARD };
	char n_id[32], n_ts[32], n_sig[32];
	htab h = { .n = 0 };

	snprintf(n_id, sizeof n_id, "%s-id", family);
	snprintf(n_ts, sizeof n_ts, "%s-timestamp", family);
	snprintf(n_sig, sizeof n_sig, "%s-signature", family);
	if (id)
		htab_add(&h, n_id, id);
	if (ts)
		htab_add(&h, n_ts, ts);
	if (sig)
		htab_add(&h, n_sig, sig);
	return verify1(&c, &h, body, now, secret);
}

static int std_try(const char *sig, const char *body, const char *secret)
{
	return std_try3("webhook", SW_ID, SW_TS, sig, body, SW_NOW, secret);
}

static void test_standard(void)
{
	ia_webhook_conf c = { .scheme = IA_WH_STANDARD };
	char buf[400];

	CHECK(std_try(SW_SIG, SW_BODY, SW_SECRET) == 0, "standard: published vector verifies");
	CHECK(std_try3("svix", SW_ID, SW_TS, SW_SIG, SW_BODY, SW_NOW, SW_SECRET) == 0,
	      "standard: svix-* aliases verify");
	CHECK(std_try3("Webhook", SW_ID, SW_TS, SW_SIG, SW_BODY, SW_NOW, SW_SECRET) == 0,
	      "standard: header names are case-insensitive");
	CHECK(std_try(SW_SIG, SW_BODY, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == 0,
	      "standard: secret without whsec_ is base64 too (reference libraries)");
	CHECK(std_try(SW_SIG, "{\"test\": 2432232315}", SW_SECRET) == -1, "standard: one body byte changed");
	CHECK(std_try(SW_SIG, SW_BODY, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx") == -1,
	      "standard: wrong secret");
	CHECK(std_try(SW_SIG, SW_BODY, "whsec_not base64!") == -1, "standard: undecodable secret fails");
	CHECK(std_try(SW_SIG, SW_BODY, "whsec_") == -1, "standard: empty key refused");
	CHECK(std_try3("webhook", "msg_other", SW_TS, SW_SIG, SW_BODY, SW_NOW, SW_SECRET) == -1,
	      "standard: id is signed");

	/* rotation: a second key of our own, signed here from the documented string */
	{
		unsigned char key[24];
		char key_b64[64], secret2[80], sig2[80];
		randombytes_buf(key, sizeof key);
		to_b64(key, sizeof key, key_b64, sizeof key_b64);
		snprintf(secret2, sizeof secret2, "whsec_%s", key_b64);
		b64_sig("v1,", key, sizeof key, SW_ID ".", SW_TS ".", NULL, SW_BODY, strlen(SW_BODY), sig2,
			sizeof sig2);
		CHECK(std_try(sig2, SW_BODY, secret2) == 0, "standard: own key signed from id.ts.body");
		const char *s[2] = { SW_SECRET, secret2 };
		htab h = { .n = 0 };
		htab_add(&h, "webhook-id", SW_ID);
		htab_add(&h, "webhook-timestamp", SW_TS);
		htab_add(&h, "webhook-signature", sig2);
		CHECK(verify_n(&c, &h, SW_BODY, strlen(SW_BODY), SW_NOW, s, 2) == 0,
		      "standard: second of two secrets (rotation)");
		CHECK(std_try(sig2, SW_BODY, SW_SECRET) == -1, "standard: other key's signature refused");

		snprintf(buf, sizeof buf, "%s %s", sig2, SW_SIG);
		CHECK(std_try(buf, SW_BODY, SW_SECRET) == 0, "standard: list, second entry matches");
		snprintf(buf, sizeof buf, "%s %s", SW_SIG, sig2);
		CHECK(std_try(buf, SW_BODY, SW_SECRET) == 0, "standard: list, first entry matches");
		snprintf(buf, sizeof buf, "v1a,%s v1,%s", &SW_SIG[3], sig2 + 3);
		CHECK(std_try(buf, SW_BODY, SW_SECRET) == -1, "standard: v1a entry is not v1");
		snprintf(buf, sizeof buf, "v1a,AAAA v1,%s", &SW_SIG[3]);
		CHECK(std_try(buf, SW_BODY, SW_SECRET) == 0, "standard: v1a entry skipped, v1 matches");
	}
	snprintf(buf, sizeof buf, "v2,%s", &SW_SIG[3]);
	CHECK(std_try(buf, SW_BODY, SW_SECRET) == -1, "standard: a matching v2 is not accepted");

	/* missing and duplicated headers, per header */
	CHECK(std_try3("webhook", NULL, SW_TS, SW_SIG, SW_BODY, SW_NOW, SW_SECRET) == -1, "standard: missing id");
	CHECK(std_try3("webhook", SW_ID, NULL, SW_SIG, SW_BODY, SW_NOW, SW_SECRET) == -1,
	      "standard: missing timestamp");
	CHECK(std_try3("webhook", SW_ID, SW_TS, NULL, SW_BODY, SW_NOW, SW_SECRET) == -1,
	      "standard: missing signature");
	CHECK(std_try3("webhook", "", SW_TS, SW_SIG, SW_BODY, SW_NOW, SW_SECRET) == -1, "standard: empty id");
	static const char *const names[] = { "webhook-id", "webhook-timestamp", "webhook-signature" };
	static const char *const values[] = { SW_ID, SW_TS, SW_SIG };
	for (int dup = 0; dup < 3; dup++) {
		htab h = { .n = 0 };
		for (int i = 0; i < 3; i++)
			htab_add(&h, names[i], values[i]);
		htab_add(&h, names[dup], values[dup]);
		snprintf(buf, sizeof buf, "standard: duplicated %s", names[dup]);
		CHECK(verify1(&c, &h, SW_BODY, SW_NOW, SW_SECRET) == -1, buf);
	}

	/* a repeated webhook-signature joined into one by a proxy (", ") */
	snprintf(buf, sizeof buf, "%s, %s", SW_SIG, SW_SIG);
	CHECK(std_try(buf, SW_BODY, SW_SECRET) == -1, "standard: two signature headers joined by a proxy");

	/* families: webhook-* preferred, never mixed */
	{
		htab h = { .n = 0 };
		htab_add(&h, "webhook-id", SW_ID);
		htab_add(&h, "webhook-timestamp", SW_TS);
		htab_add(&h, "webhook-signature", SW_SIG);
		htab_add(&h, "svix-id", "msg_garbage");
		htab_add(&h, "svix-timestamp", "1");
		htab_add(&h, "svix-signature", "v1,AAAA");
		CHECK(verify1(&c, &h, SW_BODY, SW_NOW, SW_SECRET) == 0, "standard: both families, webhook-* used");
		htab g = { .n = 0 };
		htab_add(&g, "webhook-id", "msg_garbage");
		htab_add(&g, "webhook-timestamp", SW_TS);
		htab_add(&g, "webhook-signature", SW_SIG);
		htab_add(&g, "svix-id", SW_ID);
		htab_add(&g, "svix-timestamp", SW_TS);
		htab_add(&g, "svix-signature", SW_SIG);
		CHECK(verify1(&c, &g, SW_BODY, SW_NOW, SW_SECRET) == -1,
		      "standard: both families, a bad webhook-* is not rescued by svix-*");
		htab m = { .n = 0 };
		htab_add(&m, "webhook-id", SW_ID);
		htab_add(&m, "svix-timestamp", SW_TS);
		htab_add(&m, "svix-signature", SW_SIG);
		CHECK(verify1(&c, &m, SW_BODY, SW_NOW, SW_SECRET) == -1, "standard: mixed families refused");
		htab s = { .n = 0 };
		htab_add(&s, "svix-id", SW_ID);
		htab_add(&s, "svix-timestamp", SW_TS);
		htab_add(&s, "svix-signature", SW_SIG);
		htab_add(&s, "svix-signature", SW_SIG);
		CHECK(verify1(&c, &s, SW_BODY, SW_NOW, SW_SECRET) == -1, "standard: duplicated svix-signature");
	}

	/* timestamps */
	CHECK(std_try3("webhook", SW_ID, SW_TS, SW_SIG, SW_BODY, 1614265330L + 301, SW_SECRET) == -1,
	      "standard: 301 s old refused");
	CHECK(std_try3("webhook", SW_ID, SW_TS, SW_SIG, SW_BODY, 1614265330L - 301, SW_SECRET) == -1,
	      "standard: 301 s in the future refused");
	CHECK(std_try3("webhook", SW_ID, SW_TS, SW_SIG, SW_BODY, 1614265330L + 300, SW_SECRET) == 0,
	      "standard: 300 s old accepted");
	CHECK(std_try3("webhook", SW_ID, SW_TS, SW_SIG, SW_BODY, 1614265330L - 300, SW_SECRET) == 0,
	      "standard: 300 s ahead accepted");
	CHECK(std_try3("webhook", SW_ID, "1614265330.0", SW_SIG, SW_BODY, SW_NOW, SW_SECRET) == -1,
	      "standard: non-digit timestamp");

	static const char *const bad[] = {
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",        /* unpadded */
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ",           /* short */
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=AAAA",   /* extra */
		"v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",       /* base64url alphabet */
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=junk",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= ",      /* empty trailing item */
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=  v1,AAAA",
		"junk v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",  /* item without a comma */
		",g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",          /* no version */
		"v1=g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1,",
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(buf, sizeof buf, "standard: malformed signature \"%s\"", bad[i]);
		CHECK(std_try(bad[i], SW_BODY, SW_SECRET) == -1, buf);
	}

	/* event id and type */
	char id[IA_EVENT_ID_MAX + 1], type[128], hash[72];
	static const char body[] = "{\"type\":\"invoice.paid\",\"data\":{}}";
	htab h = { .n = 0 };
	htab_add(&h, "webhook-id", SW_ID);
	ia_webhook_delivery d = delivery(&h, body, strlen(body), SW_NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, SW_ID, "standard: event id from webhook-id");
	ia_webhook_event_type(&c, &d, type);
	CHECK_STR(type, "invoice.paid", "standard: event type from body type");
	htab s = { .n = 0 };
	htab_add(&s, "svix-id", "msg_svix");
	d = delivery(&s, body, strlen(body), SW_NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, "msg_svix", "standard: event id from svix-id");
	htab e = { .n = 0 };
	d = delivery(&e, body, strlen(body), SW_NOW);
	ia_webhook_event_id(&c, &d, id);
	body_hash_id(body, strlen(body), hash);
	CHECK_STR(id, hash, "standard: no id header -> sha256 fallback");
}

/* ---------------------------------------------------------------- Shopify */

#define SH_SECRET "shpss_5a1f0e2b3c4d"
#define SH_BODY "{\"id\":820982911946154508,\"email\":\"jon@example.com\"}"

static int shopify_try(const char *sig, const char *body, const char *secret)
{
	ia_webhook_conf c = { .scheme = IA_WH_SHOPIFY };
	htab h = { .n = 0 };
	if (sig)
		htab_add(&h, "X-Shopify-Hmac-Sha256", sig);
	return verify1(&c, &h, body, NOW, secret);
}

static void test_shopify(void)
{
	ia_webhook_conf c = { .scheme = IA_WH_SHOPIFY };
	char sig[80], hex[80], buf[160];

	b64_sig("", SH_SECRET, strlen(SH_SECRET), NULL, NULL, NULL, SH_BODY, strlen(SH_BODY), sig, sizeof sig);
	hex_sig("", SH_SECRET, strlen(SH_SECRET), NULL, NULL, NULL, SH_BODY, strlen(SH_BODY), hex, sizeof hex);
	CHECK(shopify_try(sig, SH_BODY, SH_SECRET) == 0, "shopify: valid");
	CHECK(shopify_try(sig, "{\"id\":820982911946154509,\"email\":\"jon@example.com\"}", SH_SECRET) == -1,
	      "shopify: one body byte changed");
	CHECK(shopify_try(sig, SH_BODY, "shpss_5a1f0e2b3c4e") == -1, "shopify: wrong secret");
	CHECK(shopify_try(NULL, SH_BODY, SH_SECRET) == -1, "shopify: missing header");
	CHECK(shopify_try(hex, SH_BODY, SH_SECRET) == -1, "shopify: hex instead of base64");
	{
		htab h = { .n = 0 };
		htab_add(&h, "X-Shopify-Hmac-Sha256", sig);
		htab_add(&h, "x-shopify-hmac-sha256", sig);
		CHECK(verify1(&c, &h, SH_BODY, NOW, SH_SECRET) == -1, "shopify: duplicated header");
		const char *s[2] = { "shpss_old", SH_SECRET };
		htab g = { .n = 0 };
		htab_add(&g, "X-Shopify-Hmac-Sha256", sig);
		CHECK(verify_n(&c, &g, SH_BODY, strlen(SH_BODY), NOW, s, 2) == 0,
		      "shopify: second of two secrets (rotation)");
	}
	static const struct { const char *pre; int n; const char *post, *name; } bad[] = {
		{ "", 40, "", "short base64" },
		{ "", -1, "AAAA", "extra base64" },
		{ "", -1, " ", "trailing space" },
		{ "", 43, "", "padding missing" },
		{ "sha256=", -1, "", "unexpected prefix" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char s2[100];
		splice(s2, sizeof s2, bad[i].pre, sig, bad[i].n, bad[i].post);
		snprintf(buf, sizeof buf, "shopify: malformed (%s)", bad[i].name);
		CHECK(shopify_try(s2, SH_BODY, SH_SECRET) == -1, buf);
	}
	{
		char s2[80];
		memcpy(s2, sig, strlen(sig) + 1);
		s2[5] = '*';
		CHECK(shopify_try(s2, SH_BODY, SH_SECRET) == -1, "shopify: malformed (bad base64 character)");
	}

	char id[IA_EVENT_ID_MAX + 1], type[128], hash[72];
	htab h = { .n = 0 };
	htab_add(&h, "X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
	htab_add(&h, "X-Shopify-Topic", "orders/create");
	ia_webhook_delivery d = delivery(&h, SH_BODY, strlen(SH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	CHECK_STR(id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "shopify: event id from X-Shopify-Webhook-Id");
	ia_webhook_event_type(&c, &d, type);
	CHECK_STR(type, "orders/create", "shopify: event type from X-Shopify-Topic");
	htab e = { .n = 0 };
	d = delivery(&e, SH_BODY, strlen(SH_BODY), NOW);
	ia_webhook_event_id(&c, &d, id);
	body_hash_id(SH_BODY, strlen(SH_BODY), hash);
	CHECK_STR(id, hash, "shopify: no id header -> sha256 fallback");
}

/* ---------------------------------------------------------------- generic hmac */

#define HM_SECRET "generic-hmac-secret"
#define HM_BODY "{\"event\":\"thing.happened\"}"

static void test_hmac(void)
{
	ia_webhook_conf b64 = { .scheme = IA_WH_HMAC, .signature_header = "X-Signature",
				.signature_prefix = "sha256=", .encoding = IA_MAC_BASE64 };
	ia_webhook_conf tsc = { .scheme = IA_WH_HMAC, .signature_header = "X-Sig",
				.encoding = IA_MAC_HEX, .timestamp_header = "X-Timestamp",
				.event_id_header = "X-Event-Id" };
	char sig[100], hex[100], ts[32];

	/* prefix + base64, body only */
	b64_sig("sha256=", HM_SECRET, strlen(HM_SECRET), NULL, NULL, NULL, HM_BODY, strlen(HM_BODY), sig,
		sizeof sig);
	htab h = { .n = 0 };
	htab_add(&h, "x-signature", sig);
	CHECK(verify1(&b64, &h, HM_BODY, NOW, HM_SECRET) == 0, "hmac: prefix + base64 valid");
	CHECK(verify1(&b64, &h, "{\"event\":\"thing.happened!\"}", NOW, HM_SECRET) == -1,
	      "hmac: one body byte changed");
	CHECK(verify1(&b64, &h, HM_BODY, NOW, "generic-hmac-secreT") == -1, "hmac: wrong secret");
	{
		const char *s[2] = { "old", HM_SECRET };
		CHECK(verify_n(&b64, &h, HM_BODY, strlen(HM_BODY), NOW, s, 2) == 0,
		      "hmac: second of two secrets (rotation)");
	}
	htab nopfx = { .n = 0 };
	htab_add(&nopfx, "X-Signature", sig + 7);
	CHECK(verify1(&b64, &nopfx, HM_BODY, NOW, HM_SECRET) == -1, "hmac: configured prefix missing");
	hex_sig("sha256=", HM_SECRET, strlen(HM_SECRET), NULL, NULL, NULL, HM_BODY, strlen(HM_BODY), hex,
		sizeof hex);
	htab hx = { .n = 0 };
	htab_add(&hx, "X-Signature", hex);
	CHECK(verify1(&b64, &hx, HM_BODY, NOW, HM_SECRET) == -1, "hmac: hex where base64 is configured");
	htab none = { .n = 0 };
	CHECK(verify1(&b64, &none, HM_BODY, NOW, HM_SECRET) == -1, "hmac: missing header");
	htab two = { .n = 0 };
	htab_add(&two, "X-Signature", sig);
	htab_add(&two, "X-Signature", sig);
	CHECK(verify1(&b64, &two, HM_BODY, NOW, HM_SECRET) == -1, "hmac: duplicated header");
	{
		char s2[120];
		snprintf(s2, sizeof s2, "%s=", sig);
		htab m = { .n = 0 };
		htab_add(&m, "X-Signature", s2);
		CHECK(verify1(&b64, &m, HM_BODY, NOW, HM_SECRET) == -1, "hmac: malformed (extra junk)");
		snprintf(s2, sizeof s2, "%.47s", sig);
		htab k = { .n = 0 };
		htab_add(&k, "X-Signature", s2);
		CHECK(verify1(&b64, &k, HM_BODY, NOW, HM_SECRET) == -1, "hmac: malformed (short base64)");
	}

	/* hex, no prefix, with a timestamp header: "<ts>.<body>" */
	snprintf(ts, sizeof ts, "%ld", NOW);
	hex_sig("", HM_SECRET, strlen(HM_SECRET), ts, ".", NULL, HM_BODY, strlen(HM_BODY), hex, sizeof hex);
	htab t = { .n = 0 };
	htab_add(&t, "X-Sig", hex);
	htab_add(&t, "X-Timestamp", ts);
	CHECK(verify1(&tsc, &t, HM_BODY, NOW, HM_SECRET) == 0, "hmac: timestamp header, ts.body valid");
	CHECK(verify1(&tsc, &t, HM_BODY, NOW + 301, HM_SECRET) == -1, "hmac: 301 s old refused");
	CHECK(verify1(&tsc, &t, HM_BODY, NOW - 301, HM_SECRET) == -1, "hmac: 301 s in the future refused");
	CHECK(verify1(&tsc, &t, HM_BODY, NOW + 300, HM_SECRET) == 0, "hmac: 300 s old accepted");
	htab nt = { .n = 0 };
	htab_add(&nt, "X-Sig", hex);
	CHECK(verify1(&tsc, &nt, HM_BODY, NOW, HM_SECRET) == -1, "hmac: timestamp header missing");
	htab dt = { .n = 0 };
	htab_add(&dt, "X-Sig", hex);
	htab_add(&dt, "X-Timestamp", ts);
	htab_add(&dt, "X-Timestamp", ts);
	CHECK(verify1(&tsc, &dt, HM_BODY, NOW, HM_SECRET) == -1, "hmac: timestamp header duplicated");
	{
		char body_only[100];
		hex_sig("", HM_SECRET, strlen(HM_SECRET), NULL, NULL, NULL, HM_BODY, strlen(HM_BODY), body_only,
			sizeof body_only);
		htab bo = { .n = 0 };
		htab_add(&bo, "X-Sig", body_only);
		htab_add(&bo, "X-Timestamp", ts);
		CHECK(verify1(&tsc, &bo, HM_BODY, NOW, HM_SECRET) == -1,
		      "hmac: MAC over the body alone refused when a timestamp is configured");
		char s2[120];
		snprintf(s2, sizeof s2, "%.63sx", hex);
		htab bh = { .n = 0 };
		htab_add(&bh, "X-Sig", s2);
		htab_add(&bh, "X-Timestamp", ts);
		CHECK(verify1(&tsc, &bh, HM_BODY, NOW, HM_SECRET) == -1, "hmac: malformed (bad hex)");
	}

	/* misconfiguration and unknown schemes fail closed */
	ia_webhook_conf nohdr = { .scheme = IA_WH_HMAC };
	CHECK(verify1(&nohdr, &h, HM_BODY, NOW, HM_SECRET) == -1, "hmac: no signature_header configured");
	ia_webhook_conf nosch = { .scheme = IA_WH_NONE };
	CHECK(verify1(&nosch, &h, HM_BODY, NOW, HM_SECRET) == -1, "no scheme: refused");

	/* event id: configured header, else the body hash */
	char id[IA_EVENT_ID_MAX + 1], type[128], hash[72];
	htab ev = { .n = 0 };
	htab_add(&ev, "X-Event-Id", "evt-42");
	ia_webhook_delivery d = delivery(&ev, HM_BODY, strlen(HM_BODY), NOW);
	ia_webhook_event_id(&tsc, &d, id);
	CHECK_STR(id, "evt-42", "hmac: event id from the configured header");
	body_hash_id(HM_BODY, strlen(HM_BODY), hash);
	ia_webhook_event_id(&b64, &d, id);
	CHECK_STR(id, hash, "hmac: no event_id_header configured -> sha256 of the body");
	htab e = { .n = 0 };
	d = delivery(&e, HM_BODY, strlen(HM_BODY), NOW);
	ia_webhook_event_id(&tsc, &d, id);
	CHECK_STR(id, hash, "hmac: configured header absent -> sha256 of the body");
	ia_webhook_event_type(&tsc, &d, type);
	CHECK_STR(type, "", "hmac: no event type");
	CHECK(strlen(id) == 64 && strspn(id, "0123456789abcdef") == 64, "hmac: fallback id is 64 lowercase hex digits");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_github();
	test_stripe();
	test_slack();
	test_standard();
	test_shopify();
	test_hmac();
	return ia_test_done();
}
