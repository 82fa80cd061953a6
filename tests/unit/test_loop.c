/* Tests of the event loop's urgent completions (base/loop.c): on a real
 * io_uring ring, an op submitted with loop_sqe_urgent() runs its callback
 * before completions ahead of it in the ring, at the start of a turn and
 * between two callbacks of one, and the others keep their order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "loop.h"

static struct loop L;

/* The order the callbacks ran in, by op name. */
static char ran[16];
static size_t ran_count;

struct named_op {
	struct loop_op op;
	char name;
	int stop_after;		/* loop_stop() once this many callbacks ran */
	struct named_op *submit_urgent;	/* submitted by this op's callback */
	struct named_op *submit_normal;	/* submitted after it */
};

static void submit(struct named_op *o, bool urgent)
{
	struct io_uring_sqe *sqe = urgent ? loop_sqe_urgent(&L, &o->op) : loop_sqe(&L, &o->op);
	io_uring_prep_nop(sqe);
}

static void on_complete(struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct named_op *o = (struct named_op *)op;
	assert_int_equal(res, 0);
	ran[ran_count++] = o->name;
	if (o->submit_urgent) {
		submit(o->submit_urgent, true);
		if (o->submit_normal)
			submit(o->submit_normal, false);
		/* the next callback comes after the loop checks for urgent ones again */
		uint64_t until = loop_now_us() + LOOP_URGENT_CHECK_US;
		while (loop_now_us() <= until)
			;
	}
	if (o->stop_after && ran_count >= (size_t)o->stop_after)
		loop_stop(&L);
}

static int setup(void **state)
{
	(void)state;
	char why[256];
	ran_count = 0;
	memset(ran, 0, sizeof(ran));
	return loop_init(&L, 64, why, sizeof(why)) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	loop_free(&L);
	return 0;
}

static void test_an_urgent_completion_runs_before_those_ahead_of_it_in_the_ring(void **state)
{
	(void)state;
	struct named_op a = { .op.complete = on_complete, .name = 'a' };
	struct named_op b = { .op.complete = on_complete, .name = 'b' };
	struct named_op c = { .op.complete = on_complete, .name = 'c', .stop_after = 4 };
	struct named_op u = { .op.complete = on_complete, .name = 'u', .stop_after = 4 };
	submit(&a, false);
	submit(&b, false);
	submit(&c, false);
	submit(&u, true);
	assert_int_equal(loop_run(&L), 0);
	assert_string_equal(ran, "uabc");
	assert_int_equal(L.urgent_count, 0);
}

static void test_an_urgent_completion_during_a_turn_runs_between_its_callbacks(void **state)
{
	(void)state;
	/* a's callback submits u (urgent) and later n (not): both complete at
	 * once; u runs right after a, before b (ahead of it in the ring since
	 * the turn began), and n after b. */
	struct named_op u = { .op.complete = on_complete, .name = 'u' };
	struct named_op n = { .op.complete = on_complete, .name = 'n', .stop_after = 4 };
	struct named_op a = { .op.complete = on_complete, .name = 'a', .submit_urgent = &u,
			      .submit_normal = &n };
	struct named_op b = { .op.complete = on_complete, .name = 'b', .stop_after = 4 };
	submit(&a, false);
	submit(&b, false);
	assert_int_equal(loop_run(&L), 0);
	assert_string_equal(ran, "aubn");
	assert_int_equal(L.urgent_count, 0);
}

static void test_without_urgent_ops_completions_run_in_ring_order(void **state)
{
	(void)state;
	struct named_op a = { .op.complete = on_complete, .name = 'a' };
	struct named_op b = { .op.complete = on_complete, .name = 'b' };
	struct named_op c = { .op.complete = on_complete, .name = 'c', .stop_after = 3 };
	submit(&a, false);
	submit(&b, false);
	submit(&c, false);
	assert_int_equal(loop_run(&L), 0);
	assert_string_equal(ran, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_an_urgent_completion_runs_before_those_ahead_of_it_in_the_ring, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_an_urgent_completion_during_a_turn_runs_between_its_callbacks, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_without_urgent_ops_completions_run_in_ring_order,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
