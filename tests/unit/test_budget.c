/* Unit tests of the memory budget's limit (server/budget.c): the budget in
 * force is memory.budget_bytes, but never past the address range the
 * tree's nodes are in (base/slab.h), so that a write the budget lets in
 * always finds room in the tree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "budget.h"
#include "prep.h"
#include "server_config.h"
#include "slab.h"

/* A budget bigger than the range (a machine with 64 GB, whose default
 * budget is half of it) is held to 15/16 of the range: a state past that
 * refuses growth, one under it does not. */
static void test_budget_past_the_tree_range_is_held_to_it(void **state)
{
	(void)state;
	struct server_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.memory_budget_bytes = UINT64_C(32) << 30;
	uint64_t range = slab_range_bytes();
	assert_true(range <= SLAB_REGION_BYTES && range >= SLAB_REGION_MIN_BYTES);
	assert_int_equal(budget_limit(&cfg), range / 16 * 15);

	struct memory_budget b;
	struct prep p;
	memset(&b, 0, sizeof(b));
	memset(&p, 0, sizeof(p));
	budget_check(&b, &cfg, &p, range / 16 * 15 + 1, 0);
	assert_true(p.refuse_growth);
	assert_int_equal(p.state_room_bytes, range / 16 * 15);
	memset(&b, 0, sizeof(b));
	budget_check(&b, &cfg, &p, range / 2, 0);
	assert_false(p.refuse_growth);
}

/* A budget under the range is the configured one. */
static void test_budget_under_the_range_is_as_configured(void **state)
{
	(void)state;
	struct server_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.memory_budget_bytes = UINT64_C(1) << 30;
	assert_int_equal(budget_limit(&cfg), UINT64_C(1) << 30);
	struct memory_budget b;
	struct prep p;
	memset(&b, 0, sizeof(b));
	memset(&p, 0, sizeof(p));
	budget_check(&b, &cfg, &p, (UINT64_C(1) << 30) + 1, 0);
	assert_true(p.refuse_growth);
	memset(&b, 0, sizeof(b));
	budget_check(&b, &cfg, &p, (UINT64_C(1) << 30) - 1, 0);
	assert_false(p.refuse_growth);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_past_the_tree_range_is_held_to_it),
		cmocka_unit_test(test_budget_under_the_range_is_as_configured),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
