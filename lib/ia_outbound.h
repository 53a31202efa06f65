/* ia_outbound: calls to providers over libcurl, always bounded.
 *
 * https only (plain http only to loopback hosts, for tests), no redirects
 * followed, no proxy from the environment, peer and host verified, connect and
 * total timeouts and a low-speed limit from the config, the response capped in
 * the write callback (CURLOPT_MAXFILESIZE alone misses chunked bodies).
 * Secrets we put in headers or bodies are in our own memory and wiped; libcurl
 * only ever gets copies it needs for the call.
 *
 * A call is prepared with ia_outbound_init() (which only configures an easy
 * handle, so the same call can run alone with ia_outbound_perform() or many at
 * once in a multi handle) and released with ia_outbound_release().
 *
 * Failure mapping: timeout -> 504 provider_timeout; refused, reset, TLS, DNS,
 * a response over the cap -> 502 provider_error.
 */
#ifndef IA_OUTBOUND_H
#define IA_OUTBOUND_H

#include <stdbool.h>

#include <curl/curl.h>

#include "ia_buf.h"
#include "ia_config.h"
#include "ia_err.h"

typedef struct ia_outbound {
	CURL *easy;
	struct curl_slist *headers;
	char *post_body;            /* owned copy, wiped at release */
	size_t post_len;
	ia_buf response;            /* capped at HTTP_MAX_RESPONSE_BYTES */
	bool overflow;
	char content_type[128];
	char errbuf[CURL_ERROR_SIZE];
} ia_outbound;

/* Is this URL one we may call? https, or http to a loopback host. */
bool ia_outbound_url_allowed(const char *url);

/* Prepares a GET (form == NULL) or a form POST (form: an
 * application/x-www-form-urlencoded body, copied). bearer: token for an
 * Authorization: Bearer header, or NULL. basic_id/basic_secret: HTTP Basic
 * client authentication with both parts form-urlencoded first (RFC 6749
 * §2.3.1), or NULL. Returns 0 or -1 with err (502 for a URL not allowed). */
int ia_outbound_init(ia_outbound *o, const ia_config *cfg, const char *url, const char *form,
		     const char *bearer, const char *basic_id, const char *basic_secret,
		     ia_err *err);
/* Runs the prepared call. On 0, *status is the HTTP status and o->response the
 * body (whatever the status). -1 with err for transport failures. */
int ia_outbound_perform(ia_outbound *o, long *status, ia_err *err);
/* For multi-handle users: maps a finished transfer's result like perform does. */
int ia_outbound_result(ia_outbound *o, CURLcode rc, long *status, ia_err *err);
void ia_outbound_release(ia_outbound *o);

/* Appends "name=value" (both form-urlencoded) to a form body, with '&' as needed. */
int ia_form_add(ia_buf *form, const char *name, const char *value);

#endif
