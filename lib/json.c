#include "ia_json.h"

#include <string.h>

#include <sodium.h>

bool ia_json_has_nul(const char *text, size_t len)
{
	bool in_string = false;

	/* first on its own: the scan below steps over escaped characters */
	if (memchr(text, '\0', len))
		return true;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (!in_string) {
			in_string = c == '"';
			continue;
		}
		if (c == '"') {
			in_string = false;
		} else if (c == '\\' && i + 1 < len) {
			if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
				return true;
			i++;    /* the escaped character can't end the string */
		}
	}
	return false;
}

cJSON *ia_json_parse_object(const char *body, size_t len, ia_err *err)
{
	const char *end = NULL;
	cJSON *root;

	if (len > 0 && ia_json_has_nul(body, len)) {
		ia_err_set(err, 400, "invalid_json", "The request body holds a NUL character.");
		return NULL;
	}
	if (len == 0) {
		ia_err_set(err, 400, "invalid_json", "The request body must be a JSON object.");
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (root && end) {
		/* only whitespace may follow the value */
		while (end < body + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
			end++;
	}
	if (!root || end != body + len) {
		ia_json_free(root);
		ia_err_set(err, 400, "invalid_json", "The request body is not valid JSON.");
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		ia_json_free(root);
		ia_err_set(err, 400, "invalid_json", "The request body must be a JSON object.");
		return NULL;
	}
	return root;
}

static void wipe(cJSON *node)
{
	for (; node; node = node->next) {
		if (node->valuestring)
			sodium_memzero(node->valuestring, strlen(node->valuestring));
		if (node->child)
			wipe(node->child);
	}
}

void ia_json_free(cJSON *root)
{
	if (!root)
		return;
	wipe(root);
	cJSON_Delete(root);
}

static const cJSON *field(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A string field; controls are refused but for those in allowed_controls. */
static int string_field(const cJSON *obj, const char *key, bool required, bool may_be_empty,
			size_t max_len, const char *allowed_controls, const char **out, ia_err *err)
{
	const cJSON *v = field(obj, key);

	*out = NULL;
	if (!v) {
		if (required)
			return ia_err_set(err, 400, "invalid_request", "Field \"%s\" is required.", key);
		return 0;
	}
	if (!cJSON_IsString(v) || !v->valuestring)
		return ia_err_set(err, 400, "invalid_request", "Field \"%s\" must be a string.", key);
	size_t n = strlen(v->valuestring);
	if (n == 0 && !may_be_empty)
		return ia_err_set(err, 400, "invalid_request", "Field \"%s\" must not be empty.", key);
	if (n > max_len)
		return ia_err_set(err, 400, "invalid_request", "Field \"%s\" is longer than %zu bytes.",
				  key, max_len);
	for (size_t i = 0; i < n; i++) {
		char c = v->valuestring[i];
		if (((unsigned char)c < 0x20 && !strchr(allowed_controls, c)) || c == 0x7f)
			return ia_err_set(err, 400, "invalid_request",
					  "Field \"%s\" holds control characters.", key);
	}
	*out = v->valuestring;
	return 0;
}

int ia_json_string(const cJSON *obj, const char *key, bool required, size_t max_len,
		   const char **out, ia_err *err)
{
	return string_field(obj, key, required, false, max_len, "", out, err);
}

int ia_json_secret(const cJSON *obj, const char *key, bool required, bool may_be_empty,
		   size_t max_len, const char **out, ia_err *err)
{
	return string_field(obj, key, required, may_be_empty, max_len, "\t\n\r", out, err);
}

int ia_json_object(const cJSON *obj, const char *key, bool required, const cJSON **out,
		   ia_err *err)
{
	const cJSON *v = field(obj, key);

	*out = NULL;
	if (!v) {
		if (required)
			return ia_err_set(err, 400, "invalid_request", "Field \"%s\" is required.", key);
		return 0;
	}
	if (!cJSON_IsObject(v))
		return ia_err_set(err, 400, "invalid_request", "Field \"%s\" must be an object.", key);
	*out = v;
	return 0;
}

int ia_json_bool(const cJSON *obj, const char *key, bool dflt, bool *out, ia_err *err)
{
	const cJSON *v = field(obj, key);

	*out = dflt;
	if (!v)
		return 0;
	if (!cJSON_IsBool(v))
		return ia_err_set(err, 400, "invalid_request", "Field \"%s\" must be true or false.", key);
	*out = cJSON_IsTrue(v);
	return 0;
}

static bool scope_byte_ok(unsigned char c, bool rfc6749_only)
{
	if (rfc6749_only)
		return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';
	return c >= 0x21 && c != 0x7f;
}

int ia_json_append_scope(ia_buf *json, size_t *n, size_t max_items, const char *s, size_t len,
			 bool rfc6749_only, ia_err *err)
{
	char scope[IA_SCOPE_MAX_CHARS + 1];

	if (len == 0)
		return 0;
	if (len > IA_SCOPE_MAX_CHARS || *n >= max_items)
		return ia_err_set(err, 400, "invalid_request", "Too many or too long scopes.");
	for (size_t i = 0; i < len; i++)
		if (!scope_byte_ok((unsigned char)s[i], rfc6749_only))
			return ia_err_set(err, 400, "invalid_request", "A scope holds invalid characters.");
	memcpy(scope, s, len);
	scope[len] = '\0';
	if (ia_buf_puts(json, *n ? ",\"" : "\"") || ia_buf_json_escape(json, scope) ||
	    ia_buf_putc(json, '"'))
		return ia_err_oom(err);
	(*n)++;
	return 0;
}

int ia_json_append_scope_list(ia_buf *json, size_t *n, size_t max_items, const char *list,
			      const char *seps, bool rfc6749_only, ia_err *err)
{
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, seps);
		if (ia_json_append_scope(json, n, max_items, p, len, rfc6749_only, err))
			return -1;
		p += len;
		if (*p)
			p++;
	}
	return 0;
}
