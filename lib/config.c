/* config: SPEC §10, from the environment and an env file.
 *
 * The env file is read straight into sodium_malloc'd memory (it holds the
 * secrets) and its pairs are then packed into one sodium_malloc'd block laid out
 * key0\0value0\0key1\0value1\0..., so file_keys[0] is the block's start: that is
 * how ia_config_release() finds it to wipe and free it.
 *
 * Messages name variables, never values: a value may be a secret, and even a
 * harmless one tells an attacker reading logs more than the operator needs.
 */
#include "ia_config.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ia_err.h"
#include "ia_log.h"

#define IA_ENV_FILE_MAX (1024 * 1024)
#define IA_ORIGIN_MAX 300 /* "https://" + a 253-char host + ":65535", with room */
#define IA_URL_MAX 4096
#define IA_JWT_SECRET_MIN 32 /* RFC 7518 §3.2: an HS256 key of at least 256 bits */

/* ---- origins ---------------------------------------------------------------- */

enum ia_origin_mode {
	IA_ORIGIN_EXACT,   /* an Origin header: nothing after host[:port] */
	IA_ORIGIN_ENTRY,   /* a configured origin: at most a trailing '/' */
	IA_ORIGIN_OF_URL,  /* any http(s) URL: path, query, fragment may follow */
};

static bool ia_host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

static char ia_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Canonical "scheme://host[:port]" of s: scheme and host lower case, default port
 * dropped, so origins compare with strcmp. Refuses what browsers and our parser
 * might read differently: userinfo, backslashes, control characters and spaces
 * (browsers strip tabs and newlines), schemes other than http(s), missing "//". */
static int ia_origin_parse(const char *s, enum ia_origin_mode mode, char *out, size_t out_size)
{
	size_t n, o = 0;

	out[0] = '\0';
	if (!s)
		return -1;
	n = strnlen(s, IA_URL_MAX + 1);
	if (n == 0 || n > IA_URL_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == '\\')
			return -1;
	}

	size_t p;
	const char *scheme;
	unsigned default_port;
	if (strncasecmp(s, "https://", 8) == 0) {
		scheme = "https";
		default_port = 443;
		p = 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		scheme = "http";
		default_port = 80;
		p = 7;
	} else {
		return -1;
	}

	size_t auth = p;
	while (p < n && s[p] != '/' && s[p] != '?' && s[p] != '#')
		p++;
	size_t auth_end = p;

	size_t host = auth, host_end;
	size_t q = auth;
	if (q < auth_end && s[q] == '[') {
		/* IPv6 literal */
		q++;
		while (q < auth_end && s[q] != ']') {
			unsigned char c = (unsigned char)s[q];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			      (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
				return -1;
			q++;
		}
		if (q >= auth_end || q == host + 1)
			return -1;
		host_end = ++q;
	} else {
		while (q < auth_end && ia_host_char((unsigned char)s[q]))
			q++;
		host_end = q;
		if (host_end == host || s[host] == '.')
			return -1;
		for (size_t i = host; i + 1 < host_end; i++)
			if (s[i] == '.' && s[i + 1] == '.')
				return -1;
	}

	unsigned long port = default_port;
	if (q < auth_end) {
		/* anything but ":digits" here ('@', a second ':', ...) is refused */
		if (s[q] != ':' || q + 1 == auth_end || auth_end - q - 1 > 5)
			return -1;
		port = 0;
		for (size_t i = q + 1; i < auth_end; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			port = port * 10 + (unsigned long)(s[i] - '0');
		}
		if (port == 0 || port > 65535)
			return -1;
	}

	if (mode == IA_ORIGIN_EXACT && auth_end != n)
		return -1;
	if (mode == IA_ORIGIN_ENTRY && !(auth_end == n || (auth_end + 1 == n && s[auth_end] == '/')))
		return -1;

	size_t need = strlen(scheme) + 3 + (host_end - host) + 7;
	if (need > out_size)
		return -1;
	memcpy(out, scheme, strlen(scheme));
	o = strlen(scheme);
	memcpy(out + o, "://", 3);
	o += 3;
	for (size_t i = host; i < host_end; i++)
		out[o++] = ia_lower(s[i]);
	out[o] = '\0';
	if (port != default_port)
		snprintf(out + o, out_size - o, ":%lu", port);
	return 0;
}

/* ---- the env file ------------------------------------------------------------ */

static bool ia_key_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool ia_key_char(char c)
{
	return ia_key_start(c) || (c >= '0' && c <= '9');
}

static bool ia_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Parses one line in place (it may shrink). Sets *key and *value (NULL for a blank
 * or comment line). -1 on a malformed line. */
static int ia_env_line(char *line, char **key, char **value)
{
	char *p = line;

	*key = NULL;
	*value = NULL;
	while (ia_blank(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	if (strncmp(p, "export", 6) == 0 && ia_blank(p[6])) {
		p += 6;
		while (ia_blank(*p))
			p++;
	}
	if (!ia_key_start(*p))
		return -1;
	char *k = p;
	while (ia_key_char(*p))
		p++;
	char *kend = p;
	while (ia_blank(*p))
		p++;
	if (*p != '=')
		return -1;
	*kend = '\0';
	p++;
	while (ia_blank(*p))
		p++;

	char *v = p, *w = p;
	if (*p == '"' || *p == '\'') {
		char quote = *p++;
		/* single quotes are literal; double quotes know \" \\ \n \r \t, as in
		 * shells and docker compose, and keep any other backslash as is */
		while (*p && *p != quote) {
			if (quote == '"' && *p == '\\' && p[1]) {
				char e = p[1];
				char r = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' :
					 (e == '"' || e == '\\') ? e : 0;
				if (r) {
					*w++ = r;
					p += 2;
					continue;
				}
			}
			*w++ = *p++;
		}
		if (*p != quote)
			return -1;
		p++;
		while (ia_blank(*p))
			p++;
		if (*p != '\0' && *p != '#')
			return -1;
		*w = '\0';
	} else {
		/* an unquoted value ends at " #comment"; a '#' inside a word stays */
		while (*p && !(*p == '#' && p > v && ia_blank(p[-1])))
			p++;
		while (p > v && ia_blank(p[-1]))
			p--;
		*p = '\0';
	}
	*key = k;
	*value = v;
	return 0;
}

/* Reads path into cfg->file_*. explicit: ENV_FILE named it, so it must exist. */
static int ia_config_read_file(ia_config *cfg, const char *path, bool explicit_file,
			       char *err, size_t err_size)
{
	const char *label = explicit_file ? "ENV_FILE" : "the .env file";
	char *text = NULL, *block = NULL;
	char **keys = NULL, **values = NULL;
	size_t text_size = 0, nlines = 1, n = 0;
	int fd = -1, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!explicit_file && (errno == ENOENT || errno == ENOTDIR))
			return 0;
		ia_errmsg(err, err_size, "%s cannot be read", label);
		goto out;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		ia_errmsg(err, err_size, "%s cannot be read", label);
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > IA_ENV_FILE_MAX) {
		ia_errmsg(err, err_size, "%s is larger than 1 MiB", label);
		goto out;
	}
	/* a pipe (ENV_FILE=<(...)) has no size: take up to the cap */
	text_size = (S_ISREG(st.st_mode) ? (size_t)st.st_size : IA_ENV_FILE_MAX) + 1;
	text = sodium_malloc(text_size);
	if (!text) {
		ia_errmsg(err, err_size, "out of memory reading %s", label);
		goto out;
	}
	size_t len = 0;
	for (;;) {
		if (len == text_size - 1) {
			char extra;
			ssize_t r = read(fd, &extra, 1);
			if (r == 0)
				break;
			if (r < 0 && errno == EINTR)
				continue;
			ia_errmsg(err, err_size, r < 0 ? "%s cannot be read" :
				      "%s is larger than 1 MiB or changed while read", label);
			goto out;
		}
		ssize_t r = read(fd, text + len, text_size - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ia_errmsg(err, err_size, "%s cannot be read", label);
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		ia_errmsg(err, err_size, "%s is not a text file", label);
		goto out;
	}

	for (size_t i = 0; i < len; i++)
		nlines += text[i] == '\n';
	keys = calloc(nlines, sizeof *keys);
	values = calloc(nlines, sizeof *values);
	if (!keys || !values) {
		ia_errmsg(err, err_size, "out of memory reading %s", label);
		goto out;
	}
	size_t lineno = 0;
	for (char *line = text; line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		lineno++;
		size_t ll = strlen(line);
		if (ll && line[ll - 1] == '\r')
			line[ll - 1] = '\0';
		char *k, *v;
		if (ia_env_line(line, &k, &v) != 0) {
			ia_errmsg(err, err_size, "%s line %zu is not KEY=VALUE", label, lineno);
			goto out;
		}
		if (k) {
			/* a repeated key: the later line wins, as when a shell sources the file */
			size_t i = 0;
			while (i < n && strcmp(keys[i], k) != 0)
				i++;
			keys[i] = k;
			values[i] = v;
			if (i == n)
				n++;
		}
		line = nl ? nl + 1 : NULL;
	}

	if (n) {
		size_t total = 0;
		for (size_t i = 0; i < n; i++)
			total += strlen(keys[i]) + 1 + strlen(values[i]) + 1;
		block = sodium_malloc(total);
		if (!block) {
			ia_errmsg(err, err_size, "out of memory reading %s", label);
			goto out;
		}
		char *w = block;
		for (size_t i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]) + 1, vl = strlen(values[i]) + 1;
			memcpy(w, keys[i], kl);
			keys[i] = w;
			w += kl;
			memcpy(w, values[i], vl);
			values[i] = w;
			w += vl;
		}
	}
	cfg->file_keys = keys;
	cfg->file_values = values;
	cfg->n_file = n;
	keys = values = NULL;
	block = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	sodium_free(block);
	sodium_free(text); /* wipes */
	free(keys);
	free(values);
	return rc;
}

/* ---- lookups and typed values ------------------------------------------------ */

const char *ia_config_get(const ia_config *cfg, const char *name)
{
	if (!name)
		return NULL;
	const char *v = getenv(name);
	if (v && *v)
		return v;
	if (!cfg)
		return NULL;
	for (size_t i = 0; i < cfg->n_file; i++)
		if (strcmp(cfg->file_keys[i], name) == 0)
			return *cfg->file_values[i] ? cfg->file_values[i] : NULL;
	return NULL;
}

/* Decimal digits only, with optional blanks around: "1e6", "0x10", "-1", "5k"
 * are refused rather than half-read. */
int ia_config_long(const ia_config *cfg, const char *name, long def, long min, long max,
		   long *out, char *err, size_t err_size)
{
	const char *v = ia_config_get(cfg, name);
	long val = 0;

	*out = def;
	if (!v)
		return 0;
	while (ia_blank(*v))
		v++;
	const char *d = v;
	bool over = false;
	for (; *d >= '0' && *d <= '9'; d++) {
		long digit = *d - '0';
		if (over || val > (LONG_MAX - digit) / 10)
			over = true;
		else
			val = val * 10 + digit;
	}
	while (ia_blank(*d))
		d++;
	if (over || d == v || *d != '\0' || val < min || val > max) {
		ia_errmsg(err, err_size, "%s must be a whole number from %ld to %ld",
			      name, min, max);
		return -1;
	}
	*out = val;
	return 0;
}

static int ia_config_bool(const ia_config *cfg, const char *name, bool def, bool *out,
			  char *err, size_t err_size)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	const char *v = ia_config_get(cfg, name);

	*out = def;
	if (!v)
		return 0;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	ia_errmsg(err, err_size, "%s must be 1 or 0 (true/false, yes/no, on/off)", name);
	return -1;
}

static int ia_config_strdup(const ia_config *cfg, const char *name, const char *def, char **out,
			    char *err, size_t err_size)
{
	const char *v = ia_config_get(cfg, name);

	*out = NULL;
	if (!v)
		v = def;
	if (!v)
		return 0;
	*out = strdup(v);
	if (!*out) {
		ia_errmsg(err, err_size, "out of memory reading %s", name);
		return -1;
	}
	return 0;
}

static void ia_list_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* A comma-separated list of origins, trimmed, empty entries skipped, each stored
 * in canonical form. star: whether "*" may appear. */
static int ia_config_origins(const ia_config *cfg, const char *name, bool star, char ***out,
			     size_t *out_n, char *err, size_t err_size)
{
	const char *v = ia_config_get(cfg, name);
	char **list = NULL;
	size_t n = 0, cap = 1, entry = 0;
	char canon[IA_ORIGIN_MAX], tmp[IA_URL_MAX + 1];
	int rc = -1;

	*out = NULL;
	*out_n = 0;
	if (!v)
		return 0;
	for (const char *p = v; *p; p++)
		cap += *p == ',';
	list = calloc(cap, sizeof *list);
	if (!list) {
		ia_errmsg(err, err_size, "out of memory reading %s", name);
		goto out;
	}
	for (const char *p = v; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *s = p;
		p = comma ? comma + 1 : p + len;
		while (len && ia_blank(*s)) {
			s++;
			len--;
		}
		while (len && ia_blank(s[len - 1]))
			len--;
		entry++;
		if (!len)
			continue;
		if (len == 1 && *s == '*') {
			if (!star) {
				ia_errmsg(err, err_size, "%s cannot contain *: list each origin",
					      name);
				goto out;
			}
			memcpy(canon, "*", 2);
		} else {
			bool ok = len <= IA_URL_MAX;
			if (ok) {
				memcpy(tmp, s, len);
				tmp[len] = '\0';
				ok = ia_origin_parse(tmp, IA_ORIGIN_ENTRY, canon, sizeof canon) == 0;
			}
			if (!ok) {
				ia_errmsg(err, err_size,
					      "%s entry %zu is not an origin (http(s)://host[:port])",
					      name, entry);
				goto out;
			}
		}
		list[n] = strdup(canon);
		if (!list[n]) {
			ia_errmsg(err, err_size, "out of memory reading %s", name);
			goto out;
		}
		n++;
	}
	*out = list;
	*out_n = n;
	list = NULL;
	rc = 0;
out:
	if (list)
		ia_list_free(list, n);
	return rc;
}

/* ---- load / release ---------------------------------------------------------- */

static int ia_config_load_impl(ia_config *cfg, bool full, char *err, size_t err_size)
{
	static const char *const required[] = {
		"DATABASE_URL", "JWT_SECRET", "CREDENTIAL_ENCRYPTION_KEY", "PUBLIC_BASE_URL",
	};
	char tmp_err[240];
	long l;
	int rc = -1;

	if (err && err_size)
		err[0] = '\0';
	if (!cfg) {
		ia_errmsg(err, err_size, "internal error: no configuration");
		return -1;
	}
	memset(cfg, 0, sizeof *cfg);
	if (sodium_init() < 0) {
		ia_errmsg(err, err_size, "libsodium failed to initialise");
		return -1;
	}

	const char *env_file = getenv("ENV_FILE");
	bool explicit_file = env_file && *env_file;
	if (ia_config_read_file(cfg, explicit_file ? env_file : "./.env", explicit_file,
				err, err_size) != 0)
		goto out;

	if (full)
		for (size_t i = 0; i < sizeof required / sizeof *required; i++)
			if (!ia_config_get(cfg, required[i])) {
				ia_errmsg(err, err_size, "%s is not set", required[i]);
				goto out;
			}

	const char *v = ia_config_get(cfg, "DATABASE_URL");
	if (v) {
		/* a URI or conninfo may carry the password */
		cfg->database_url = ia_secret_dup(v, strlen(v));
		if (!cfg->database_url) {
			ia_errmsg(err, err_size, "out of memory loading the configuration");
			goto out;
		}
	}

	v = ia_config_get(cfg, "JWT_SECRET");
	if (v) {
		size_t n = strlen(v);
		if (n < IA_JWT_SECRET_MIN) {
			ia_errmsg(err, err_size, "JWT_SECRET is too short: use at least %d characters",
				      IA_JWT_SECRET_MIN);
			goto out;
		}
		/* a signing key: guarded, locked memory like the encryption keys */
		cfg->jwt_secret = sodium_malloc(n + 1);
		if (cfg->jwt_secret)
			memcpy(cfg->jwt_secret, v, n + 1);
		if (!cfg->jwt_secret) {
			ia_errmsg(err, err_size, "out of memory loading the configuration");
			goto out;
		}
		cfg->jwt_secret_len = n;
	}

	v = ia_config_get(cfg, "PUBLIC_BASE_URL");
	if (v) {
		char canon[IA_ORIGIN_MAX];
		size_t n = strlen(v);
		while (n && v[n - 1] == '/')
			n--;
		cfg->public_base_url = strndup(v, n);
		if (!cfg->public_base_url) {
			ia_errmsg(err, err_size, "out of memory loading the configuration");
			goto out;
		}
		/* a base for building URLs: an origin and perhaps a path, nothing after */
		if (ia_origin_parse(cfg->public_base_url, IA_ORIGIN_OF_URL, canon, sizeof canon) != 0 ||
		    strpbrk(cfg->public_base_url, "?#")) {
			ia_errmsg(err, err_size,
				      "PUBLIC_BASE_URL must be an http:// or https:// URL with no query");
			goto out;
		}
		/* its path goes into cookie attributes and redirect URIs as is:
		 * an RFC 3986 path (pchar and '/') without the ';' that would end
		 * a cookie attribute */
		const char *path = ia_config_base_path(cfg);
		if (strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
				 "-._~%!$&'()*+,=:@/") != strlen(path)) {
			ia_errmsg(err, err_size,
				  "PUBLIC_BASE_URL's path may not hold ';', blanks or other characters a URL path has no room for");
			goto out;
		}
	}

	if (ia_config_strdup(cfg, "JWT_AUDIENCE", "authenticated", &cfg->jwt_audience,
			     err, err_size) != 0 ||
	    ia_config_strdup(cfg, "PROVIDERS_FILE", IA_DEFAULT_PROVIDERS_FILE, &cfg->providers_file,
			     err, err_size) != 0 ||
	    ia_config_strdup(cfg, "PROVIDERS_EXTRA_FILE", NULL, &cfg->providers_extra_file,
			     err, err_size) != 0)
		goto out;

	if (ia_config_long(cfg, "MAX_BODY_BYTES", 1048576, 1, 1L << 30, &l, err, err_size) != 0)
		goto out;
	cfg->max_body_bytes = (size_t)l;
	if (ia_config_long(cfg, "REFRESH_WINDOW_SECONDS", 600, 0, 30L * 86400,
			   &cfg->refresh_window_seconds, err, err_size) != 0 ||
	    ia_config_long(cfg, "HEALTHCHECK_CONCURRENCY", 16, 1, 1024,
			   &cfg->healthcheck_concurrency, err, err_size) != 0 ||
	    ia_config_long(cfg, "HEALTHCHECK_INTERVAL_SECONDS", 86400, 0, 365L * 86400,
			   &cfg->healthcheck_interval_seconds, err, err_size) != 0 ||
	    ia_config_long(cfg, "HTTP_CONNECT_TIMEOUT_MS", 3000, 1, 600000,
			   &cfg->http_connect_timeout_ms, err, err_size) != 0 ||
	    ia_config_long(cfg, "HTTP_TIMEOUT_MS", 15000, 1, 3600000,
			   &cfg->http_timeout_ms, err, err_size) != 0)
		goto out;
	if (ia_config_long(cfg, "HTTP_MAX_RESPONSE_BYTES", 1048576, 1, 1L << 30, &l,
			   err, err_size) != 0)
		goto out;
	cfg->http_max_response_bytes = (size_t)l;
	if (ia_config_bool(cfg, "OAUTH_BIND_BROWSER", true, &cfg->oauth_bind_browser,
			   err, err_size) != 0)
		goto out;

	cfg->log_level = IA_LOG_INFO;
	v = ia_config_get(cfg, "LOG_LEVEL");
	if (v) {
		int lv = ia_log_level_parse(v);
		if (lv < 0) {
			ia_errmsg(err, err_size, "LOG_LEVEL must be debug, info, warn or error");
			goto out;
		}
		cfg->log_level = lv;
	}

	if (ia_config_origins(cfg, "CORS_ALLOWED_ORIGINS", true, &cfg->cors_origins,
			      &cfg->n_cors_origins, err, err_size) != 0 ||
	    ia_config_origins(cfg, "ALLOWED_REDIRECT_ORIGINS", false, &cfg->redirect_origins,
			      &cfg->n_redirect_origins, err, err_size) != 0)
		goto out;

	if (full) {
		if (ia_keyring_load(&cfg->keys, ia_config_get(cfg, "CREDENTIAL_ENCRYPTION_KEY"),
				    ia_config_get(cfg, "CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS"),
				    tmp_err, sizeof tmp_err) != 0) {
			ia_errmsg(err, err_size, "%s", tmp_err);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		ia_config_release(cfg);
	return rc;
}

int ia_config_load(ia_config *cfg, char *err, size_t err_size)
{
	return ia_config_load_impl(cfg, true, err, err_size);
}

int ia_config_load_partial(ia_config *cfg, char *err, size_t err_size)
{
	return ia_config_load_impl(cfg, false, err, err_size);
}

const char *ia_config_base_path(const ia_config *cfg)
{
	const char *u = cfg->public_base_url, *host;
	if (!u || !(host = strstr(u, "://")))
		return "";
	const char *path = strchr(host + 3, '/');
	return path ? path : "";
}

void ia_config_release(ia_config *cfg)
{
	if (!cfg)
		return;
	if (cfg->database_url)
		ia_secret_free(cfg->database_url, strlen(cfg->database_url));
	if (cfg->jwt_secret)
		sodium_free(cfg->jwt_secret); /* wipes */
	free(cfg->public_base_url);
	free(cfg->jwt_audience);
	ia_keyring_free(cfg->keys);
	ia_list_free(cfg->cors_origins, cfg->n_cors_origins);
	ia_list_free(cfg->redirect_origins, cfg->n_redirect_origins);
	free(cfg->providers_file);
	free(cfg->providers_extra_file);
	if (cfg->n_file)
		sodium_free(cfg->file_keys[0]); /* the packed block: wipes every pair */
	free(cfg->file_keys);
	free(cfg->file_values);
	memset(cfg, 0, sizeof *cfg);
}

/* ---- origin checks ------------------------------------------------------------ */

bool ia_config_redirect_allowed(const ia_config *cfg, const char *url)
{
	char want[IA_ORIGIN_MAX], base[IA_ORIGIN_MAX];

	if (!cfg || ia_origin_parse(url, IA_ORIGIN_OF_URL, want, sizeof want) != 0)
		return false;
	for (size_t i = 0; i < cfg->n_redirect_origins; i++)
		if (strcmp(cfg->redirect_origins[i], want) == 0)
			return true;
	return cfg->public_base_url &&
	       ia_origin_parse(cfg->public_base_url, IA_ORIGIN_OF_URL, base, sizeof base) == 0 &&
	       strcmp(base, want) == 0;
}

const char *ia_config_cors_origin(const ia_config *cfg, const char *origin)
{
	char want[IA_ORIGIN_MAX];
	bool star = false;

	/* "null" (sandboxed frames, file://) never parses, so is never echoed */
	if (!cfg || ia_origin_parse(origin, IA_ORIGIN_EXACT, want, sizeof want) != 0)
		return NULL;
	for (size_t i = 0; i < cfg->n_cors_origins; i++) {
		if (strcmp(cfg->cors_origins[i], "*") == 0)
			star = true;
		else if (strcmp(cfg->cors_origins[i], want) == 0)
			return cfg->cors_origins[i];
	}
	return star ? origin : NULL;
}
