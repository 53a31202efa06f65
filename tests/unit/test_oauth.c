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

int main(void)
{
	const char *json = "application/json", *form = "application/x-www-form-urlencoded";

	ia_log_init("test_oauth", IA_LOG_ERROR);
	if (sodium_init() < 0)
		return 1;
	CHECK(parse(json, "{\"access_token\":\"at-1.x_~+/=\",\"token_type\":\"Bearer\",\"refresh_token\":\"rt\"}") == 0,
	      "a plain answer is accepted");
	CHECK(parse(json, "{\"access_token\":\"a b\",\"token_type\":\"Bearer\"}") == 0,
	      "a space is a VSCHAR (RFC 6749 Appendix A)");
	CHECK(parse(json, "{\"access_token\":\"at\\r\\nX-Evil: 1\",\"token_type\":\"Bearer\"}") == 502,
	      "CR LF in access_token is refused (it would become a header line)");
	CHECK(parse(json, "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"refresh_token\":\"rt\\n\"}") == 502,
	      "LF in refresh_token is refused");
	CHECK(parse(json, "{\"access_token\":\"at\",\"token_type\":\"Bearer\\u0007\"}") == 502,
	      "a control character in token_type is refused");
	CHECK(parse(json, "{\"access_token\":\"\\u00e9t\\u00e9\",\"token_type\":\"Bearer\"}") == 502,
	      "non-ASCII in access_token is refused");
	CHECK(parse(form, "access_token=at%0D%0AX-Evil%3A%201&token_type=bearer") == 502,
	      "CR LF through a form-encoded answer is refused too");
	CHECK(parse(form, "access_token=at&token_type=bearer") == 0, "a form-encoded answer is accepted");
	return ia_test_done();
}
