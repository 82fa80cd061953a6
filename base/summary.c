/* summary: see summary.h. */
#include "summary.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	if (v < SUMMARY_SUB_BUCKETS)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);	/* >= 3 */
	unsigned sub = (unsigned)(v >> (e - 3)) & (SUMMARY_SUB_BUCKETS - 1);
	unsigned b = SUMMARY_SUB_BUCKETS + (e - 3) * SUMMARY_SUB_BUCKETS + sub;
	return b < SUMMARY_BUCKETS ? b : SUMMARY_BUCKETS - 1;
}

/* The smallest value bucket b holds. */
static uint64_t bucket_floor(unsigned b)
{
	if (b < SUMMARY_SUB_BUCKETS)
		return b;
	unsigned e = (b - SUMMARY_SUB_BUCKETS) / SUMMARY_SUB_BUCKETS + 3;
	uint64_t sub = (b - SUMMARY_SUB_BUCKETS) % SUMMARY_SUB_BUCKETS;
	return (UINT64_C(1) << e) | (sub << (e - 3));
}

/* How many windows back the current one is at now_ms: 0 (still current),
 * 1 (it is the previous one now) or 2 (both are older than the last two). */
static unsigned windows_passed(const struct summary *s, uint64_t now_ms)
{
	if (now_ms < s->window_start_ms + SUMMARY_WINDOW_MS)
		return 0;
	return now_ms < s->window_start_ms + 2 * SUMMARY_WINDOW_MS ? 1 : 2;
}

void summary_add(struct summary *s, uint64_t value, uint64_t now_ms)
{
	unsigned passed = s->count ? windows_passed(s, now_ms) : 2;
	if (passed == 2) {
		memset(s->windows, 0, sizeof(s->windows));
		s->window_start_ms = now_ms;
	} else if (passed == 1) {
		s->current ^= 1;
		memset(s->windows[s->current], 0, sizeof(s->windows[s->current]));
		s->window_start_ms += SUMMARY_WINDOW_MS;
	}
	if (s->count == 0 || value < s->min)
		s->min = value;
	if (value > s->max)
		s->max = value;
	s->count++;
	s->sum += value;
	s->windows[s->current][bucket_of(value)]++;
}

uint64_t summary_quantile(const struct summary *s, double q, uint64_t now_ms)
{
	if (s->count == 0)
		return 0;
	unsigned passed = windows_passed(s, now_ms);
	if (passed == 2)
		return 0;
	/* The recent windows: both while the current one lasts, else only it
	 * (as the previous one now). */
	const uint64_t *cur = s->windows[s->current];
	const uint64_t *prev = passed == 0 ? s->windows[s->current ^ 1] : NULL;
	uint64_t total = 0;
	for (unsigned b = 0; b < SUMMARY_BUCKETS; b++)
		total += cur[b] + (prev ? prev[b] : 0);
	if (total == 0)
		return 0;
	if (q < 0)
		q = 0;
	/* The rank of the value sought, 1-based (a nearest-rank percentile). */
	uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
	rank = rank == 0 ? 1 : rank > total ? total : rank;
	uint64_t seen = 0;
	for (unsigned b = 0; b < SUMMARY_BUCKETS; b++) {
		seen += cur[b] + (prev ? prev[b] : 0);
		if (seen >= rank) {
			uint64_t v = bucket_floor(b);
			return v < s->min ? s->min : v > s->max ? s->max : v;
		}
	}
	return s->max;
}
