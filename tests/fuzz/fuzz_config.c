/* Fuzz target: the env file (ia_config_load / ia_config_load_partial in
 * lib/config.c), read from ENV_FILE, which here names an in-memory file
 * holding the input. The process environment is cleared of every variable the
 * loader reads, so the file decides.
 *
 * Properties (ia_config.h): a loaded configuration has its required values, a
 * PUBLIC_BASE_URL without trailing slash whose origin is an allowed redirect,
 * a key ring, and ia_config_get answers each file value; the origin checks run
 * on the loaded lists. A failure leaves a one-line message.
 */
#include "fuzz_common.h"

#include <sodium.h>

#include "ia_config.h"

static fuzz_memfile envfile;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const vars[] = {
		"DATABASE_URL", "JWT_SECRET", "CREDENTIAL_ENCRYPTION_KEY",
		"CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS", "PUBLIC_BASE_URL", "JWT_AUDIENCE",
		"PROVIDERS_FILE", "PROVIDERS_EXTRA_FILE", "MAX_BODY_BYTES", "REFRESH_WINDOW_SECONDS",
		"HEALTHCHECK_CONCURRENCY", "HEALTHCHECK_INTERVAL_SECONDS", "HTTP_CONNECT_TIMEOUT_MS", "HTTP_TIMEOUT_MS",
		"HTTP_MAX_RESPONSE_BYTES", "OAUTH_BIND_BROWSER", "LOG_LEVEL", "CORS_ALLOWED_ORIGINS",
		"ALLOWED_REDIRECT_ORIGINS",
	};

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		return 1;
	for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
		unsetenv(vars[i]);
	fuzz_memfile_init(&envfile, "fuzz-env");
	setenv("ENV_FILE", envfile.path, 1);
	return 0;
}

static void check_loaded(const ia_config *cfg, bool full)
{
	for (size_t i = 0; i < cfg->n_file; i++) {
		const char *k = cfg->file_keys[i], *v = cfg->file_values[i];
		const char *e = getenv(k);
		FUZZ_CHECK(k && v);
		if ((!e || !*e) && *v)
			FUZZ_CHECK(ia_config_get(cfg, k) == v);
	}
	if (full) {
		FUZZ_CHECK(cfg->database_url && cfg->jwt_secret && cfg->keys && cfg->public_base_url);
		FUZZ_CHECK(cfg->jwt_secret_len > 0);
	}
	if (cfg->public_base_url) {
		size_t n = strlen(cfg->public_base_url);
		FUZZ_CHECK(n > 0 && cfg->public_base_url[n - 1] != '/');
		FUZZ_CHECK(ia_config_redirect_allowed(cfg, cfg->public_base_url));
	}
	FUZZ_CHECK(cfg->jwt_audience && cfg->providers_file);
	FUZZ_CHECK(cfg->max_body_bytes >= 1 && cfg->log_level >= 0 && cfg->log_level <= 3);
	for (size_t i = 0; i < cfg->n_cors_origins; i++) {
		const char *o = cfg->cors_origins[i];
		FUZZ_CHECK(o != NULL);
		if (strcmp(o, "*") != 0)
			FUZZ_CHECK(ia_config_cors_origin(cfg, o) != NULL);
	}
	for (size_t i = 0; i < cfg->n_redirect_origins; i++)
		FUZZ_CHECK(ia_config_redirect_allowed(cfg, cfg->redirect_origins[i]));
	(void)ia_config_cors_origin(cfg, "http://app.example");
	(void)ia_config_cors_origin(cfg, "null");
	(void)ia_config_redirect_allowed(cfg, "https://evil.example/x");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ia_config cfg;
	char err[512];

	fuzz_memfile_set(&envfile, data, size);
	for (int full = 0; full < 2; full++) {
		memset(err, 0x41, sizeof err);
		int r = full ? ia_config_load(&cfg, err, sizeof err)
			     : ia_config_load_partial(&cfg, err, sizeof err);
		if (r != 0) {
			FUZZ_CHECK(r == -1 && err[0] != '\0' && strlen(err) < sizeof err);
			FUZZ_CHECK(strchr(err, '\n') == NULL);
			continue;
		}
		check_loaded(&cfg, full);
		ia_config_release(&cfg);
	}
	return 0;
}
