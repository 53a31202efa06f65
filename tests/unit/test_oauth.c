/* Token endpoint answers: what a token may hold before it is stored and later
 * sent in an Authorization header. */
#include <string.h>

#include <sodium.h>

#include "ia_log.h"
#include "ia_oauth.h"
#include "ia_test.h"

/* 0 when accepted; else the HTTP status of the refusal */
static long parse(const char *content_type, const char *body)
{
	ia_token_set t = { 0 };
	ia_err err = { 0 };
	int rc = ia_oauth_parse_token_response(200, content_type, body, strlen(body), &t, &err);
	ia_token_set_release(&t);
	return rc == 0 ? 0 : err.status;
}

#define JSON "application/json"
#define FORM "application/x-www-form-urlencoded"

static const struct {
	const char *content_type, *body;
	long want;   /* 0 accepted, else the refusal's status */
	const char *name;
} cases[] = {
	{ JSON, "{\"access_token\":\"at-1.x_~+/=\",\"token_type\":\"Bearer\",\"refresh_token\":\"rt\"}", 0,
	  "a plain answer is accepted" },
	{ JSON, "{\"access_token\":\"a b\",\"token_type\":\"Bearer\"}", 0,
	  "a space is a VSCHAR (RFC 6749 Appendix A)" },
	{ JSON, "{\"access_token\":\"at\\r\\nX-Evil: 1\",\"token_type\":\"Bearer\"}", 502,
	  "CR LF in access_token is refused (it would become a header line)" },
	{ JSON, "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"refresh_token\":\"rt\\n\"}", 502,
	  "LF in refresh_token is refused" },
	{ JSON, "{\"access_token\":\"at\",\"token_type\":\"Bearer\\u0007\"}", 502,
	  "a control character in token_type is refused" },
	{ JSON, "{\"access_token\":\"\\u00e9t\\u00e9\",\"token_type\":\"Bearer\"}", 502,
	  "non-ASCII in access_token is refused" },
	{ FORM, "access_token=at%0D%0AX-Evil%3A%201&token_type=bearer", 502,
	  "CR LF through a form-encoded answer is refused too" },
	{ FORM, "access_token=at&token_type=bearer", 0, "a form-encoded answer is accepted" },
};

int main(void)
{
	ia_log_init("test_oauth", IA_LOG_ERROR);
	if (sodium_init() < 0)
		return 1;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK(parse(cases[i].content_type, cases[i].body) == cases[i].want, cases[i].name);
	return ia_test_done();
}
