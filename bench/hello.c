/* bench/hello: the bare transport, for `make bench` (scripts/bench builds it
 * with the programs' flags). A libfcgi accept loop that answers every request
 * with the same small JSON /healthz answers, and nothing else: the cost of
 * nginx -> FastCGI -> back without any work of ours, the limit /healthz is
 * compared with.
 *
 * Same process model as the programs under spawn-fcgi -n: this process forks
 * argv[1] children (default 2) that share the listening socket (fd 0) and
 * waits; SIGTERM stops them. No configuration, no database, no allocation per
 * request beyond libfcgi's own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#define HELLO_MAX_CHILDREN 64

static const char ANSWER[] =
	"Status: 200 OK\r\n"
	"Content-Type: application/json\r\n"
	"Content-Length: 15\r\n"
	"\r\n"
	"{\"status\":\"ok\"}";

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void serve(void)
{
	FCGX_Request req;

	/* libfcgi's own SIGTERM handling ends the accept loop */
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		_exit(1);
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(ANSWER, (int)(sizeof ANSWER - 1), req.out);
		FCGX_Finish_r(&req);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	pid_t children[HELLO_MAX_CHILDREN] = { 0 };
	long n = 2;
	struct sigaction sa;

	if (argc > 1) {
		char *end;
		n = strtol(argv[1], &end, 10);
		if (*end || n < 1 || n > HELLO_MAX_CHILDREN) {
			fprintf(stderr, "hello: children must be 1..%d\n", HELLO_MAX_CHILDREN);
			return 2;
		}
	}
	if (FCGX_Init() != 0 || FCGX_IsCGI()) {
		fprintf(stderr, "hello: not started as a FastCGI program (use spawn-fcgi)\n");
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (long i = 0; i < n; i++) {
		pid_t parent = getpid();
		children[i] = fork();
		if (children[i] == 0) {
			/* a child must not outlive its parent */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(0);
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			serve();
		}
		if (children[i] < 0) {
			fprintf(stderr, "hello: fork: %s\n", strerror(errno));
			children[i] = 0;
		}
	}
	while (!stop) {
		pid_t dead = waitpid(-1, NULL, 0);
		if (dead < 0 && errno == ECHILD)
			break;
	}
	for (long i = 0; i < n; i++)
		if (children[i] > 0)
			kill(children[i], SIGTERM);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	return 0;
}
