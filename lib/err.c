#include "ia_err.h"

#include <stdarg.h>
#include <stdio.h>

int ia_err_set(ia_err *err, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->status = status;
	err->code = code;
	err->retry_after = 0;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

int ia_err_unavailable(ia_err *err)
{
	ia_err_set(err, 503, "unavailable", "The service is temporarily unavailable; retry shortly.");
	if (err)
		err->retry_after = 2;
	return -1;
}

int ia_err_internal(ia_err *err)
{
	return ia_err_set(err, 500, "internal_error", "Internal error.");
}

int ia_err_oom(ia_err *err)
{
	return ia_err_set(err, 500, "internal_error", "Out of memory.");
}

void ia_errmsg(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}
