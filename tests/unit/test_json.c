/* Request bodies: strict parsing and the NUL that would cut a string short. */
#include <string.h>

#include "ia_json.h"
#include "ia_test.h"

static int parses(const char *body, size_t len)
{
	ia_err err = { 0 };
	cJSON *root = ia_json_parse_object(body, len, &err);
	int ok = root != NULL;
	ia_json_free(root);
	return ok;
}

#define LIT(s) (s), sizeof(s) - 1

int main(void)
{
	CHECK(parses(LIT("{\"provider\":\"github\"}")), "a plain object parses");
	CHECK(!parses(LIT("{\"provider\":\"github\\u0000evil\"}")), "\\u0000 in a string is refused");
	CHECK(!parses(LIT("{\"provider\\u0000x\":\"github\"}")), "\\u0000 in a key is refused");
	CHECK(!parses(LIT("{\"provider\":\"github\0evil\"}")), "a raw NUL byte is refused");
	CHECK(!parses(LIT("{\"p\":\"x\\\0u\"}")), "a raw NUL byte after a backslash is refused");
	CHECK(parses(LIT("{\"p\":\"\\\\u0000\"}")), "an escaped backslash before u0000 is text, not NUL");
	CHECK(parses(LIT("{\"p\":\"\\u0001\"}")), "other escapes are fine");
	CHECK(!parses(LIT("{\"p\":1} x")), "trailing text is refused");
	CHECK(!parses(LIT("[1]")), "a top-level array is refused");
	CHECK(!parses(LIT("")), "an empty body is refused");

	CHECK(ia_json_has_nul(LIT("\"\\u0000\"")), "has_nul: escape");
	CHECK(!ia_json_has_nul(LIT("\"\\\"\\u0041\"")), "has_nul: escaped quote then \\u0041");
	CHECK(!ia_json_has_nul(LIT("u0000")), "has_nul: outside a string it is just letters");

	ia_err err = { 0 };
	const char *v = NULL;
	cJSON *root = ia_json_parse_object(LIT("{\"k\":\"v\",\"e\":\"\",\"n\":7,\"c\":\"a\\nb\"}"), &err);
	CHECK(root != NULL, "fields object parses");
	CHECK(ia_json_string(root, "k", true, 10, &v, &err) == 0 && v && strcmp(v, "v") == 0, "string field");
	CHECK(ia_json_string(root, "e", true, 10, &v, &err) == -1 && err.status == 400, "empty string refused");
	CHECK(ia_json_string(root, "n", true, 10, &v, &err) == -1, "a number is not a string");
	CHECK(ia_json_string(root, "c", true, 10, &v, &err) == -1, "control characters refused");
	CHECK(ia_json_string(root, "k", true, 0, &v, &err) == -1, "longer than the limit refused");
	CHECK(ia_json_string(root, "absent", false, 10, &v, &err) == 0 && v == NULL, "optional absent is NULL");
	CHECK(ia_json_string(root, "absent", true, 10, &v, &err) == -1, "required absent refused");
	ia_json_free(root);

	/* scopes: one array text, item by item */
	ia_buf scopes;
	size_t n = 0;
	char long_scope[IA_SCOPE_MAX_CHARS + 2];
	memset(long_scope, 'a', sizeof long_scope - 1);
	long_scope[sizeof long_scope - 1] = '\0';
	ia_buf_init(&scopes, 4096);
	CHECK(ia_buf_putc(&scopes, '[') == 0, "scopes: buffer");
	CHECK(ia_json_append_scope(&scopes, &n, 3, LIT("repo"), true, &err) == 0, "scope: plain");
	CHECK(ia_json_append_scope(&scopes, &n, 3, "", 0, true, &err) == 0 && n == 1, "scope: empty is skipped, not counted");
	CHECK(ia_json_append_scope(&scopes, &n, 3, LIT("a\"b"), true, &err) == -1 && err.status == 400,
	      "scope: a quote is not an RFC 6749 scope-token character");
	CHECK(ia_json_append_scope(&scopes, &n, 3, LIT("a\\b"), true, &err) == -1, "scope: nor a backslash");
	CHECK(ia_json_append_scope(&scopes, &n, 3, LIT("caf\xc3\xa9"), true, &err) == -1, "scope: nor a non-ASCII byte");
	CHECK(ia_json_append_scope(&scopes, &n, 3, LIT("a\"b"), false, &err) == 0, "granted scope: a quote is kept");
	CHECK(ia_json_append_scope(&scopes, &n, 4, LIT("a b"), false, &err) == -1, "granted scope: no space inside");
	CHECK(ia_json_append_scope(&scopes, &n, 4, LIT("a\x7f"), false, &err) == -1, "granted scope: no DEL");
	CHECK(ia_json_append_scope(&scopes, &n, 4, long_scope, IA_SCOPE_MAX_CHARS + 1, false, &err) == -1,
	      "scope: over IA_SCOPE_MAX_CHARS refused");
	CHECK(ia_json_append_scope(&scopes, &n, 4, long_scope, IA_SCOPE_MAX_CHARS, false, &err) == 0,
	      "scope: exactly IA_SCOPE_MAX_CHARS accepted");
	CHECK(ia_json_append_scope(&scopes, &n, 3, LIT("more"), false, &err) == -1 && n == 3,
	      "scope: more than max_items refused");
	CHECK(ia_buf_putc(&scopes, ']') == 0, "scopes: close");
	cJSON *arr = cJSON_Parse(ia_buf_cstr(&scopes));
	CHECK(cJSON_GetArraySize(arr) == 3 && strcmp(cJSON_GetArrayItem(arr, 1)->valuestring, "a\"b") == 0,
	      "scopes: valid JSON, the quote escaped");
	cJSON_Delete(arr);
	ia_buf_release(&scopes);
	return ia_test_done();
}
