/* ia_err: the error a library call reports to the program that answers.
 *
 * Library code never exits and never writes to the client: it fills an ia_err
 * with the HTTP status, the code of SPEC §4 and a human message that never holds
 * a secret, SQL text or a stack trace. The program answers it with ia_resp_err().
 */
#ifndef IA_ERR_H
#define IA_ERR_H

#include <stddef.h>

typedef struct ia_err {
	int status;           /* HTTP status, 0 = no error */
	const char *code;     /* static string: "invalid_request", "not_found", ... */
	char message[240];
	int retry_after;      /* seconds for 503/429, else 0 */
} ia_err;

/* Sets all fields; returns -1 so callers can `return ia_err_set(...)`. */
int ia_err_set(ia_err *err, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Formats a one-line message into a caller's buffer (start-up errors of
 * config, keys and catalog, reported before any request exists). NULL or
 * zero-sized buffers are fine. */
void ia_errmsg(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Common shapes. Each returns -1. */
int ia_err_unavailable(ia_err *err);  /* 503 unavailable, Retry-After: 2 */
int ia_err_internal(ia_err *err);     /* 500 internal_error */
int ia_err_oom(ia_err *err);          /* 500 internal_error (out of memory) */

#endif
