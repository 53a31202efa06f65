/* Fuzz target: token endpoint answers (ia_oauth_parse_token_response in
 * lib/oauth.c: JSON, or form-encoded as some providers send), and the
 * credential JSON sealed from a parsed answer (ia_token_set_secret_json).
 *
 * Input: byte 0 picks the HTTP status and the Content-Type; the rest is the
 * body, passed with its exact length and not NUL-terminated.
 * Properties (ia_oauth.h): success only for a 2xx answer carrying non-empty
 * access_token and token_type; a failure is 422 reauthorization_required or
 * 502 provider_error and leaves no token behind; expires_in is -1 or
 * positive; the sealed credential JSON is an object with the same tokens.
 */
#include "fuzz_common.h"

#include <cJSON.h>
#include <sodium.h>

#include "ia_buf.h"
#include "ia_log.h"
#include "ia_oauth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ia_log_init("fuzz", IA_LOG_ERROR);
	return sodium_init() < 0 ? 1 : 0;
}

static void same_string(const cJSON *obj, const char *key, const char *want)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!want) {
		FUZZ_CHECK(v == NULL);
		return;
	}
	FUZZ_CHECK(cJSON_IsString(v) && strcmp(v->valuestring, want) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 200, 201, 400, 401, 403, 429, 500, 503, 302 };
	static const char *const types[] = {
		"application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
		"text/plain; charset=utf-8", "text/html", NULL, "application/problem+json", "",
	};
	if (size < 1)
		return 0;
	long status = statuses[data[0] % (sizeof statuses / sizeof *statuses)];
	const char *ctype = types[(data[0] / 10) % (sizeof types / sizeof *types)];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;

	ia_token_set t;
	ia_err err = { 0 };
	memset(&t, 0x41, sizeof t);
	int r = ia_oauth_parse_token_response(status, ctype, body, len, &t, &err);
	if (r != 0) {
		FUZZ_CHECK(r == -1);
		FUZZ_CHECK((err.status == 422 && strcmp(err.code, "reauthorization_required") == 0) ||
			   (err.status == 502 && strcmp(err.code, "provider_error") == 0));
		FUZZ_CHECK(!t.access_token && !t.refresh_token && !t.token_type && !t.id_token && !t.scope);
		return 0;
	}
	FUZZ_CHECK(status >= 200 && status < 300);
	FUZZ_CHECK(t.access_token && *t.access_token && t.token_type && *t.token_type);
	FUZZ_CHECK(t.expires_in == -1 || t.expires_in > 0);

	ia_buf json;
	ia_buf_init(&json, 1 << 20);
	FUZZ_CHECK(ia_token_set_secret_json(&t, "kept-refresh-token", &json) == 0);
	cJSON *root = cJSON_ParseWithLength(json.data, json.len);
	FUZZ_CHECK(cJSON_IsObject(root));
	same_string(root, "access_token", t.access_token);
	same_string(root, "refresh_token", t.refresh_token ? t.refresh_token : "kept-refresh-token");
	same_string(root, "token_type", t.token_type);
	same_string(root, "id_token", t.id_token);
	cJSON_Delete(root);
	ia_buf_release(&json);
	ia_token_set_release(&t);
	return 0;
}
