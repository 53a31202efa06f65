#include "ia_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ia_buf.h"
#include "ia_log.h"

/* SQLSTATEs we answer differently from a plain 500 */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define SQLSTATE_SERIALIZATION "40001"
#define SQLSTATE_DEADLOCK "40P01"
#define SQLSTATE_CHECK_VIOLATION "23514"
#define SQLSTATE_RLS_VIOLATION "42501"

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

static int connect_now(ia_db *db, ia_err *err)
{
	/* Later keywords override what the expanded DATABASE_URL says: the
	 * timeouts are part of how every request stays bounded. */
	static const char *const keys[] = {
		"dbname", "connect_timeout", "options", "application_name", NULL
	};
	const char *const values[] = {
		db->conninfo, "3",
		"-c statement_timeout=20000 -c idle_in_transaction_session_timeout=30000"
		" -c lock_timeout=20000",
		"intauth", NULL
	};

	ia_db_close(db);
	db->conn = PQconnectdbParams(keys, values, 1);
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password */
		ia_log(IA_LOG_WARN, "db_connect_failed", "%s",
		       db->conn ? PQerrorMessage(db->conn) : "out of memory");
		ia_db_close(db);
		return ia_err_unavailable(err);
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
	/* class 22: data exceptions (a bad uuid, timestamp, number or encoding) */
	if (strncmp(state, "22", 2) == 0 || strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0)
		return ia_err_set(err, 400, "invalid_request", "A field has an invalid value.");
	if (strcmp(state, SQLSTATE_RLS_VIOLATION) == 0)
		return ia_err_set(err, 403, "forbidden", "Not allowed for this caller.");
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

static int begin_once(ia_db *db, const ia_claims *claims, ia_err *err)
{
	const char *role = "service_role";
	const char *json = "{\"role\":\"service_role\"}";

	if (claims && claims->role == IA_ROLE_USER)
		role = "authenticated";
	if (claims && claims->json)
		json = claims->json;
	const char *params[] = { role, json };

	/* BEGIN and the settings in one round trip */
	if (!PQenterPipelineMode(db->conn))
		return result_error(db, NULL, err);
	int ok = PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
		 PQsendQueryParams(db->conn,
				   "SELECT set_config('role', $1, true),"
				   " set_config('request.jwt.claims', $2, true)",
				   2, NULL, params, NULL, NULL, 0) &&
		 PQpipelineSync(db->conn);
	int failed = !ok;
	PGresult *bad = NULL;
	for (int pending = ok ? 3 : 0; pending > 0;) {
		PGresult *res = PQgetResult(db->conn);
		if (!res) {
			if (PQstatus(db->conn) != CONNECTION_OK) {
				failed = 1;
				break;
			}
			continue;       /* end of one query's results */
		}
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			pending = 0;
		} else {
			pending--;
			if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
				failed = 1;
				if (!bad) {
					bad = res;
					continue;
				}
			}
		}
		PQclear(res);
	}
	if (PQstatus(db->conn) == CONNECTION_OK)
		PQexitPipelineMode(db->conn);
	if (failed) {
		int rc = result_error(db, bad, err);
		PQclear(bad);
		ia_db_rollback(db);
		return rc;
	}
	db->in_tx = true;
	return 0;
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

int ia_db_commit(ia_db *db, ia_err *err)
{
	PGresult *res = ia_db_exec(db, "COMMIT", 0, NULL, err);
	db->in_tx = false;
	if (!res) {
		ia_db_rollback(db);
		return -1;
	}
	/* COMMIT of an aborted transaction reports ROLLBACK */
	int rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
	PQclear(res);
	if (rolled_back)
		return ia_err_internal(err);
	return 0;
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

int ia_db_ping(ia_db *db, ia_err *err)
{
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
	return 0;
}

static void claims_params(const ia_claims *claims, const char **role, const char **json)
{
	*role = claims && claims->role == IA_ROLE_USER ? "authenticated" : "service_role";
	*json = claims && claims->json ? claims->json : "{\"role\":\"service_role\"}";
}

/* Sends the whole transaction in one pipeline and reads it back. Returns 0,
 * or -1 with err; *stale tells whether the connection had died before any of
 * it ran (so one fresh attempt is safe). */
static int run_pipelined(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
			 const char *const *params, PGresult **result, bool *stale, ia_err *err)
{
	const char *role, *json;
	int slot = -1, stmt = stmt_lookup(db, sql, &slot);
	char name[16], *copy = NULL;
	PGresult *failed = NULL;
	int rc = -1, results = 0, failed_index = -1;
	bool sent;

	*result = NULL;
	*stale = false;
	claims_params(caller, &role, &json);
	const char *settings[] = { role, json };
	if (stmt < 0 && slot >= 0 && !(copy = strdup(sql)))
		return ia_err_oom(err);
	stmt_name(name, stmt >= 0 ? stmt : slot);
	if (!PQenterPipelineMode(db->conn)) {
		free(copy);
		return result_error(db, NULL, err);
	}
	sent = PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
	       PQsendQueryParams(db->conn, "SELECT set_config('role', $1, true),"
				 " set_config('request.jwt.claims', $2, true)",
				 2, NULL, settings, NULL, NULL, 0) &&
	       (stmt >= 0 || slot < 0 || PQsendPrepare(db->conn, name, sql, n_params, NULL)) &&
	       (stmt >= 0 || slot >= 0
		? PQsendQueryPrepared(db->conn, name, n_params, params, NULL, NULL, 0)
		: PQsendQueryParams(db->conn, sql, n_params, NULL, params, NULL, NULL, 0)) &&
	       PQsendQueryParams(db->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) &&
	       PQpipelineSync(db->conn);
	int expected = 4 + (stmt < 0 && slot >= 0);   /* results before the sync */
	int query_index = expected - 2;
	bool committed = false, prepared_now = false;
	while (sent) {
		PGresult *res = PQgetResult(db->conn);
		if (!res) {
			if (PQstatus(db->conn) != CONNECTION_OK)
				break;
			continue;       /* the end of one statement's results */
		}
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		int index = results++;
		if (copy && index == 2 && st == PGRES_COMMAND_OK)
			prepared_now = true;
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			if (!failed && st != PGRES_PIPELINE_ABORTED) {
				failed = res;
				failed_index = index;
				continue;
			}
		} else if (index == query_index) {
			*result = res;
			continue;
		} else if (index == expected - 1) {
			/* COMMIT of an aborted transaction answers ROLLBACK */
			committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
		}
		PQclear(res);
	}
	if (committed && !failed && results == expected) {
		rc = 0;
	} else {
		/* the connection died before BEGIN ran (a restarted server's
		 * farewell arrives as BEGIN's error): nothing of ours ran */
		*stale = (results == 0 || failed_index == 0) && PQstatus(db->conn) != CONNECTION_OK;
		rc = failed || PQstatus(db->conn) != CONNECTION_OK ? result_error(db, failed, err)
								   : ia_err_internal(err);
	}
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
		PQexitPipelineMode(db->conn);
	/* a statement, once parsed, stays prepared whatever became of the
	 * transaction around it (but not of a connection that was dropped) */
	if (copy && prepared_now && db->conn) {
		db->stmts[slot] = copy;
		db->n_stmts++;
		copy = NULL;
	}
	free(copy);
	PQclear(failed);
	if (rc) {
		PQclear(*result);
		*result = NULL;
		ia_db_rollback(db);
	}
	return rc;
}

PGresult *ia_db_query(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
		      const char *const *params, ia_err *err)
{
	PGresult *res;
	bool stale;

	if (ia_db_ensure(db, err))
		return NULL;
	if (run_pipelined(db, caller, sql, n_params, params, &res, &stale, err) == 0)
		return res;
	/* a connection that died while idle (database restarted) shows only
	 * now; nothing ran on it, so one fresh attempt is safe */
	if (!stale || ia_db_ensure(db, err))
		return NULL;
	return run_pipelined(db, caller, sql, n_params, params, &res, &stale, err) == 0 ? res : NULL;
}

int ia_db_run_one(ia_db *db, const ia_claims *caller, const char *sql, int n_params,
		  const char *const *params, ia_buf *out, bool *found, ia_err *err)
{
	PGresult *res = ia_db_query(db, caller, sql, n_params, params, err);
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
