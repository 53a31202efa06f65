/* Fuzz target: the provider catalog loader (ia_providers_load in
 * lib/providers.c) with a base file and, after a line "--extra--", an extra
 * file merged over it; both are in-memory files named by path, as
 * PROVIDERS_FILE and PROVIDERS_EXTRA_FILE name them.
 *
 * Properties (ia_providers.h): a loaded catalog is sorted with unique
 * [a-z0-9_]{1,64} names that ia_providers_find finds; oauth2 entries have
 * authorization and token URLs, https or http to a loopback host; the public
 * JSON parses; URL templates fill from values the patterns accept (or fail
 * with a 400). A failure leaves a message.
 */
#include "fuzz_common.h"

#include <cJSON.h>
#include <sodium.h>

#include "ia_err.h"
#include "ia_providers.h"

static fuzz_memfile base_file, extra_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		return 1;
	fuzz_memfile_init(&base_file, "fuzz-providers");
	fuzz_memfile_init(&extra_file, "fuzz-providers-extra");
	return 0;
}

static bool lower_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static void check_url(const char *u)
{
	if (!u)
		return;
	if (strncasecmp(u, "https://", 8) == 0)
		return;
	FUZZ_CHECK(strncasecmp(u, "http://", 7) == 0);
	const char *h = u + 7;
	FUZZ_CHECK(strncasecmp(h, "localhost", 9) == 0 || strncmp(h, "127.", 4) == 0 ||
		   strncmp(h, "[::1]", 5) == 0);
}

static void fill(const ia_provider *p, const char *tmpl)
{
	const char *names[16], *values[16];
	size_t n = 0;
	ia_err err = { 0 };

	if (!tmpl)
		return;
	for (size_t i = 0; i < p->n_params && n < 16; i++, n++) {
		names[n] = p->params[i].name;
		values[n] = i % 2 ? "acme" : "acme-1.example";
	}
	char *url = ia_provider_fill_url(p, tmpl, names, values, n, &err);
	if (url) {
		FUZZ_CHECK(strchr(url, '{') == NULL || strchr(tmpl, '{') != NULL);
		free(url);
	} else {
		FUZZ_CHECK(err.status == 400 || err.status == 500);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t head;
	const uint8_t *rest;
	size_t rest_len;
	ia_providers *p = NULL;
	char err[512];

	fuzz_split(data, size, "\n--extra--\n", &head, &rest, &rest_len);
	bool has_extra = head != size;
	fuzz_memfile_set(&base_file, data, head);
	if (has_extra)
		fuzz_memfile_set(&extra_file, rest, rest_len);
	if (ia_providers_load(&p, base_file.path, has_extra ? extra_file.path : NULL, err, sizeof err) != 0) {
		FUZZ_CHECK(p == NULL && err[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(p != NULL);
	for (size_t i = 0; i < p->n; i++) {
		const ia_provider *it = &p->items[i];
		FUZZ_CHECK(lower_name(it->name));
		if (i)
			FUZZ_CHECK(strcmp(p->items[i - 1].name, it->name) < 0);
		FUZZ_CHECK(ia_providers_find(p, it->name) == it);
		FUZZ_CHECK(it->auth_type >= 0 && it->auth_type < IA_AUTH__MAX);
		FUZZ_CHECK(it->webhook.scheme >= 0 && it->webhook.scheme < IA_WH__MAX);
		if (it->auth_type == IA_AUTH_OAUTH2)
			FUZZ_CHECK(it->authorization_url && it->token_url);
		check_url(it->authorization_url);
		check_url(it->token_url);
		check_url(it->revocation_url);
		check_url(it->userinfo_url);
		fill(it, it->authorization_url);
		fill(it, it->token_url);
		fill(it, it->revocation_url);
	}
	FUZZ_CHECK(ia_providers_find(p, "") == NULL);

	ia_config cfg;
	memset(&cfg, 0, sizeof cfg);
	char *json = ia_providers_public_json(p, &cfg);
	FUZZ_CHECK(json != NULL);
	cJSON *root = cJSON_Parse(json);
	FUZZ_CHECK(cJSON_IsObject(root));
	FUZZ_CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "providers")) == (int)p->n);
	cJSON_Delete(root);
	free(json);
	ia_providers_free(p);
	return 0;
}
