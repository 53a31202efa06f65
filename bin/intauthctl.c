/* intauthctl: the operator's command line.
 *   migrate                          apply sql/NNN_*.sql not yet applied, in order
 *   gen-key                          print a fresh CREDENTIAL_ENCRYPTION_KEY
 *   mint-token --sub UUID [--role R] [--ttl S]   print a signed JWT (development, tests)
 *   providers                        list the catalog and which are configured
 *   health-check                     refresh what expires soon and probe the other
 *                                    connections at userinfo (healthCheck, for cron);
 *                                    exit 3 when some refreshes failed
 *   jobs [retry ID]                  queue state; queue a dead job again
 *   rotate-keys [--batch N]          re-encrypt every stored secret under the current key
 *   webhook-add --user UUID --provider NAME [--integration UUID]
 *               (--secrets-stdin | --secret S [--secret S2 ...])
 *                                    register a webhook endpoint with its signing
 *                                    secrets (several during a rotation); prints
 *                                    its id, the {webhook_id} of the route.
 *                                    --secrets-stdin reads them one per line, so
 *                                    they stay out of ps and shell history
 * Configuration as for the programs (environment, then ENV_FILE). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "ia_app.h"
#include "ia_codec.h"
#include "ia_config.h"
#include "ia_crypto.h"
#include "ia_events.h"
#include "ia_jwt.h"
#include "ia_jobs.h"
#include "ia_providers.h"
#include "ia_rotate.h"
#include "ia_tokens.h"

#ifndef IA_DEFAULT_SQL_DIR
#define IA_DEFAULT_SQL_DIR "sql"
#endif
#define MIGRATION_MAX_BYTES (4 << 20)
/* any constant: serialises concurrent `migrate` runs */
#define MIGRATION_LOCK_KEY "7348829137"

static int usage(void)
{
	fputs("usage: intauthctl migrate\n"
	      "       intauthctl gen-key\n"
	      "       intauthctl mint-token --sub UUID [--role authenticated|service_role|anon] [--ttl SECONDS]\n"
	      "       intauthctl providers\n"
	      "       intauthctl health-check      (exit 3: some refreshes failed)\n"
	      "       intauthctl jobs [retry ID]\n"
	      "       intauthctl rotate-keys [--batch N]\n"
	      "       intauthctl webhook-add --user UUID --provider NAME [--integration UUID]\n"
	      "                              (--secrets-stdin | --secret S [--secret S2 ...])\n"
	      "           stores the signing secrets (encrypted) of one webhook endpoint and\n"
	      "           prints its id: POST /functions/v1/webhooks/NAME/<id> then verifies\n"
	      "           with any of them. --secrets-stdin reads them one per line (a\n"
	      "           --secret is visible to every user of the machine in ps)\n", stderr);
	return 2;
}

static int is_migration_name(const char *name)
{
	size_t n = strlen(name);
	return n > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' &&
	       name[2] >= '0' && name[2] <= '9' && name[3] == '_' && strcmp(name + n - 4, ".sql") == 0;
}

static int migration_filter(const struct dirent *d)
{
	return is_migration_name(d->d_name);
}

static char *read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;

	if (!f)
		return NULL;
	data = malloc(max + 1);
	if (data) {
		*len = fread(data, 1, max + 1, f);
		if (ferror(f) || *len > max) {
			free(data);
			data = NULL;
		} else {
			data[*len] = '\0';
		}
	}
	fclose(f);
	return data;
}

static int exec_ok(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	int ok = res && (PQresultStatus(res) == PGRES_COMMAND_OK ||
			 PQresultStatus(res) == PGRES_TUPLES_OK);
	if (!ok)
		fprintf(stderr, "intauthctl: %s", PQerrorMessage(conn));
	PQclear(res);
	return ok ? 0 : -1;
}

static int cmd_migrate(const ia_config *cfg)
{
	const char *dir = ia_config_get(cfg, "SQL_DIR");
	struct dirent **names = NULL;
	PGconn *conn = NULL;
	int n = -1, rc = 1, applied = 0;

	if (!dir)
		dir = IA_DEFAULT_SQL_DIR;
	if (!cfg->database_url) {
		fputs("intauthctl: DATABASE_URL is not set\n", stderr);
		return 1;
	}
	conn = PQconnectdb(cfg->database_url);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "intauthctl: cannot connect: %s", PQerrorMessage(conn));
		goto out;
	}
	PQclear(PQexec(conn, "SET client_min_messages = warning"));
	if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", 0, NULL) ||
	    exec_ok(conn, "CREATE SCHEMA IF NOT EXISTS intauth", 0, NULL) ||
	    exec_ok(conn, "CREATE TABLE IF NOT EXISTS intauth.schema_migrations ("
			  " version text PRIMARY KEY, checksum text NOT NULL,"
			  " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL))
		goto out;
	n = scandir(dir, &names, migration_filter, alphasort);
	if (n < 0) {
		fprintf(stderr, "intauthctl: cannot read %s: %s\n", dir, strerror(errno));
		goto out;
	}
	for (int i = 0; i < n; i++) {
		char path[4096], sum[65];
		size_t len = 0;
		const char *name = names[i]->d_name;
		snprintf(path, sizeof path, "%s/%s", dir, name);
		char *sql = read_file(path, MIGRATION_MAX_BYTES, &len);
		if (!sql) {
			fprintf(stderr, "intauthctl: cannot read %s\n", path);
			goto out;
		}
		ia_sha256_hex(sql, len, sum);
		const char *params[] = { name, sum };
		PGresult *res = PQexecParams(conn, "SELECT checksum FROM intauth.schema_migrations"
					     " WHERE version = $1", 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "intauthctl: %s", PQerrorMessage(conn));
			PQclear(res);
			free(sql);
			goto out;
		}
		int done = PQntuples(res) > 0;
		if (done && strcmp(PQgetvalue(res, 0, 0), sum) != 0)
			fprintf(stderr, "intauthctl: warning: %s changed since it was applied\n", name);
		PQclear(res);
		if (done) {
			free(sql);
			continue;
		}
		/* each file and its record commit together or not at all */
		int failed = exec_ok(conn, "BEGIN", 0, NULL);
		if (!failed) {
			res = PQexec(conn, sql);
			if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
				fprintf(stderr, "intauthctl: %s failed: %s", name, PQerrorMessage(conn));
				failed = 1;
			}
			PQclear(res);
		}
		if (!failed)
			failed = exec_ok(conn, "INSERT INTO intauth.schema_migrations (version, checksum)"
					 " VALUES ($1, $2)", 2, params) ||
				 exec_ok(conn, "COMMIT", 0, NULL);
		free(sql);
		if (failed) {
			PQclear(PQexec(conn, "ROLLBACK"));
			goto out;
		}
		printf("applied %s\n", name);
		applied++;
	}
	printf("migrations up to date (%d applied now)\n", applied);
	rc = 0;
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	PQfinish(conn);
	return rc;
}

static int cmd_gen_key(void)
{
	unsigned char key[32];
	char text[IA_B64_ENCODED_LEN(32)];

	randombytes_buf(key, sizeof key);
	ia_b64_encode(key, sizeof key, text, sizeof text);
	sodium_memzero(key, sizeof key);
	puts(text);
	sodium_memzero(text, sizeof text);
	return 0;
}

static int cmd_mint_token(const ia_config *cfg, int argc, char **argv)
{
	const char *sub = NULL, *role = "authenticated";
	long ttl = 3600;

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--sub") == 0) {
			sub = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--role") == 0) {
			role = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--ttl") == 0) {
			char *end;
			ttl = strtol(argv[++i], &end, 10);
			if (*end || ttl < 1 || ttl > 366L * 86400)
				return usage();
		} else {
			return usage();
		}
	}
	/* anon: what a Supabase anon key is, for trying that the routes refuse it */
	if (strcmp(role, "authenticated") != 0 && strcmp(role, "service_role") != 0 &&
	    strcmp(role, "anon") != 0) {
		fputs("intauthctl: --role must be authenticated, service_role or anon\n", stderr);
		return 2;
	}
	char sub_buf[37];
	if (sub && ia_uuid_parse(sub, sub_buf))
		sub = sub_buf;
	if (strcmp(role, "authenticated") == 0 && (!sub || !ia_uuid_valid(sub))) {
		fputs("intauthctl: --sub UUID is required for a user token\n", stderr);
		return 2;
	}
	if (!cfg->jwt_secret) {
		fputs("intauthctl: JWT_SECRET is not set\n", stderr);
		return 1;
	}
	char *tok = ia_jwt_mint(cfg->jwt_secret, cfg->jwt_secret_len, role, sub, cfg->jwt_audience,
				time(NULL), ttl);
	if (!tok)
		return 1;
	puts(tok);
	free(tok);
	return 0;
}

static int cmd_providers(const ia_config *cfg)
{
	ia_providers *p = NULL;
	char err[512];

	if (ia_providers_load(&p, cfg->providers_file, cfg->providers_extra_file, err, sizeof err)) {
		fprintf(stderr, "intauthctl: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < p->n; i++)
		printf("%-20s %-8s %-10s %s\n", p->items[i].name,
		       ia_auth_type_names[p->items[i].auth_type],
		       ia_provider_configured(&p->items[i], cfg) ? "configured" : "-",
		       ia_webhook_scheme_names[p->items[i].webhook.scheme]);
	ia_providers_free(p);
	return 0;
}

static int cmd_jobs(int argc, char **argv)
{
	ia_app app;
	ia_buf out;
	ia_err err = { 0 };
	int rc;

	if (argc != 0 && !(argc == 2 && strcmp(argv[0], "retry") == 0))
		return usage();
	if (ia_app_init(&app, "intauthctl") != 0)
		return 1;
	ia_buf_init(&out, 1 << 20);
	if (argc == 2)
		rc = ia_jobs_retry(&app, argv[1], &err);
	else
		rc = ia_jobs_report(&app, &out, &err);
	if (rc == 0)
		puts(argc == 2 ? "queued again" : ia_buf_cstr(&out));
	else
		fprintf(stderr, "intauthctl: %s\n", err.message);
	ia_buf_release(&out);
	ia_app_release(&app);
	return rc == 0 ? 0 : 1;
}

#define WEBHOOK_SECRETS_MAX 8

/* Secrets one per line from stdin into input (wiped by its release); blank
 * lines and a CR before the LF are ignored. secrets[] points into input. */
static int read_secret_lines(ia_buf *input, const char **secrets, size_t max, size_t *n)
{
	char chunk[4096];
	size_t got;
	int rc = -1;

	while ((got = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
		if (ia_buf_append(input, chunk, got)) {
			fprintf(stderr, "intauthctl: the secrets are too long (at most %d bytes)\n", IA_SECRET_MAX);
			goto out;
		}
	}
	if (ferror(stdin)) {
		fputs("intauthctl: cannot read the secrets from stdin\n", stderr);
		goto out;
	}
	*n = 0;
	for (char *line = input->data; line && *line;) {
		char *end = strchr(line, '\n');
		char *next = end ? end + 1 : line + strlen(line);
		if (end)
			*end = '\0';
		size_t len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len) {
			if (*n == max) {
				fprintf(stderr, "intauthctl: at most %zu secrets\n", max);
				goto out;
			}
			secrets[(*n)++] = line;
		}
		line = next;
	}
	rc = 0;
out:
	sodium_memzero(chunk, sizeof chunk);
	return rc;
}

/* webhook-add: one integration_webhooks row. The id is made here because the
 * ciphertext's context binds it (with user and provider), so it must be known
 * before sealing; a ciphertext moved to another row then fails to open. */
static int cmd_webhook_add(int argc, char **argv)
{
	const char *user = NULL, *provider = NULL, *integration = "";
	const char *secrets[WEBHOOK_SECRETS_MAX];
	size_t n_secrets = 0;
	char id[37], context[256];
	char *sealed = NULL;
	ia_buf list, out, input;
	ia_err err = { 0 };
	bool found = false, app_ready = false, from_stdin = false;
	ia_app app;
	int rc = 2;

	ia_buf_init(&list, IA_SECRET_MAX);
	ia_buf_init(&out, 64);
	ia_buf_init(&input, IA_SECRET_MAX);
	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--user") == 0) {
			user = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--provider") == 0) {
			provider = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--integration") == 0) {
			integration = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--secret") == 0) {
			if (n_secrets == WEBHOOK_SECRETS_MAX) {
				fprintf(stderr, "intauthctl: at most %d secrets\n", WEBHOOK_SECRETS_MAX);
				goto out;
			}
			secrets[n_secrets++] = argv[++i];
		} else if (strcmp(argv[i], "--secrets-stdin") == 0) {
			from_stdin = true;
		} else {
			rc = usage();
			goto out;
		}
	}
	if (from_stdin && n_secrets) {
		fputs("intauthctl: give the secrets with --secret or on stdin, not both\n", stderr);
		goto out;
	}
	if (from_stdin && read_secret_lines(&input, secrets, WEBHOOK_SECRETS_MAX, &n_secrets))
		goto out;
	/* canonical (lower-case) forms: the user id goes into the sealing context */
	char user_buf[37], integration_buf[37];
	if (!user || !ia_uuid_parse(user, user_buf) ||
	    (*integration && !ia_uuid_parse(integration, integration_buf))) {
		fputs("intauthctl: --user UUID is required; --integration must be a UUID\n", stderr);
		goto out;
	}
	user = user_buf;
	if (*integration)
		integration = integration_buf;
	if (!provider || n_secrets == 0) {
		fputs("intauthctl: --provider NAME and at least one --secret are required\n", stderr);
		goto out;
	}
	/* the JSON array the webhooks route opens; an empty secret would be an
	 * HMAC key anyone can compute, so it is refused here as it is there */
	int bad = ia_buf_putc(&list, '[');
	for (size_t i = 0; i < n_secrets && !bad; i++) {
		if (!*secrets[i]) {
			fputs("intauthctl: a --secret is empty\n", stderr);
			goto out;
		}
		bad = (i && ia_buf_putc(&list, ',')) || ia_buf_putc(&list, '"') ||
		      ia_buf_json_escape(&list, secrets[i]) || ia_buf_putc(&list, '"');
	}
	if (bad || ia_buf_putc(&list, ']')) {
		fputs("intauthctl: the secrets are too long\n", stderr);
		goto out;
	}

	rc = 1;
	if (ia_app_init(&app, "intauthctl") != 0)
		goto out;
	app_ready = true;
	const ia_provider *p = ia_providers_find(app.providers, provider);
	if (!p || p->webhook.scheme == IA_WH_NONE) {
		fprintf(stderr, "intauthctl: provider %s has no webhook scheme in the catalog\n", provider);
		goto out;
	}
	ia_uuid_v4(id);
	ia_webhook_secret_context(context, id, user, p->name);
	if (ia_crypto_seal(app.cfg.keys, list.data, list.len, context, &sealed) != 0) {
		fputs("intauthctl: cannot encrypt the secrets\n", stderr);
		goto out;
	}
	/* an --integration must be the same user's connection to this provider,
	 * or the events it receives would be linked to someone else's */
	const char *params[] = { id, user, p->name, integration,
				 ia_keyring_current_kid(app.cfg.keys), sealed };
	if (ia_db_run_one(&app.db, NULL,
			  "INSERT INTO public.integration_webhooks"
			  " (id, user_id, provider, integration_id, key_id, secrets)"
			  " SELECT $1::uuid, $2::uuid, $3, nullif($4, '')::uuid, $5, $6"
			  " WHERE $4 = '' OR EXISTS (SELECT 1 FROM public.integrations"
			  "  WHERE id = nullif($4, '')::uuid AND user_id = $2::uuid AND provider = $3)"
			  " RETURNING id::text",
			  6, params, &out, &found, &err) != 0) {
		fprintf(stderr, "intauthctl: webhook-add failed: %s (%s)\n", err.message, err.code);
		goto out;
	}
	if (!found) {
		fprintf(stderr, "intauthctl: integration %s is not this user's %s connection\n", integration,
			p->name);
		goto out;
	}
	puts(ia_buf_cstr(&out));
	rc = 0;
out:
	free(sealed);
	ia_buf_release(&list);
	ia_buf_release(&out);
	ia_buf_release(&input);
	if (app_ready)
		ia_app_release(&app);
	return rc;
}

/* rotate-keys (SPEC §6): one pass of ia_rotate_keys, its counts per table.
 * Exit 0 when nothing remains under an old key; 3 when rows remain that a
 * re-run will take (locked meanwhile, or written by a program still on the old
 * key); 4 when rows do not open with any key of the ring (their ids are in the
 * rotate_decrypt_failed log lines): running again will not rotate them, and
 * the key they need must not be dropped before someone looks at them; 1 on an
 * error (what was committed stays). */
static int cmd_rotate_keys(int argc, char **argv)
{
	long batch = IA_ROTATE_BATCH_DEFAULT;
	ia_rotate_counts c;
	ia_err err = { 0 };
	ia_app app;

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--batch") == 0) {
			char *end;
			batch = strtol(argv[++i], &end, 10);
			if (*end || batch < 1 || batch > IA_ROTATE_BATCH_MAX)
				return usage();
		} else {
			return usage();
		}
	}
	if (ia_app_init(&app, "intauthctl") != 0)
		return 1;
	printf("rotate-keys: current key %s, batches of %ld\n", ia_keyring_current_kid(app.cfg.keys),
	       batch);
	int failed = ia_rotate_keys(&app, batch, &c, &err);
	const char *names[] = { "credentials", "integration_webhooks", "oauth_states",
				"revoke_retry_jobs" };
	const ia_rotate_table_counts *per[] = { &c.credentials, &c.webhooks, &c.oauth_states,
						&c.revoke_jobs };
	long rotated = 0, remaining = 0, undecryptable = 0;
	for (size_t i = 0; i < 4; i++) {
		printf("%-22s rotated %ld changed %ld failed %ld remaining %ld\n", names[i],
		       per[i]->rotated, per[i]->changed, per[i]->failed, per[i]->remaining);
		rotated += per[i]->rotated;
		remaining += per[i]->remaining;
		undecryptable += per[i]->failed;
	}
	ia_app_release(&app);
	if (failed) {
		fprintf(stderr, "intauthctl: rotate-keys stopped after %ld batches: %s (%s);"
			" what was committed stays, run it again\n", c.batches, err.message, err.code);
		return 1;
	}
	printf("done: %ld rotated in %ld batches; %ld remaining under an old key%s\n", rotated,
	       c.batches, remaining,
	       undecryptable ? " (some do not decrypt: see the rotate_decrypt_failed lines; keep the old keys)"
	       : remaining ? " (run again)" : "");
	return undecryptable ? 4 : remaining ? 3 : 0;
}

/* Exit 0, or 3 when a refresh failed (cron's mail is then worth reading; an
 * expired grant is the user's to renew and does not count), 1 on an error. */
static int cmd_health_check(void)
{
	ia_app app;
	ia_buf out;
	ia_err err = { 0 };
	int rc = 1;

	if (ia_app_init(&app, "intauthctl") != 0)
		return 1;
	ia_buf_init(&out, 4096);
	if (ia_tokens_health_check(&app, &out, &err) == 0) {
		puts(ia_buf_cstr(&out));
		cJSON *counts = cJSON_Parse(ia_buf_cstr(&out));
		const cJSON *failed = cJSON_GetObjectItemCaseSensitive(counts, "failed");
		rc = cJSON_IsNumber(failed) && failed->valuedouble > 0 ? 3 : 0;
		cJSON_Delete(counts);
	} else {
		fprintf(stderr, "intauthctl: health-check failed: %s (%s)\n", err.message, err.code);
	}
	ia_buf_release(&out);
	ia_app_release(&app);
	return rc;
}

int main(int argc, char **argv)
{
	ia_config cfg;
	char err[512];
	int rc;

	if (argc < 2)
		return usage();
	if (sodium_init() < 0)
		return 1;
	/* the commands without arguments refuse any: `health-check --help`
	 * must not spend real refresh tokens */
	bool bare = argc == 2;
	if (strcmp(argv[1], "gen-key") == 0)
		return bare ? cmd_gen_key() : usage();
	if (strcmp(argv[1], "health-check") == 0)
		return bare ? cmd_health_check() : usage();
	if (strcmp(argv[1], "jobs") == 0)
		return cmd_jobs(argc - 2, argv + 2);
	if (strcmp(argv[1], "rotate-keys") == 0)
		return cmd_rotate_keys(argc - 2, argv + 2);
	if (strcmp(argv[1], "webhook-add") == 0)
		return cmd_webhook_add(argc - 2, argv + 2);
	if (ia_config_load_partial(&cfg, err, sizeof err) != 0) {
		fprintf(stderr, "intauthctl: configuration error: %s\n", err);
		return 1;
	}
	if (strcmp(argv[1], "migrate") == 0)
		rc = bare ? cmd_migrate(&cfg) : usage();
	else if (strcmp(argv[1], "mint-token") == 0)
		rc = cmd_mint_token(&cfg, argc - 2, argv + 2);
	else if (strcmp(argv[1], "providers") == 0)
		rc = bare ? cmd_providers(&cfg) : usage();
	else
		rc = usage();
	ia_config_release(&cfg);
	return rc;
}
