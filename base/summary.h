/* summary: a distribution of non-negative values (latencies, durations) in
 * constant memory: count, sum, min and max since start (or the last reset),
 * and quantiles of the recent values, read from log-linear histograms
 * (exact below 8, then 8 buckets per power of two, so a quantile is within
 * 12.5% of the true value). What ZooKeeper's AvgMinMaxPercentileCounter
 * reports (avg, min, max, count, sum, p50, p95, p99, p999), and what a
 * Prometheus summary is made of: _sum and _count cumulative, quantiles over
 * a sliding window (Prometheus' client keeps 10 minutes; this keeps two
 * windows of SUMMARY_WINDOW_MS, so quantiles cover the last one to two
 * minutes, and a p99 still moves after days of uptime). A zeroed struct is
 * an empty summary. Owned by its writer; nothing here allocates, and time
 * is the caller's (now_ms, a monotonic clock). */
#pragma once

#include <stdint.h>

#define SUMMARY_SUB_BUCKETS 8
/* Values up to 2^48 (8.9 years in microseconds); larger ones share the last. */
#define SUMMARY_BUCKETS (SUMMARY_SUB_BUCKETS + (48 - 3) * SUMMARY_SUB_BUCKETS)
#define SUMMARY_WINDOW_MS 60000

struct summary {
	uint64_t count, sum, min, max;
	uint64_t window_start_ms;	/* of the current window */
	unsigned current;		/* which of windows[] values go to */
	uint64_t windows[2][SUMMARY_BUCKETS];
};

void summary_add(struct summary *s, uint64_t value, uint64_t now_ms);
/* The value below which a fraction q (0..1) of the recent values lie (the
 * current window and the one before): the lower edge of the bucket holding
 * it, kept within min..max; 0 when there are none. */
uint64_t summary_quantile(const struct summary *s, double q, uint64_t now_ms);
static inline double summary_mean(const struct summary *s)
{
	return s->count ? (double)s->sum / (double)s->count : 0.0;
}
