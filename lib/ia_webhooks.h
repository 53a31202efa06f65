/* ia_webhooks: verification of providers' signed webhook deliveries (SPEC §8).
 *
 * Verification runs over the raw body bytes before anything parses them, with
 * MACs decoded into fixed-size buffers and compared in constant time
 * (sodium_memcmp). Any missing, duplicated, malformed or stale header fails
 * closed, and every failure looks the same to the caller (why is for logs
 * only and never holds a header value, a secret or body bytes).
 *
 * Schemes (the exact signed strings are in ../shared/SECURITY.md):
 *   github    X-Hub-Signature-256: sha256=<hex>      over body
 *   stripe    Stripe-Signature: t=<ts>,v1=<hex>[,v1=..]  over "<t>.<body>", key = whole secret string
 *   slack     X-Slack-Signature: v0=<hex> + X-Slack-Request-Timestamp  over "v0:<ts>:<body>"
 *   standard  webhook-id, webhook-timestamp, webhook-signature: "v1,<b64> v1,<b64>"
 *             (svix-id / svix-timestamp / svix-signature accepted instead) over
 *             "<id>.<ts>.<body>", key = base64-decode of what follows "whsec_"
 *   shopify   X-Shopify-Hmac-Sha256: <base64>        over body
 *   hmac      the catalog's header / prefix / encoding / optional timestamp header
 * Timestamps must be within IA_WEBHOOK_TOLERANCE seconds of now, either way.
 * Several secrets may be active at once (rotation): any one verifying is enough.
 */
#ifndef IA_WEBHOOKS_H
#define IA_WEBHOOKS_H

#include <stddef.h>
#include <time.h>

#include "ia_providers.h"

#define IA_WEBHOOK_TOLERANCE 300
#define IA_EVENT_ID_MAX 256

/* Looks a request header up by its HTTP name; *count receives how many times
 * it was sent (0 when absent). Returns the first value or NULL. */
typedef const char *(*ia_header_fn)(void *ctx, const char *name, int *count);

typedef struct ia_webhook_delivery {
	ia_header_fn header;
	void *header_ctx;
	const char *body;          /* raw bytes, not necessarily NUL-free */
	size_t body_len;
	time_t now;
} ia_webhook_delivery;

/* 0 when one of secrets[0..n) verifies the delivery under conf's scheme, else
 * -1 with *why set to a short static reason. */
int ia_webhook_verify(const ia_webhook_conf *conf, const ia_webhook_delivery *d,
		      const char *const *secrets, size_t n_secrets, const char **why);

/* The event id used to store a delivery once (SPEC §8): GitHub
 * X-GitHub-Delivery; Stripe the body's "id"; Slack the body's "event_id";
 * Standard Webhooks webhook-id (or svix-id); Shopify X-Shopify-Webhook-Id;
 * hmac the configured event_id_header, else the SHA-256 of the body (64
 * lowercase hex digits), which is also the id where a scheme's source is absent.
 * Only call after verification. out: at most IA_EVENT_ID_MAX chars + NUL;
 * values with control characters or over the limit are replaced by the hash. */
void ia_webhook_event_id(const ia_webhook_conf *conf, const ia_webhook_delivery *d,
			 char out[IA_EVENT_ID_MAX + 1]);

/* The event type for the record, when the scheme carries one (GitHub
 * X-GitHub-Event, Stripe/Slack/standard body "type" (Slack: event.type when
 * present), Shopify X-Shopify-Topic); "" otherwise. out: 128 bytes. */
void ia_webhook_event_type(const ia_webhook_conf *conf, const ia_webhook_delivery *d,
			   char out[128]);

/* Slack's url_verification: when the verified body is
 * {"type":"url_verification","challenge":...}, returns the challenge
 * (malloc'd, caller frees); NULL otherwise. */
char *ia_webhook_slack_challenge(const char *body, size_t len);

#endif
