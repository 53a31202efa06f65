/* Fuzz target: request parsing (ia_request_init in lib/http.c: the raw path
 * split into percent-decoded segments, the query string into pairs) and the
 * header readers (ia_request_header_n, ia_request_cookie,
 * ia_request_authenticate), through a FastCGI request whose parameters are
 * built here.
 *
 * Input lines: REQUEST_URI (or DOCUMENT_URI when byte 0 is odd), QUERY_STRING,
 * HTTP_COOKIE, HTTP_AUTHORIZATION, then raw "NAME=value" parameters (repeats
 * allowed, as older nginx sends repeated headers).
 * Properties (ia_http.h): at most IA_MAX_PATH_SEGMENTS segments, none empty or
 * holding '/', NUL or control characters; at most IA_MAX_QUERY_PAIRS pairs,
 * each found again by ia_request_query; a cookie value fits its buffer;
 * failures are 4xx; a token authenticates only as a role it carries.
 */
#include "fuzz_common.h"

#include <fcgiapp.h>
#include <sodium.h>

#include "ia_app.h"
#include "ia_http.h"
#include "ia_log.h"

#define MAX_PARAMS 24

static ia_app app;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static unsigned char secret[] = "fuzz-jwt-secret-of-at-least-32-characters";

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		return 1;
	ia_log_init("fuzz", IA_LOG_ERROR);
	memset(&app, 0, sizeof app);
	app.cfg.jwt_secret = secret;
	app.cfg.jwt_secret_len = sizeof secret - 1;
	app.cfg.jwt_audience = "authenticated";
	return 0;
}

static char *param(const char *name, const char *value, size_t n)
{
	size_t nl = strlen(name);
	char *p = malloc(nl + 1 + n + 1);
	FUZZ_CHECK(p != NULL);
	memcpy(p, name, nl);
	p[nl] = '=';
	memcpy(p + nl + 1, value, n);
	p[nl + 1 + n] = '\0';
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed[] = { NULL, "QUERY_STRING", "HTTP_COOKIE", "HTTP_AUTHORIZATION" };
	char *env[MAX_PARAMS + 1] = { 0 };
	size_t n_env = 0;

	if (size < 1)
		return 0;
	const char *uri_var = data[0] & 1 ? "DOCUMENT_URI" : "REQUEST_URI";
	char *text = fuzz_strndup(data + 1, size - 1);
	size_t len = size - 1;
	/* lines; a NUL ends a parameter as it would in a C string */
	size_t line = 0;
	for (size_t start = 0; start <= len && n_env < MAX_PARAMS; line++) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *s = text + start;
		size_t n = strnlen(s, end - start);
		if (line < 4)
			env[n_env++] = param(line == 0 ? uri_var : fixed[line], s, n);
		else if (memchr(s, '=', n))
			env[n_env++] = fuzz_strndup((const uint8_t *)s, n);
		if (!nl)
			break;
		start = end + 1;
	}
	env[n_env] = NULL;

	FCGX_Request fcgx;
	memset(&fcgx, 0, sizeof fcgx);
	fcgx.envp = env;
	ia_request req;
	ia_err err = { 0 };
	if (ia_request_init(&req, &fcgx, &err) != 0) {
		FUZZ_CHECK(err.status >= 400 && err.status < 500);
	} else {
		FUZZ_CHECK(req.n_segments <= IA_MAX_PATH_SEGMENTS && req.n_query <= IA_MAX_QUERY_PAIRS);
		for (size_t i = 0; i < req.n_segments; i++) {
			const char *seg = req.segments[i];
			FUZZ_CHECK(seg[0] != '\0');
			for (const char *c = seg; *c; c++)
				FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != '/' && *c != 0x7f);
		}
		for (size_t i = 0; i < req.n_query; i++) {
			const char *v = ia_request_query(&req, req.query_keys[i]);
			FUZZ_CHECK(v != NULL);
		}
		char cookie[64];
		if (ia_request_cookie(&req, "intauth_flow", cookie, sizeof cookie) == 0)
			FUZZ_CHECK(strlen(cookie) < sizeof cookie);
		int count;
		const char *h = ia_request_header_n(&req, "X-Hub-Signature-256", &count);
		FUZZ_CHECK((h == NULL) == (count == 0));
		h = ia_request_header_n(&req, "Stripe-Signature", &count);
		FUZZ_CHECK((h == NULL) == (count == 0));
		(void)ia_request_header(&req, "Content-Type");
		static const unsigned allows[] = { IA_ALLOW_USER, IA_ALLOW_SERVICE,
						   IA_ALLOW_USER | IA_ALLOW_SERVICE };
		for (size_t a = 0; a < 3; a++) {
			memset(&err, 0, sizeof err);
			if (ia_request_authenticate(&req, &app, allows[a], &err) == 0)
				FUZZ_CHECK(allows[a] & (1u << req.claims.role));
			else
				FUZZ_CHECK(err.status == 401 || err.status == 403);
		}
	}
	ia_request_release(&req);
	for (size_t i = 0; i < n_env; i++)
		free(env[i]);
	free(text);
	return 0;
}
