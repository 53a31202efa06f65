#include "ia_db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ia_buf.h"
#include "ia_log.h"

/* SQLSTATEs we answer differently from a plain 500 */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define SQLSTATE_SERIALIZATION "40001"
#define SQLSTATE_DEADLOCK "40P01"
#define SQLSTATE_CHECK_VIOLATION "23514"
#define SQLSTATE_RLS_VIOLATION "42501"
#define SQLSTATE_LOCK_TIMEOUT "55P03"      /* lock_timeout: a row held past it */
#define SQLSTATE_STATEMENT_TIMEOUT "57014" /* statement_timeout (query_canceled) */
/* raised by sql/014 when a user has too many jobs waiting */
#define SQLSTATE_USER_LIMIT "IA429"

void ia_db_init(ia_db *db, const char *conninfo)
{
	memset(db, 0, sizeof *db);
	db->conninfo = conninfo;
}

void ia_db_close(ia_db *db)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	db->in_tx = false;
	for (int i = 0; i < db->n_stmts; i++)
		free(db->stmts[i]);
	db->n_stmts = 0;
}

/* The prepared statement for sql on this connection: its index, or -1 when
 * not prepared yet (*slot then says where it would go, or -1 when the cache is
 * full and the statement runs unnamed). */
static int stmt_lookup(const ia_db *db, const char *sql, int *slot)
{
	for (int i = 0; i < db->n_stmts; i++)
		if (strcmp(db->stmts[i], sql) == 0)
			return i;
	*slot = db->n_stmts < IA_DB_STATEMENTS ? db->n_stmts : -1;
	return -1;
}

static void stmt_name(char out[16], int i)
{
	snprintf(out, 16, "s%d", i);
}

static int result_error(ia_db *db, PGresult *res, ia_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		ia_log(IA_LOG_WARN, "db_connection_lost", "the database connection broke");
		ia_db_close(db);
		return ia_err_unavailable(err);
	}
	if (!state)
		state = "";
	if (strcmp(state, SQLSTATE_UNIQUE_VIOLATION) == 0)
		return ia_err_set(err, 409, "conflict", "The resource already exists.");
	if (strcmp(state, SQLSTATE_SERIALIZATION) == 0 || strcmp(state, SQLSTATE_DEADLOCK) == 0)
		return ia_err_set(err, 409, "conflict", "A concurrent change got there first; retry.");
	/* another request holds the row longer than we wait (a revocation makes
	 * two provider calls under its lock): busy, not broken */
	if (strcmp(state, SQLSTATE_LOCK_TIMEOUT) == 0)
		return ia_err_set(err, 409, "conflict", "Another request is working on this; retry.");
	if (strcmp(state, SQLSTATE_STATEMENT_TIMEOUT) == 0) {
		ia_log(IA_LOG_WARN, "db_statement_timeout", "a statement ran past statement_timeout");
		return ia_err_unavailable(err);
	}
	/* class 22: data exceptions (a bad uuid, timestamp, number or encoding) */
	if (strncmp(state, "22", 2) == 0 || strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0)
		return ia_err_set(err, 400, "invalid_request", "A field has an invalid value.");
	if (strcmp(state, SQLSTATE_RLS_VIOLATION) == 0)
		return ia_err_set(err, 403, "forbidden", "Not allowed for this caller.");
	if (strcmp(state, SQLSTATE_USER_LIMIT) == 0)
		return ia_err_set(err, 429, "rate_limited", "Too much is waiting for this user; retry later.");
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
		ia_db_close(db);
		return ia_err_unavailable(err);
	}
	/* The primary message could quote a value: log only the SQLSTATE and the
	 * constraint or column it names. */
	const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	ia_log(IA_LOG_ERROR, "db_error", "sqlstate %s%s%s", state,
	       constraint ? " constraint " : "", constraint ? constraint : "");
	return ia_err_internal(err);
}

PGresult *ia_db_exec(ia_db *db, const char *sql, int n_params, const char *const *params,
		     ia_err *err)
{
	if (!db->conn) {
		ia_err_unavailable(err);
		return NULL;
	}
	int slot, i = stmt_lookup(db, sql, &slot);
	char name[16];
	PGresult *res;
	if (i < 0 && slot >= 0) {
		char *copy = strdup(sql);
		stmt_name(name, slot);
		res = copy ? PQprepare(db->conn, name, sql, n_params, NULL) : NULL;
		if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
			free(copy);
			result_error(db, res, err);
			PQclear(res);
			return NULL;
		}
		PQclear(res);
		db->stmts[slot] = copy;
		db->n_stmts++;
		i = slot;
	}
	if (i >= 0) {
		stmt_name(name, i);
		res = PQexecPrepared(db->conn, name, n_params, params, NULL, NULL, 0);
	} else {
		res = PQexecParams(db->conn, sql, n_params, NULL, params, NULL, NULL, 0);
	}
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	result_error(db, res, err);
	PQclear(res);
	return NULL;
}

/* The statements of every request transaction, prepared once per connection
 * (as pgbench -M prepared does): named, they skip the parse and plan that
 * unnamed ones pay on every request. */
#define STMT_BEGIN "ia_begin"
#define STMT_CLAIMS "ia_claims"
#define STMT_COMMIT "ia_commit"
#define STMT_WAKE "ia_wake"
#define PIPELINE_MAX 8

static const struct {
	const char *name, *sql;
	int n_params;
} fixed_stmts[] = {
	{ STMT_BEGIN, "BEGIN", 0 },
	/* intauth.defer_wake: sql/008_deferred_job_wake.sql */
	{ STMT_CLAIMS, "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true),"
		       " set_config('intauth.defer_wake', 'on', true)", 2 },
	{ STMT_COMMIT, "COMMIT", 0 },
	{ STMT_WAKE, "SELECT set_config('synchronous_commit', 'off', true),"
		     " pg_notify('" IA_JOBS_CHANNEL "', '')", 0 },
};
#define N_FIXED_STMTS (int)(sizeof fixed_stmts / sizeof fixed_stmts[0])

/* Reads a pipeline's results up to its sync: results[i] is the i-th
 * statement's (caller PQclear()s each), the count is returned; fewer than
 * sent when the connection broke. Leaves pipeline mode when it can. */
static int read_pipeline(ia_db *db, PGresult **results, int max)
{
	int n = 0;

	for (;;) {
		PGresult *res = PQgetResult(db->conn);
		if (!res) {
			if (PQstatus(db->conn) != CONNECTION_OK)
				break;
			continue;       /* the end of one statement's results */
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (n < max)
			results[n++] = res;
		else
			PQclear(res);
	}
	if (PQstatus(db->conn) == CONNECTION_OK)
		PQexitPipelineMode(db->conn);
	return n;
}

static bool result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* The first failed result that is not merely "skipped after a failure", or NULL. */
static PGresult *first_failure(PGresult **results, int n, int *index)
{
	for (int i = 0; i < n; i++)
		if (!result_ok(results[i]) && PQresultStatus(results[i]) != PGRES_PIPELINE_ABORTED) {
			*index = i;
			return results[i];
		}
	*index = -1;
	return NULL;
}

static void clear_results(PGresult **results, int n)
{
	for (int i = 0; i < n; i++)
		PQclear(results[i]);
}

static int prepare_fixed(ia_db *db, ia_err *err)
{
	PGresult *results[N_FIXED_STMTS];
	int ok = PQenterPipelineMode(db->conn), n = 0, bad;

	for (int i = 0; ok && i < N_FIXED_STMTS; i++)
		ok = PQsendPrepare(db->conn, fixed_stmts[i].name, fixed_stmts[i].sql,
				   fixed_stmts[i].n_params, NULL);
	if (ok && PQpipelineSync(db->conn))
		n = read_pipeline(db, results, N_FIXED_STMTS);
	PGresult *failed = first_failure(results, n, &bad);
	int rc = n == N_FIXED_STMTS && !failed ? 0 : result_error(db, failed, err);
	clear_results(results, n);
	return rc;
}

/* Later keywords override what the expanded DATABASE_URL says: the timeouts
 * are part of how every request stays bounded. */
static PGconn *connect_bounded(const char *conninfo, long idle_in_tx_ms)
{
	static const char *const keys[] = {
		"dbname", "connect_timeout", "options", "application_name", NULL
	};
	char options[160], connect_timeout[8];
	snprintf(connect_timeout, sizeof connect_timeout, "%d", IA_DB_CONNECT_TIMEOUT_S);
	snprintf(options, sizeof options,
		 "-c statement_timeout=%d -c idle_in_transaction_session_timeout=%ld"
		 " -c lock_timeout=%d", IA_DB_STATEMENT_TIMEOUT_MS,
		 idle_in_tx_ms > 0 ? idle_in_tx_ms : 30000L, IA_DB_LOCK_TIMEOUT_MS);
	const char *const values[] = { conninfo, connect_timeout, options, "intauth", NULL };

	return PQconnectdbParams(keys, values, 1);
}

PGconn *ia_db_connect_plain(const char *conninfo)
{
	PGconn *c = connect_bounded(conninfo, 0);

	if (c && PQstatus(c) == CONNECTION_OK)
		return c;
	PQfinish(c);
	return NULL;
}

static int connect_now(ia_db *db, ia_err *err)
{
	ia_db_close(db);
	db->conn = connect_bounded(db->conninfo, db->idle_in_tx_ms);
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password */
		ia_log(IA_LOG_WARN, "db_connect_failed", "%s",
		       db->conn ? PQerrorMessage(db->conn) : "out of memory");
		ia_db_close(db);
		return ia_err_unavailable(err);
	}
	if (prepare_fixed(db, err) != 0) {
		ia_db_close(db);
		return -1;
	}
	return 0;
}

int ia_db_ensure(ia_db *db, ia_err *err)
{
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return 0;
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK) {
		/* a transaction left open by an earlier failure */
		ia_db_rollback(db);
		if (PQstatus(db->conn) == CONNECTION_OK &&
		    PQtransactionStatus(db->conn) == PQTRANS_IDLE)
			return 0;
	}
	return connect_now(db, err);
}

static void claims_params(const ia_claims *claims, const char **role, const char **json)
{
	*role = claims && claims->role == IA_ROLE_USER ? "authenticated" : "service_role";
	*json = claims && claims->json ? claims->json : "{\"role\":\"service_role\"}";
}

/* BEGIN and the claims: the start of every request transaction. */
static int send_begin(ia_db *db, const ia_claims *caller)
{
	const char *settings[2];

	claims_params(caller, &settings[0], &settings[1]);
	return PQsendQueryPrepared(db->conn, STMT_BEGIN, 0, NULL, NULL, NULL, 0) &&
	       PQsendQueryPrepared(db->conn, STMT_CLAIMS, 2, settings, NULL, NULL, 0);
}

/* COMMIT, and the wake-up when asked: the end of one. */
static int send_commit(ia_db *db, unsigned flags)
{
	return PQsendQueryPrepared(db->conn, STMT_COMMIT, 0, NULL, NULL, NULL, 0) &&
	       (!(flags & IA_DB_WAKE_WORKERS) ||
		PQsendQueryPrepared(db->conn, STMT_WAKE, 0, NULL, NULL, NULL, 0));
}

/* COMMIT's result: 0 committed; an aborted transaction's COMMIT answers ROLLBACK. */
static bool committed(PGresult *res)
{
	return res && PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0;
}

/* The wake-up runs after the commit: its failure (res NULL: no answer) must
 * not fail a request whose work is already committed. The next commit that
 * queues a job sends one again. */
static void check_wake(ia_db *db, const PGresult *res)
{
	if (!res || !result_ok(res)) {
		db->woke_at_ms = 0;
		ia_log(IA_LOG_WARN, "wake_failed", "the workers were not notified; they will poll");
	}
}

static int begin_once(ia_db *db, const ia_claims *claims, ia_err *err)
{
	PGresult *results[2];
	int n = 0, bad;

	/* BEGIN and the settings in one round trip */
	if (PQenterPipelineMode(db->conn) && send_begin(db, claims) && PQpipelineSync(db->conn))
		n = read_pipeline(db, results, 2);
	PGresult *failed = first_failure(results, n, &bad);
	if (n == 2 && !failed) {
		clear_results(results, n);
		db->in_tx = true;
		return 0;
	}
	int rc = result_error(db, failed, err);
	clear_results(results, n);
	ia_db_rollback(db);
	return rc;
}

int ia_db_begin(ia_db *db, const ia_claims *claims, ia_err *err)
{
	if (ia_db_ensure(db, err) != 0)
		return -1;
	if (begin_once(db, claims, err) == 0)
		return 0;
	/* A connection that died while idle (database restarted) is only noticed
	 * now; nothing has run yet, so one fresh attempt is safe. */
	if (err && err->status == 503 && ia_db_ensure(db, err) == 0)
		return begin_once(db, claims, err);
	return -1;
}

/* Simple-protocol statements without parameters: a savepoint's name is not a
 * value a parameter can carry, and two statements go in one round trip. */
static int exec_simple(ia_db *db, const char *sql, ia_err *err)
{
	PGresult *res = db->conn ? PQexec(db->conn, sql) : NULL;
	int rc = res && PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : result_error(db, res, err);

	PQclear(res);
	return rc;
}

int ia_db_row_begin(ia_db *db, ia_err *err)
{
	if (!db->conn || !db->in_tx)
		return ia_err_internal(err);
	return exec_simple(db, "SAVEPOINT ia_row", err);
}

int ia_db_row_next(ia_db *db, bool *row_failed, ia_err *err)
{
	*row_failed = false;
	if (!db->conn || !db->in_tx)
		return ia_err_unavailable(err);
	switch (PQtransactionStatus(db->conn)) {
	case PQTRANS_INTRANS:
		return exec_simple(db, "RELEASE SAVEPOINT ia_row; SAVEPOINT ia_row", err);
	case PQTRANS_INERROR:
		/* the savepoint stays defined: the next row starts from it */
		*row_failed = true;
		return exec_simple(db, "ROLLBACK TO SAVEPOINT ia_row", err);
	default:
		return ia_err_unavailable(err);
	}
}

long long ia_db_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* flags without IA_DB_WAKE_WORKERS when this connection sent a wake-up less
 * than IA_DB_WAKE_DEBOUNCE_MS ago (the workers it woke are still polling);
 * else flags, and the wake-up about to be sent is remembered. */
static unsigned debounce_wake(ia_db *db, unsigned flags)
{
	if (!(flags & IA_DB_WAKE_WORKERS))
		return flags;
	long long now = ia_db_monotonic_ms();
	if (db->woke_at_ms && now - db->woke_at_ms < IA_DB_WAKE_DEBOUNCE_MS)
		return flags & ~IA_DB_WAKE_WORKERS;
	db->woke_at_ms = now;
	return flags;
}

/* After a commit whose wake-up debounce_wake left out: one that completed
 * past the debounce (a slow transaction) may have committed after the woken
 * workers stopped polling, so it wakes them itself, one more round trip. */
static void wake_if_late(ia_db *db, unsigned asked, unsigned sent)
{
	if (!(asked & IA_DB_WAKE_WORKERS) || (sent & IA_DB_WAKE_WORKERS) || !db->conn ||
	    ia_db_monotonic_ms() - db->woke_at_ms < IA_DB_WAKE_DEBOUNCE_MS)
		return;
	db->woke_at_ms = ia_db_monotonic_ms();
	PGresult *res = PQexecPrepared(db->conn, STMT_WAKE, 0, NULL, NULL, NULL, 0);
	check_wake(db, res);
	PQclear(res);
}

int ia_db_commit_flags(ia_db *db, unsigned asked, ia_err *err)
{
	PGresult *results[2];
	int n = 0, rc;

	db->in_tx = false;
	if (!db->conn)
		return ia_err_unavailable(err);
	unsigned flags = debounce_wake(db, asked);
	if (PQenterPipelineMode(db->conn) && send_commit(db, flags) && PQpipelineSync(db->conn))
		n = read_pipeline(db, results, 2);
	if (n >= 1 && committed(results[0])) {
		rc = 0;
		if (flags & IA_DB_WAKE_WORKERS)
			check_wake(db, n == 2 ? results[1] : NULL);
	} else if (n >= 1 && result_ok(results[0])) {
		rc = ia_err_internal(err);      /* the transaction had failed */
	} else {
		rc = result_error(db, n >= 1 ? results[0] : NULL, err);
	}
	clear_results(results, n);
	if (rc && (flags & IA_DB_WAKE_WORKERS))
		db->woke_at_ms = 0;
	if (rc)
		ia_db_rollback(db);
	else
		wake_if_late(db, asked, flags);
	return rc;
}

int ia_db_commit(ia_db *db, ia_err *err)
{
	return ia_db_commit_flags(db, 0, err);
}

void ia_db_rollback(ia_db *db)
{
	db->in_tx = false;
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	PGresult *res = PQexec(db->conn, "ROLLBACK");
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
		ia_db_close(db);
	PQclear(res);
}


/* Something arrived on an idle connection: nothing is expected there but a
 * server's farewell (or EOF), a notice at most. */
static bool idle_socket_readable(const ia_db *db)
{
	struct pollfd pfd = { .fd = PQsocket(db->conn), .events = POLLIN };

	return pfd.fd < 0 || poll(&pfd, 1, 0) != 0;
}

int ia_db_ping(ia_db *db, ia_err *err)
{
	long long now = ia_db_monotonic_ms();

	if (db->conn && db->alive_at_ms && now - db->alive_at_ms < IA_DB_PING_MS &&
	    PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) == PQTRANS_IDLE &&
	    !idle_socket_readable(db))
		return 0;
	db->alive_at_ms = 0;
	if (ia_db_ensure(db, err) != 0)
		return -1;
	PGresult *res = ia_db_exec(db, "SELECT 1", 0, NULL, err);
	if (!res) {
		/* maybe a stale connection: one fresh try */
		if (ia_db_ensure(db, err) != 0)
			return -1;
		res = ia_db_exec(db, "SELECT 1", 0, NULL, err);
		if (!res)
			return -1;
	}
	PQclear(res);
	db->alive_at_ms = now;
	return 0;
}

/* Sends the whole transaction in one pipeline and reads it back. Returns 0,
 * or -1 with err; *stale tells whether the connection had died before any of
 * it ran (so one fresh attempt is safe). */
static int run_pipelined(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
			 const char *const *params, unsigned flags, PGresult **result, bool *stale,
			 ia_err *err)
{
	PGresult *results[PIPELINE_MAX];
	int slot = -1, stmt = stmt_lookup(db, sql, &slot), n = 0, bad, rc;
	char name[16], *copy = NULL;

	*result = NULL;
	*stale = false;
	if (stmt < 0 && slot >= 0 && !(copy = strdup(sql)))
		return ia_err_oom(err);
	stmt_name(name, stmt >= 0 ? stmt : slot);
	/* results: BEGIN, claims, [prepare], the statement, COMMIT, [wake] */
	int prepare = stmt < 0 && slot >= 0;
	int query_index = 2 + prepare, commit_index = query_index + 1;
	int expected = commit_index + 1 + !!(flags & IA_DB_WAKE_WORKERS);
	if (PQenterPipelineMode(db->conn) && send_begin(db, caller) &&
	    (!prepare || PQsendPrepare(db->conn, name, sql, n_params, NULL)) &&
	    (stmt >= 0 || slot >= 0
	     ? PQsendQueryPrepared(db->conn, name, n_params, params, NULL, NULL, 0)
	     : PQsendQueryParams(db->conn, sql, n_params, NULL, params, NULL, NULL, 0)) &&
	    send_commit(db, flags) && PQpipelineSync(db->conn))
		n = read_pipeline(db, results, PIPELINE_MAX);
	/* a statement, once parsed, stays prepared whatever became of the
	 * transaction around it (but not of a connection that broke) */
	if (copy && n > 2 && PQresultStatus(results[2]) == PGRES_COMMAND_OK &&
	    PQstatus(db->conn) == CONNECTION_OK) {
		db->stmts[slot] = copy;
		db->n_stmts++;
		copy = NULL;
	}
	free(copy);
	/* the wake-up is not part of the transaction: judged apart */
	PGresult *failed = first_failure(results, n < commit_index + 1 ? n : commit_index + 1, &bad);
	if (n == expected && !failed && committed(results[commit_index])) {
		if (flags & IA_DB_WAKE_WORKERS)
			check_wake(db, results[expected - 1]);
		*result = results[query_index];
		results[query_index] = NULL;
		rc = 0;
	} else {
		/* the connection died before BEGIN ran (a restarted server's
		 * farewell arrives as BEGIN's error): nothing of ours ran */
		*stale = (n == 0 || bad == 0) && PQstatus(db->conn) != CONNECTION_OK;
		rc = failed || PQstatus(db->conn) != CONNECTION_OK ? result_error(db, failed, err)
								   : ia_err_internal(err);
	}
	clear_results(results, n);
	if (rc)
		ia_db_rollback(db);
	return rc;
}

/* run_pipelined with the wake-up debounced (debounce_wake); a failed
 * transaction's wake-up did not run, so the next one is sent. */
static int run_waking(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
		      const char *const *params, unsigned asked, PGresult **res, bool *stale,
		      ia_err *err)
{
	unsigned flags = debounce_wake(db, asked);
	int rc = run_pipelined(db, caller, sql, n_params, params, flags, res, stale, err);

	if (rc == 0)
		wake_if_late(db, asked, flags);
	else if (flags & IA_DB_WAKE_WORKERS)
		db->woke_at_ms = 0;
	return rc;
}

static PGresult *query_flags(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
			     const char *const *params, unsigned flags, ia_err *err)
{
	PGresult *res;
	bool stale;

	if (ia_db_ensure(db, err))
		return NULL;
	if (run_waking(db, caller, sql, n_params, params, flags, &res, &stale, err) == 0)
		return res;
	/* a connection that died while idle (database restarted) shows only
	 * now; nothing ran on it, so one fresh attempt is safe */
	if (!stale || ia_db_ensure(db, err))
		return NULL;
	return run_waking(db, caller, sql, n_params, params, flags, &res, &stale, err) == 0 ? res : NULL;
}

PGresult *ia_db_query(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
		      const char *const *params, ia_err *err)
{
	return query_flags(db, caller, sql, n_params, params, 0, err);
}

int ia_db_run_one_flags(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
			const char *const *params, unsigned flags, ia_buf *out, bool *found,
			ia_err *err)
{
	PGresult *res = query_flags(db, caller, sql, n_params, params, flags, err);
	int rc = 0;

	*found = false;
	if (!res)
		return -1;
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		*found = true;
		if (ia_buf_append(out, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0)))
			rc = ia_err_oom(err);
	}
	PQclear(res);
	return rc;
}

int ia_db_run_one(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
		  const char *const *params, ia_buf *out, bool *found, ia_err *err)
{
	return ia_db_run_one_flags(db, caller, sql, n_params, params, 0, out, found, err);
}
