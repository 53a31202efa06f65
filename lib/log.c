#include "ia_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ia_buf.h"

static const char *log_program = "intauth";
static int log_min_level = IA_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void ia_log_init(const char *program, int min_level)
{
	log_program = program;
	log_min_level = min_level;
}

int ia_log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

void ia_log(enum ia_log_level level, const char *event, const char *fmt, ...)
{
	char msg[1024];
	char ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	ia_buf line;

	if ((int)level < log_min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));

	ia_buf_init(&line, 4096);
	ia_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"", ts, level_names[level]);
	ia_buf_json_escape(&line, log_program);
	ia_buf_printf(&line, "\",\"pid\":%ld,\"event\":\"", (long)getpid());
	ia_buf_json_escape(&line, event);
	ia_buf_puts(&line, "\",\"msg\":\"");
	ia_buf_json_escape(&line, msg);
	ia_buf_puts(&line, "\"}\n");
	/* one write per line so lines of concurrent processes never interleave */
	ssize_t w = write(STDERR_FILENO, line.data, line.len);
	(void)w;
	ia_buf_release(&line);
}
