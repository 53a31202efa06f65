/* config: env file syntax, precedence, required and typed variables, messages
 * without values, and the redirect / CORS origin checks. Runs in a temporary
 * directory so ./.env is ours. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ia_config.h"
#include "ia_log.h"
#include "ia_test.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define JWT_SECRET_VAL "super-secret-jwt-token-with-at-least-32-characters-long"

static const char *const all_vars[] = {
	"ENV_FILE", "DATABASE_URL", "JWT_SECRET", "CREDENTIAL_ENCRYPTION_KEY",
	"CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS", "PUBLIC_BASE_URL", "JWT_AUDIENCE", "MAX_BODY_BYTES",
	"REFRESH_WINDOW_SECONDS", "CORS_ALLOWED_ORIGINS", "ALLOWED_REDIRECT_ORIGINS",
	"OAUTH_BIND_BROWSER", "PROVIDERS_FILE", "PROVIDERS_EXTRA_FILE", "HEALTHCHECK_CONCURRENCY",
	"HEALTHCHECK_INTERVAL_SECONDS",
	"HTTP_CONNECT_TIMEOUT_MS", "HTTP_TIMEOUT_MS", "HTTP_MAX_RESPONSE_BYTES", "LOG_LEVEL",
	"FILE_ONLY", "GITHUB_CLIENT_ID",
};

static char dir[64];

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof all_vars / sizeof *all_vars; i++)
		unsetenv(all_vars[i]);
	unlink(".env");
	unlink("other.env");
}

static void set_required(void)
{
	setenv("DATABASE_URL", "postgresql://intauth_app:pw@127.0.0.1:54329/intauth", 1);
	setenv("JWT_SECRET", JWT_SECRET_VAL, 1);
	setenv("CREDENTIAL_ENCRYPTION_KEY", KEY_HEX, 1);
	setenv("PUBLIC_BASE_URL", "https://api.example.com/", 1);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* Loads and returns whether it worked; err holds the message. */
static bool load(ia_config *cfg, char *err, size_t err_size)
{
	return ia_config_load(cfg, err, err_size) == 0;
}

static void test_defaults(void)
{
	ia_config cfg;
	char err[240];

	clear_env();
	set_required();
	CHECK(load(&cfg, err, sizeof err), "loads from the environment alone, no ./.env");
	CHECK(strstr(cfg.database_url, "intauth_app") != NULL, "DATABASE_URL read");
	CHECK_STR(cfg.public_base_url, "https://api.example.com", "PUBLIC_BASE_URL trailing slash stripped");
	CHECK(cfg.jwt_secret_len == strlen(JWT_SECRET_VAL) &&
	      memcmp(cfg.jwt_secret, JWT_SECRET_VAL, cfg.jwt_secret_len) == 0, "JWT_SECRET raw bytes");
	CHECK(cfg.keys && ia_keyring_current_kid(cfg.keys), "key ring loaded");
	CHECK_STR(cfg.jwt_audience, "authenticated", "JWT_AUDIENCE default");
	CHECK(cfg.max_body_bytes == 1048576, "MAX_BODY_BYTES default");
	CHECK(cfg.refresh_window_seconds == 600, "REFRESH_WINDOW_SECONDS default");
	CHECK(cfg.oauth_bind_browser, "OAUTH_BIND_BROWSER default");
	CHECK_STR(cfg.providers_file, IA_DEFAULT_PROVIDERS_FILE, "PROVIDERS_FILE default");
	CHECK(cfg.providers_extra_file == NULL, "PROVIDERS_EXTRA_FILE default");
	CHECK(cfg.healthcheck_concurrency == 16, "HEALTHCHECK_CONCURRENCY default");
	CHECK(cfg.healthcheck_interval_seconds == 86400, "HEALTHCHECK_INTERVAL_SECONDS default");
	CHECK(cfg.http_connect_timeout_ms == 3000, "HTTP_CONNECT_TIMEOUT_MS default");
	CHECK(cfg.http_timeout_ms == 15000, "HTTP_TIMEOUT_MS default");
	CHECK(cfg.http_max_response_bytes == 1048576, "HTTP_MAX_RESPONSE_BYTES default");
	CHECK(cfg.log_level == IA_LOG_INFO, "LOG_LEVEL default");
	CHECK(cfg.n_cors_origins == 0 && cfg.n_redirect_origins == 0, "origin lists empty by default");
	CHECK(cfg.n_file == 0, "no env file pairs");
	ia_config_release(&cfg);
	CHECK(cfg.database_url == NULL && cfg.keys == NULL, "release clears the struct");
	ia_config_release(&cfg);

	setenv("JWT_AUDIENCE", "my-app", 1);
	setenv("MAX_BODY_BYTES", " 2048 ", 1);
	setenv("REFRESH_WINDOW_SECONDS", "0", 1);
	setenv("OAUTH_BIND_BROWSER", "false", 1);
	setenv("PROVIDERS_EXTRA_FILE", "/etc/intauth/extra.json", 1);
	setenv("HEALTHCHECK_CONCURRENCY", "4", 1);
	setenv("HEALTHCHECK_INTERVAL_SECONDS", "0", 1);
	setenv("HTTP_CONNECT_TIMEOUT_MS", "500", 1);
	setenv("HTTP_TIMEOUT_MS", "2500", 1);
	setenv("HTTP_MAX_RESPONSE_BYTES", "65536", 1);
	setenv("LOG_LEVEL", "DEBUG", 1);
	CHECK(load(&cfg, err, sizeof err), "loads with every optional variable set");
	CHECK_STR(cfg.jwt_audience, "my-app", "JWT_AUDIENCE set");
	CHECK(cfg.max_body_bytes == 2048, "MAX_BODY_BYTES set (blanks allowed)");
	CHECK(cfg.refresh_window_seconds == 0, "REFRESH_WINDOW_SECONDS set");
	CHECK(!cfg.oauth_bind_browser, "OAUTH_BIND_BROWSER set");
	CHECK_STR(cfg.providers_extra_file, "/etc/intauth/extra.json", "PROVIDERS_EXTRA_FILE set");
	CHECK(cfg.healthcheck_concurrency == 4 && cfg.healthcheck_interval_seconds == 0 &&
	      cfg.http_connect_timeout_ms == 500 &&
	      cfg.http_timeout_ms == 2500 && cfg.http_max_response_bytes == 65536, "numbers set");
	CHECK(cfg.log_level == IA_LOG_DEBUG, "LOG_LEVEL set");
	ia_config_release(&cfg);
}

static void test_required(void)
{
	ia_config cfg;
	char err[240];

	clear_env();
	CHECK(!load(&cfg, err, sizeof err), "nothing set: refused");
	CHECK_STR(err, "DATABASE_URL is not set", "first missing variable named");
	set_required();
	unsetenv("JWT_SECRET");
	CHECK(!load(&cfg, err, sizeof err), "missing JWT_SECRET refused");
	CHECK_STR(err, "JWT_SECRET is not set", "message names JWT_SECRET");
	CHECK(cfg.database_url == NULL && cfg.keys == NULL, "a failed load leaves nothing allocated");
	setenv("JWT_SECRET", "", 1);
	CHECK(!load(&cfg, err, sizeof err) && strcmp(err, "JWT_SECRET is not set") == 0,
	      "empty counts as not set");
	set_required();
	unsetenv("CREDENTIAL_ENCRYPTION_KEY");
	CHECK(!load(&cfg, err, sizeof err), "missing key refused");
	CHECK_STR(err, "CREDENTIAL_ENCRYPTION_KEY is not set", "message names the key variable");
	set_required();
	unsetenv("PUBLIC_BASE_URL");
	CHECK(!load(&cfg, err, sizeof err), "missing PUBLIC_BASE_URL refused");
	CHECK_STR(err, "PUBLIC_BASE_URL is not set", "message names PUBLIC_BASE_URL");

	/* partial: nothing required, no key ring */
	clear_env();
	CHECK(ia_config_load_partial(&cfg, err, sizeof err) == 0, "partial load needs nothing");
	CHECK(cfg.keys == NULL && cfg.database_url == NULL, "partial load: no ring, no URL");
	CHECK(cfg.max_body_bytes == 1048576, "partial load: typed defaults");
	ia_config_release(&cfg);
	setenv("DATABASE_URL", "host=/tmp dbname=intauth", 1);
	setenv("CREDENTIAL_ENCRYPTION_KEY", "not-a-key", 1);
	CHECK(ia_config_load_partial(&cfg, err, sizeof err) == 0, "partial load ignores the key");
	CHECK_STR(cfg.database_url, "host=/tmp dbname=intauth", "partial load reads DATABASE_URL");
	ia_config_release(&cfg);
	setenv("MAX_BODY_BYTES", "ten", 1);
	CHECK(ia_config_load_partial(&cfg, err, sizeof err) == -1, "partial load still checks numbers");
}

/* The value in the message would leak secrets or at least data. */
static void expect_error(const char *var, const char *value, const char *want_in_err,
			 const char *name)
{
	ia_config cfg;
	char err[240];

	clear_env();
	set_required();
	setenv(var, value, 1);
	bool failed = !load(&cfg, err, sizeof err);
	CHECK(failed && strstr(err, want_in_err) != NULL, name);
	if (!failed)
		ia_config_release(&cfg);
	else if (!strstr(err, want_in_err))
		printf("#   err \"%s\"\n", err);
	/* one- and two-character values ("0", "*") occur in any message's wording */
	if (strlen(value) >= 3)
		CHECK(!failed || !strstr(err, value), "the message does not quote the value");
}

static void test_values(void)
{
	expect_error("MAX_BODY_BYTES", "12abc", "MAX_BODY_BYTES", "MAX_BODY_BYTES=12abc refused");
	expect_error("MAX_BODY_BYTES", "-1", "MAX_BODY_BYTES", "negative number refused");
	expect_error("MAX_BODY_BYTES", "0", "MAX_BODY_BYTES", "zero body size refused");
	expect_error("MAX_BODY_BYTES", "1e6", "MAX_BODY_BYTES", "exponent refused");
	expect_error("MAX_BODY_BYTES", "0x100", "MAX_BODY_BYTES", "hex refused");
	expect_error("MAX_BODY_BYTES", "99999999999999999999999999", "MAX_BODY_BYTES",
		     "overflowing number refused");
	expect_error("HTTP_TIMEOUT_MS", "fast", "HTTP_TIMEOUT_MS", "HTTP_TIMEOUT_MS=fast refused");
	expect_error("HEALTHCHECK_CONCURRENCY", "0", "HEALTHCHECK_CONCURRENCY", "concurrency 0 refused");
	expect_error("HEALTHCHECK_INTERVAL_SECONDS", "-1", "HEALTHCHECK_INTERVAL_SECONDS",
		     "negative interval refused");
	expect_error("REFRESH_WINDOW_SECONDS", "+5", "REFRESH_WINDOW_SECONDS", "sign refused");
	expect_error("HTTP_CONNECT_TIMEOUT_MS", "1 000", "HTTP_CONNECT_TIMEOUT_MS", "inner space refused");
	expect_error("HTTP_MAX_RESPONSE_BYTES", "1MB", "HTTP_MAX_RESPONSE_BYTES", "unit suffix refused");
	expect_error("OAUTH_BIND_BROWSER", "maybe", "OAUTH_BIND_BROWSER", "bad boolean refused");
	expect_error("LOG_LEVEL", "verbose", "LOG_LEVEL", "bad log level refused");
	expect_error("CREDENTIAL_ENCRYPTION_KEY", "hunter2-is-my-password-and-secret",
		     "CREDENTIAL_ENCRYPTION_KEY", "bad key refused");
	expect_error("CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS", KEY_HEX ",oldsecretvalue",
		     "CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS", "bad previous key refused");
	expect_error("JWT_SECRET", "tooshortsecret", "JWT_SECRET", "short JWT_SECRET refused");
	expect_error("PUBLIC_BASE_URL", "ftp://files.example", "PUBLIC_BASE_URL", "ftp base URL refused");
	expect_error("PUBLIC_BASE_URL", "api.example.com", "PUBLIC_BASE_URL",
		     "base URL without scheme refused");
	expect_error("PUBLIC_BASE_URL", "https://user@api.example.com", "PUBLIC_BASE_URL",
		     "base URL with userinfo refused");
	expect_error("PUBLIC_BASE_URL", "https://api.example.com/?x=1", "PUBLIC_BASE_URL",
		     "base URL with a query refused");
	expect_error("ALLOWED_REDIRECT_ORIGINS", "*", "ALLOWED_REDIRECT_ORIGINS",
		     "* refused for redirects");
	expect_error("ALLOWED_REDIRECT_ORIGINS", "https://ok.example,https://app.example/callback",
		     "ALLOWED_REDIRECT_ORIGINS entry 2", "redirect entry with a path refused");
	expect_error("CORS_ALLOWED_ORIGINS", "app.example", "CORS_ALLOWED_ORIGINS",
		     "CORS entry without scheme refused");

	ia_config cfg;
	char err[240];
	clear_env();
	set_required();
	setenv("PUBLIC_BASE_URL", "http://127.0.0.1:8080/functions/v1//", 1);
	CHECK(load(&cfg, err, sizeof err), "base URL with a path accepted");
	CHECK_STR(cfg.public_base_url, "http://127.0.0.1:8080/functions/v1", "every trailing slash stripped");
	CHECK_STR(ia_config_base_path(&cfg), "/functions/v1", "base path: what follows the host");
	ia_config_release(&cfg);
	setenv("PUBLIC_BASE_URL", "https://api.example.com:8443/", 1);
	CHECK(load(&cfg, err, sizeof err), "base URL with a port accepted");
	CHECK_STR(ia_config_base_path(&cfg), "", "base path: none");
	ia_config_release(&cfg);
	setenv("PUBLIC_BASE_URL", "https://api.example.com/v1/@team:x+y=z,1!", 1);
	CHECK(load(&cfg, err, sizeof err), "base path with RFC 3986 sub-delims accepted");
	CHECK_STR(ia_config_base_path(&cfg), "/v1/@team:x+y=z,1!", "base path kept as written");
	ia_config_release(&cfg);
	expect_error("PUBLIC_BASE_URL", "https://api.example.com/a;b", "PUBLIC_BASE_URL",
		     "a path that would end a cookie attribute refused");
	expect_error("PUBLIC_BASE_URL", "https://api.example.com/a b", "PUBLIC_BASE_URL",
		     "a path with a blank refused");
}

static void test_env_file(void)
{
	ia_config cfg;
	char err[240];

	clear_env();
	write_file(".env",
		   "# intauth settings\n"
		   "\n"
		   "DATABASE_URL=host=/tmp/pg port=54329 dbname=intauth user=intauth_app\n"
		   "export JWT_SECRET=\"" JWT_SECRET_VAL "\"\n"
		   "  CREDENTIAL_ENCRYPTION_KEY = '" KEY_HEX "'  # hex\n"
		   "PUBLIC_BASE_URL=https://file.example # inline comment\n"
		   "GITHUB_CLIENT_ID=\"quoted \\\"inner\\\" # not a comment\" # a comment\n"
		   "SINGLE='lit\\n$HOME'\n"
		   "HASH=abc#def\n"
		   "CRLF=windows\r\n"
		   "EMPTY=\n"
		   "DUP=first\n"
		   "DUP=second\n"
		   "\tINDENTED=yes\n"
		   "LAST=no newline at end");
	CHECK(load(&cfg, err, sizeof err), "default ./.env read");
	if (err[0])
		printf("#   err \"%s\"\n", err);
	CHECK_STR(cfg.database_url, "host=/tmp/pg port=54329 dbname=intauth user=intauth_app",
		  "unquoted value with spaces and '='");
	CHECK(cfg.jwt_secret && strcmp((const char *)cfg.jwt_secret, JWT_SECRET_VAL) == 0,
	      "export prefix and double quotes");
	CHECK(cfg.keys != NULL, "single quotes, blanks around '=', trailing comment");
	CHECK_STR(cfg.public_base_url, "https://file.example", "inline comment stripped");
	CHECK_STR(ia_config_get(&cfg, "GITHUB_CLIENT_ID"), "quoted \"inner\" # not a comment",
		  "double quotes: escapes, '#' inside kept");
	CHECK_STR(ia_config_get(&cfg, "SINGLE"), "lit\\n$HOME", "single quotes are literal");
	CHECK_STR(ia_config_get(&cfg, "HASH"), "abc#def", "'#' inside a word kept");
	CHECK_STR(ia_config_get(&cfg, "CRLF"), "windows", "CRLF line endings");
	CHECK(ia_config_get(&cfg, "EMPTY") == NULL, "empty value reads as unset");
	CHECK_STR(ia_config_get(&cfg, "DUP"), "second", "a repeated key: the last wins");
	CHECK_STR(ia_config_get(&cfg, "INDENTED"), "yes", "leading tab");
	CHECK_STR(ia_config_get(&cfg, "LAST"), "no newline at end", "last line without newline");
	CHECK(ia_config_get(&cfg, "NOPE") == NULL, "unknown variable is NULL");
	ia_config_release(&cfg);

	/* the environment wins over the file */
	setenv("PUBLIC_BASE_URL", "https://env.example", 1);
	setenv("GITHUB_CLIENT_ID", "from-env", 1);
	CHECK(load(&cfg, err, sizeof err), "env + file");
	CHECK_STR(cfg.public_base_url, "https://env.example", "environment wins over the file");
	CHECK_STR(ia_config_get(&cfg, "GITHUB_CLIENT_ID"), "from-env", "ia_config_get: environment first");
	CHECK_STR(ia_config_get(&cfg, "DUP"), "second", "file value still visible");
	ia_config_release(&cfg);
	setenv("GITHUB_CLIENT_ID", "", 1);
	CHECK(load(&cfg, err, sizeof err) &&
	      strcmp(ia_config_get(&cfg, "GITHUB_CLIENT_ID"), "quoted \"inner\" # not a comment") == 0,
	      "an empty environment value falls back to the file");
	ia_config_release(&cfg);

	/* ENV_FILE names another file; ./.env is then not read */
	clear_env();
	write_file(".env", "DATABASE_URL=wrong\n");
	write_file("other.env", "DATABASE_URL=right\nJWT_SECRET=" JWT_SECRET_VAL "\n"
		   "CREDENTIAL_ENCRYPTION_KEY=" KEY_HEX "\nPUBLIC_BASE_URL=http://localhost:8080\n");
	setenv("ENV_FILE", "other.env", 1);
	CHECK(load(&cfg, err, sizeof err), "ENV_FILE read");
	CHECK_STR(cfg.database_url, "right", "ENV_FILE replaces ./.env");
	ia_config_release(&cfg);

	setenv("ENV_FILE", "/nonexistent/secret-path.env", 1);
	set_required();
	CHECK(!load(&cfg, err, sizeof err), "an ENV_FILE that cannot be read is an error");
	CHECK(strstr(err, "ENV_FILE") != NULL && strstr(err, "secret-path") == NULL,
	      "message names ENV_FILE, not the path");
	setenv("ENV_FILE", ".", 1);
	CHECK(!load(&cfg, err, sizeof err), "an ENV_FILE that is a directory is an error");

	/* malformed lines */
	clear_env();
	set_required();
	write_file(".env", "A=1\n# ok\nnot a pair\n");
	CHECK(!load(&cfg, err, sizeof err), "a line without '=' refused");
	CHECK(strstr(err, "line 3") != NULL, "message gives the line number");
	write_file(".env", "A=\"unterminated\n");
	CHECK(!load(&cfg, err, sizeof err), "unterminated quote refused");
	write_file(".env", "A='x' trailing\n");
	CHECK(!load(&cfg, err, sizeof err), "text after a closing quote refused");
	write_file(".env", "1A=x\n");
	CHECK(!load(&cfg, err, sizeof err), "key starting with a digit refused");
	write_file(".env", "A-B=x\n");
	CHECK(!load(&cfg, err, sizeof err), "key with '-' refused");
	write_file(".env", "JWT_SECRET=hunter2hunter2hunter2hunter2hunter2-but bad line\nX\n");
	CHECK(!load(&cfg, err, sizeof err) && !strstr(err, "hunter2"), "no file content in messages");
	unlink(".env");
}

static void test_origins(void)
{
	ia_config cfg;
	char err[240];

	clear_env();
	set_required();
	setenv("PUBLIC_BASE_URL", "https://api.example.com/base", 1);
	setenv("ALLOWED_REDIRECT_ORIGINS", " https://allowed.example , http://localhost:3000/,,"
	       "HTTPS://Upper.Example:443", 1);
	setenv("CORS_ALLOWED_ORIGINS", "https://app.example,http://localhost:5173", 1);
	CHECK(load(&cfg, err, sizeof err), "origin lists load");
	CHECK(cfg.n_redirect_origins == 3, "empty entries skipped");
	CHECK_STR(cfg.redirect_origins[1], "http://localhost:3000", "entries trimmed, slash dropped");
	CHECK_STR(cfg.redirect_origins[2], "https://upper.example", "entries canonical");

	struct { const char *url; bool ok; } cases[] = {
		{ "https://allowed.example/cb", true },
		{ "https://allowed.example", true },
		{ "https://allowed.example?x=1", true },
		{ "https://allowed.example#frag", true },
		{ "HTTPS://Allowed.EXAMPLE/cb?next=/x", true },
		{ "https://allowed.example:443/cb", true },
		{ "https://upper.example/", true },
		{ "http://localhost:3000/done", true },
		{ "https://api.example.com/other/path", true },   /* PUBLIC_BASE_URL's origin */
		{ "https://allowed.example:8443/cb", false },
		{ "http://allowed.example/cb", false },
		{ "http://localhost:3001/", false },
		{ "http://localhost/", false },
		{ "https://allowed.example@evil.com/", false },
		{ "https://allowed.example:443@evil.com/", false },
		{ "https://evil.com@allowed.example/", false },
		{ "https://user:pw@allowed.example/", false },
		{ "https://allowed.example.evil.com/", false },
		{ "https://evilallowed.example/", false },
		{ "https://allowed.example./", false },
		{ "https://evil.com/?r=https://allowed.example", false },
		{ "https://evil.com/https://allowed.example", false },
		{ "//evil.com", false },
		{ "//allowed.example/cb", false },
		{ "/relative/path", false },
		{ "javascript:alert(1)", false },
		{ "javascript://allowed.example/%0aalert(1)", false },
		{ "data:text/html,<script>alert(1)</script>", false },
		{ "ftp://allowed.example/", false },
		{ "https:allowed.example", false },
		{ "https:/allowed.example", false },
		{ "https:\\\\evil.com", false },
		{ "https://allowed.example\\@evil.com", false },
		{ "https://evil.com\\allowed.example", false },
		{ "https://allowed.example\t.evil.com/", false },
		{ "https://allowed.example/\nLocation: x", false },
		{ " https://allowed.example/", false },
		{ "https://allowed.example /", false },
		{ "https://allowed.example:/", false },
		{ "https://allowed.example:99999/", false },
		{ "https://allowed.example:0/", false },
		{ "https://[::1]/", false },
		{ "https:///allowed.example", false },
		{ "https://", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char name[200];
		snprintf(name, sizeof name, "redirect %s: %s", cases[i].ok ? "allowed" : "refused",
			 cases[i].url);
		for (char *p = name; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
		CHECK(ia_config_redirect_allowed(&cfg, cases[i].url) == cases[i].ok, name);
	}
	CHECK(!ia_config_redirect_allowed(&cfg, NULL), "redirect refused: NULL");
	CHECK(!ia_config_redirect_allowed(NULL, "https://allowed.example/"), "redirect refused: no config");

	/* CORS */
	const char *o = ia_config_cors_origin(&cfg, "https://app.example");
	CHECK_STR(o, "https://app.example", "CORS: listed origin echoed");
	CHECK_STR(ia_config_cors_origin(&cfg, "http://localhost:5173"), "http://localhost:5173",
		  "CORS: second origin");
	CHECK_STR(ia_config_cors_origin(&cfg, "https://APP.example"), "https://app.example",
		  "CORS: host compared case-insensitively");
	CHECK(ia_config_cors_origin(&cfg, "https://evil.example") == NULL, "CORS: other origin refused");
	CHECK(ia_config_cors_origin(&cfg, "https://app.example.evil.example") == NULL,
	      "CORS: suffix trick refused");
	CHECK(ia_config_cors_origin(&cfg, "http://app.example") == NULL, "CORS: other scheme refused");
	CHECK(ia_config_cors_origin(&cfg, "https://app.example/") == NULL, "CORS: not an origin refused");
	CHECK(ia_config_cors_origin(&cfg, "null") == NULL, "CORS: null refused");
	CHECK(ia_config_cors_origin(&cfg, NULL) == NULL, "CORS: no Origin");
	ia_config_release(&cfg);

	setenv("CORS_ALLOWED_ORIGINS", "*", 1);
	CHECK(load(&cfg, err, sizeof err), "CORS * loads");
	const char *req = "https://any.example:8443";
	CHECK(ia_config_cors_origin(&cfg, req) == req, "CORS *: the request's origin echoed");
	CHECK(ia_config_cors_origin(&cfg, "null") == NULL, "CORS *: null still refused");
	CHECK(ia_config_cors_origin(&cfg, "https://x.example\r\nSet-Cookie: a=b") == NULL,
	      "CORS *: header injection refused");
	CHECK(ia_config_cors_origin(&cfg, "https://a@x.example") == NULL, "CORS *: userinfo refused");
	ia_config_release(&cfg);

	unsetenv("CORS_ALLOWED_ORIGINS");
	CHECK(load(&cfg, err, sizeof err), "no CORS list loads");
	CHECK(ia_config_cors_origin(&cfg, "https://api.example.com") == NULL, "CORS: empty list allows none");
	ia_config_release(&cfg);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof dir, "/tmp/ia_test_config.XXXXXX");
	if (!mkdtemp(dir) || chdir(dir) != 0) {
		perror("mkdtemp");
		return 2;
	}
	test_defaults();
	test_required();
	test_values();
	test_env_file();
	test_origins();
	clear_env();
	if (chdir("/") == 0)
		rmdir(dir);
	return ia_test_done();
}
