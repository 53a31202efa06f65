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
	return ia_test_done();
}
