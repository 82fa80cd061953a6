/* Unit tests of the figures kept per namespace (core/namespace_stats.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "namespace_stats.h"

static const struct namespace_stat *find(const struct namespace_stats *s, const char *name)
{
	namespace_stats_for_each(s, e)
		if (e->name_len == strlen(name) && memcmp(e->name, name, e->name_len) == 0)
			return e;
	return NULL;
}

static void add(struct namespace_stats *s, const char *path, int64_t v)
{
	namespace_stats_add(s, path, strlen(path), v);
}

static void test_a_path_counts_for_its_first_component(void **state)
{
	struct namespace_stats s;
	assert_int_equal(namespace_stats_init(&s), 0);
	add(&s, "/a", 10);
	add(&s, "/a/b/c", 4);
	add(&s, "/ab", 1);
	add(&s, "/", 100);	/* the root: no namespace */
	add(&s, "", 100);
	add(&s, "//x", 100);	/* an empty first component: none either */
	assert_int_equal(s.table.count, 2);
	const struct namespace_stat *a = find(&s, "a");
	assert_non_null(a);
	assert_int_equal(a->count, 2);
	assert_int_equal(a->sum, 14);
	assert_int_equal(a->min, 4);
	assert_int_equal(a->max, 10);
	assert_int_equal(find(&s, "ab")->count, 1);
	namespace_stats_free(&s);
}

static void test_zero_keeps_the_namespaces_with_nothing_counted(void **state)
{
	struct namespace_stats s;
	assert_int_equal(namespace_stats_init(&s), 0);
	add(&s, "/a", -3);
	add(&s, "/a", 7);
	namespace_stats_zero(&s);
	const struct namespace_stat *a = find(&s, "a");
	assert_non_null(a);
	assert_int_equal(a->count, 0);
	assert_int_equal(a->sum, 0);
	assert_int_equal(a->min, 0);
	assert_int_equal(a->max, 0);
	add(&s, "/a", 5);	/* the least and most start again from it */
	assert_int_equal(a->min, 5);
	assert_int_equal(a->max, 5);
	namespace_stats_free(&s);
}

static void test_past_the_limit_new_namespaces_are_not_kept(void **state)
{
	struct namespace_stats s;
	char path[32];
	assert_int_equal(namespace_stats_init(&s), 0);
	for (int i = 0; i < NAMESPACE_STATS_MAX + 100; i++) {
		snprintf(path, sizeof(path), "/n%d/x", i);
		add(&s, path, 1);
	}
	assert_int_equal(s.table.count, NAMESPACE_STATS_MAX);
	assert_null(find(&s, "n4100"));
	add(&s, "/n0", 1);	/* a kept one still counts */
	assert_int_equal(find(&s, "n0")->count, 2);
	namespace_stats_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_path_counts_for_its_first_component),
		cmocka_unit_test(test_zero_keeps_the_namespaces_with_nothing_counted),
		cmocka_unit_test(test_past_the_limit_new_namespaces_are_not_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
