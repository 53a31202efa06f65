/* test_providers: the shipped catalog loads and holds what SPEC §7 promises;
 * every validation rule refuses a bad catalog with a message naming the file,
 * the provider and the field; the extra file replaces and adds entries;
 * placeholders take only values that match their pattern; /api/providers
 * reports configured providers and never a secret. Runs from the repo root. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "ia_config.h"
#include "ia_err.h"
#include "ia_json.h"
#include "ia_providers.h"
#include "ia_test.h"

static char tmpdir[64];
static char paths[128][128];
static int n_paths;

/* Writes text to a new file in tmpdir and returns its path. */
static const char *write_tmp(const char *text)
{
	char *path = paths[n_paths];
	FILE *f;

	snprintf(path, sizeof paths[0], "%s/catalog%d.json", tmpdir, n_paths);
	n_paths++;
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

/* A one-provider catalog "x" whose body is the given JSON members. */
static const char *write_entry(const char *members)
{
	char text[4096];

	snprintf(text, sizeof text, "{\"x\": {\"display_name\": \"X\", %s}}", members);
	return write_tmp(text);
}

#define OAUTH2 "\"auth_type\": \"oauth2\", \"authorization_url\": \"https://example.com/a\", "

/* Loading must fail, and the message must name the file and hold want. */
static void expect_fail(const char *path, const char *want, const char *name)
{
	ia_providers *p = (ia_providers *)1;
	char err[512] = "";
	char label[256];
	int rc = ia_providers_load(&p, path, NULL, err, sizeof err);

	snprintf(label, sizeof label, "refused: %s", name);
	CHECK(rc == -1 && p == NULL, label);
	snprintf(label, sizeof label, "message names file and \"%s\": %s", want, name);
	CHECK(strstr(err, path) != NULL && strstr(err, want) != NULL, label);
	if (!strstr(err, want))
		printf("#   got \"%s\"\n", err);
}

static void expect_ok(const char *path, const char *name)
{
	ia_providers *p = NULL;
	char err[512] = "";
	int rc = ia_providers_load(&p, path, NULL, err, sizeof err);

	CHECK(rc == 0 && p != NULL && p->n == 1, name);
	if (rc != 0)
		printf("#   err \"%s\"\n", err);
	ia_providers_free(p);
}

static void test_real_catalog(void)
{
	static const char *const required[] = {
		"google", "github", "slack", "microsoft", "salesforce", "hubspot", "notion", "dropbox",
		"zoom", "atlassian", "gitlab", "linear", "discord", "spotify", "shopify", "asana", "box",
		"figma", "airtable", "intercom", "xero", "quickbooks", "zendesk", "stripe", "openai",
		"twilio", "sendgrid", "svix",
	};
	ia_providers *p = NULL;
	char err[512] = "";
	const ia_provider *g;
	bool sorted = true, all = true, have_hmac = false, oauth_urls_ok = true;

	CHECK(ia_providers_load(&p, "providers/providers.json", NULL, err, sizeof err) == 0,
	      "providers/providers.json loads");
	if (!p) {
		printf("#   err \"%s\"\n", err);
		return;
	}
	CHECK(p->n >= 30, "catalog has at least 30 providers");
	for (size_t i = 1; i < p->n; i++)
		sorted = sorted && strcmp(p->items[i - 1].name, p->items[i].name) < 0;
	CHECK(sorted, "entries are sorted by name");
	for (size_t i = 0; i < sizeof required / sizeof *required; i++)
		if (!ia_providers_find(p, required[i])) {
			printf("#   missing %s\n", required[i]);
			all = false;
		}
	CHECK(all, "catalog holds every required provider");
	for (size_t i = 0; i < p->n; i++) {
		const ia_provider *it = &p->items[i];
		if (it->webhook.scheme == IA_WH_HMAC && it->webhook.signature_header)
			have_hmac = true;
		if ((it->auth_type == IA_AUTH_OAUTH2) != (it->authorization_url && it->token_url))
			oauth_urls_ok = false;
	}
	CHECK(have_hmac, "at least one provider uses the generic hmac scheme with a header");
	CHECK(oauth_urls_ok, "exactly the oauth2 providers have authorization and token URLs");

	g = ia_providers_find(p, "github");
	CHECK(g && g->webhook.scheme == IA_WH_GITHUB && g->auth_type == IA_AUTH_OAUTH2,
	      "github: oauth2, webhook scheme github");
	g = ia_providers_find(p, "stripe");
	CHECK(g && g->webhook.scheme == IA_WH_STRIPE && g->auth_type == IA_AUTH_API_KEY,
	      "stripe: api_key, webhook scheme stripe");
	g = ia_providers_find(p, "slack");
	CHECK(g && g->webhook.scheme == IA_WH_SLACK && strcmp(g->scope_separator, ",") == 0,
	      "slack: webhook scheme slack, scopes separated by ','");
	g = ia_providers_find(p, "svix");
	CHECK(g && g->webhook.scheme == IA_WH_STANDARD && g->auth_type == IA_AUTH_API_KEY,
	      "svix: api_key, webhook scheme standard");
	g = ia_providers_find(p, "shopify");
	CHECK(g && g->webhook.scheme == IA_WH_SHOPIFY && g->n_params == 1 &&
	      strcmp(g->params[0].name, "shop") == 0 && strstr(g->authorization_url, "{shop}") &&
	      !g->pkce, "shopify: webhook scheme shopify, {shop} declared, no PKCE");
	g = ia_providers_find(p, "twilio");
	CHECK(g && g->auth_type == IA_AUTH_BASIC && !g->authorization_url, "twilio: basic, no OAuth URLs");
	g = ia_providers_find(p, "google");
	CHECK(g && g->issuer && strcmp(g->issuer, "https://accounts.google.com") == 0 &&
	      g->pkce && g->token_endpoint_auth == IA_TOKEN_AUTH_POST,
	      "google: issuer, PKCE, client_secret_post");
	if (g) {
		bool offline = false;
		for (size_t i = 0; i < g->n_auth_params; i++)
			if (strcmp(g->auth_param_keys[i], "access_type") == 0 &&
			    strcmp(g->auth_param_values[i], "offline") == 0)
				offline = true;
		CHECK(offline, "google: access_type=offline");
		CHECK_STR(g->env_name, "GOOGLE", "env_name is the upper-cased name");
	}
	g = ia_providers_find(p, "notion");
	CHECK(g && g->token_endpoint_auth == IA_TOKEN_AUTH_BASIC, "notion: client_secret_basic");
	CHECK(ia_providers_find(p, "GitHub") == NULL, "find is exact (case-sensitive)");
	CHECK(ia_providers_find(p, "nope") == NULL, "unknown provider is not found");
	CHECK(ia_providers_find(p, "") == NULL, "empty name is not found");
	CHECK(ia_providers_find(p, NULL) == NULL, "NULL name is not found");
	CHECK(ia_providers_find(p, "github/../slack") == NULL, "path-like name is not found");

	{
		const ia_provider *shop = ia_providers_find(p, "shopify");
		const char *names[] = { "shop" };
		const char *good[] = { "my-store" };
		ia_err e = { 0 };
		char *url = shop ? ia_provider_fill_url(shop, shop->authorization_url, names, good, 1, &e) : NULL;
		static const char *const bad[] = {
			"evil.com/x", "my_store", "My-Store", "a.b", "-store", "x@y", "store%2e",
			"0123456789012345678901234567890123456789012345678901234567890",
		};

		CHECK_STR(url, "https://my-store.myshopify.com/admin/oauth/authorize",
			  "fill_url: good shop fills the template");
		free(url);
		for (size_t i = 0; shop && i < sizeof bad / sizeof *bad; i++) {
			char label[160];
			const char *v[] = { bad[i] };

			memset(&e, 0, sizeof e);
			url = ia_provider_fill_url(shop, shop->token_url, names, v, 1, &e);
			snprintf(label, sizeof label, "fill_url: refuses shop \"%.20s\" with 400 naming shop", bad[i]);
			CHECK(!url && e.status == 400 && e.code && strcmp(e.code, "invalid_request") == 0 &&
			      strstr(e.message, "shop") && !strstr(e.message, bad[i]), label);
			free(url);
		}
		memset(&e, 0, sizeof e);
		url = shop ? ia_provider_fill_url(shop, shop->token_url, NULL, NULL, 0, &e) : NULL;
		CHECK(!url && e.status == 400 && strstr(e.message, "Missing") && strstr(e.message, "shop"),
		      "fill_url: missing shop is 400 naming it");
		free(url);
		memset(&e, 0, sizeof e);
		{
			const char *other[] = { "store" };
			url = shop ? ia_provider_fill_url(shop, shop->token_url, other, good, 1, &e) : NULL;
		}
		CHECK(!url && e.status == 400, "fill_url: a value under another name does not count");
		free(url);
		g = ia_providers_find(p, "github");
		memset(&e, 0, sizeof e);
		url = g ? ia_provider_fill_url(g, g->token_url, NULL, NULL, 0, &e) : NULL;
		CHECK_STR(url, "https://github.com/login/oauth/access_token",
			  "fill_url: a template without placeholders is copied");
		free(url);
	}
	ia_providers_free(p);
}

static void test_validation(void)
{
	static const char *const private_hosts[] = {
		"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0",
		"[fd00::1]", "[fe80::1]", "[::ffff:10.0.0.1]", "[::]", "100.64.0.1", "224.0.0.1",
	};
	char members[1024];
	const char *path;

	path = write_entry(OAUTH2 "\"token_url\": \"http://example.com/t\"");
	expect_fail(path, "x.token_url", "plain http URL");
	expect_fail(path, "https", "plain http URL says https");
	for (size_t i = 0; i < sizeof private_hosts / sizeof *private_hosts; i++) {
		char label[96];

		snprintf(members, sizeof members, OAUTH2 "\"token_url\": \"https://%s/t\"", private_hosts[i]);
		snprintf(label, sizeof label, "private/reserved address %s", private_hosts[i]);
		expect_fail(write_entry(members), "x.token_url", label);
	}
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://2130706433/t\""), "x.token_url",
		    "numeric host that a resolver reads as 127.0.0.1");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://0x7f.1/t\""), "x.token_url",
		    "hex host");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://user:pw@example.com/t\""),
		    "user information", "URL with userinfo");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t#frag\""), "fragment",
		    "URL with a fragment");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"ftp://example.com/t\""), "x.token_url",
		    "non-http scheme");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://exa mple.com/t\""), "x.token_url",
		    "space in URL");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com:99999/t\""), "port",
		    "port out of range");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"userinfo_url\": \"https://[::1/x\""), "x.userinfo_url",
		    "malformed IPv6 literal");
	expect_ok(write_entry(OAUTH2 "\"token_url\": \"http://127.0.0.1:8080/t\", "
			      "\"revocation_url\": \"http://localhost/r\", "
			      "\"userinfo_url\": \"http://[::1]:9/u\""),
		  "loopback hosts may use plain http");
	expect_ok(write_entry(OAUTH2 "\"token_url\": \"https://127.0.0.2/t\""),
		  "loopback hosts may use https");

	expect_fail(write_entry("\"auth_type\": \"oauth2\", "
				"\"authorization_url\": \"https://{shop}.example.com/a\", "
				"\"token_url\": \"https://example.com/t\""),
		    "x.authorization_url", "undeclared placeholder");
	expect_fail(write_entry("\"auth_type\": \"oauth2\", "
				"\"authorization_url\": \"https://{Shop}.example.com/a\", "
				"\"token_url\": \"https://example.com/t\", \"params\": {\"shop\": \"^[a-z]+$\"}"),
		    "x.authorization_url", "malformed placeholder");
	expect_fail(write_entry("\"auth_type\": \"oauth2\", "
				"\"authorization_url\": \"https://{shop}.example.com/a\", "
				"\"token_url\": \"https://example.com/t\", \"params\": {\"shop\": \"^[a-z$\"}"),
		    "x.params", "pattern that does not compile");
	expect_fail(write_entry("\"auth_type\": \"oauth2\", "
				"\"authorization_url\": \"https://{shop}.example.com/a\", "
				"\"token_url\": \"https://example.com/t\", \"params\": {\"shop\": \"[a-z]+\"}"),
		    "anchored", "unanchored pattern");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"webhook\": {\"scheme\": \"nope\"}"),
		    "x.webhook.scheme", "unknown webhook scheme");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"webhook\": {\"scheme\": \"hmac\", \"encoding\": \"hex\"}"),
		    "x.webhook.header", "hmac scheme without a header");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"webhook\": {\"scheme\": \"hmac\", \"header\": \"X-Sig\", \"encoding\": \"b32\"}"),
		    "x.webhook.encoding", "unknown hmac encoding");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"webhook\": {\"scheme\": \"hmac\", \"header\": \"X Sig\"}"),
		    "x.webhook.header", "header name with a space");
	expect_fail(write_tmp("{\"Bad-Name\": {\"display_name\": \"B\", \"auth_type\": \"api_key\"}}"),
		    "Bad-Name", "provider name outside [a-z0-9_]");
	expect_fail(write_tmp("{\"\": {\"display_name\": \"B\", \"auth_type\": \"api_key\"}}"),
		    "provider names", "empty provider name");
	expect_fail(write_entry(OAUTH2 "\"scope_separator\": \" \""), "x.token_url",
		    "oauth2 without token_url");
	expect_fail(write_entry("\"auth_type\": \"oauth2\", \"token_url\": \"https://example.com/t\""),
		    "x.authorization_url", "oauth2 without authorization_url");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"default_scopes\": \"read\""),
		    "x.default_scopes", "default_scopes as a string");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"default_scopes\": [\"read\", 3]"),
		    "x.default_scopes", "default_scopes with a number");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"default_scopes\": [\"read write\"]"),
		    "x.default_scopes", "scope holding the separator");
	{
		/* auth-start asks for at most IA_SCOPE_REQUEST_MAX_ITEMS: more defaults could never be asked for */
		char entry[4096];
		size_t off = (size_t)snprintf(entry, sizeof entry,
					      OAUTH2 "\"token_url\": \"https://example.com/t\", \"default_scopes\": [");
		for (int i = 0; i <= IA_SCOPE_REQUEST_MAX_ITEMS; i++)
			off += (size_t)snprintf(entry + off, sizeof entry - off, "%s\"s%d\"", i ? "," : "", i);
		snprintf(entry + off, sizeof entry - off, "]");
		expect_fail(write_entry(entry), "x.default_scopes", "more default scopes than a request may ask for");
	}
	expect_fail(write_entry("\"auth_type\": \"saml\""), "x.auth_type", "unknown auth_type");
	expect_fail(write_entry("\"auth_type\": 1"), "x.auth_type", "auth_type of the wrong type");
	expect_fail(write_tmp("{\"x\": {\"auth_type\": \"api_key\"}}"), "x.display_name",
		    "missing display_name");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"token_endpoint_auth\": \"private_key_jwt\""),
		    "x.token_endpoint_auth", "unknown token_endpoint_auth");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", \"pkce\": \"yes\""),
		    "x.pkce", "pkce that is not a boolean");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"authorization_params\": {\"redirect_uri\": \"https://evil.example/\"}"),
		    "x.authorization_params", "authorization_params overriding redirect_uri");
	expect_fail(write_entry(OAUTH2 "\"token_url\": \"https://example.com/t\", "
				"\"authorization_params\": {\"n\": 1}"),
		    "x.authorization_params", "authorization_params with a number");
	expect_fail(write_entry("\"auth_type\": \"api_key\", \"token_url\": \"https://example.com/t\""),
		    "x.token_url", "token_url on an api_key provider");
	expect_fail(write_tmp("{\"x\": {\"display_name\": \"X\", \"auth_type\": \"api_key\"}, "
			      "\"x\": {\"display_name\": \"Y\", \"auth_type\": \"api_key\"}}"),
		    "twice", "duplicate provider in one file");
	expect_fail(write_tmp("{\"x\": {\"display_name\": \"X\",\n \"auth_type\": }}"),
		    "invalid JSON near line 2", "invalid JSON with its line");
	expect_fail(write_tmp("[]"), "JSON object", "top level that is not an object");
	expect_fail(write_tmp("{} {}"), "after the catalog", "trailing data");
	expect_fail(write_tmp("{\"x\": []}"), "must be an object", "entry that is not an object");
	{
		char missing[160];
		snprintf(missing, sizeof missing, "%s/does-not-exist.json", tmpdir);
		expect_fail(missing, "cannot open", "missing file");
	}
	{
		/* one byte over the cap */
		size_t big = ((size_t)4 << 20) + 1;
		char *text = malloc(big + 1);
		if (text) {
			memset(text, ' ', big);
			text[0] = '{';
			text[big - 1] = '}';
			text[big] = '\0';
			expect_fail(write_tmp(text), "larger than", "file over 4 MiB");
			free(text);
		}
	}
	expect_ok(write_entry("\"auth_type\": \"api_key\", \"future_field\": {\"a\": [1, 2]}, "
			      "\"webhook\": {\"scheme\": \"standard\", \"unknown\": true}"),
		  "unknown fields are ignored");
	{
		ia_providers *p = (ia_providers *)1;
		char err[8];
		/* a short error buffer must still be terminated and not overrun */
		CHECK(ia_providers_load(&p, write_entry("\"auth_type\": \"saml\""), NULL, err, sizeof err) == -1 &&
		      p == NULL && strlen(err) < sizeof err, "short error buffer is truncated safely");
	}
}

static void test_extra_file(void)
{
	const char *base = write_tmp(
		"{\"a\": {\"display_name\": \"A\", \"auth_type\": \"api_key\"},"
		" \"b\": {\"display_name\": \"B\", \"auth_type\": \"api_key\", \"webhook\": {\"scheme\": \"stripe\"}},"
		" \"d\": {\"display_name\": \"D\", \"auth_type\": \"basic\"}}");
	const char *extra = write_tmp(
		"{\"b\": {\"display_name\": \"B2\", \"auth_type\": \"oauth2\","
		"        \"authorization_url\": \"https://b.example.com/a\","
		"        \"token_url\": \"https://b.example.com/t\"},"
		" \"c\": {\"display_name\": \"C\", \"auth_type\": \"api_key\"}}");
	const char *bad_extra = write_tmp("{\"e\": {\"display_name\": \"E\", \"auth_type\": \"nope\"}}");
	ia_providers *p = NULL;
	char err[512] = "";
	const ia_provider *b;

	CHECK(ia_providers_load(&p, base, extra, err, sizeof err) == 0 && p, "base + extra load");
	if (!p)
		return;
	CHECK(p->n == 4, "extra adds c and replaces b: 4 entries");
	CHECK(p->n == 4 && strcmp(p->items[0].name, "a") == 0 && strcmp(p->items[1].name, "b") == 0 &&
	      strcmp(p->items[2].name, "c") == 0 && strcmp(p->items[3].name, "d") == 0,
	      "merged entries stay sorted");
	b = ia_providers_find(p, "b");
	CHECK(b && strcmp(b->display_name, "B2") == 0 && b->auth_type == IA_AUTH_OAUTH2 &&
	      b->webhook.scheme == IA_WH_NONE, "extra replaces the whole entry (old webhook gone)");
	CHECK(ia_providers_find(p, "c") != NULL, "extra adds a new provider");
	ia_providers_free(p);

	p = (ia_providers *)1;
	CHECK(ia_providers_load(&p, base, bad_extra, err, sizeof err) == -1 && p == NULL &&
	      strstr(err, bad_extra) && strstr(err, "e.auth_type"),
	      "a bad extra file is refused, naming that file");
}

static void test_fill_host_placeholder(void)
{
	const char *path = write_entry("\"auth_type\": \"oauth2\","
				       " \"authorization_url\": \"https://{host}/a\","
				       " \"token_url\": \"https://{host}/t\","
				       " \"params\": {\"host\": \"^[a-z0-9.]+$\"}");
	ia_providers *p = NULL;
	char err[512] = "";
	const char *names[] = { "host" };
	static const char *const refused[] = { "10.0.0.1", "127.0.0.1", "localhost", "1.2.3.4", "..", "a..b" };

	CHECK(ia_providers_load(&p, path, NULL, err, sizeof err) == 0, "catalog with a host placeholder loads");
	if (!p)
		return;
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		const char *v[] = { refused[i] };
		ia_err e = { 0 };
		char label[128];
		char *url = ia_provider_fill_url(&p->items[0], p->items[0].token_url, names, v, 1, &e);

		snprintf(label, sizeof label, "a filled host may not be %s", refused[i]);
		CHECK(!url && e.status == 400 && strstr(e.message, "host"), label);
		free(url);
	}
	{
		const char *v[] = { "api.example.com" };
		ia_err e = { 0 };
		char *url = ia_provider_fill_url(&p->items[0], p->items[0].token_url, names, v, 1, &e);
		CHECK_STR(url, "https://api.example.com/t", "a DNS host name fills the host placeholder");
		free(url);
	}
	ia_providers_free(p);
}

static void test_public_json(void)
{
	ia_providers *p = NULL;
	ia_config cfg;
	char err[512] = "";
	char *json;
	cJSON *root, *arr, *it;
	int seen = 0;
	bool github_ok = false, slack_ok = false, stripe_ok = false, zoom_ok = false, shape_ok = true;

	memset(&cfg, 0, sizeof cfg);
	if (ia_providers_load(&p, "providers/providers.json", NULL, err, sizeof err) != 0) {
		CHECK(0, "catalog loads for the public json");
		return;
	}
	setenv("GITHUB_CLIENT_ID", "gh-id", 1);
	setenv("GITHUB_CLIENT_SECRET", "gh-s3cr3t-value", 1);
	unsetenv("SLACK_CLIENT_ID");
	unsetenv("SLACK_CLIENT_SECRET");
	unsetenv("VITE_SLACK_CLIENT_ID");
	unsetenv("ZOOM_CLIENT_ID");
	setenv("VITE_ZOOM_CLIENT_ID", "zoom-vite-id", 1);
	setenv("ZOOM_CLIENT_SECRET", "zoom-s3cr3t-value", 1);
	setenv("SLACK_CLIENT_SECRET", "", 1);

	CHECK_STR(ia_provider_client_id(ia_providers_find(p, "github"), &cfg), "gh-id",
		  "client id from <NAME>_CLIENT_ID");
	CHECK_STR(ia_provider_client_id(ia_providers_find(p, "zoom"), &cfg), "zoom-vite-id",
		  "client id falls back to VITE_<NAME>_CLIENT_ID");
	CHECK(ia_provider_client_secret(ia_providers_find(p, "slack"), &cfg) == NULL,
	      "an empty secret counts as unset");

	json = ia_providers_public_json(p, &cfg);
	CHECK(json != NULL, "public json is built");
	if (!json) {
		ia_providers_free(p);
		return;
	}
	CHECK(!strstr(json, "s3cr3t") && !strstr(json, "gh-id") && !strstr(json, "secret"),
	      "public json holds no client id or secret");
	root = cJSON_Parse(json);
	arr = root ? cJSON_GetObjectItemCaseSensitive(root, "providers") : NULL;
	CHECK(cJSON_IsArray(arr), "public json parses: {\"providers\": [...]}");
	cJSON_ArrayForEach(it, arr) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
		const cJSON *conf = cJSON_GetObjectItemCaseSensitive(it, "configured");
		const char *n = cJSON_IsString(name) ? name->valuestring : "";

		seen++;
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "display_name")) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "auth_type")) ||
		    !cJSON_IsBool(conf) ||
		    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(it, "default_scopes")) ||
		    cJSON_GetArraySize(it) != 5)
			shape_ok = false;
		if (strcmp(n, "github") == 0)
			github_ok = cJSON_IsTrue(conf) &&
				cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(it, "default_scopes")) > 0;
		if (strcmp(n, "slack") == 0)
			slack_ok = cJSON_IsFalse(conf);
		if (strcmp(n, "stripe") == 0)
			stripe_ok = cJSON_IsTrue(conf);
		if (strcmp(n, "zoom") == 0)
			zoom_ok = cJSON_IsTrue(conf);
	}
	CHECK(seen == (int)p->n, "public json lists every provider");
	CHECK(shape_ok, "every entry has exactly name, display_name, auth_type, configured, default_scopes");
	CHECK(github_ok, "github is configured=true with its id and secret set");
	CHECK(zoom_ok, "zoom is configured=true with VITE_ id and secret set");
	CHECK(slack_ok, "slack is configured=false without credentials");
	CHECK(stripe_ok, "api_key providers are always configured");
	cJSON_Delete(root);
	free(json);

	json = ia_providers_public_json(NULL, &cfg);
	CHECK_STR(json, "{\"providers\":[]}", "no catalog: empty list");
	free(json);
	unsetenv("GITHUB_CLIENT_ID");
	unsetenv("GITHUB_CLIENT_SECRET");
	unsetenv("VITE_ZOOM_CLIENT_ID");
	unsetenv("ZOOM_CLIENT_SECRET");
	unsetenv("SLACK_CLIENT_SECRET");
	ia_providers_free(p);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/ia_test_providers_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	CHECK(ia_auth_type_parse("oauth2") == IA_AUTH_OAUTH2 && ia_auth_type_parse("basic") == IA_AUTH_BASIC &&
	      ia_auth_type_parse("OAuth2") == -1 && ia_auth_type_parse(NULL) == -1, "ia_auth_type_parse");
	CHECK(strcmp(ia_webhook_scheme_names[IA_WH_STANDARD], "standard") == 0 &&
	      strcmp(ia_webhook_scheme_names[IA_WH_HMAC], "hmac") == 0, "ia_webhook_scheme_names");
	test_real_catalog();
	test_validation();
	test_extra_file();
	test_fill_host_placeholder();
	test_public_json();
	for (int i = 0; i < n_paths; i++)
		unlink(paths[i]);
	rmdir(tmpdir);
	return ia_test_done();
}
