/* summary: a distribution of non-negative values (latencies, durations) in
 * constant memory: count, sum, min, max, and a log-linear histogram (exact
 * below 8, then 8 buckets per power of two, so a quantile is within 12.5%
 * of the true value) from which quantiles are read. What ZooKeeper's
 * AvgMinMaxPercentileCounter reports (avg, min, max, count, sum, p50, p95,
 * p99, p999), and what Prometheus summaries are made of; ZooKeeper keeps a
 * sliding window of samples, this keeps everything since start (or the
 * last reset), as Prometheus expects of _sum and _count. A zeroed struct
 * is an empty summary. Owned by its writer; nothing here allocates. */
#pragma once

#include <stdint.h>

#define SUMMARY_SUB_BUCKETS 8
/* Values up to 2^48 (8.9 years in microseconds); larger ones share the last. */
#define SUMMARY_BUCKETS (SUMMARY_SUB_BUCKETS + (48 - 3) * SUMMARY_SUB_BUCKETS)

struct summary {
	uint64_t count, sum, min, max;
	uint64_t buckets[SUMMARY_BUCKETS];
};

void summary_add(struct summary *s, uint64_t value);
/* The value below which a fraction q (0..1) of the values lie: the lower
 * edge of the bucket holding it, kept within min..max; 0 when empty. */
uint64_t summary_quantile(const struct summary *s, double q);
static inline double summary_mean(const struct summary *s)
{
	return s->count ? (double)s->sum / (double)s->count : 0.0;
}
