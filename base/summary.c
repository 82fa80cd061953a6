/* summary: see summary.h. */
#include "summary.h"

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

void summary_add(struct summary *s, uint64_t value)
{
	if (s->count == 0 || value < s->min)
		s->min = value;
	if (value > s->max)
		s->max = value;
	s->count++;
	s->sum += value;
	s->buckets[bucket_of(value)]++;
}

uint64_t summary_quantile(const struct summary *s, double q)
{
	if (s->count == 0)
		return 0;
	if (q < 0)
		q = 0;
	/* The rank of the value sought, 1-based (as a nearest-rank percentile). */
	uint64_t rank = (uint64_t)(q * (double)s->count + 0.999999);
	if (rank == 0)
		rank = 1;
	if (rank > s->count)
		rank = s->count;
	uint64_t seen = 0;
	for (unsigned b = 0; b < SUMMARY_BUCKETS; b++) {
		seen += s->buckets[b];
		if (seen >= rank) {
			uint64_t v = bucket_floor(b);
			return v < s->min ? s->min : v > s->max ? s->max : v;
		}
	}
	return s->max;
}
