/* ia_log: structured logs, one JSON object per line on stderr:
 *   {"ts":"2026-11-24T23:54:33.123Z","level":"info","prog":"storeCredentials","event":"...","msg":"..."}
 * msg is formatted text, JSON-escaped. Never pass a secret, a token, a body or a
 * full SQL error that might quote data: log codes and ids.
 * User-visible events go to integration_logs through the database, not here.
 */
#ifndef IA_LOG_H
#define IA_LOG_H

enum ia_log_level { IA_LOG_DEBUG = 0, IA_LOG_INFO, IA_LOG_WARN, IA_LOG_ERROR };

void ia_log_init(const char *program, int min_level);
void ia_log(enum ia_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "debug" | "info" | "warn" | "error" -> level, -1 when unknown. */
int ia_log_level_parse(const char *s);

#endif
