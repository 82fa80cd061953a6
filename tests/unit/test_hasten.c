/* test_hasten: after the leader's link drops, the voters that remain stand
 * for election in turn, a step apart in the order of their ids, the first
 * a step after the drop; a turn missed by a late tick is not made up; the
 * turns end after two election timeouts; a member that is not a voter gets
 * none. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "hasten.h"

#define T 1000		/* election timeout: step 100 ms, window 2000 ms */
#define T0 50000	/* when the link dropped */

/* The times (ms after the drop, on a 10 ms tick) at which h's turns come. */
static unsigned turns(struct hasten *h, uint64_t *at, unsigned max)
{
	unsigned n = 0;
	for (uint64_t t = T0; t <= T0 + 3 * T; t += 10)
		if (hasten_due(h, t) && n < max)
			at[n++] = t - T0;
	return n;
}

static void test_the_two_voters_left_of_three_alternate_a_step_apart(void **state)
{
	(void)state;
	const uint64_t voters[] = { 3, 1, 2 };
	struct hasten a, b;
	hasten_start(&a, voters, 3, 1, 2, T, T0);	/* leader 2 lost: 1 and 3 remain */
	hasten_start(&b, voters, 3, 3, 2, T, T0);
	assert_true(hasten_active(&a));
	uint64_t at_a[32], at_b[32];
	unsigned na = turns(&a, at_a, 32), nb = turns(&b, at_b, 32);
	assert_int_equal(na, 10);	/* 100, 300, ..., 1900 */
	assert_int_equal(nb, 10);	/* 200, 400, ..., 2000 */
	for (unsigned i = 0; i < na; i++) {
		assert_int_equal(at_a[i], 100 + 200 * i);
		assert_int_equal(at_b[i], 200 + 200 * i);
	}
	assert_false(hasten_active(&a));	/* past the window: raft's timers rule */
}

static void test_a_late_tick_takes_one_turn_not_every_missed_one(void **state)
{
	(void)state;
	const uint64_t voters[] = { 1, 2, 3, 4, 5 };
	struct hasten h;
	hasten_start(&h, voters, 5, 2, 5, T, T0);	/* rank 1 of 4: turns at 200, 600, 1000 */
	assert_false(hasten_due(&h, T0 + 199));
	assert_true(hasten_due(&h, T0 + 950));	/* late: the turns at 200 and 600 are one */
	assert_false(hasten_due(&h, T0 + 990));
	assert_true(hasten_due(&h, T0 + 1000));
	assert_false(hasten_due(&h, T0 + 1300));
	assert_true(hasten_due(&h, T0 + 1400));
}

static void test_a_member_that_is_not_a_voter_takes_no_turn(void **state)
{
	(void)state;
	const uint64_t voters[] = { 1, 2, 3 };
	struct hasten h;
	hasten_start(&h, voters, 3, 4, 1, T, T0);
	assert_false(hasten_active(&h));
	uint64_t at[4];
	assert_int_equal(turns(&h, at, 4), 0);
	hasten_start(&h, voters, 3, 2, 1, T, T0);
	assert_true(hasten_active(&h));
	hasten_stop(&h);	/* a leader is known again */
	assert_int_equal(turns(&h, at, 4), 0);
}

static void test_a_short_election_timeout_keeps_a_step_of_ten_ms(void **state)
{
	(void)state;
	const uint64_t voters[] = { 1, 2, 3 };
	struct hasten h;
	hasten_start(&h, voters, 3, 1, 3, 50, T0);
	assert_int_equal(h.step_ms, 10);
	assert_int_equal(h.window_ms, 100);
	assert_false(hasten_due(&h, T0 + 9));
	assert_true(hasten_due(&h, T0 + 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_two_voters_left_of_three_alternate_a_step_apart),
		cmocka_unit_test(test_a_late_tick_takes_one_turn_not_every_missed_one),
		cmocka_unit_test(test_a_member_that_is_not_a_voter_takes_no_turn),
		cmocka_unit_test(test_a_short_election_timeout_keeps_a_step_of_ten_ms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
