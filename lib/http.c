#include "ia_http.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "ia_app.h"
#include "ia_codec.h"
#include "ia_log.h"

const char *ia_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

static const char *param(const ia_request *req, const char *name)
{
	return FCGX_GetParam(name, req->fcgx->envp);
}

/* Splits the raw path into percent-decoded segments; a decoded segment may not
 * hold '/', NUL or control characters, so "/api/integrations/%2F.." can't
 * smuggle anything past the routing. */
static int split_path(ia_request *req, const char *path, size_t len, ia_err *err)
{
	const char *p = path, *end = path + len;

	while (p < end) {
		while (p < end && *p == '/')
			p++;
		if (p == end)
			break;
		const char *s = p;
		while (p < end && *p != '/')
			p++;
		size_t n = (size_t)(p - s);
		if (req->n_segments == IA_MAX_PATH_SEGMENTS || n > 512)
			return ia_err_set(err, 404, "not_found", "No such route.");
		char *seg = malloc(n + 1);
		if (!seg)
			return ia_err_oom(err);
		long m = ia_url_decode(s, n, false, seg, n + 1);
		if (m < 0) {
			free(seg);
			return ia_err_set(err, 400, "invalid_request", "Malformed path.");
		}
		for (long i = 0; i < m; i++) {
			if ((unsigned char)seg[i] < 0x20 || seg[i] == '/' || seg[i] == 0x7f) {
				free(seg);
				return ia_err_set(err, 400, "invalid_request", "Malformed path.");
			}
		}
		req->segments[req->n_segments++] = seg;
	}
	return 0;
}

static int parse_query(ia_request *req, ia_err *err)
{
	const char *p = req->query;

	while (*p) {
		const char *amp = strchr(p, '&');
		size_t n = amp ? (size_t)(amp - p) : strlen(p);
		if (n > 0) {
			if (req->n_query == IA_MAX_QUERY_PAIRS)
				return ia_err_set(err, 400, "invalid_request", "Too many query parameters.");
			const char *eq = memchr(p, '=', n);
			size_t kn = eq ? (size_t)(eq - p) : n;
			size_t vn = eq ? n - kn - 1 : 0;
			char *k = malloc(kn + 1), *v = malloc(vn + 1);
			if (!k || !v) {
				free(k);
				free(v);
				return ia_err_oom(err);
			}
			if (ia_url_decode(p, kn, true, k, kn + 1) < 0 ||
			    ia_url_decode(eq ? eq + 1 : "", vn, true, v, vn + 1) < 0) {
				free(k);
				free(v);
				return ia_err_set(err, 400, "invalid_request", "Malformed query string.");
			}
			req->query_keys[req->n_query] = k;
			req->query_values[req->n_query] = v;
			req->n_query++;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

/* nginx's $request_id (REQUEST_ID, 32 hex digits, random) when it sent one,
 * so our log lines and nginx's access log name a request alike; else our own. */
static void set_request_id(ia_request *req)
{
	const char *id = param(req, "REQUEST_ID");
	size_t len = sizeof req->request_id - 1;

	if (id && strlen(id) == len && strspn(id, "0123456789abcdef") == len) {
		memcpy(req->request_id, id, len + 1);
		return;
	}
	unsigned char rid[16];
	randombytes_buf(rid, sizeof rid);
	ia_hex_encode(rid, sizeof rid, req->request_id, sizeof req->request_id);
}

int ia_request_init(ia_request *req, FCGX_Request *fcgx, ia_err *err)
{
	memset(req, 0, sizeof *req);
	req->fcgx = fcgx;
	ia_buf_init(&req->body, 0);
	set_request_id(req);

	req->method = param(req, "REQUEST_METHOD");
	if (!req->method)
		req->method = "GET";
	/* when nginx took the request, before it queued for a worker */
	req->started_at = param(req, "REQUEST_START");
	if (req->started_at && (!*req->started_at || strlen(req->started_at) > 20 ||
				strspn(req->started_at, "0123456789.") != strlen(req->started_at)))
		req->started_at = NULL;
	req->query = param(req, "QUERY_STRING");
	if (!req->query)
		req->query = "";

	/* REQUEST_URI is the raw path: nginx's $document_uri is already decoded,
	 * and decoding twice would turn %252F into '/'. */
	const char *uri = param(req, "REQUEST_URI");
	size_t len;
	if (uri) {
		const char *q = strchr(uri, '?');
		len = q ? (size_t)(q - uri) : strlen(uri);
	} else {
		uri = param(req, "DOCUMENT_URI");
		if (!uri)
			uri = param(req, "SCRIPT_NAME");
		if (!uri)
			uri = "/";
		len = strlen(uri);
	}
	req->path = uri;
	if (split_path(req, uri, len, err) != 0)
		return -1;
	return parse_query(req, err);
}

void ia_request_release(ia_request *req)
{
	for (size_t i = 0; i < req->n_segments; i++)
		free(req->segments[i]);
	for (size_t i = 0; i < req->n_query; i++) {
		/* query values may carry codes and tokens (callback) */
		sodium_memzero(req->query_values[i], strlen(req->query_values[i]));
		free(req->query_keys[i]);
		free(req->query_values[i]);
	}
	for (size_t i = 0; i < req->n_extra_headers; i++)
		free(req->extra_headers[i]);
	ia_buf_release(&req->body);
	ia_claims_release(&req->claims);
	req->n_segments = req->n_query = req->n_extra_headers = 0;
}

int ia_request_read_body(ia_request *req, size_t max_bytes, ia_err *err)
{
	const char *cl = param(req, "CONTENT_LENGTH");
	size_t want = 0;

	if (cl && *cl) {
		for (const char *p = cl; *p; p++) {
			if (!isdigit((unsigned char)*p) || want > (SIZE_MAX - 9) / 10)
				return ia_err_set(err, 400, "invalid_request", "Malformed Content-Length.");
			want = want * 10 + (size_t)(*p - '0');
		}
	}
	if (want > max_bytes)
		return ia_err_set(err, 413, "payload_too_large",
				  "The request body is larger than %zu bytes.", max_bytes);
	ia_buf_release(&req->body);
	ia_buf_init(&req->body, want);
	if (want == 0)
		return ia_buf_append(&req->body, "", 0) == 0 ? 0 : ia_err_oom(err);
	char chunk[16384];
	while (req->body.len < want) {
		size_t n = want - req->body.len;
		if (n > sizeof chunk)
			n = sizeof chunk;
		int got = FCGX_GetStr(chunk, (int)n, req->fcgx->in);
		if (got <= 0)
			return ia_err_set(err, 400, "invalid_request", "The request body is incomplete.");
		if (ia_buf_append(&req->body, chunk, (size_t)got) != 0)
			return ia_err_oom(err);
	}
	sodium_memzero(chunk, sizeof chunk);
	return 0;
}

/* The CGI variable carrying a header: "X-Hub-Signature-256" -> HTTP_X_HUB_SIGNATURE_256 */
static int header_var(const char *name, char *var, size_t size)
{
	size_t n = strlen(name);

	if (strcasecmp(name, "Content-Type") == 0 || strcasecmp(name, "Content-Length") == 0) {
		snprintf(var, size, "%s", strcasecmp(name, "Content-Type") == 0 ? "CONTENT_TYPE"
										  : "CONTENT_LENGTH");
		return 0;
	}
	if (n + 6 > size)
		return -1;
	memcpy(var, "HTTP_", 5);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		var[5 + i] = c == '-' ? '_' : (char)toupper((unsigned char)c);
	}
	var[5 + n] = '\0';
	return 0;
}

const char *ia_request_header(const ia_request *req, const char *name)
{
	char var[128];

	return header_var(name, var, sizeof var) == 0 ? param(req, var) : NULL;
}

const char *ia_request_header_n(const ia_request *req, const char *name, int *count)
{
	char var[128];
	const char *first = NULL;

	*count = 0;
	if (header_var(name, var, sizeof var) != 0)
		return NULL;
	size_t n = strlen(var);
	for (char **e = req->fcgx->envp; e && *e; e++) {
		if (strncmp(*e, var, n) == 0 && (*e)[n] == '=') {
			if (!first)
				first = *e + n + 1;
			(*count)++;
		}
	}
	return first;
}

const char *ia_request_query(const ia_request *req, const char *key)
{
	for (size_t i = 0; i < req->n_query; i++)
		if (strcmp(req->query_keys[i], key) == 0)
			return req->query_values[i];
	return NULL;
}

int ia_request_cookie(const ia_request *req, const char *name, char *out, size_t out_size)
{
	const char *c = ia_request_header(req, "Cookie");
	size_t nl = strlen(name);

	while (c && *c) {
		while (*c == ' ' || *c == ';')
			c++;
		const char *end = strchr(c, ';');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n > nl && strncmp(c, name, nl) == 0 && c[nl] == '=') {
			size_t vn = n - nl - 1;
			if (vn + 1 > out_size)
				return -1;
			memcpy(out, c + nl + 1, vn);
			out[vn] = '\0';
			return 0;
		}
		c += n;
	}
	return -1;
}

int ia_request_authenticate(ia_request *req, const ia_app *app, unsigned allow, ia_err *err)
{
	const char *h = ia_request_header(req, "Authorization");
	const char *why = "missing";

	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		const char *tok = h + 7;
		while (*tok == ' ')
			tok++;
		ia_claims_release(&req->claims);
		if (ia_jwt_verify(tok, strlen(tok), app->cfg.jwt_secret, app->cfg.jwt_secret_len,
				  app->cfg.jwt_audience, time(NULL), &req->claims, &why) == 0) {
			if (allow & (1u << req->claims.role))
				return 0;
			return ia_err_set(err, 403, "forbidden",
					  "This route is not open to the caller's role.");
		}
	}
	ia_log(IA_LOG_INFO, "auth_rejected", "request %s: %s", req->request_id, why);
	return ia_err_set(err, 401, "unauthorized", "A valid bearer token is required.");
}

int ia_resp_header(ia_request *req, const char *name, const char *value)
{
	if (req->n_extra_headers == IA_MAX_EXTRA_HEADERS || strpbrk(name, "\r\n:") ||
	    strpbrk(value, "\r\n"))
		return -1;
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);
	if (!line)
		return -1;
	snprintf(line, n, "%s: %s", name, value);
	req->extra_headers[req->n_extra_headers++] = line;
	return 0;
}

static void write_head(ia_request *req, int status, const char *content_type, size_t len)
{
	char head[512];
	int n;

	req->status = status;
	n = snprintf(head, sizeof head, "Status: %d %s\r\nX-Request-Id: %s\r\n", status,
		     ia_http_reason(status), req->request_id);
	FCGX_PutStr(head, n, req->fcgx->out);
	if (content_type) {
		n = snprintf(head, sizeof head, "Content-Type: %s\r\nContent-Length: %zu\r\n",
			     content_type, len);
		FCGX_PutStr(head, n, req->fcgx->out);
	}
	for (size_t i = 0; i < req->n_extra_headers; i++) {
		FCGX_PutS(req->extra_headers[i], req->fcgx->out);
		FCGX_PutStr("\r\n", 2, req->fcgx->out);
	}
	FCGX_PutStr("\r\n", 2, req->fcgx->out);
}

void ia_resp_body(ia_request *req, int status, const char *content_type, const char *body,
		  size_t len)
{
	if (req->status)
		return;
	write_head(req, status, content_type, len);
	FCGX_PutStr(body, (int)len, req->fcgx->out);
}

void ia_resp_json(ia_request *req, int status, const char *json, size_t len)
{
	ia_resp_body(req, status, "application/json", json, len);
}

void ia_resp_error(ia_request *req, int status, const char *code, const char *message)
{
	ia_buf b;

	if (req->status)
		return;
	ia_buf_init(&b, 4096);
	ia_buf_puts(&b, "{\"error\":{\"code\":\"");
	ia_buf_json_escape(&b, code);
	ia_buf_puts(&b, "\",\"message\":\"");
	ia_buf_json_escape(&b, message);
	ia_buf_puts(&b, "\"}}");
	ia_resp_json(req, status, ia_buf_cstr(&b), b.len);
	ia_buf_release(&b);
}

void ia_resp_err(ia_request *req, const ia_err *err)
{
	int status = err->status ? err->status : 500;
	const char *code = err->code ? err->code : "internal_error";

	if (err->retry_after > 0) {
		char v[16];
		snprintf(v, sizeof v, "%d", err->retry_after);
		ia_resp_header(req, "Retry-After", v);
	}
	if (status >= 500)
		ia_log(IA_LOG_WARN, "request_failed", "request %s: %d %s", req->request_id, status, code);
	ia_resp_error(req, status, code, err->message[0] ? err->message : ia_http_reason(status));
}

void ia_resp_outcome(ia_request *req, int rc, const ia_buf *out, const ia_err *err)
{
	if (rc == 0)
		ia_resp_json(req, 200, ia_buf_cstr(out), out->len);
	else
		ia_resp_err(req, err);
}

void ia_resp_redirect(ia_request *req, const char *location)
{
	if (req->status)
		return;
	if (ia_resp_header(req, "Location", location) != 0) {
		ia_resp_error(req, 500, "internal_error", "Bad redirect target.");
		return;
	}
	ia_resp_header(req, "Cache-Control", "no-store");
	write_head(req, 302, "text/plain", 0);
}

void ia_resp_cors(ia_request *req, const ia_app *app)
{
	const char *origin = ia_request_header(req, "Origin");
	const char *allowed = origin ? ia_config_cors_origin(&app->cfg, origin) : NULL;

	if (!allowed)
		return;
	ia_resp_header(req, "Access-Control-Allow-Origin", allowed);
	ia_resp_header(req, "Vary", "Origin");
	/* lets an app on another origin of the same site keep the intauth_flow
	 * cookie that auth-start sets (fetch with credentials: 'include'); only
	 * for origins named in the list: "*" would hand the browser binding to
	 * any page of the site */
	if (allowed != origin)
		ia_resp_header(req, "Access-Control-Allow-Credentials", "true");
}

static bool header_list_ok(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != ',' && *s != ' ' && *s != '_')
			return false;
	return true;
}

void ia_resp_preflight(ia_request *req, const ia_app *app)
{
	const char *origin = ia_request_header(req, "Origin");
	const char *asked = ia_request_header(req, "Access-Control-Request-Headers");

	if (!origin || !ia_config_cors_origin(&app->cfg, origin)) {
		ia_resp_error(req, 403, "forbidden", "Origin not allowed.");
		return;
	}
	ia_resp_cors(req, app);
	ia_resp_header(req, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
	ia_resp_header(req, "Access-Control-Allow-Headers",
		       asked && header_list_ok(asked) && strlen(asked) < 512 ? asked
		       : "authorization, x-client-info, apikey, content-type");
	ia_resp_header(req, "Access-Control-Max-Age", "600");
	write_head(req, 204, NULL, 0);
}
