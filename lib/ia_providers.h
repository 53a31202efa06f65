/* ia_providers: the provider catalog (SPEC §7), data loaded from JSON.
 *
 * The catalog is one JSON object keyed by provider name ([a-z0-9_]+). Loading
 * checks every entry and fails with a message naming the provider and field
 * ("providers.json: github.token_url: must be https") so a broken catalog is a
 * clear start-up error. URLs must be https, except loopback hosts (127.0.0.0/8,
 * ::1, localhost) which are allowed for tests; private addresses are refused.
 * `{param}` placeholders in URLs must be declared in "params" with a validation
 * pattern (POSIX extended regex, anchored by the catalog author).
 *
 * Ownership: ia_providers owns everything; ia_providers_free() releases it.
 * Pointers into it stay valid until then.
 */
#ifndef IA_PROVIDERS_H
#define IA_PROVIDERS_H

#include <stdbool.h>
#include <stddef.h>

#include "ia_config.h"

enum ia_auth_type { IA_AUTH_OAUTH2 = 0, IA_AUTH_API_KEY, IA_AUTH_BASIC, IA_AUTH__MAX };
extern const char *const ia_auth_type_names[IA_AUTH__MAX]; /* "oauth2", "api_key", "basic" */
/* -1 when unknown */
int ia_auth_type_parse(const char *s);

enum ia_token_auth { IA_TOKEN_AUTH_POST = 0, IA_TOKEN_AUTH_BASIC };

enum ia_webhook_scheme {
	IA_WH_NONE = 0, IA_WH_GITHUB, IA_WH_STRIPE, IA_WH_SLACK, IA_WH_STANDARD,
	IA_WH_SHOPIFY, IA_WH_HMAC, IA_WH__MAX
};
extern const char *const ia_webhook_scheme_names[IA_WH__MAX]; /* "", "github", ... */

enum ia_mac_encoding { IA_MAC_HEX = 0, IA_MAC_BASE64 };

typedef struct ia_webhook_conf {
	enum ia_webhook_scheme scheme;
	/* generic "hmac" scheme only: */
	char *signature_header;       /* e.g. "X-Signature" (required for hmac) */
	char *signature_prefix;       /* e.g. "sha256=" or NULL */
	enum ia_mac_encoding encoding;/* "hex" (default) or "base64" */
	char *timestamp_header;       /* when set, signed string is "<ts>.<body>" and ts is checked */
	char *event_id_header;        /* else the event id is the SHA-256 of the body */
} ia_webhook_conf;

typedef struct ia_provider_param {
	char *name;                   /* placeholder name in URLs */
	char *pattern;                /* POSIX ERE the value must match */
} ia_provider_param;

typedef struct ia_provider {
	char *name;
	char *display_name;
	enum ia_auth_type auth_type;
	char *authorization_url;      /* oauth2: required */
	char *token_url;              /* oauth2: required */
	char *issuer;                 /* optional (RFC 9207) */
	char *revocation_url;         /* optional (RFC 7009) */
	char *userinfo_url;           /* optional */
	char **default_scopes;
	size_t n_default_scopes;
	char *scope_separator;        /* default " " */
	char **auth_param_keys;       /* authorization_params, string values only */
	char **auth_param_values;
	size_t n_auth_params;
	enum ia_token_auth token_endpoint_auth; /* default client_secret_post */
	bool pkce;                    /* default true */
	ia_provider_param *params;
	size_t n_params;
	ia_webhook_conf webhook;
	char *env_name;               /* upper-cased name, for <NAME>_CLIENT_ID etc. */
} ia_provider;

typedef struct ia_providers {
	ia_provider *items;           /* sorted by name */
	size_t n;
} ia_providers;

/* Loads file, then merges extra_file (NULL = none) whose entries add or replace
 * whole entries. Returns 0, or -1 with a message in err. */
int ia_providers_load(ia_providers **out, const char *file, const char *extra_file,
		      char *err, size_t err_size);
void ia_providers_free(ia_providers *p);
/* NULL when unknown. name may be any untrusted string. */
const ia_provider *ia_providers_find(const ia_providers *p, const char *name);

/* <NAME>_CLIENT_ID (or VITE_<NAME>_CLIENT_ID) and <NAME>_CLIENT_SECRET from cfg;
 * NULL when unset. */
const char *ia_provider_client_id(const ia_provider *p, const ia_config *cfg);
const char *ia_provider_client_secret(const ia_provider *p, const ia_config *cfg);
/* oauth2: client id and secret present; api_key/basic: always true. */
bool ia_provider_configured(const ia_provider *p, const ia_config *cfg);

/* The /api/providers answer, {"providers":[{"name","display_name","auth_type",
 * "configured","default_scopes"}]} sorted by name. malloc'd; caller frees. */
char *ia_providers_public_json(const ia_providers *p, const ia_config *cfg);

/* Fills {param} placeholders of tmpl from values (validated against the
 * provider's patterns). names/values: n pairs. Returns malloc'd URL or NULL with
 * err set to 400 invalid_request naming the bad/missing parameter. */
struct ia_err;
char *ia_provider_fill_url(const ia_provider *p, const char *tmpl, const char *const *names,
			   const char *const *values, size_t n, struct ia_err *err);

#endif
