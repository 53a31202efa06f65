#include "ia_outbound.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ia_codec.h"
#include "ia_log.h"

/* host of an http(s) URL into out; -1 when the URL has no plain host part */
static int url_host(const char *url, char *out, size_t out_size, bool *https)
{
	const char *p;

	if (strncasecmp(url, "https://", 8) == 0) {
		*https = true;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		*https = false;
		p = url + 7;
	} else {
		return -1;
	}
	size_t n = strcspn(p, "/?#");
	if (memchr(p, '@', n) || memchr(p, '\\', n) || n == 0)
		return -1;
	const char *host = p, *end = p + n;
	if (*host == '[') {
		const char *close = memchr(host, ']', n);
		if (!close)
			return -1;
		host++;
		end = close;
	} else {
		const char *colon = memchr(host, ':', n);
		if (colon)
			end = colon;
	}
	if ((size_t)(end - host) + 1 > out_size)
		return -1;
	memcpy(out, host, (size_t)(end - host));
	out[end - host] = '\0';
	for (const char *u = url; *u; u++)
		if ((unsigned char)*u <= 0x20 || *u == 0x7f)
			return -1;
	return 0;
}

static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

bool ia_outbound_url_allowed(const char *url)
{
	char host[256];
	bool https;

	if (url_host(url, host, sizeof host, &https) != 0)
		return false;
	return https || host_is_loopback(host);
}

static size_t on_data(char *data, size_t size, size_t n, void *userp)
{
	ia_outbound *o = userp;
	size_t len = size * n;

	if (ia_buf_append(&o->response, data, len) != 0) {
		o->overflow = true;
		return 0;               /* aborts the transfer */
	}
	return len;
}

static void wipe_headers(struct curl_slist *h)
{
	for (; h; h = h->next)
		sodium_memzero(h->data, strlen(h->data));
}

int ia_form_add(ia_buf *form, const char *name, const char *value)
{
	char *v = ia_url_encode(value, strlen(value));
	int rc;

	if (!v)
		return -1;
	rc = (form->len && ia_buf_putc(form, '&')) || ia_buf_puts(form, name) ||
	     ia_buf_putc(form, '=') || ia_buf_puts(form, v) ? -1 : 0;
	sodium_memzero(v, strlen(v));
	free(v);
	return rc;
}

static int add_header(ia_outbound *o, const char *line)
{
	/* libcurl sends custom header lines as given: a CR or LF in a value
	 * (a token from a provider) would start a header or request of its own */
	if (strpbrk(line, "\r\n"))
		return -1;
	struct curl_slist *h = curl_slist_append(o->headers, line);
	if (!h)
		return -1;
	o->headers = h;
	return 0;
}

static int add_basic_auth(ia_outbound *o, const char *id, const char *secret)
{
	ia_buf pair, line;
	char *eid = ia_url_encode(id, strlen(id));
	char *esecret = ia_url_encode(secret, strlen(secret));
	int rc = -1;

	ia_buf_init(&pair, 8192);
	ia_buf_init(&line, 16384);
	if (!eid || !esecret || ia_buf_puts(&pair, eid) || ia_buf_putc(&pair, ':') ||
	    ia_buf_puts(&pair, esecret))
		goto out;
	size_t b64_size = IA_B64_ENCODED_LEN(pair.len);
	char *b64 = malloc(b64_size);
	if (!b64)
		goto out;
	ia_b64_encode((const unsigned char *)pair.data, pair.len, b64, b64_size);
	if (ia_buf_puts(&line, "Authorization: Basic ") == 0 && ia_buf_puts(&line, b64) == 0)
		rc = add_header(o, ia_buf_cstr(&line));
	sodium_memzero(b64, b64_size);
	free(b64);
out:
	if (eid) {
		sodium_memzero(eid, strlen(eid));
		free(eid);
	}
	if (esecret) {
		sodium_memzero(esecret, strlen(esecret));
		free(esecret);
	}
	ia_buf_release(&pair);
	ia_buf_release(&line);
	return rc;
}

int ia_outbound_init(ia_outbound *o, const ia_config *cfg, const char *url, const char *form,
		     const char *bearer, const char *basic_id, const char *basic_secret,
		     ia_err *err)
{
	char host[256];
	bool https;

	memset(o, 0, sizeof *o);
	ia_buf_init(&o->response, cfg->http_max_response_bytes);
	if (url_host(url, host, sizeof host, &https) != 0 || !(https || host_is_loopback(host)))
		return ia_err_set(err, 502, "provider_error", "The provider URL is not allowed.");
	/* initialised on first use: a program that never calls a provider never
	 * pays for the TLS library's set-up in memory (libcurl counts the calls) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(o->easy = curl_easy_init()))
		return ia_err_oom(err);

	CURL *e = o->easy;
	int bad = 0;
	bad |= curl_easy_setopt(e, CURLOPT_URL, url);
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	bad |= curl_easy_setopt(e, CURLOPT_PROXY, "");
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, cfg->http_connect_timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, cfg->http_timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 16L);
	bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 10L);
	bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->http_max_response_bytes);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, o);
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, o->errbuf);
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "intauth/1");
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, o);
	if (add_header(o, "Accept: application/json"))
		bad = 1;
	if (bearer) {
		ia_buf line;
		ia_buf_init(&line, 16384);
		if (ia_buf_puts(&line, "Authorization: Bearer ") || ia_buf_puts(&line, bearer) ||
		    add_header(o, ia_buf_cstr(&line)))
			bad = 1;
		ia_buf_release(&line);
	}
	if (basic_id && basic_secret && add_basic_auth(o, basic_id, basic_secret))
		bad = 1;
	if (form) {
		o->post_len = strlen(form);
		if (!(o->post_body = malloc(o->post_len + 1)))
			bad = 1;
		else
			memcpy(o->post_body, form, o->post_len + 1);
		if (add_header(o, "Content-Type: application/x-www-form-urlencoded"))
			bad = 1;
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->post_body);
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->post_len);
	}
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
	if (bad) {
		ia_outbound_release(o);
		return ia_err_internal(err);
	}
	return 0;
}

int ia_outbound_result(ia_outbound *o, CURLcode rc, long *status, ia_err *err)
{
	const char *ct = NULL;

	*status = 0;
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		ia_log(IA_LOG_WARN, "provider_timeout", "%s", o->errbuf);
		return ia_err_set(err, 504, "provider_timeout", "The provider did not answer in time.");
	}
	if (o->overflow || rc == CURLE_FILESIZE_EXCEEDED) {
		ia_log(IA_LOG_WARN, "provider_response_too_large", "response over the cap");
		return ia_err_set(err, 502, "provider_error", "The provider's answer was too large.");
	}
	if (rc != CURLE_OK) {
		ia_log(IA_LOG_WARN, "provider_unreachable", "%s", o->errbuf[0] ? o->errbuf : curl_easy_strerror(rc));
		return ia_err_set(err, 502, "provider_error", "The provider could not be reached.");
	}
	curl_easy_getinfo(o->easy, CURLINFO_RESPONSE_CODE, status);
	if (curl_easy_getinfo(o->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(o->content_type, sizeof o->content_type, "%s", ct);
	if (ia_buf_append(&o->response, "", 0) != 0)
		return ia_err_oom(err);
	return 0;
}

int ia_outbound_perform(ia_outbound *o, long *status, ia_err *err)
{
	return ia_outbound_result(o, curl_easy_perform(o->easy), status, err);
}

void ia_outbound_release(ia_outbound *o)
{
	if (o->easy)
		curl_easy_cleanup(o->easy);
	o->easy = NULL;
	wipe_headers(o->headers);
	curl_slist_free_all(o->headers);
	o->headers = NULL;
	if (o->post_body) {
		sodium_memzero(o->post_body, o->post_len);
		free(o->post_body);
	}
	o->post_body = NULL;
	ia_buf_release(&o->response);
}
