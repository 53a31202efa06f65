/* ia_config: the per-process configuration (SPEC §10).
 *
 * Values come from the process environment and from an env file (ENV_FILE,
 * default ./.env; KEY=VALUE lines, '#' comments, optional `export `, optional
 * single or double quotes); the environment wins over the file. A missing
 * default env file is fine; a named ENV_FILE that cannot be read is an error.
 *
 * Required: DATABASE_URL, JWT_SECRET, CREDENTIAL_ENCRYPTION_KEY, PUBLIC_BASE_URL.
 * ia_config_load() checks them and every typed value, and reports the first
 * problem by variable name (never by value: values may be secrets).
 *
 * Ownership: the struct owns every string; ia_config_release() frees and wipes.
 * Secrets (jwt_secret, keys) live in sodium_malloc'd memory.
 */
#ifndef IA_CONFIG_H
#define IA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "ia_crypto.h"

typedef struct ia_config {
	char *database_url;
	char *public_base_url;          /* no trailing slash */
	unsigned char *jwt_secret;      /* raw bytes of JWT_SECRET (sodium_malloc) */
	size_t jwt_secret_len;
	char *jwt_audience;             /* JWT_AUDIENCE, default "authenticated" */
	ia_keyring *keys;               /* CREDENTIAL_ENCRYPTION_KEY + _PREVIOUS_KEYS */
	size_t max_body_bytes;          /* MAX_BODY_BYTES, default 1048576 */
	long refresh_window_seconds;    /* REFRESH_WINDOW_SECONDS, default 600 */
	char **cors_origins;            /* CORS_ALLOWED_ORIGINS, comma-separated; "*" allowed */
	size_t n_cors_origins;
	char **redirect_origins;        /* ALLOWED_REDIRECT_ORIGINS (PUBLIC_BASE_URL's origin always allowed) */
	size_t n_redirect_origins;
	bool oauth_bind_browser;        /* OAUTH_BIND_BROWSER, default 1 */
	char *providers_file;           /* PROVIDERS_FILE, default IA_DEFAULT_PROVIDERS_FILE */
	char *providers_extra_file;     /* PROVIDERS_EXTRA_FILE or NULL */
	long healthcheck_concurrency;   /* HEALTHCHECK_CONCURRENCY, default 16 */
	long healthcheck_interval_seconds; /* HEALTHCHECK_INTERVAL_SECONDS, default 86400; 0 = off */
	long http_connect_timeout_ms;   /* HTTP_CONNECT_TIMEOUT_MS, default 3000 */
	long http_timeout_ms;           /* HTTP_TIMEOUT_MS, default 15000 */
	size_t http_max_response_bytes; /* HTTP_MAX_RESPONSE_BYTES, default 1048576 */
	int log_level;                  /* LOG_LEVEL debug|info|warn|error, default info */

	/* the env file's KEY=VALUE pairs, for ia_config_get() */
	char **file_keys;
	char **file_values;
	size_t n_file;
} ia_config;

#ifndef IA_DEFAULT_PROVIDERS_FILE
#define IA_DEFAULT_PROVIDERS_FILE "providers/providers.json"
#endif

/* 0, or -1 with a one-line message in err ("JWT_SECRET is not set", ...). */
int ia_config_load(ia_config *cfg, char *err, size_t err_size);
/* Same, but only reads the variables (no required-variable check, no key ring):
 * for intauthctl commands like gen-key and migrate that need less. */
int ia_config_load_partial(ia_config *cfg, char *err, size_t err_size);
void ia_config_release(ia_config *cfg);

/* Raw lookup of any variable: environment first, then the env file; NULL if unset
 * or empty. The pointer stays valid until release (environment strings: until
 * the environment changes). Used for <NAME>_CLIENT_ID and the like. */
const char *ia_config_get(const ia_config *cfg, const char *name);

/* A whole number from min to max in variable name (decimal digits, blanks
 * around allowed; "1e6", "0x10", "-1" refused), def when unset. 0, or -1 with
 * a message naming the variable and the range in err. */
int ia_config_long(const ia_config *cfg, const char *name, long def, long min, long max,
		   long *out, char *err, size_t err_size);

/* Is origin ("scheme://host[:port]") in the list? Exact, case-insensitive on scheme and host. */
bool ia_config_redirect_allowed(const ia_config *cfg, const char *url);
/* The path of PUBLIC_BASE_URL ("" for none, else "/prefix" without a
 * trailing slash): where the routes live behind a proxy. Points into cfg. */
const char *ia_config_base_path(const ia_config *cfg);
/* The CORS origin to echo for this request's Origin, or NULL when not allowed:
 * the list's own string when the origin is listed, origin itself when only "*"
 * let it in (the caller then grants no credentials). */
const char *ia_config_cors_origin(const ia_config *cfg, const char *origin);

#endif
