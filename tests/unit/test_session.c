/* Unit tests of the session table and its expiry (daemon/session.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "session.h"

static const uint8_t pw[ZK_PASSWORD_BYTES];

static void test_ids_carry_the_server_id_and_increase(void **state)
{
	struct session_table t;
	assert_int_equal(session_table_init(&t, 7, 123456789), 0);
	int64_t a = session_next_id(&t), b = session_next_id(&t);
	assert_int_equal((uint64_t)a >> 56, 7);
	assert_true(b == a + 1);
	session_table_free(&t);
}

static void test_a_session_expires_after_its_timeout_not_before(void **state)
{
	struct session_table t;
	assert_int_equal(session_table_init(&t, 1, 0), 0);
	struct session *s = session_add(&t, 42, 1000, pw, 5000);
	assert_non_null(s);
	assert_null(session_next_expired(&t, 5999));
	assert_ptr_equal(session_next_expired(&t, 6000), s);
	assert_null(session_next_expired(&t, 6000));	/* taken off the heap */
	session_requeue(&t, s);
	assert_ptr_equal(session_next_expired(&t, 6001), s);
	session_table_free(&t);
}

static void test_touching_moves_the_deadline(void **state)
{
	struct session_table t;
	assert_int_equal(session_table_init(&t, 1, 0), 0);
	struct session *s = session_add(&t, 42, 1000, pw, 0);
	session_touch(s, 900);
	assert_null(session_next_expired(&t, 1000));
	assert_null(session_next_expired(&t, 1899));
	assert_ptr_equal(session_next_expired(&t, 1900), s);
	session_table_free(&t);
}

/* ZooKeeper's session tracker: expiry at the first tick after the deadline,
 * so a session gets its timeout and up to one tick more, never less. */
static void test_with_a_tick_a_session_expires_at_the_next_tick_after_its_deadline(void **state)
{
	struct session_table t;
	assert_int_equal(session_table_init(&t, 1, 0), 0);
	t.expiry_interval_ms = 2000;
	struct session *a = session_add(&t, 42, 10000, pw, 5300);	/* deadline 15300 */
	struct session *b = session_add(&t, 43, 10000, pw, 6000);	/* deadline 16000 */
	assert_null(session_next_expired(&t, 15300));
	assert_null(session_next_expired(&t, 15999));
	assert_ptr_equal(session_next_expired(&t, 16000), a);
	assert_null(session_next_expired(&t, 17999));	/* on a tick: the next one */
	session_touch(b, 7000);				/* deadline 17000 */
	assert_null(session_next_expired(&t, 17999));
	assert_ptr_equal(session_next_expired(&t, 18000), b);
	session_table_free(&t);
}

static void test_a_removed_session_never_expires(void **state)
{
	struct session_table t;
	assert_int_equal(session_table_init(&t, 1, 0), 0);
	struct session *s = session_add(&t, 42, 1000, pw, 0);
	session_remove(&t, s);
	assert_null(session_lookup(&t, 42));
	assert_null(session_next_expired(&t, 100000));
	session_table_free(&t);
}

static void test_many_sessions_expire_in_deadline_order(void **state)
{
	struct session_table t;
	assert_int_equal(session_table_init(&t, 1, 0), 0);
	for (int i = 0; i < 3000; i++)
		assert_non_null(session_add(&t, 1000 + i, (uint32_t)(3000 - i), pw, 0));
	int64_t last_deadline = 0;
	int count = 0;
	struct session *s;
	while ((s = session_next_expired(&t, 10000))) {
		assert_true((int64_t)s->deadline_ms >= last_deadline);
		last_deadline = (int64_t)s->deadline_ms;
		count++;
	}
	assert_int_equal(count, 3000);
	assert_int_equal(t.by_id.count, 3000);
	session_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_carry_the_server_id_and_increase),
		cmocka_unit_test(test_a_session_expires_after_its_timeout_not_before),
		cmocka_unit_test(test_touching_moves_the_deadline),
		cmocka_unit_test(test_with_a_tick_a_session_expires_at_the_next_tick_after_its_deadline),
		cmocka_unit_test(test_a_removed_session_never_expires),
		cmocka_unit_test(test_many_sessions_expire_in_deadline_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
