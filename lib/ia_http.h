/* ia_http: one FastCGI request, parsed, and its answer.
 *
 * The request owns its body (read exactly CONTENT_LENGTH bytes, capped at
 * MAX_BODY_BYTES), its decoded query pairs and its verified claims; all are
 * released by ia_request_release() at the end of each request.
 *
 * Answers: every function here writes the whole answer (status line, headers,
 * body) once; later calls are ignored, so a handler can't answer twice. JSON
 * bodies are written as given (callers build them with ia_buf or cJSON).
 */
#ifndef IA_HTTP_H
#define IA_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <fcgiapp.h>

#include "ia_buf.h"
#include "ia_err.h"
#include "ia_jwt.h"

#define IA_MAX_QUERY_PAIRS 32
#define IA_MAX_PATH_SEGMENTS 8
#define IA_MAX_EXTRA_HEADERS 8

typedef struct ia_request {
	FCGX_Request *fcgx;
	const char *method;          /* REQUEST_METHOD */
	const char *path;            /* DOCUMENT_URI, else SCRIPT_NAME+PATH_INFO, else REQUEST_URI without query */
	const char *query;           /* QUERY_STRING ("" when none) */
	char *segments[IA_MAX_PATH_SEGMENTS]; /* decoded path segments, malloc'd */
	size_t n_segments;
	char *query_keys[IA_MAX_QUERY_PAIRS];
	char *query_values[IA_MAX_QUERY_PAIRS];
	size_t n_query;
	ia_buf body;                 /* raw body bytes, NUL-terminated */
	ia_claims claims;            /* role IA_ROLE_NONE until ia_request_authenticate succeeds */
	char *extra_headers[IA_MAX_EXTRA_HEADERS]; /* "Name: value" lines, malloc'd */
	size_t n_extra_headers;
	int status;                  /* status answered, 0 until then */
	char request_id[33];         /* nginx's $request_id or random hex; sent as X-Request-Id */
	const char *started_at;      /* REQUEST_START from nginx: epoch seconds
					("1764028800.123"), or NULL when absent or malformed */
} ia_request;

/* Prepares req from an accepted FCGX request: method, path (split into decoded
 * segments), query. Does not read the body. Returns 0, or -1 with err (400) for
 * a malformed path or query. */
int ia_request_init(ia_request *req, FCGX_Request *fcgx, ia_err *err);
void ia_request_release(ia_request *req);

/* Reads exactly CONTENT_LENGTH bytes (max_bytes cap). -1 with 413
 * payload_too_large, or 400 when the body is shorter than announced. */
int ia_request_read_body(ia_request *req, size_t max_bytes, ia_err *err);

/* Header by its HTTP name ("Authorization", "X-Hub-Signature-256", "Content-Type"),
 * looked up case-insensitively as the CGI variable. NULL when absent. */
const char *ia_request_header(const ia_request *req, const char *name);
/* Like ia_request_header, and *count receives how many times the header came
 * (nginx before 1.23 passes each repeat as its own parameter; later versions
 * join them with ", ", which then fails whatever parses the value). */
const char *ia_request_header_n(const ia_request *req, const char *name, int *count);

/* Decoded query value, NULL when absent. With duplicated keys, the first. */
const char *ia_request_query(const ia_request *req, const char *key);
/* The named cookie's value from the Cookie header, copied into out. -1 when absent/too long. */
int ia_request_cookie(const ia_request *req, const char *name, char *out, size_t out_size);

/* Checks the bearer JWT. allow: bitmask of 1 << IA_ROLE_USER | 1 << IA_ROLE_SERVICE.
 * On failure: 401 unauthorized (no/bad token, anon or unknown role) or 403
 * forbidden (valid token of a role not allowed here). */
struct ia_app;
int ia_request_authenticate(ia_request *req, const struct ia_app *app, unsigned allow, ia_err *err);
#define IA_ALLOW_USER (1u << IA_ROLE_USER)
#define IA_ALLOW_SERVICE (1u << IA_ROLE_SERVICE)

/* Adds a header line to the answer ("Cache-Control", "no-store"). Values with
 * CR or LF are refused. */
int ia_resp_header(ia_request *req, const char *name, const char *value);
/* Writes status + Content-Type: application/json + extra headers + body. */
void ia_resp_json(ia_request *req, int status, const char *json, size_t len);
/* The same with another content type. */
void ia_resp_body(ia_request *req, int status, const char *content_type, const char *body,
		  size_t len);
/* The error envelope {"error":{"code","message"}}; adds Retry-After when set. */
void ia_resp_err(ia_request *req, const ia_err *err);
void ia_resp_error(ia_request *req, int status, const char *code, const char *message);
/* rc == 0: 200 with out as the JSON body; else the error. */
void ia_resp_outcome(ia_request *req, int rc, const ia_buf *out, const ia_err *err);
void ia_resp_redirect(ia_request *req, const char *location);
/* 204 with CORS preflight headers, or 403 when the origin is not allowed. */
void ia_resp_preflight(ia_request *req, const struct ia_app *app);
/* Adds Access-Control-Allow-Origin etc. for an allowed Origin (no-op otherwise). */
void ia_resp_cors(ia_request *req, const struct ia_app *app);

/* Reason phrase for a status ("OK", "Not Found", ...). */
const char *ia_http_reason(int status);

#endif
