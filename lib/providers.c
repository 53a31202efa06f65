/* providers: the provider catalog (SPEC §7), loaded from JSON and checked once
 * at start so that a broken catalog stops the program with a message naming the
 * file, the provider and the field, instead of failing later inside a request.
 *
 * Every URL is checked as if it were about to be fetched: https only (plain
 * http only to loopback hosts, for tests), no userinfo, no fragment, no private,
 * link-local or reserved address literal. `{param}` placeholders are filled at
 * request time from values that must match the declared pattern and hold only
 * unreserved URL characters; the filled URL is checked again, so a value can
 * never turn a provider URL into one that points inside the network.
 */
#include "ia_providers.h"
#include "ia_json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "ia_buf.h"
#include "ia_err.h"

#define IA_PROVIDERS_FILE_MAX   ((size_t)4 << 20)  /* a catalog is small; cap what we read */
#define IA_PROVIDER_NAME_MAX    64
#define IA_DISPLAY_NAME_MAX     100
#define IA_URL_MAX              2048
#define IA_SEPARATOR_MAX        4
#define IA_AUTH_PARAMS_MAX      32
#define IA_AUTH_PARAM_KEY_MAX   64
#define IA_AUTH_PARAM_VALUE_MAX 512
#define IA_PARAMS_MAX           8
#define IA_PARAM_NAME_MAX       32
#define IA_PARAM_PATTERN_MAX    256
#define IA_PARAM_VALUE_MAX      255
#define IA_HEADER_NAME_MAX      64
#define IA_SIG_PREFIX_MAX       32
#define IA_PUBLIC_JSON_MAX      ((size_t)4 << 20)

const char *const ia_auth_type_names[IA_AUTH__MAX] = { "oauth2", "api_key", "basic" };

const char *const ia_webhook_scheme_names[IA_WH__MAX] = {
	"", "github", "stripe", "slack", "standard", "shopify", "hmac"
};

/* OAuth parameters intauth itself sets: a catalog entry must not be able to
 * replace the redirect_uri, the state or the PKCE challenge. */
static const char *const reserved_auth_params[] = {
	"response_type", "client_id", "client_secret", "redirect_uri", "scope", "state",
	"code_challenge", "code_challenge_method",
};

int ia_auth_type_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < IA_AUTH__MAX; i++)
		if (strcmp(s, ia_auth_type_names[i]) == 0)
			return i;
	return -1;
}

/* ---- small character-class helpers ---------------------------------------- */

static bool is_lower_name(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return n > 0 && n <= max;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Unreserved URL characters minus '~': what a filled-in value may hold, so it
 * needs no encoding and cannot add a path, a query, a port or userinfo. */
static bool is_param_value_char(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

/* Header names: a conservative subset of the RFC 9110 token. */
static bool is_header_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!is_alnum(s[n]) && s[n] != '-' && s[n] != '_')
			return false;
	return n > 0 && n <= IA_HEADER_NAME_MAX;
}

/* Printable text without control characters, valid UTF-8: display names go
 * into JSON answers and must stay valid there. */
static bool is_clean_utf8(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (p[n]) {
		unsigned char c = p[n];
		size_t len, i;
		uint32_t cp;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			n++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (i = 1; i < len; i++) {
			if ((p[n + i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[n + i] & 0x3f);
		}
		/* overlong forms, surrogates and values past U+10FFFF */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		n += len;
	}
	return n <= max;
}

/* RFC 6749 §3.3 scope-token: NQCHAR = %x21 / %x23-5B / %x5D-7E */
static bool is_scope_token(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
			return false;
	}
	return n > 0 && n <= IA_SCOPE_MAX_CHARS;
}

static bool is_printable_ascii(const char *s, size_t max, bool allow_space)
{
	size_t n = 0;

	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (c > 0x7e || c < 0x20 || (c == 0x20 && !allow_space))
			return false;
	}
	return n > 0 && n <= max;
}

/* ---- URL checks ------------------------------------------------------------ */

enum ia_host_kind { IA_HOST_NAME = 0, IA_HOST_LOOPBACK, IA_HOST_PUBLIC_IP };

/* NULL when a is a public unicast IPv4 address or loopback (*loopback set),
 * else why it is refused. */
static const char *ipv4_problem(const unsigned char a[4], bool *loopback)
{
	*loopback = false;
	if (a[0] == 127) {
		*loopback = true;
		return NULL;
	}
	if (a[0] == 0)
		return "is an unspecified address (0.0.0.0/8)";
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
		return "is a private address";
	if (a[0] == 169 && a[1] == 254)
		return "is a link-local address";
	if (a[0] == 100 && (a[1] & 0xc0) == 64)
		return "is a shared (carrier-grade NAT) address";
	if (a[0] >= 224)
		return "is a multicast or reserved address";
	return NULL;
}

static const char *ipv6_problem(const unsigned char a[16], bool *loopback)
{
	static const unsigned char zero12[12];
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	*loopback = false;
	if (memcmp(a, zero12, 12) == 0 && a[12] == 0 && a[13] == 0 && a[14] == 0) {
		if (a[15] == 1) {
			*loopback = true;
			return NULL;
		}
		if (a[15] == 0)
			return "is the unspecified address (::)";
	}
	if (memcmp(a, mapped, 12) == 0) {
		/* an IPv4-mapped address reaches the IPv4 host: judge that one, and
		 * do not accept it as a second spelling of loopback */
		bool lo;
		const char *why = ipv4_problem(a + 12, &lo);
		return why ? why : lo ? "is an IPv4-mapped loopback address (write 127.0.0.1)" : NULL;
	}
	if (memcmp(a, zero12, 12) == 0)
		return "is a deprecated IPv4-compatible address";
	if ((a[0] & 0xfe) == 0xfc)
		return "is a unique-local address (fc00::/7)";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "is a link-local address (fe80::/10)";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return "is a site-local address (fec0::/10)";
	if (a[0] == 0xff)
		return "is a multicast address";
	return NULL;
}

/* Host names: LDH labels. An all-numeric last label makes it an address (as
 * resolvers read "2130706433" or "0x7f.1"), which must then be a strict
 * dotted quad so that the checks above see what the resolver will see. */
static const char *host_problem(const char *host, size_t len, enum ia_host_kind *kind)
{
	char buf[256];
	size_t label = 0, last_label_start = 0;

	*kind = IA_HOST_NAME;
	if (len == 0)
		return "has no host";
	if (host[0] == '[') {
		unsigned char a6[16];
		bool lo;
		const char *why;

		if (len < 3 || host[len - 1] != ']' || len - 2 >= sizeof buf)
			return "has a malformed IPv6 address";
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, a6) != 1)
			return "has a malformed IPv6 address";
		why = ipv6_problem(a6, &lo);
		if (why)
			return why;
		*kind = lo ? IA_HOST_LOOPBACK : IA_HOST_PUBLIC_IP;
		return NULL;
	}
	if (len > 253)
		return "has a host name longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		char c = host[i];
		if (c == '.') {
			if (label == 0 || host[i - 1] == '-')
				return "has a malformed host name";
			label = 0;
			last_label_start = i + 1;
			continue;
		}
		if (!is_alnum(c) && c != '-')
			return "has a host name with characters outside [A-Za-z0-9.-]";
		if (label == 0 && c == '-')
			return "has a malformed host name";
		if (++label > 63)
			return "has a host name label longer than 63 characters";
	}
	if (label == 0 || host[len - 1] == '-')
		return "has a malformed host name";
	if (host[last_label_start] >= '0' && host[last_label_start] <= '9') {
		unsigned char a4[4];
		bool lo;
		const char *why;

		memcpy(buf, host, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET, buf, a4) != 1)
			return "has a numeric host that is not a dotted IPv4 address";
		why = ipv4_problem(a4, &lo);
		if (why)
			return why;
		*kind = lo ? IA_HOST_LOOPBACK : IA_HOST_PUBLIC_IP;
		return NULL;
	}
	if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
		*kind = IA_HOST_LOOPBACK;
	return NULL;
}

/* NULL when url may be fetched by intauth, else why not. */
static const char *url_problem(const char *url, enum ia_host_kind *kind)
{
	size_t len = strlen(url), alen, hlen;
	const char *rest, *host, *colon;
	bool http;
	const char *why;

	*kind = IA_HOST_NAME;
	if (len == 0)
		return "is empty";
	if (len > IA_URL_MAX)
		return "is longer than 2048 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		/* bytes that parsers disagree about (backslash, spaces, quotes)
		 * have no place in a configured endpoint */
		if (c <= 0x20 || c >= 0x7f || strchr("\\\"<>^`|{}", c))
			return "holds a character that is not allowed in a URL";
	}
	if (strncasecmp(url, "https://", 8) == 0) {
		http = false;
		rest = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		http = true;
		rest = url + 7;
	} else {
		return "must be an https URL";
	}
	if (strchr(url, '#'))
		return "must not hold a fragment";
	alen = strcspn(rest, "/?");
	if (memchr(rest, '@', alen))
		return "must not hold user information (user@host)";
	host = rest;
	if (rest[0] == '[') {
		const char *close = memchr(rest, ']', alen);
		if (!close)
			return "has a malformed IPv6 address";
		hlen = (size_t)(close - rest) + 1;
		colon = hlen < alen ? rest + hlen : NULL;
		if (colon && *colon != ':')
			return "has a malformed IPv6 address";
	} else {
		colon = memchr(rest, ':', alen);
		hlen = colon ? (size_t)(colon - rest) : alen;
	}
	if (colon) {
		size_t plen = alen - (size_t)(colon - rest) - 1;
		unsigned long port = 0;

		if (plen == 0 || plen > 5)
			return "has a malformed port";
		for (size_t i = 1; i <= plen; i++) {
			if (colon[i] < '0' || colon[i] > '9')
				return "has a malformed port";
			port = port * 10 + (unsigned long)(colon[i] - '0');
		}
		if (port == 0 || port > 65535)
			return "has a port outside 1-65535";
	}
	why = host_problem(host, hlen, kind);
	if (why)
		return why;
	if (http && *kind != IA_HOST_LOOPBACK)
		return "must be https (plain http is allowed only for loopback hosts)";
	return NULL;
}

/* At s (a '{'), reads a placeholder name into name; returns the bytes it spans
 * through the '}', or 0 when it is not a well-formed {name}. */
static size_t placeholder_at(const char *s, char name[IA_PARAM_NAME_MAX + 1])
{
	size_t n = 0;

	for (s++; s[n] && s[n] != '}'; n++) {
		char c = s[n];
		if (n >= IA_PARAM_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
		name[n] = c;
	}
	if (n == 0 || s[n] != '}')
		return 0;
	name[n] = '\0';
	return n + 2;
}

static const ia_provider_param *param_find(const ia_provider *p, const char *name)
{
	for (size_t i = 0; i < p->n_params; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return &p->params[i];
	return NULL;
}

/* Does the host part of tmpl hold a placeholder? Then a filled value decides
 * the host, and must name a DNS host, never an address or localhost. */
static bool host_has_placeholder(const char *tmpl)
{
	const char *rest = strstr(tmpl, "://");

	if (!rest)
		return strchr(tmpl, '{') != NULL;
	rest += 3;
	return memchr(rest, '{', strcspn(rest, "/?#")) != NULL;
}

/* Checks a URL template of p: every {name} declared, and the URL valid once
 * each placeholder holds a harmless sample value. why gets the problem. */
static int template_check(const ia_provider *p, const char *tmpl, char *why, size_t why_size)
{
	ia_buf sample;
	enum ia_host_kind kind;
	const char *problem;
	int ret = -1;

	ia_buf_init(&sample, IA_URL_MAX + 1);
	for (const char *s = tmpl; *s;) {
		char name[IA_PARAM_NAME_MAX + 1];
		size_t k;

		if (*s == '}') {
			snprintf(why, why_size, "has a '}' outside a {placeholder}");
			goto out;
		}
		if (*s != '{') {
			if (ia_buf_putc(&sample, *s++) != 0) {
				snprintf(why, why_size, "is longer than 2048 characters");
				goto out;
			}
			continue;
		}
		k = placeholder_at(s, name);
		if (!k) {
			snprintf(why, why_size, "has a malformed {placeholder} (names are [a-z0-9_]+)");
			goto out;
		}
		if (!param_find(p, name)) {
			snprintf(why, why_size, "uses {%s}, which \"params\" does not declare", name);
			goto out;
		}
		if (ia_buf_putc(&sample, 'x') != 0) {
			snprintf(why, why_size, "is longer than 2048 characters");
			goto out;
		}
		s += k;
	}
	problem = url_problem(ia_buf_cstr(&sample), &kind);
	if (problem) {
		snprintf(why, why_size, "%s", problem);
		goto out;
	}
	ret = 0;
out:
	ia_buf_release(&sample);
	return ret;
}

/* ---- loading --------------------------------------------------------------- */

typedef struct ia_load_ctx {
	const char *file;
	const char *provider;         /* NULL until an entry is being read */
	char *err;
	size_t err_size;
} ia_load_ctx;

/* Fills err as "<file>: <provider>.<field>: <text>" and returns -1. */
static int load_fail(const ia_load_ctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int load_fail(const ia_load_ctx *c, const char *field, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	if (!c->err || c->err_size == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->provider && field)
		snprintf(c->err, c->err_size, "%s: %s.%s: %s", c->file, c->provider, field, msg);
	else if (c->provider)
		snprintf(c->err, c->err_size, "%s: %s: %s", c->file, c->provider, msg);
	else
		snprintf(c->err, c->err_size, "%s: %s", c->file, msg);
	return -1;
}

static void provider_release(ia_provider *p)
{
	free(p->name);
	free(p->display_name);
	free(p->authorization_url);
	free(p->token_url);
	free(p->issuer);
	free(p->revocation_url);
	free(p->userinfo_url);
	for (size_t i = 0; i < p->n_default_scopes; i++)
		free(p->default_scopes[i]);
	free(p->default_scopes);
	free(p->scope_separator);
	for (size_t i = 0; i < p->n_auth_params; i++) {
		free(p->auth_param_keys[i]);
		free(p->auth_param_values[i]);
	}
	free(p->auth_param_keys);
	free(p->auth_param_values);
	for (size_t i = 0; i < p->n_params; i++) {
		free(p->params[i].name);
		free(p->params[i].pattern);
	}
	free(p->params);
	free(p->webhook.signature_header);
	free(p->webhook.signature_prefix);
	free(p->webhook.timestamp_header);
	free(p->webhook.event_id_header);
	free(p->env_name);
	memset(p, 0, sizeof *p);
}

/* 0 with *out = NULL when key is absent or null, 1 with *out when it is a
 * string, -1 when it is anything else. */
static int opt_string(const cJSON *obj, const char *key, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return -1;
	*out = v->valuestring;
	return 1;
}

/* An optional (or required) non-empty string field, copied into *dst. */
static int take_string(const ia_load_ctx *c, const cJSON *obj, const char *key, bool required,
		       char **dst)
{
	const char *s;
	int r = opt_string(obj, key, &s);

	if (r < 0)
		return load_fail(c, key, "must be a string");
	if (r == 0) {
		if (required)
			return load_fail(c, key, "is required");
		return 0;
	}
	if (!*s)
		return load_fail(c, key, "must not be empty");
	*dst = strdup(s);
	if (!*dst)
		return load_fail(c, key, "out of memory");
	return 0;
}

static int take_url(const ia_load_ctx *c, const cJSON *obj, const char *key, ia_provider *p,
		    char **dst)
{
	char why[160];

	if (take_string(c, obj, key, false, dst) != 0)
		return -1;
	if (*dst && template_check(p, *dst, why, sizeof why) != 0)
		return load_fail(c, key, "%s", why);
	return 0;
}

static int parse_params(const ia_load_ctx *c, const cJSON *obj, ia_provider *p)
{
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(obj, "params");
	const cJSON *it;
	size_t n;

	if (!params || cJSON_IsNull(params))
		return 0;
	if (!cJSON_IsObject(params))
		return load_fail(c, "params", "must be an object of name: pattern");
	n = (size_t)cJSON_GetArraySize(params);
	if (n == 0)
		return 0;
	if (n > IA_PARAMS_MAX)
		return load_fail(c, "params", "has more than %d entries", IA_PARAMS_MAX);
	p->params = calloc(n, sizeof *p->params);
	if (!p->params)
		return load_fail(c, "params", "out of memory");
	cJSON_ArrayForEach(it, params) {
		ia_provider_param *pp = &p->params[p->n_params];
		size_t plen;
		regex_t re;
		int rc;

		if (!it->string || !is_lower_name(it->string, IA_PARAM_NAME_MAX))
			return load_fail(c, "params", "names must be [a-z0-9_]+, at most %d characters",
					 IA_PARAM_NAME_MAX);
		if (param_find(p, it->string))
			return load_fail(c, "params", "declares \"%s\" twice", it->string);
		if (!cJSON_IsString(it) || !it->valuestring)
			return load_fail(c, "params", "\"%s\" must be a pattern string", it->string);
		plen = strlen(it->valuestring);
		if (plen < 2 || plen > IA_PARAM_PATTERN_MAX ||
		    !is_printable_ascii(it->valuestring, IA_PARAM_PATTERN_MAX, false))
			return load_fail(c, "params", "\"%s\" must be a pattern of printable ASCII, "
					 "at most %d characters", it->string, IA_PARAM_PATTERN_MAX);
		/* an unanchored pattern accepts any value that merely contains a
		 * match: the catalog author must say ^...$ */
		if (it->valuestring[0] != '^' || it->valuestring[plen - 1] != '$' ||
		    it->valuestring[plen - 2] == '\\')
			return load_fail(c, "params", "\"%s\" must be anchored (^...$)", it->string);
		rc = regcomp(&re, it->valuestring, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char rmsg[80];

			regerror(rc, &re, rmsg, sizeof rmsg);
			return load_fail(c, "params", "\"%s\" is not a valid extended regular expression: %s",
					 it->string, rmsg);
		}
		regfree(&re);
		pp->name = strdup(it->string);
		pp->pattern = strdup(it->valuestring);
		p->n_params++;
		if (!pp->name || !pp->pattern)
			return load_fail(c, "params", "out of memory");
	}
	return 0;
}

static int parse_scopes(const ia_load_ctx *c, const cJSON *obj, ia_provider *p)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "default_scopes");
	const cJSON *it;
	size_t n;

	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr))
		return load_fail(c, "default_scopes", "must be an array of strings");
	n = (size_t)cJSON_GetArraySize(arr);
	if (n == 0)
		return 0;
	if (n > IA_SCOPE_REQUEST_MAX_ITEMS)
		return load_fail(c, "default_scopes", "has more than %d scopes", IA_SCOPE_REQUEST_MAX_ITEMS);
	p->default_scopes = calloc(n, sizeof *p->default_scopes);
	if (!p->default_scopes)
		return load_fail(c, "default_scopes", "out of memory");
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it) || !it->valuestring)
			return load_fail(c, "default_scopes", "must be an array of strings");
		if (!is_scope_token(it->valuestring))
			return load_fail(c, "default_scopes", "\"%.64s\" is not a valid scope token "
					 "(RFC 6749 §3.3, at most %d characters)", it->valuestring, IA_SCOPE_MAX_CHARS);
		if (strstr(it->valuestring, p->scope_separator))
			return load_fail(c, "default_scopes", "\"%.64s\" holds the scope separator",
					 it->valuestring);
		p->default_scopes[p->n_default_scopes] = strdup(it->valuestring);
		if (!p->default_scopes[p->n_default_scopes])
			return load_fail(c, "default_scopes", "out of memory");
		p->n_default_scopes++;
	}
	return 0;
}

static int parse_auth_params(const ia_load_ctx *c, const cJSON *obj, ia_provider *p)
{
	const cJSON *ap = cJSON_GetObjectItemCaseSensitive(obj, "authorization_params");
	const cJSON *it;
	size_t n;

	if (!ap || cJSON_IsNull(ap))
		return 0;
	if (!cJSON_IsObject(ap))
		return load_fail(c, "authorization_params", "must be an object of string values");
	n = (size_t)cJSON_GetArraySize(ap);
	if (n == 0)
		return 0;
	if (n > IA_AUTH_PARAMS_MAX)
		return load_fail(c, "authorization_params", "has more than %d entries", IA_AUTH_PARAMS_MAX);
	p->auth_param_keys = calloc(n, sizeof *p->auth_param_keys);
	p->auth_param_values = calloc(n, sizeof *p->auth_param_values);
	if (!p->auth_param_keys || !p->auth_param_values)
		return load_fail(c, "authorization_params", "out of memory");
	cJSON_ArrayForEach(it, ap) {
		const char *k = it->string;
		size_t klen = k ? strlen(k) : 0;

		if (klen == 0 || klen > IA_AUTH_PARAM_KEY_MAX)
			return load_fail(c, "authorization_params", "keys must be 1-%d characters",
					 IA_AUTH_PARAM_KEY_MAX);
		for (size_t i = 0; i < klen; i++)
			if (!is_alnum(k[i]) && k[i] != '_' && k[i] != '.' && k[i] != '-')
				return load_fail(c, "authorization_params", "keys must be [A-Za-z0-9_.-]+");
		for (size_t i = 0; i < sizeof reserved_auth_params / sizeof *reserved_auth_params; i++)
			if (strcmp(k, reserved_auth_params[i]) == 0)
				return load_fail(c, "authorization_params", "\"%s\" is set by intauth and "
						 "cannot be configured", k);
		for (size_t i = 0; i < p->n_auth_params; i++)
			if (strcmp(p->auth_param_keys[i], k) == 0)
				return load_fail(c, "authorization_params", "\"%s\" appears twice", k);
		if (!cJSON_IsString(it) || !it->valuestring)
			return load_fail(c, "authorization_params", "\"%s\" must be a string", k);
		if (!is_printable_ascii(it->valuestring, IA_AUTH_PARAM_VALUE_MAX, true))
			return load_fail(c, "authorization_params", "\"%s\" must be 1-%d printable ASCII "
					 "characters", k, IA_AUTH_PARAM_VALUE_MAX);
		p->auth_param_keys[p->n_auth_params] = strdup(k);
		p->auth_param_values[p->n_auth_params] = strdup(it->valuestring);
		p->n_auth_params++;
		if (!p->auth_param_keys[p->n_auth_params - 1] || !p->auth_param_values[p->n_auth_params - 1])
			return load_fail(c, "authorization_params", "out of memory");
	}
	return 0;
}

/* An optional header-name field of the webhook object. */
static int take_header(const ia_load_ctx *c, const cJSON *wh, const char *key, const char *field,
		       bool required, char **dst)
{
	const char *s;
	int r = opt_string(wh, key, &s);

	if (r < 0)
		return load_fail(c, field, "must be a string");
	if (r == 0)
		return required ? load_fail(c, field, "is required for the hmac scheme") : 0;
	if (!is_header_name(s))
		return load_fail(c, field, "must be a header name of 1-%d characters [A-Za-z0-9_-]",
				 IA_HEADER_NAME_MAX);
	*dst = strdup(s);
	return *dst ? 0 : load_fail(c, field, "out of memory");
}

static int parse_webhook(const ia_load_ctx *c, const cJSON *obj, ia_provider *p)
{
	const cJSON *wh = cJSON_GetObjectItemCaseSensitive(obj, "webhook");
	const char *s;
	int r, scheme = -1;

	p->webhook.scheme = IA_WH_NONE;
	if (!wh || cJSON_IsNull(wh))
		return 0;
	if (!cJSON_IsObject(wh))
		return load_fail(c, "webhook", "must be an object {\"scheme\": ...}");
	if (opt_string(wh, "scheme", &s) != 1)
		return load_fail(c, "webhook.scheme", "is required and must be a string");
	for (int i = 1; i < IA_WH__MAX; i++)
		if (strcmp(s, ia_webhook_scheme_names[i]) == 0)
			scheme = i;
	if (scheme < 0)
		return load_fail(c, "webhook.scheme", "unknown scheme \"%.32s\" (github, stripe, slack, "
				 "standard, shopify, hmac)", s);
	p->webhook.scheme = (enum ia_webhook_scheme)scheme;
	if (scheme != IA_WH_HMAC)
		return 0;
	if (take_header(c, wh, "header", "webhook.header", true, &p->webhook.signature_header) != 0 ||
	    take_header(c, wh, "timestamp_header", "webhook.timestamp_header", false,
			&p->webhook.timestamp_header) != 0 ||
	    take_header(c, wh, "event_id_header", "webhook.event_id_header", false,
			&p->webhook.event_id_header) != 0)
		return -1;
	r = opt_string(wh, "prefix", &s);
	if (r < 0)
		return load_fail(c, "webhook.prefix", "must be a string");
	if (r > 0 && *s) {
		if (!is_printable_ascii(s, IA_SIG_PREFIX_MAX, false))
			return load_fail(c, "webhook.prefix", "must be 1-%d printable ASCII characters",
					 IA_SIG_PREFIX_MAX);
		p->webhook.signature_prefix = strdup(s);
		if (!p->webhook.signature_prefix)
			return load_fail(c, "webhook.prefix", "out of memory");
	}
	r = opt_string(wh, "encoding", &s);
	if (r < 0)
		return load_fail(c, "webhook.encoding", "must be a string");
	p->webhook.encoding = IA_MAC_HEX;
	if (r > 0) {
		if (strcmp(s, "base64") == 0)
			p->webhook.encoding = IA_MAC_BASE64;
		else if (strcmp(s, "hex") != 0)
			return load_fail(c, "webhook.encoding", "must be \"hex\" or \"base64\"");
	}
	return 0;
}

/* Reads and checks one catalog entry into p (zeroed by the caller); on failure
 * p may hold a partial entry, which provider_release() frees. */
static int provider_parse(const ia_load_ctx *c, const char *name, const cJSON *obj, ia_provider *p)
{
	const cJSON *v;
	const char *s;
	int r, t;

	p->name = strdup(name);
	if (!p->name)
		return load_fail(c, NULL, "out of memory");
	p->env_name = strdup(name);
	if (!p->env_name)
		return load_fail(c, NULL, "out of memory");
	for (char *e = p->env_name; *e; e++)
		if (*e >= 'a' && *e <= 'z')
			*e = (char)(*e - 'a' + 'A');
	if (!cJSON_IsObject(obj))
		return load_fail(c, NULL, "must be an object");

	if (take_string(c, obj, "display_name", true, &p->display_name) != 0)
		return -1;
	if (!is_clean_utf8(p->display_name, IA_DISPLAY_NAME_MAX))
		return load_fail(c, "display_name", "must be UTF-8 text of at most %d bytes without "
				 "control characters", IA_DISPLAY_NAME_MAX);

	r = opt_string(obj, "auth_type", &s);
	if (r != 1)
		return load_fail(c, "auth_type", r == 0 ? "is required" : "must be a string");
	t = ia_auth_type_parse(s);
	if (t < 0)
		return load_fail(c, "auth_type", "unknown auth_type \"%.32s\" (oauth2, api_key, basic)", s);
	p->auth_type = (enum ia_auth_type)t;

	r = opt_string(obj, "scope_separator", &s);
	if (r < 0)
		return load_fail(c, "scope_separator", "must be a string");
	if (r > 0 && !is_printable_ascii(s, IA_SEPARATOR_MAX, true))
		return load_fail(c, "scope_separator", "must be 1-%d printable ASCII characters",
				 IA_SEPARATOR_MAX);
	p->scope_separator = strdup(r > 0 ? s : " ");
	if (!p->scope_separator)
		return load_fail(c, "scope_separator", "out of memory");

	r = opt_string(obj, "token_endpoint_auth", &s);
	if (r < 0)
		return load_fail(c, "token_endpoint_auth", "must be a string");
	p->token_endpoint_auth = IA_TOKEN_AUTH_POST;
	if (r > 0) {
		if (strcmp(s, "client_secret_basic") == 0)
			p->token_endpoint_auth = IA_TOKEN_AUTH_BASIC;
		else if (strcmp(s, "client_secret_post") != 0)
			return load_fail(c, "token_endpoint_auth", "unknown method \"%.32s\" "
					 "(client_secret_post, client_secret_basic)", s);
	}

	p->pkce = true;
	v = cJSON_GetObjectItemCaseSensitive(obj, "pkce");
	if (v && !cJSON_IsNull(v)) {
		if (!cJSON_IsBool(v))
			return load_fail(c, "pkce", "must be true or false");
		p->pkce = cJSON_IsTrue(v);
	}

	/* params first: the URL templates below are checked against them */
	if (parse_params(c, obj, p) != 0 ||
	    take_url(c, obj, "authorization_url", p, &p->authorization_url) != 0 ||
	    take_url(c, obj, "token_url", p, &p->token_url) != 0 ||
	    take_url(c, obj, "issuer", p, &p->issuer) != 0 ||
	    take_url(c, obj, "revocation_url", p, &p->revocation_url) != 0 ||
	    take_url(c, obj, "userinfo_url", p, &p->userinfo_url) != 0 ||
	    parse_scopes(c, obj, p) != 0 ||
	    parse_auth_params(c, obj, p) != 0 ||
	    parse_webhook(c, obj, p) != 0)
		return -1;

	if (p->auth_type == IA_AUTH_OAUTH2) {
		if (!p->authorization_url)
			return load_fail(c, "authorization_url", "is required for oauth2");
		if (!p->token_url)
			return load_fail(c, "token_url", "is required for oauth2");
	} else {
		/* a key or a password has no OAuth flow: such URLs would be dead
		 * configuration at best and a misread auth_type at worst */
		if (p->authorization_url)
			return load_fail(c, "authorization_url", "is only for oauth2 providers");
		if (p->token_url)
			return load_fail(c, "token_url", "is only for oauth2 providers");
		if (p->revocation_url)
			return load_fail(c, "revocation_url", "is only for oauth2 providers");
		if (p->issuer)
			return load_fail(c, "issuer", "is only for oauth2 providers");
	}
	return 0;
}

static int provider_cmp(const void *a, const void *b)
{
	return strcmp(((const ia_provider *)a)->name, ((const ia_provider *)b)->name);
}

static int provider_key_cmp(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const ia_provider *)elem)->name);
}

typedef struct ia_plist {
	ia_provider *items;
	size_t n;
} ia_plist;

static void plist_release(ia_plist *l)
{
	for (size_t i = 0; i < l->n; i++)
		provider_release(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* Reads at most IA_PROVIDERS_FILE_MAX bytes of a regular file. */
static int read_catalog(const ia_load_ctx *c, char **out, size_t *out_len)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, size;
	char extra;
	int fd, ret = -1;

	*out = NULL;
	*out_len = 0;
	fd = open(c->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return load_fail(c, NULL, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0) {
		load_fail(c, NULL, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		load_fail(c, NULL, "is not a regular file");
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > IA_PROVIDERS_FILE_MAX) {
		load_fail(c, NULL, "is larger than %zu bytes", IA_PROVIDERS_FILE_MAX);
		goto out;
	}
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf) {
		load_fail(c, NULL, "out of memory");
		goto out;
	}
	while (len < size) {
		ssize_t r = read(fd, buf + len, size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			load_fail(c, NULL, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	/* a file that grew after fstat could get past the cap: refuse it */
	if (len == size && read(fd, &extra, 1) > 0) {
		load_fail(c, NULL, "changed while being read");
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

/* Parses one catalog file into l (sorted, names unique within the file). */
static int parse_catalog(const char *file, ia_plist *l, char *err, size_t err_size)
{
	ia_load_ctx c = { .file = file, .provider = NULL, .err = err, .err_size = err_size };
	char *text = NULL;
	size_t len;
	cJSON *root = NULL;
	const cJSON *it;
	const char *end = NULL;
	int ret = -1;

	l->items = NULL;
	l->n = 0;
	if (read_catalog(&c, &text, &len) != 0)
		goto out;
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!root) {
		size_t line = 1;

		for (const char *q = text; end && q < end && q < text + len; q++)
			line += *q == '\n';
		load_fail(&c, NULL, "invalid JSON near line %zu", line);
		goto out;
	}
	if (end && (size_t)(end - text) < len) {
		/* cJSON stops after the first value; anything but whitespace after
		 * it is a broken file, not a comment */
		for (const char *q = end; q < text + len; q++)
			if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') {
				load_fail(&c, NULL, "unexpected data after the catalog object");
				goto out;
			}
	}
	if (!cJSON_IsObject(root)) {
		load_fail(&c, NULL, "the catalog must be one JSON object keyed by provider name");
		goto out;
	}
	l->items = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *l->items);
	if (!l->items) {
		load_fail(&c, NULL, "out of memory");
		goto out;
	}
	cJSON_ArrayForEach(it, root) {
		char shown[IA_PROVIDER_NAME_MAX + 1];
		const char *name = it->string ? it->string : "";
		size_t i;

		/* the name goes into error messages: show it without control bytes */
		for (i = 0; name[i] && i < IA_PROVIDER_NAME_MAX; i++)
			shown[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
		shown[i] = '\0';
		c.provider = shown;
		if (!is_lower_name(name, IA_PROVIDER_NAME_MAX)) {
			load_fail(&c, NULL, "provider names must be [a-z0-9_]+, at most %d characters",
				  IA_PROVIDER_NAME_MAX);
			goto out;
		}
		if (provider_parse(&c, name, it, &l->items[l->n]) != 0) {
			provider_release(&l->items[l->n]);
			goto out;
		}
		l->n++;
	}
	c.provider = NULL;
	qsort(l->items, l->n, sizeof *l->items, provider_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->items[i - 1].name, l->items[i].name) == 0) {
			c.provider = l->items[i].name;
			load_fail(&c, NULL, "appears twice in the catalog");
			goto out;
		}
	ret = 0;
out:
	if (ret != 0)
		plist_release(l);
	cJSON_Delete(root);
	free(text);
	return ret;
}

/* Moves every entry of extra into base, replacing whole entries by name. */
static int plist_merge(ia_plist *base, ia_plist *extra)
{
	ia_provider *grown;
	size_t n = base->n;

	grown = realloc(base->items, (base->n + extra->n + 1) * sizeof *grown);
	if (!grown)
		return -1;
	base->items = grown;
	for (size_t i = 0; i < extra->n; i++) {
		/* only the original, sorted part is searched: extra's names are
		 * unique, so the appended ones never need matching */
		ia_provider *old = bsearch(extra->items[i].name, base->items, n, sizeof *base->items,
					   provider_key_cmp);
		if (old) {
			provider_release(old);
			*old = extra->items[i];
		} else {
			base->items[base->n++] = extra->items[i];
		}
		memset(&extra->items[i], 0, sizeof extra->items[i]);
	}
	extra->n = 0;
	qsort(base->items, base->n, sizeof *base->items, provider_cmp);
	return 0;
}

int ia_providers_load(ia_providers **out, const char *file, const char *extra_file,
		      char *err, size_t err_size)
{
	ia_plist base = { 0 }, extra = { 0 };
	ia_providers *p = NULL;
	int ret = -1;

	*out = NULL;
	if (err && err_size)
		err[0] = '\0';
	if (!file || !*file)
		file = IA_DEFAULT_PROVIDERS_FILE;
	if (parse_catalog(file, &base, err, err_size) != 0)
		goto out;
	if (extra_file && *extra_file) {
		if (parse_catalog(extra_file, &extra, err, err_size) != 0)
			goto out;
		if (plist_merge(&base, &extra) != 0) {
			if (err && err_size)
				snprintf(err, err_size, "%s: out of memory", extra_file);
			goto out;
		}
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		if (err && err_size)
			snprintf(err, err_size, "%s: out of memory", file);
		goto out;
	}
	p->items = base.items;
	p->n = base.n;
	base.items = NULL;
	base.n = 0;
	*out = p;
	ret = 0;
out:
	plist_release(&extra);
	plist_release(&base);
	return ret;
}

void ia_providers_free(ia_providers *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		provider_release(&p->items[i]);
	free(p->items);
	free(p);
}

const ia_provider *ia_providers_find(const ia_providers *p, const char *name)
{
	/* untrusted: the path segment of a request; anything that is not a
	 * catalog name simply is not found */
	if (!p || !name || !p->n || strnlen(name, IA_PROVIDER_NAME_MAX + 1) > IA_PROVIDER_NAME_MAX)
		return NULL;
	return bsearch(name, p->items, p->n, sizeof *p->items, provider_key_cmp);
}

/* ---- client credentials ---------------------------------------------------- */

static const char *cfg_value(const ia_config *cfg, const char *prefix, const char *env,
			     const char *suffix)
{
	char key[IA_PROVIDER_NAME_MAX + 32];
	const char *v;
	int n = snprintf(key, sizeof key, "%s%s%s", prefix, env, suffix);

	if (n < 0 || (size_t)n >= sizeof key)
		return NULL;
	if (cfg)
		return ia_config_get(cfg, key);
	/* no configuration (a tool or a test): the environment alone */
	v = getenv(key);
	return v && *v ? v : NULL;
}

const char *ia_provider_client_id(const ia_provider *p, const ia_config *cfg)
{
	const char *v;

	if (!p || !p->env_name)
		return NULL;
	v = cfg_value(cfg, "", p->env_name, "_CLIENT_ID");
	if (!v)
		v = cfg_value(cfg, "VITE_", p->env_name, "_CLIENT_ID");
	return v;
}

const char *ia_provider_client_secret(const ia_provider *p, const ia_config *cfg)
{
	if (!p || !p->env_name)
		return NULL;
	return cfg_value(cfg, "", p->env_name, "_CLIENT_SECRET");
}

bool ia_provider_configured(const ia_provider *p, const ia_config *cfg)
{
	if (!p)
		return false;
	if (p->auth_type != IA_AUTH_OAUTH2)
		return true;
	return ia_provider_client_id(p, cfg) && ia_provider_client_secret(p, cfg);
}

/* ---- /api/providers -------------------------------------------------------- */

char *ia_providers_public_json(const ia_providers *p, const ia_config *cfg)
{
	ia_buf b;
	int rc = 0;

	ia_buf_init(&b, IA_PUBLIC_JSON_MAX);
	rc |= ia_buf_puts(&b, "{\"providers\":[");
	for (size_t i = 0; p && i < p->n; i++) {
		const ia_provider *it = &p->items[i];

		rc |= ia_buf_puts(&b, i ? ",{\"name\":\"" : "{\"name\":\"");
		rc |= ia_buf_json_escape(&b, it->name);
		rc |= ia_buf_puts(&b, "\",\"display_name\":\"");
		rc |= ia_buf_json_escape(&b, it->display_name);
		rc |= ia_buf_puts(&b, "\",\"auth_type\":\"");
		rc |= ia_buf_puts(&b, ia_auth_type_names[it->auth_type]);
		rc |= ia_buf_puts(&b, "\",\"configured\":");
		rc |= ia_buf_puts(&b, ia_provider_configured(it, cfg) ? "true" : "false");
		rc |= ia_buf_puts(&b, ",\"default_scopes\":[");
		for (size_t j = 0; j < it->n_default_scopes; j++) {
			rc |= ia_buf_puts(&b, j ? ",\"" : "\"");
			rc |= ia_buf_json_escape(&b, it->default_scopes[j]);
			rc |= ia_buf_putc(&b, '"');
		}
		rc |= ia_buf_puts(&b, "]}");
	}
	rc |= ia_buf_puts(&b, "]}");
	if (rc != 0) {
		ia_buf_release(&b);
		return NULL;
	}
	return ia_buf_detach(&b);
}

/* ---- placeholders ---------------------------------------------------------- */

/* Does value match the pattern of param? Compiled per call: this runs once per
 * authorization start, and keeping compiled regexes would need a private
 * struct behind the public one. */
static int param_matches(const ia_provider_param *param, const char *value, bool *ok)
{
	regex_t re;

	*ok = false;
	if (regcomp(&re, param->pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return -1;
	*ok = regexec(&re, value, 0, NULL, 0) == 0;
	regfree(&re);
	return 0;
}

char *ia_provider_fill_url(const ia_provider *p, const char *tmpl, const char *const *names,
			   const char *const *values, size_t n, struct ia_err *err)
{
	ia_buf out;
	char first[IA_PARAM_NAME_MAX + 1] = "";
	enum ia_host_kind kind;
	char *url = NULL;

	ia_buf_init(&out, IA_URL_MAX);
	if (!p || !tmpl) {
		ia_err_internal(err);
		goto out;
	}
	for (const char *s = tmpl; *s;) {
		char name[IA_PARAM_NAME_MAX + 1];
		const ia_provider_param *param;
		const char *value = NULL;
		size_t k, vlen;
		bool ok;

		if (*s != '{') {
			if (ia_buf_putc(&out, *s++) != 0) {
				ia_err_internal(err);
				goto out;
			}
			continue;
		}
		k = placeholder_at(s, name);
		param = k ? param_find(p, name) : NULL;
		if (!param) {
			/* the catalog was checked at load: this template is not one */
			ia_err_internal(err);
			goto out;
		}
		if (!first[0])
			memcpy(first, name, sizeof name);
		for (size_t i = 0; i < n && names && values; i++)
			if (names[i] && strcmp(names[i], name) == 0) {
				value = values[i];
				break;
			}
		if (!value || !*value) {
			ia_err_set(err, 400, "invalid_request", "Missing parameter '%s' for provider %s.",
				   name, p->name);
			goto out;
		}
		vlen = strnlen(value, IA_PARAM_VALUE_MAX + 1);
		ok = vlen <= IA_PARAM_VALUE_MAX && strcmp(value, ".") != 0 && strcmp(value, "..") != 0;
		for (size_t i = 0; ok && i < vlen; i++)
			ok = is_param_value_char(value[i]);
		if (ok && param_matches(param, value, &ok) != 0) {
			ia_err_internal(err);
			goto out;
		}
		/* the value is never echoed: it is untrusted and may be long */
		if (!ok || ia_buf_append(&out, value, vlen) != 0) {
			ia_err_set(err, 400, "invalid_request", "Invalid parameter '%s' for provider %s.",
				   name, p->name);
			goto out;
		}
		s += k;
	}
	if (url_problem(ia_buf_cstr(&out), &kind) ||
	    (host_has_placeholder(tmpl) && kind != IA_HOST_NAME)) {
		if (first[0])
			ia_err_set(err, 400, "invalid_request", "Invalid parameter '%s' for provider %s.",
				   first, p->name);
		else
			ia_err_internal(err);
		goto out;
	}
	url = ia_buf_detach(&out);
	if (!url)
		ia_err_oom(err);
out:
	ia_buf_release(&out);
	return url;
}
