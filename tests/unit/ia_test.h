/* A minimal TAP producer for the unit tests: each check prints "ok N - name" or
 * "not ok N - name (file:line)"; ia_test_done() prints the plan and returns the
 * exit status. tests/run counts the lines. */
#ifndef IA_TEST_H
#define IA_TEST_H

#include <stdio.h>
#include <string.h>

static int ia_test_n, ia_test_failed;

#define CHECK(cond, name) do { \
	++ia_test_n; \
	if (cond) { printf("ok %d - %s\n", ia_test_n, (name)); } \
	else { ++ia_test_failed; printf("not ok %d - %s (%s:%d)\n", ia_test_n, (name), __FILE__, __LINE__); } \
	fflush(stdout); \
} while (0)

#define CHECK_STR(got, want, name) do { \
	const char *g_ = (got), *w_ = (want); \
	int ok_ = g_ && w_ && strcmp(g_, w_) == 0; \
	CHECK(ok_, name); \
	if (!ok_) printf("#   got  \"%s\"\n#   want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

static inline int ia_test_done(void)
{
	printf("1..%d\n", ia_test_n);
	return ia_test_failed ? 1 : 0;
}

#endif
