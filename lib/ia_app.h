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

#include <stdbool.h>

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
	struct ia_metrics *metrics;   /* shared counters, or NULL (no METRICS_DIR) */
	const struct ia_route *route; /* the program's route (ia_route_main), or NULL */
} ia_app;

typedef void (*ia_handler)(ia_app *app, ia_request *req);

/* A program that is one JSON route, described as data: the methods and
 * callers ia_route_begin() lets through, then call(), which fills out (the
 * 200 answer, at most max_answer bytes) or err. cache_control, when set, goes
 * on every answer, errors included. */
typedef struct ia_route {
	const char *program;
	const char *methods;
	unsigned allow;
	size_t max_answer;
	const char *cache_control;
	int (*call)(ia_app *app, ia_request *req, struct ia_buf *out, ia_err *err);
} ia_route;

/* Loads config and providers, sets up logs, libsodium, core dumps off. 0 or -1
 * (message already printed to stderr). */
int ia_app_init(ia_app *app, const char *program);
void ia_app_release(ia_app *app);

int ia_fcgi_main(const char *program, ia_handler handler);
/* The whole main() of a program that is one ia_route. */
int ia_route_main(const ia_route *route);

/* The supervisor under ia_fcgi_main and the worker: forks n children running
 * child(app, index, ctx), replaces any that die, and on SIGTERM/SIGINT passes
 * SIGTERM on, waits for them and returns 0. A child returning exits 0. */
int ia_supervise(ia_app *app, long n, void (*child)(ia_app *app, long index, void *ctx), void *ctx);
/* SIGTERM/SIGINT set the stop flag (handler NULL) or call handler, without
 * SA_RESTART, so blocking calls return early. */
void ia_catch_stop_signals(void (*handler)(int));
bool ia_stop_requested(void);
/* A process count from the configuration: dflt when unset, -1 (message
 * printed) when not 1..64. */
long ia_worker_count(const ia_app *app, const char *name, long dflt);

/* The common start of a route handler: CORS headers for an allowed Origin;
 * OPTIONS answered as a CORS preflight; the method checked against methods
 * ("POST", "GET,DELETE") -> 405 method_not_allowed; the bearer token checked
 * when allow != 0; a POST body read, capped at MAX_BODY_BYTES.
 * Returns 0 to go on, 1 when the request has been answered, -1 with err. */
int ia_route_begin(ia_app *app, ia_request *req, const char *methods, unsigned allow,
		   ia_err *err);

#endif
