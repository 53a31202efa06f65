/* ia_buf: a growable byte buffer with a hard maximum, set at init.
 *
 * Invariants: data is NULL or holds len bytes followed by a NUL (so text can be
 * used as a C string); len <= max. Appending past max fails and leaves the buffer
 * unchanged, which is how provider responses and request bodies are capped.
 *
 * Ownership: the buffer owns data. ia_buf_release() wipes the bytes with
 * sodium_memzero before freeing (buffers routinely hold tokens), and leaves the
 * buffer empty and reusable with the same max. ia_buf_detach() hands data to the
 * caller, who then frees it (with free()).
 */
#ifndef IA_BUF_H
#define IA_BUF_H

#include <stddef.h>

typedef struct ia_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
} ia_buf;

/* No allocation. */
void ia_buf_init(ia_buf *b, size_t max);
/* 0, or -1 when the result would exceed max or memory ran out (b unchanged). */
int ia_buf_append(ia_buf *b, const void *p, size_t n);
int ia_buf_puts(ia_buf *b, const char *s);
int ia_buf_putc(ia_buf *b, char c);
int ia_buf_printf(ia_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (no quotes added), escaping as RFC 8259 requires. */
int ia_buf_json_escape(ia_buf *b, const char *s);
/* Always a valid C string ("" when empty). */
const char *ia_buf_cstr(const ia_buf *b);
/* Keeps the allocation, wipes the contents, len = 0. */
void ia_buf_reset(ia_buf *b);
void ia_buf_release(ia_buf *b);
/* Returns data (NUL-terminated, caller frees) and leaves b empty. NULL when empty. */
char *ia_buf_detach(ia_buf *b);

#endif
