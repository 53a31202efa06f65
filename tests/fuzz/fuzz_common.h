/* Shared pieces of the libFuzzer targets in tests/fuzz/ (make fuzz, make fuzz-smoke).
 *
 * Each target feeds untrusted bytes to one parser of lib/ and, besides the
 * sanitizers, checks the properties its header documents (FUZZ_CHECK aborts,
 * which libFuzzer reports as a crash with the input saved).
 */
#ifndef IA_FUZZ_COMMON_H
#define IA_FUZZ_COMMON_H

#define _GNU_SOURCE /* memfd_create, memmem */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#define FUZZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
		abort(); \
	} \
} while (0)

#ifndef FUZZ_REAL_SODIUM_MALLOC
/* lib/ keeps secrets in sodium_malloc'd memory: an mmap with guard pages and
 * mlock per allocation, which costs ~0.5 ms here under ASan (munmap clears
 * shadow memory) and which ASan and LeakSanitizer cannot see into. The fuzz
 * targets replace it with the ordinary heap, so a secret buffer overrun or
 * leak is reported like any other, at a thousand times the speed. Nothing in
 * lib/ depends on the guard pages; the read-only protection of the key ring
 * becomes a no-op here (build with -DFUZZ_REAL_SODIUM_MALLOC for the real one). */
void *sodium_malloc(const size_t size)
{
	return malloc(size ? size : 1);
}

void *sodium_allocarray(size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		return NULL;
	return sodium_malloc(count * size);
}

void sodium_free(void *ptr)
{
	free(ptr);
}

int sodium_mprotect_noaccess(void *ptr)
{
	(void)ptr;
	return 0;
}

int sodium_mprotect_readonly(void *ptr)
{
	(void)ptr;
	return 0;
}

int sodium_mprotect_readwrite(void *ptr)
{
	(void)ptr;
	return 0;
}
#endif

/* A NUL-terminated malloc'd copy of n bytes (the fuzz input is not terminated). */
static inline char *fuzz_strndup(const uint8_t *data, size_t n)
{
	char *s = malloc(n + 1);
	FUZZ_CHECK(s != NULL);
	if (n)
		memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

/* A file that lives in memory, named by a /proc/self/fd path: writing the input
 * there costs two system calls, and the code under test opens it by name as it
 * would open an env file or a catalog. */
typedef struct fuzz_memfile {
	int fd;
	char path[64];
} fuzz_memfile;

static inline void fuzz_memfile_init(fuzz_memfile *f, const char *name)
{
	f->fd = memfd_create(name, MFD_CLOEXEC);
	FUZZ_CHECK(f->fd >= 0);
	snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

static inline void fuzz_memfile_set(fuzz_memfile *f, const uint8_t *data, size_t n)
{
	FUZZ_CHECK(ftruncate(f->fd, 0) == 0);
	size_t off = 0;
	while (off < n) {
		ssize_t w = pwrite(f->fd, data + off, n - off, (off_t)off);
		FUZZ_CHECK(w > 0);
		off += (size_t)w;
	}
}

/* Splits the input at the first occurrence of sep (a byte string); *rest is
 * what follows. Without sep, all of it is the head and rest is empty. */
static inline void fuzz_split(const uint8_t *data, size_t size, const char *sep,
			      size_t *head_len, const uint8_t **rest, size_t *rest_len)
{
	size_t sl = strlen(sep);
	for (size_t i = 0; sl && i + sl <= size; i++) {
		if (memcmp(data + i, sep, sl) == 0) {
			*head_len = i;
			*rest = data + i + sl;
			*rest_len = size - i - sl;
			return;
		}
	}
	*head_len = size;
	*rest = data + size;
	*rest_len = 0;
}

/* Request headers as "Name: value" lines: the ia_header_fn context of the
 * webhook verifier, counting repeats as lib/http.c does. */
#define FUZZ_HEADERS_MAX 16
typedef struct fuzz_headers {
	char *name[FUZZ_HEADERS_MAX];
	char *value[FUZZ_HEADERS_MAX];
	size_t n;
} fuzz_headers;

static inline const char *fuzz_header_get(void *ctx, const char *name, int *count)
{
	const fuzz_headers *h = ctx;
	const char *first = NULL;

	*count = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (strcasecmp(h->name[i], name) != 0)
			continue;
		if (!first)
			first = h->value[i];
		++*count;
	}
	return first;
}

/* Parses "Name: value\n" lines from the text (NUL-terminated, modified in
 * place); one optional space after the colon is dropped. Lines without a
 * colon are skipped. */
static inline void fuzz_headers_parse(fuzz_headers *h, char *text)
{
	h->n = 0;
	char *p = text;
	while (*p && h->n < FUZZ_HEADERS_MAX) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		char *colon = strchr(p, ':');
		if (colon) {
			*colon = '\0';
			char *v = colon + 1;
			if (*v == ' ')
				v++;
			h->name[h->n] = p;
			h->value[h->n] = v;
			h->n++;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
}

#endif
