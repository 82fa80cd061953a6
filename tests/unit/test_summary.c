/* Unit tests of the latency/duration summary (base/summary.c): exact
 * count, sum, min and max; quantiles within the histogram's 12.5%, of the
 * last one to two windows; the empty summary reads 0. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "summary.h"

#define T0 1000000	/* a monotonic clock's ms */
#define W SUMMARY_WINDOW_MS

static void test_empty_summary_reads_zero(void **state)
{
	struct summary s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(summary_quantile(&s, 0.5, T0), 0);
	assert_int_equal(summary_quantile(&s, 0.999, T0), 0);
	assert_true(summary_mean(&s) == 0.0);
}

static void test_small_values_are_exact(void **state)
{
	struct summary s;
	memset(&s, 0, sizeof(s));
	for (uint64_t v = 0; v < 8; v++)
		summary_add(&s, v, T0);
	assert_int_equal(s.count, 8);
	assert_int_equal(s.sum, 28);
	assert_int_equal(s.min, 0);
	assert_int_equal(s.max, 7);
	assert_int_equal(summary_quantile(&s, 0.5, T0), 3);		/* the 4th of 8 */
	assert_int_equal(summary_quantile(&s, 1.0, T0), 7);
	assert_int_equal(summary_quantile(&s, 0.0, T0), 0);
}

/* 1..100000: every quantile within 12.5% below the true one. */
static void test_quantiles_are_within_the_bucket_width(void **state)
{
	static const double qs[] = { 0.5, 0.9, 0.95, 0.99, 0.999 };
	struct summary s;
	memset(&s, 0, sizeof(s));
	for (uint64_t v = 1; v <= 100000; v++)
		summary_add(&s, v, T0);
	assert_int_equal(s.min, 1);
	assert_int_equal(s.max, 100000);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double want = qs[i] * 100000;
		uint64_t got = summary_quantile(&s, qs[i], T0);
		assert_true((double)got <= want + 1);
		assert_true((double)got >= want * 0.875 - 1);
	}
}

/* One outlier among many equal values: p50 is the many, p999 the outlier
 * only when it is more than a thousandth of them. */
static void test_an_outlier_shows_in_the_tail_only(void **state)
{
	struct summary s;
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 999; i++)
		summary_add(&s, 2, T0);
	summary_add(&s, 5000, T0);
	assert_int_equal(summary_quantile(&s, 0.5, T0), 2);
	assert_int_equal(summary_quantile(&s, 0.99, T0), 2);
	assert_int_equal(summary_quantile(&s, 1.0, T0), 5000 & ~(uint64_t)511);	/* its bucket's floor */
	assert_int_equal(s.max, 5000);
}

static void test_huge_values_share_the_last_bucket(void **state)
{
	struct summary s;
	memset(&s, 0, sizeof(s));
	summary_add(&s, UINT64_MAX / 2, T0);
	summary_add(&s, UINT64_C(1) << 60, T0);
	assert_int_equal(s.count, 2);
	assert_true(summary_quantile(&s, 1.0, T0) <= s.max);
	assert_true(summary_quantile(&s, 0.0, T0) >= s.min);
}

/* Quantiles forget what is two windows old; count, sum, min, max do not. */
static void test_quantiles_follow_the_recent_values(void **state)
{
	struct summary s;
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 1000; i++)
		summary_add(&s, 1000, T0);
	assert_int_equal(summary_quantile(&s, 0.5, T0), 1000);	/* within min..max */
	/* a window later: the slow values are the previous window, still read */
	for (int i = 0; i < 10; i++)
		summary_add(&s, 2, T0 + W);
	assert_int_equal(summary_quantile(&s, 0.5, T0 + W), 1000 & ~(uint64_t)63);	/* its bucket */
	/* two windows later, only the fast ones (and the next ones) count */
	for (int i = 0; i < 10; i++)
		summary_add(&s, 3, T0 + 2 * W);
	assert_int_equal(summary_quantile(&s, 0.99, T0 + 2 * W), 3);
	assert_int_equal(summary_quantile(&s, 0.01, T0 + 2 * W), 2);
	assert_int_equal(s.count, 1020);
	assert_int_equal(s.min, 2);
	assert_int_equal(s.max, 1000);
	/* idle past two windows: no recent values */
	assert_int_equal(summary_quantile(&s, 0.5, T0 + 5 * W), 0);
	summary_add(&s, 7, T0 + 5 * W);
	assert_int_equal(summary_quantile(&s, 0.5, T0 + 5 * W), 7);
	/* a window passed since the last add: the current one is read alone */
	assert_int_equal(summary_quantile(&s, 0.5, T0 + 6 * W + 1), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_summary_reads_zero),
		cmocka_unit_test(test_small_values_are_exact),
		cmocka_unit_test(test_quantiles_are_within_the_bucket_width),
		cmocka_unit_test(test_an_outlier_shows_in_the_tail_only),
		cmocka_unit_test(test_huge_values_share_the_last_bucket),
		cmocka_unit_test(test_quantiles_follow_the_recent_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
