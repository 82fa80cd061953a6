/* test_entry_cache: the in-memory tail of the log that a leader sends
 * followers from: append in order, get by index, truncate (a new leader's
 * entries replace ours), trim (a snapshot covers them), refill after both,
 * and the bound in bytes (the oldest durable entries go first). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "entry_cache.h"

static void fill(struct entry_cache *c, uint64_t from, uint64_t to, uint64_t term)
{
	for (uint64_t i = from; i <= to; i++) {
		char data[32];
		int n = snprintf(data, sizeof(data), "entry %llu", (unsigned long long)i);
		assert_int_equal(entry_cache_append(c, i, term, 1, data, (uint32_t)n), 0);
	}
}

static void assert_entry(const struct entry_cache *c, uint64_t index, uint64_t term)
{
	char want[32];
	int n = snprintf(want, sizeof(want), "entry %llu", (unsigned long long)index);
	const struct cached_entry *e = entry_cache_get(c, index);
	assert_non_null(e);
	assert_int_equal(e->term, term);
	assert_int_equal(e->len, n);
	assert_memory_equal(e->data, want, (size_t)n);
}

static void test_entries_come_back_by_index_and_only_in_order(void **state)
{
	struct entry_cache c;
	(void)state;
	entry_cache_init(&c, true);
	fill(&c, 5, 5000, 2);
	assert_int_equal(entry_cache_last(&c), 5000);
	assert_null(entry_cache_get(&c, 4));
	assert_null(entry_cache_get(&c, 5001));
	assert_entry(&c, 5, 2);
	assert_entry(&c, 4321, 2);
	assert_int_equal(entry_cache_append(&c, 5002, 2, 1, "x", 1), -EINVAL);
	entry_cache_free(&c);
}

static void test_truncate_drops_from_index_and_appends_go_on_there(void **state)
{
	struct entry_cache c;
	(void)state;
	entry_cache_init(&c, true);
	fill(&c, 1, 100, 1);
	uint64_t bytes = c.bytes;
	entry_cache_truncate(&c, 60);
	assert_int_equal(entry_cache_last(&c), 59);
	assert_true(c.bytes < bytes);
	assert_null(entry_cache_get(&c, 60));
	fill(&c, 60, 80, 3);
	assert_entry(&c, 59, 1);
	assert_entry(&c, 60, 3);
	entry_cache_truncate(&c, 0);
	assert_int_equal(entry_cache_last(&c), 0);
	assert_int_equal(c.bytes, 0);
	fill(&c, 500, 510, 4);	/* after a snapshot: starts anywhere */
	assert_entry(&c, 500, 4);
	entry_cache_free(&c);
}

static void test_trim_drops_before_index_and_memory_is_reused(void **state)
{
	struct entry_cache c;
	(void)state;
	entry_cache_init(&c, true);
	for (uint64_t round = 0; round < 20; round++) {
		fill(&c, round * 1000 + 1, round * 1000 + 1000, round + 1);
		entry_cache_trim(&c, round * 1000 + 900);
		assert_null(entry_cache_get(&c, round * 1000 + 899));
		assert_entry(&c, round * 1000 + 900, round + 1);
	}
	/* Trimming slides the array instead of growing it forever. */
	assert_true(c.cap <= 4096);
	assert_int_equal(c.count, 101);
	entry_cache_free(&c);
}

/* Over the budget the oldest go, down to the budget, never past the last
 * durable index; the bytes counted are what is held. */
static void test_the_budget_drops_the_oldest_durable_entries_only(void **state)
{
	struct entry_cache c;
	(void)state;
	entry_cache_init(&c, true);
	fill(&c, 1, 1000, 1);
	uint64_t all = c.bytes;
	uint64_t per = strlen("entry 1000") + ENTRY_CACHE_OVERHEAD;
	assert_int_equal(all, 9 * (7 + ENTRY_CACHE_OVERHEAD) + 90 * (8 + ENTRY_CACHE_OVERHEAD) +
			 900 * (9 + ENTRY_CACHE_OVERHEAD) + per);
	c.budget = 99 * (9 + ENTRY_CACHE_OVERHEAD) + per;	/* 901..1000 */
	/* Nothing durable after 50: only 1..50 may go, however far over. */
	entry_cache_bound(&c, 50);
	assert_null(entry_cache_get(&c, 50));
	assert_entry(&c, 51, 1);
	assert_true(c.bytes > c.budget);
	/* Durable to the end: the newest 100 stay (all 9-byte or more). */
	entry_cache_bound(&c, 1000);
	assert_true(c.bytes <= c.budget);
	assert_int_equal(c.count, 100);
	assert_null(entry_cache_get(&c, 900));
	assert_entry(&c, 901, 1);
	assert_entry(&c, 1000, 1);
	/* Under the budget nothing goes; dropping everything counts to zero. */
	entry_cache_bound(&c, 1000);
	assert_int_equal(c.count, 100);
	entry_cache_truncate(&c, 0);
	assert_int_equal(c.bytes, 0);
	/* 0: no bound. */
	c.budget = 0;
	fill(&c, 1, 1000, 2);
	entry_cache_bound(&c, 1000);
	assert_int_equal(c.count, 1000);
	entry_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries_come_back_by_index_and_only_in_order),
		cmocka_unit_test(test_truncate_drops_from_index_and_appends_go_on_there),
		cmocka_unit_test(test_trim_drops_before_index_and_memory_is_reused),
		cmocka_unit_test(test_the_budget_drops_the_oldest_durable_entries_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
