#include "ia_metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ia_log.h"

/* upper bounds of the latency buckets, in microseconds */
static const long bucket_us[IA_METRICS_BUCKETS - 1] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000
};
static const char *const bucket_le[IA_METRICS_BUCKETS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
	"5", "+Inf"
};

static bool program_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof ((ia_metrics *)0)->program)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_'))
			return false;
	return true;
}

ia_metrics *ia_metrics_open(const char *dir, const char *program)
{
	char path[4096];
	ia_metrics *m;
	int fd;

	if (!dir || !program_name_ok(program))
		return NULL;
	snprintf(path, sizeof path, "%s/%s.metrics", dir, program);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || ftruncate(fd, sizeof *m) != 0) {
		ia_log(IA_LOG_WARN, "metrics_unavailable", "cannot open the metrics file in METRICS_DIR");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return NULL;
	/* counters start from zero with each supervisor, as Prometheus expects of a restart */
	memset(m, 0, sizeof *m);
	snprintf(m->program, sizeof m->program, "%s", program);
	m->size = sizeof *m;
	__atomic_store_n(&m->magic, IA_METRICS_MAGIC, __ATOMIC_RELEASE);
	return m;
}

void ia_metrics_request(ia_metrics *m, int status, long micros)
{
	size_t b = 0;

	if (!m)
		return;
	if (status < 0 || status >= IA_METRICS_STATUSES)
		status = 0;
	while (b < IA_METRICS_BUCKETS - 1 && micros > bucket_us[b])
		b++;
	__atomic_fetch_add(&m->requests[status], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->latency[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->latency_sum_us, (uint64_t)(micros > 0 ? micros : 0), __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->latency_count, 1, __ATOMIC_RELAXED);
}

void ia_metrics_count(ia_metrics *m, enum ia_counter which)
{
	if (m && which < IA_COUNTER__MAX)
		__atomic_fetch_add(&m->counters[which], 1, __ATOMIC_RELAXED);
}

static int load(const char *dir, const char *name, ia_metrics *copy)
{
	char path[4096];
	struct stat st;
	int fd, rc = -1;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == sizeof *copy) {
		const ia_metrics *m = mmap(NULL, sizeof *m, PROT_READ, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			memcpy(copy, m, sizeof *copy);
			munmap((void *)m, sizeof *m);
			copy->program[sizeof copy->program - 1] = '\0';
			rc = copy->magic == IA_METRICS_MAGIC && copy->size == sizeof *copy &&
			     program_name_ok(copy->program) ? 0 : -1;
		}
	}
	close(fd);
	return rc;
}

static int metrics_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 8 && strcmp(d->d_name + n - 8, ".metrics") == 0;
}

int ia_metrics_render(const char *dir, ia_db *db, ia_buf *out, ia_err *err)
{
	struct dirent **names = NULL;
	int n = dir ? scandir(dir, &names, metrics_filter, alphasort) : 0;
	ia_metrics *all = NULL;
	int loaded = 0, rc = -1;
	static const char *const counter_lines[IA_COUNTER__MAX] = {
		"intauth_token_refreshes_total{outcome=\"refreshed\"",
		"intauth_token_refreshes_total{outcome=\"failed\"",
		"intauth_token_refreshes_total{outcome=\"rejected\"",
		"intauth_webhook_verifications_total{result=\"verified\"",
		"intauth_webhook_verifications_total{result=\"rejected\"",
		"intauth_jobs_processed_total{result=\"succeeded\"",
		"intauth_jobs_processed_total{result=\"failed\"",
	};

	if (n < 0)
		n = 0;
	if (n > 0 && !(all = calloc((size_t)n, sizeof *all)))
		goto oom;
	for (int i = 0; i < n; i++)
		if (load(dir, names[i]->d_name, &all[loaded]) == 0)
			loaded++;

	int bad = ia_buf_puts(out,
		"# HELP intauth_requests_total Requests answered, by route program and HTTP status.\n"
		"# TYPE intauth_requests_total counter\n");
	for (int i = 0; i < loaded && !bad; i++)
		for (int s = 0; s < IA_METRICS_STATUSES && !bad; s++)
			if (all[i].requests[s])
				bad = ia_buf_printf(out, "intauth_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
						    all[i].program, s, (unsigned long long)all[i].requests[s]);
	bad = bad || ia_buf_puts(out,
		"# HELP intauth_request_duration_seconds Time from accept to answer.\n"
		"# TYPE intauth_request_duration_seconds histogram\n");
	for (int i = 0; i < loaded && !bad; i++) {
		uint64_t cumulative = 0;
		for (int b = 0; b < IA_METRICS_BUCKETS && !bad; b++) {
			cumulative += all[i].latency[b];
			bad = ia_buf_printf(out, "intauth_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n",
					    all[i].program, bucket_le[b], (unsigned long long)cumulative);
		}
		bad = bad || ia_buf_printf(out, "intauth_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
					   "intauth_request_duration_seconds_count{route=\"%s\"} %llu\n",
					   all[i].program, (double)all[i].latency_sum_us / 1e6, all[i].program,
					   (unsigned long long)all[i].latency_count);
	}
	bad = bad || ia_buf_puts(out,
		"# HELP intauth_token_refreshes_total Token refreshes by outcome (rejected = invalid_grant).\n"
		"# TYPE intauth_token_refreshes_total counter\n"
		"# HELP intauth_webhook_verifications_total Webhook signature checks by result.\n"
		"# TYPE intauth_webhook_verifications_total counter\n"
		"# HELP intauth_jobs_processed_total Jobs run by the worker, by result.\n"
		"# TYPE intauth_jobs_processed_total counter\n");
	for (int c = 0; c < IA_COUNTER__MAX && !bad; c++) {
		uint64_t sum = 0;
		for (int i = 0; i < loaded; i++)
			sum += all[i].counters[c];
		bad = ia_buf_printf(out, "%s} %llu\n", counter_lines[c], (unsigned long long)sum);
	}
	if (bad)
		goto oom;

	/* the queue, as the database sees it now */
	bool found;
	ia_buf q;
	ia_buf_init(&q, 65536);
	if (ia_db_run_one(db, NULL,
			  "SELECT E'# HELP intauth_jobs Jobs in the queue by status.\\n# TYPE intauth_jobs gauge\\n'"
			  " || string_agg(format('intauth_jobs{status=\"%s\"} %s', s, coalesce(n, 0)), E'\\n')"
			  " || E'\\n# HELP intauth_jobs_oldest_due_seconds Age of the oldest due job.'"
			  " || E'\\n# TYPE intauth_jobs_oldest_due_seconds gauge'"
			  " || E'\\nintauth_jobs_oldest_due_seconds ' || coalesce((SELECT extract(epoch FROM"
			  "  now() - min(run_at))::bigint FROM public.integration_sync_jobs"
			  "  WHERE status IN ('queued', 'failed') AND run_at <= now()), 0) || E'\\n'"
			  " FROM unnest(ARRAY['queued','running','failed','succeeded','dead']) s"
			  " LEFT JOIN (SELECT status, count(*) n FROM public.integration_sync_jobs GROUP BY 1) j"
			  "  ON j.status = s",
			  0, NULL, &q, &found, err) || ia_buf_append(out, q.data ? q.data : "", q.len)) {
		if (!err->status)
			ia_err_oom(err);
		ia_buf_release(&q);
		goto out;
	}
	ia_buf_release(&q);
	rc = 0;
	goto out;
oom:
	ia_err_oom(err);
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(all);
	return rc;
}
