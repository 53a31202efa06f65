/* ia_db: the process's one PostgreSQL connection and the request transaction.
 *
 * One persistent connection per process, opened lazily, re-opened after any
 * failure (connect_timeout, statement_timeout and
 * idle_in_transaction_session_timeout are set on connect). Every request runs as
 *   BEGIN; SELECT set_config('role', <role>, true),
 *                 set_config('request.jwt.claims', <claims>, true),
 *                 set_config('intauth.defer_wake', 'on', true); ...; COMMIT
 * with values bound as parameters, so RLS sees the caller (PostgREST's way);
 * BEGIN, the settings and COMMIT are prepared on connect.
 * Any error rolls back before the connection is reused.
 *
 * Errors map to ia_err: a lost or refused connection is 503 unavailable; a
 * unique violation is 409 conflict; a serialization failure 409 conflict; an
 * invalid text representation (bad uuid etc.) 400 invalid_request; anything
 * else 500 internal_error. SQL text and values never reach the message.
 */
#ifndef IA_DB_H
#define IA_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "ia_err.h"
#include "ia_jwt.h"

#define IA_DB_STATEMENTS 64

/* The channel the workers LISTEN on. */
#define IA_JOBS_CHANNEL "intauth_jobs"

/* Flags of the calls that commit. IA_DB_WAKE_WORKERS: the transaction queued
 * jobs, so NOTIFY the workers once it has committed, in the same round trip.
 * The NOTIFY runs in a transaction of its own with asynchronous commit: a
 * NOTIFY inside the request's transaction would hold PostgreSQL's database-wide
 * notify lock across that transaction's WAL flush, one committer at a time,
 * and halve the write routes' throughput. A lost wake-up only waits for the
 * workers' poll. */
#define IA_DB_WAKE_WORKERS 1u
/* A connection sends at most one wake-up per IA_DB_WAKE_DEBOUNCE_MS: under a
 * burst of webhooks, one NOTIFY per event cost each a transaction of its own
 * and 12% of the ingest rate. A job committed inside that time is not left to
 * the long poll: a worker that gets a wake-up, claims a job or starts
 * listening keeps looking every IA_DB_WAKE_LINGER_STEP_MS for
 * IA_DB_WAKE_LINGER_MS (bin/worker.c), past the end of any debounce that
 * began before; a commit that completes after its debounce ended sends a
 * wake-up of its own. An idle worker so takes such a job within a step; a
 * lost wake-up (and the ones skipped behind it) waits for the poll. */
#define IA_DB_WAKE_DEBOUNCE_MS 50
#define IA_DB_WAKE_LINGER_MS 120
#define IA_DB_WAKE_LINGER_STEP_MS 25
/* CLOCK_MONOTONIC in milliseconds, the clock of the debounce and the linger */
long long ia_db_monotonic_ms(void);

typedef struct ia_db {
	PGconn *conn;
	const char *conninfo;   /* borrowed from the config */
	bool in_tx;
	/* statements prepared on this connection: "s<i>" is stmts[i] (owned
	 * copies); forgotten when the connection is */
	char *stmts[IA_DB_STATEMENTS];
	int n_stmts;
	long long alive_at_ms;   /* monotonic time of the last SELECT 1 that answered */
	long long woke_at_ms;    /* monotonic time of the last wake-up sent, 0: none */
	/* idle_in_transaction_session_timeout set on connect (0: 30 s). A
	 * transaction that holds a row lock across provider calls (refresh,
	 * revoke) sits idle while they run: killed before they end, it would
	 * lose what the provider has already done (a rotated grant). */
	long idle_in_tx_ms;
} ia_db;

/* statement_timeout of every connection */
#define IA_DB_STATEMENT_TIMEOUT_MS 20000
/* Waiting for a row lock ends a second sooner, so that a row another request
 * holds (409 conflict: retry) is told apart from a database too slow to
 * answer (503) */
#define IA_DB_LOCK_TIMEOUT_MS (IA_DB_STATEMENT_TIMEOUT_MS - 1000)
/* libpq's connect_timeout of every connection, in seconds */
#define IA_DB_CONNECT_TIMEOUT_S 3

void ia_db_init(ia_db *db, const char *conninfo);
/* A connection with the same bounds as ia_db's (IA_DB_CONNECT_TIMEOUT_S, the statement
 * and lock timeouts), for a caller that drives it itself (the worker's LISTEN
 * connection). NULL when it cannot connect; the caller PQfinish()es it. */
PGconn *ia_db_connect_plain(const char *conninfo);
void ia_db_close(ia_db *db);
/* Connected and idle? Connects or reconnects when needed. 0 or -1 (503). */
int ia_db_ensure(ia_db *db, ia_err *err);

/* BEGIN and the role/claims settings. claims NULL = service role without claims
 * (worker, intauthctl). */
int ia_db_begin(ia_db *db, const ia_claims *claims, ia_err *err);
int ia_db_commit(ia_db *db, ia_err *err);
/* The same, with IA_DB_* flags. */
int ia_db_commit_flags(ia_db *db, unsigned flags, ia_err *err);
/* Safe to call any time; no-op outside a transaction. */
void ia_db_rollback(ia_db *db);

/* Rows of one batch transaction that must not sink each other (healthCheck
 * holds a batch's row locks across its provider calls, then records each
 * outcome): a statement that fails aborts the whole transaction, and with it
 * the tokens the providers have already rotated for the other rows.
 * ia_db_row_begin opens a savepoint; after each row ia_db_row_next undoes
 * that row alone if its statement failed (*row_failed set), else keeps it and
 * opens the next savepoint, in one round trip. -1 with err when the
 * transaction is beyond saving (the connection is gone). */
int ia_db_row_begin(ia_db *db, ia_err *err);
int ia_db_row_next(ia_db *db, bool *row_failed, ia_err *err);
/* Runs one parameterised statement (text params, text results), prepared on
 * first use per connection. Returns the
 * result (caller PQclear()s) when it is PGRES_TUPLES_OK or PGRES_COMMAND_OK, else
 * NULL with err filled (and the connection dropped if it broke). */
PGresult *ia_db_exec(ia_db *db, const char *sql, int n_params, const char *const *params,
		     ia_err *err);

/* One statement in its own request transaction as the caller, in one round
 * trip (BEGIN, the role and claims, the statement and COMMIT pipelined): the
 * first column of the first row, when there is one and it is not NULL, is
 * appended to out and *found set. Nothing is committed on any error. */
struct ia_buf;
int ia_db_run_one(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
		  const char *const *params, struct ia_buf *out, bool *found, ia_err *err);
/* The same, with IA_DB_* flags. */
int ia_db_run_one_flags(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
			const char *const *params, unsigned flags, struct ia_buf *out, bool *found,
			ia_err *err);

/* The same, answering the statement's whole result (caller PQclear()s), or
 * NULL with err. */
PGresult *ia_db_query(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
		      const char *const *params, ia_err *err);

/* Liveness for /healthz: SELECT 1 outside any request transaction, at most
 * once per IA_DB_PING_MS per process. In between, an idle connection whose
 * server went away (stopped, restarted, crashed: its farewell or EOF makes the
 * socket readable) is noticed with one poll() and checked at once; only a
 * server that hangs is seen up to IA_DB_PING_MS late. 0 or -1 (503). */
#define IA_DB_PING_MS 1000
int ia_db_ping(ia_db *db, ia_err *err);

#endif
