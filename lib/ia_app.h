/* ia_app: what a program holds for its whole life: the configuration, the
 * provider catalog and the database connection. This is the only mutable
 * process-wide state; handlers receive it by pointer.
 *
 * ia_fcgi_main() is the whole main() of a FastCGI program: it loads the
 * configuration (exits 1 with a clear message when it is wrong), then, when
 * FCGI_CHILDREN > 1 or the program is started by spawn-fcgi, runs as a small
 * supervisor that forks FCGI_CHILDREN workers sharing the listening socket and
 * replaces any that die (a crash of one request never takes the pool down).
 * Each worker loops: accept, parse, call the handler, answer, release.
 * SIGTERM/SIGINT: the supervisor stops its workers and exits 0.
 */
#ifndef IA_APP_H
#define IA_APP_H

#include "ia_config.h"
#include "ia_db.h"
#include "ia_http.h"
#include "ia_providers.h"

typedef struct ia_app {
	const char *program;
	ia_config cfg;
	ia_providers *providers;
	char *providers_json;   /* /api/providers answer, built once */
	ia_db db;
} ia_app;

typedef void (*ia_handler)(ia_app *app, ia_request *req);

/* Loads config and providers, sets up logs, libsodium, core dumps off. 0 or -1
 * (message already printed to stderr). */
int ia_app_init(ia_app *app, const char *program);
void ia_app_release(ia_app *app);

int ia_fcgi_main(const char *program, ia_handler handler);

/* The common start of a route handler: CORS headers for an allowed Origin;
 * OPTIONS answered as a CORS preflight; the method checked against methods
 * ("POST", "GET,DELETE") -> 405 method_not_allowed; the bearer token checked
 * when allow != 0; a POST body read, capped at MAX_BODY_BYTES.
 * Returns 0 to go on, 1 when the request has been answered, -1 with err. */
int ia_route_begin(ia_app *app, ia_request *req, const char *methods, unsigned allow,
		   ia_err *err);

#endif
