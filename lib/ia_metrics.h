/* ia_metrics: Prometheus counters shared by a program's processes.
 *
 * When METRICS_DIR is set, each supervisor maps METRICS_DIR/<program>.metrics
 * (MAP_SHARED, fixed layout, zeroed at start) before forking, and its workers
 * add to it with relaxed atomic operations: no locks, no syscalls on the hot
 * path. GET /metrics renders every such file in the directory, plus the job
 * queue's depth read from the database. Without METRICS_DIR nothing is counted.
 */
#ifndef IA_METRICS_H
#define IA_METRICS_H

#include <stdint.h>

#include "ia_buf.h"
#include "ia_db.h"
#include "ia_err.h"

#define IA_METRICS_MAGIC 0x69616d31u   /* "iam1" */
#define IA_METRICS_STATUSES 600
#define IA_METRICS_BUCKETS 13          /* the last one is +Inf */

enum ia_counter {
	IA_REFRESH_OK = 0, IA_REFRESH_FAILED, IA_REFRESH_REJECTED,
	IA_WEBHOOK_VERIFIED, IA_WEBHOOK_REJECTED,
	IA_JOB_SUCCEEDED, IA_JOB_FAILED,
	IA_COUNTER__MAX
};

typedef struct ia_metrics {
	uint32_t magic;
	uint32_t size;
	char program[32];
	uint64_t requests[IA_METRICS_STATUSES];
	uint64_t latency[IA_METRICS_BUCKETS];  /* per bucket, not cumulative */
	uint64_t latency_sum_us;
	uint64_t latency_count;
	uint64_t counters[IA_COUNTER__MAX];
} ia_metrics;

/* Maps dir/<program>.metrics; NULL (and a log line) when it can't. Unmapped
 * at exit by the kernel. */
ia_metrics *ia_metrics_open(const char *dir, const char *program);
/* NULL m is fine: nothing counted. */
void ia_metrics_request(ia_metrics *m, int status, long micros);
void ia_metrics_count(ia_metrics *m, enum ia_counter which);
/* The Prometheus text exposition of every program in dir, and the queue. */
int ia_metrics_render(const char *dir, ia_db *db, ia_buf *out, ia_err *err);

#endif
