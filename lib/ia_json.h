/* ia_json: strict parsing of request bodies and typed field access (cJSON).
 *
 * Bodies are parsed from their exact length: trailing bytes or an embedded NUL
 * are invalid_json. Request bodies hold secrets, so trees are freed with
 * ia_json_free(), which wipes every string first.
 *
 * Field getters fill an ia_err with 400 invalid_request naming the field
 * (never its value) and return -1; *out is set to NULL when absent.
 */
#ifndef IA_JSON_H
#define IA_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "ia_buf.h"
#include "ia_err.h"

/* Does JSON text hold a NUL, raw or as the escape \u0000 inside a string?
 * cJSON would decode it into a C string that silently ends there, so
 * "github\u0000evil" would read as "github". */
bool ia_json_has_nul(const char *text, size_t len);

/* A JSON object, or NULL with 400 invalid_json (or invalid_request when the
 * top level is not an object). Caller frees with ia_json_free(). */
cJSON *ia_json_parse_object(const char *body, size_t len, ia_err *err);
/* Wipes every string in the tree, then deletes it. NULL is fine. */
void ia_json_free(cJSON *root);

/* A string field of at most max_len bytes without control characters.
 * required: absent is an error. Empty strings are errors. */
int ia_json_string(const cJSON *obj, const char *key, bool required, size_t max_len,
		   const char **out, ia_err *err);
/* A secret the caller hands us to keep and give back (an API key, a
 * password): it may hold line breaks and tabs (a PEM key, a service account's
 * JSON), other control characters are refused; may_be_empty for a password
 * (HTTP Basic with the key as user name and an empty password is common).
 * Never sent in a header by intauth itself. */
int ia_json_secret(const cJSON *obj, const char *key, bool required, bool may_be_empty,
		   size_t max_len, const char **out, ia_err *err);
/* An object field (absent -> *out = NULL unless required). */
int ia_json_object(const cJSON *obj, const char *key, bool required, const cJSON **out,
		   ia_err *err);
/* A boolean field, default when absent. */
int ia_json_bool(const cJSON *obj, const char *key, bool dflt, bool *out, ia_err *err);

#define IA_SCOPE_MAX_CHARS 256
/* Scopes one authorization request may ask for; a provider's default_scopes
 * are held to it too, or auth-start without scopes= could never succeed. */
#define IA_SCOPE_REQUEST_MAX_ITEMS 50

/* Appends one OAuth scope (len bytes at s) as a string item of the JSON array
 * text being built in json, its "[" already written; an empty scope is
 * skipped. *n counts the items written. More than max_items, a scope over
 * IA_SCOPE_MAX_CHARS or a byte outside the allowed set is 400
 * invalid_request. rfc6749_only: RFC 6749 §3.3 scope-token characters only
 * (printable ASCII but quote and backslash): for what we send to a provider,
 * and for what one says it granted in a token answer; otherwise anything but
 * controls, space and DEL (JSON-escaped): for the scopes a caller of
 * storeCredentials records. */
int ia_json_append_scope(ia_buf *json, size_t *n, size_t max_items, const char *s, size_t len,
			 bool rfc6749_only, ia_err *err);
/* The same for each item of list split at any of the bytes in seps (empty
 * items skipped): "repo,gist" or "openid email". */
int ia_json_append_scope_list(ia_buf *json, size_t *n, size_t max_items, const char *list,
			      const char *seps, bool rfc6749_only, ia_err *err);

#endif
