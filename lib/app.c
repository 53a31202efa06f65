#include "ia_app.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ia_buf.h"
#include "ia_log.h"
#include "ia_metrics.h"

#define IA_MAX_CHILDREN 64

int ia_app_init(ia_app *app, const char *program)
{
	char err[512];
	struct rlimit no_core = { 0, 0 };

	memset(app, 0, sizeof *app);
	app->program = program;
	ia_log_init(program, IA_LOG_INFO);
	/* a core dump would hold keys and tokens */
	setrlimit(RLIMIT_CORE, &no_core);
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: libsodium failed to initialise\n", program);
		return -1;
	}
	if (ia_config_load(&app->cfg, err, sizeof err) != 0) {
		fprintf(stderr, "%s: configuration error: %s\n", program, err);
		return -1;
	}
	ia_log_init(program, app->cfg.log_level);
	if (ia_providers_load(&app->providers, app->cfg.providers_file,
			      app->cfg.providers_extra_file, err, sizeof err) != 0) {
		fprintf(stderr, "%s: provider catalog error: %s\n", program, err);
		ia_config_release(&app->cfg);
		return -1;
	}
	app->providers_json = ia_providers_public_json(app->providers, &app->cfg);
	if (!app->providers_json) {
		fprintf(stderr, "%s: out of memory at start\n", program);
		ia_app_release(app);
		return -1;
	}
	ia_db_init(&app->db, app->cfg.database_url);
	/* the longest a request's transaction waits on a provider: a revocation's
	 * two calls (refresh token, then access token), each up to HTTP_TIMEOUT_MS */
	long provider_wait_ms = 2 * app->cfg.http_timeout_ms + 5000;
	app->db.idle_in_tx_ms = provider_wait_ms > 30000 ? provider_wait_ms : 30000;
	return 0;
}

void ia_app_release(ia_app *app)
{
	ia_db_close(&app->db);
	free(app->providers_json);
	app->providers_json = NULL;
	ia_providers_free(app->providers);
	app->providers = NULL;
	ia_config_release(&app->cfg);
}

static bool method_listed(const char *methods, const char *method)
{
	size_t n = strlen(method);

	for (const char *p = methods; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, method, n) == 0)
			return true;
		p += len + (comma ? 1 : 0);
	}
	return false;
}

int ia_route_begin(ia_app *app, ia_request *req, const char *methods, unsigned allow,
		   ia_err *err)
{
	if (strcmp(req->method, "OPTIONS") == 0) {
		ia_resp_preflight(req, app);
		return 1;
	}
	ia_resp_cors(req, app);
	if (!method_listed(methods, req->method)) {
		char allowed[64];
		snprintf(allowed, sizeof allowed, "%s, OPTIONS", methods);
		ia_resp_header(req, "Allow", allowed);
		return ia_err_set(err, 405, "method_not_allowed", "Use %s on this route.", methods);
	}
	if (allow && ia_request_authenticate(req, app, allow, err) != 0)
		return -1;
	if (strcmp(req->method, "POST") == 0 &&
	    ia_request_read_body(req, app->cfg.max_body_bytes, err) != 0)
		return -1;
	return 0;
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

bool ia_stop_requested(void)
{
	return stop_requested != 0;
}

void ia_catch_stop_signals(void (*extra)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = extra ? extra : on_stop;   /* no SA_RESTART: blocking calls return */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

long ia_worker_count(const ia_app *app, const char *name, long dflt)
{
	char msg[256];
	long n;

	if (ia_config_long(&app->cfg, name, dflt, 1, IA_MAX_CHILDREN, &n, msg, sizeof msg)) {
		fprintf(stderr, "%s: %s\n", app->program, msg);
		return -1;
	}
	return n;
}

static void on_child(int sig)
{
	(void)sig;      /* only there so that sigsuspend() returns */
}

int ia_supervise(ia_app *app, long n, void (*child)(ia_app *app, long index, void *ctx), void *ctx)
{
	pid_t children[IA_MAX_CHILDREN] = { 0 };
	time_t window = time(NULL);
	int spawned_in_window = 0;
	sigset_t watched, normal;
	struct sigaction sa;

	if (n < 1 || n > IA_MAX_CHILDREN)
		return -1;
	ia_catch_stop_signals(NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Signals stay blocked except inside sigsuspend(), so a SIGTERM arriving
	 * between the stop check and the wait can't be slept through. */
	sigemptyset(&watched);
	sigaddset(&watched, SIGTERM);
	sigaddset(&watched, SIGINT);
	sigaddset(&watched, SIGCHLD);
	sigprocmask(SIG_BLOCK, &watched, &normal);
	/* mapped before fork, so every child adds to the same counters */
	app->metrics = ia_metrics_open(ia_config_get(&app->cfg, "METRICS_DIR"), app->program);
	ia_log(IA_LOG_INFO, "start", "supervising %ld workers", n);
	while (!stop_requested) {
		for (long i = 0; i < n && !stop_requested; i++) {
			if (children[i] > 0)
				continue;
			/* at most a few replacements a second, so a child that dies at
			 * start can't make the supervisor spin */
			if (time(NULL) != window) {
				window = time(NULL);
				spawned_in_window = 0;
			}
			if (spawned_in_window >= 4 * n) {
				sleep(1);
				continue;
			}
			pid_t parent = getpid();
			children[i] = fork();
			if (children[i] == 0) {
				signal(SIGCHLD, SIG_DFL);
				sigprocmask(SIG_SETMASK, &normal, NULL);
				/* a child must not outlive a supervisor killed with -9 */
				prctl(PR_SET_PDEATHSIG, SIGTERM);
				if (getppid() != parent)
					_exit(0);
				child(app, i, ctx);
				ia_app_release(app);
				_exit(0);
			}
			spawned_in_window++;
			if (children[i] < 0) {
				ia_log(IA_LOG_ERROR, "fork_failed", "%s", strerror(errno));
				children[i] = 0;
				sleep(1);
			}
		}
		int status, reaped = 0;
		pid_t dead;
		while ((dead = waitpid(-1, &status, WNOHANG)) > 0) {
			reaped++;
			for (long i = 0; i < n; i++) {
				if (children[i] != dead)
					continue;
				children[i] = 0;
				if (stop_requested)
					break;
				if (WIFSIGNALED(status))
					ia_log(IA_LOG_ERROR, "worker_died", "worker %ld killed by signal %d; replacing it",
					       (long)dead, WTERMSIG(status));
				else
					ia_log(IA_LOG_WARN, "worker_exited", "worker %ld exited with %d; replacing it",
					       (long)dead, WEXITSTATUS(status));
			}
		}
		if (!reaped && !stop_requested)
			sigsuspend(&normal);
	}
	for (long i = 0; i < n; i++)
		if (children[i] > 0)
			kill(children[i], SIGTERM);
	/* children finish what they hold, then leave */
	for (long i = 0; i < n; i++)
		if (children[i] > 0)
			waitpid(children[i], NULL, 0);
	sigprocmask(SIG_SETMASK, &normal, NULL);
	ia_log(IA_LOG_INFO, "stop", "stopped");
	return 0;
}

/* Reads what is left of the request (a body the handler refused unread; for
 * most requests only the end-of-stdin record, already buffered). Once nginx
 * has sent everything (it buffers the whole request before passing it on)
 * nothing more arrives on the connection, so it can be closed at once:
 * FCGX_Detach skips libfcgi's shutdown-and-wait-for-EOF, which keeps the
 * worker out of accept() until nginx has read the answer and closed its end.
 * Without EOF (a read error) libfcgi's careful close stays. */
static void finish_request(FCGX_Request *fcgx)
{
	char sink[4096];

	while (FCGX_GetStr(sink, sizeof sink, fcgx->in) > 0)
		;
	if (FCGX_HasSeenEOF(fcgx->in) == EOF && FCGX_GetError(fcgx->in) == 0)
		FCGX_Detach(fcgx);
	FCGX_Finish_r(fcgx);
}

/* In a FastCGI worker: finish the request in hand, then leave at the next accept. */
static void on_fcgi_stop(int sig)
{
	on_stop(sig);
	FCGX_ShutdownPending();
}

static void serve(ia_app *app, long index, void *ctx)
{
	ia_handler handler = *(ia_handler *)ctx;
	FCGX_Request fcgx;

	(void)index;
	ia_catch_stop_signals(on_fcgi_stop);
	if (FCGX_InitRequest(&fcgx, 0, 0) != 0)
		return;
	while (!stop_requested && FCGX_Accept_r(&fcgx) >= 0) {
		ia_request req;
		ia_err err = { 0 };
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (ia_request_init(&req, &fcgx, &err) != 0)
			ia_resp_err(&req, &err);
		else
			handler(app, &req);
		if (!req.status)
			ia_resp_error(&req, 500, "internal_error", "No answer was produced.");
		/* a request that failed half-way must not leave its transaction open */
		if (app->db.in_tx)
			ia_db_rollback(&app->db);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ia_metrics_request(app->metrics, req.status,
				   (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000);
		ia_request_release(&req);
		finish_request(&fcgx);
	}
}

static int fcgi_main(const char *program, ia_handler handler, const ia_route *route)
{
	ia_app app;
	long n;

	if (ia_app_init(&app, program) != 0)
		return 1;
	app.route = route;
	if (FCGX_Init() != 0 || FCGX_IsCGI()) {
		fprintf(stderr, "%s: not started as a FastCGI program (use spawn-fcgi)\n", program);
		ia_app_release(&app);
		return 1;
	}
	if ((n = ia_worker_count(&app, "FCGI_CHILDREN", 2)) < 0) {
		ia_app_release(&app);
		return 1;
	}
	ia_supervise(&app, n, serve, &handler);
	ia_app_release(&app);
	return 0;
}

int ia_fcgi_main(const char *program, ia_handler handler)
{
	return fcgi_main(program, handler, NULL);
}

static void route_handler(ia_app *app, ia_request *req)
{
	const ia_route *route = app->route;
	ia_err err = { 0 };
	ia_buf out;

	ia_buf_init(&out, route->max_answer);
	if (route->cache_control)
		ia_resp_header(req, "Cache-Control", route->cache_control);
	int rc = ia_route_begin(app, req, route->methods, route->allow, &err);
	if (rc == 0)
		rc = route->call(app, req, &out, &err);
	if (rc <= 0)
		ia_resp_outcome(req, rc, &out, &err);
	ia_buf_release(&out);
}

int ia_route_main(const ia_route *route)
{
	return fcgi_main(route->program, route_handler, route);
}
