/* Unit tests of the jute codec (daemon/jute.c) and of records decoded as
 * they are read (daemon/records.c: setWatches). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "jute.h"
#include "records.h"

static void test_integers_are_big_endian_on_the_wire(void **state)
{
	struct jute_buf b = { 0 };
	jute_write_int(&b, 0x01020304);
	jute_write_long(&b, 0x0102030405060708LL);
	jute_write_bool(&b, true);
	static const uint8_t want[] = { 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 1 };
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));

	struct jute_reader r;
	jute_reader_init(&r, b.data, b.len);
	assert_int_equal(jute_read_int(&r), 0x01020304);
	assert_true(jute_read_long(&r) == 0x0102030405060708LL);
	assert_true(jute_read_bool(&r));
	assert_int_equal(r.error, 0);
	assert_int_equal(jute_remaining(&r), 0);
	jute_buf_free(&b);
}

static void test_null_buffer_is_distinct_from_empty(void **state)
{
	struct jute_buf b = { 0 };
	jute_write_buffer(&b, NULL, -1);
	jute_write_buffer(&b, "", 0);
	struct jute_reader r;
	const uint8_t *p;
	int32_t len;
	jute_reader_init(&r, b.data, b.len);
	jute_read_buffer(&r, &p, &len);
	assert_null(p);
	assert_int_equal(len, -1);
	jute_read_buffer(&r, &p, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	assert_int_equal(r.error, 0);
	jute_buf_free(&b);
}

static void test_length_below_minus_one_is_a_decode_error(void **state)
{
	static const uint8_t bytes[] = { 0xff, 0xff, 0xff, 0xfe, 'x' };
	struct jute_reader r;
	const uint8_t *p;
	int32_t len;
	jute_reader_init(&r, bytes, sizeof(bytes));
	jute_read_buffer(&r, &p, &len);
	assert_int_equal(r.error, -EBADMSG);
}

static void test_length_past_the_end_is_a_decode_error_and_stays_one(void **state)
{
	static const uint8_t bytes[] = { 0, 0, 0, 9, 'a', 'b' };
	struct jute_reader r;
	const char *s;
	int32_t len;
	jute_reader_init(&r, bytes, sizeof(bytes));
	jute_read_string(&r, &s, &len);
	assert_int_equal(r.error, -EBADMSG);
	assert_int_equal(jute_read_int(&r), 0);	/* later reads stay failed */
	assert_int_equal(r.error, -EBADMSG);
}

static void test_read_string_refuses_null(void **state)
{
	static const uint8_t bytes[] = { 0xff, 0xff, 0xff, 0xff };
	struct jute_reader r;
	const char *s;
	int32_t len;
	jute_reader_init(&r, bytes, sizeof(bytes));
	jute_read_string(&r, &s, &len);
	assert_int_equal(r.error, -EBADMSG);
	jute_reader_init(&r, bytes, sizeof(bytes));
	jute_read_string_nullable(&r, &s, &len);
	assert_int_equal(r.error, 0);
	assert_null(s);
	assert_int_equal(len, -1);
}

static void test_truncated_int_is_a_decode_error(void **state)
{
	static const uint8_t bytes[] = { 0, 0, 1 };
	struct jute_reader r;
	jute_reader_init(&r, bytes, sizeof(bytes));
	jute_read_int(&r);
	assert_int_equal(r.error, -EBADMSG);
}

static void test_writer_grows_over_many_writes_and_patches_lengths(void **state)
{
	struct jute_buf b = { 0 };
	jute_write_int(&b, 0);
	for (int i = 0; i < 100000; i++)
		jute_write_int(&b, i);
	jute_patch_int(&b, 0, (int32_t)(b.len - 4));
	assert_int_equal(b.error, 0);
	assert_int_equal(b.len, 4 + 400000);
	struct jute_reader r;
	jute_reader_init(&r, b.data, b.len);
	assert_int_equal(jute_read_int(&r), 400000);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(jute_read_int(&r), i);
	jute_buf_free(&b);
}

static void test_set_watches_walks_every_list_in_order(void **state)
{
	struct jute_buf b = { 0 };
	jute_write_long(&b, 42);
	jute_write_int(&b, 1);			/* data */
	jute_write_string(&b, "/d", 2);
	jute_write_int(&b, -1);			/* exist: null */
	jute_write_int(&b, 2);			/* child */
	jute_write_string(&b, "/c1", 3);
	jute_write_string(&b, "/c2", 3);
	jute_write_int(&b, 0);			/* persistent */
	jute_write_int(&b, 1);			/* recursive */
	jute_write_string(&b, "/r", 2);
	struct jute_reader r;
	struct set_watches_reader it;
	unsigned list;
	const char *path;
	int32_t len;
	static const unsigned want_list[] = { 0, 2, 2, 4 };
	static const char *const want_path[] = { "/d", "/c1", "/c2", "/r" };

	jute_reader_init(&r, b.data, b.len);
	assert_int_equal(set_watches_begin(&it, &r, true), 0);
	assert_true(it.relative_zxid == 42);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(set_watches_next(&it, &list, &path, &len), 1);
		assert_int_equal(list, want_list[i]);
		assert_int_equal(len, (int32_t)strlen(want_path[i]));
		assert_memory_equal(path, want_path[i], (size_t)len);
	}
	assert_int_equal(set_watches_next(&it, &list, &path, &len), 0);

	/* setWatches (3 lists) stops after the child list: the rest is not read. */
	jute_reader_init(&r, b.data, b.len);
	assert_int_equal(set_watches_begin(&it, &r, false), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(set_watches_next(&it, &list, &path, &len), 1);
	assert_int_equal(set_watches_next(&it, &list, &path, &len), 0);

	/* Cut inside the child list: an error, not an end. */
	jute_reader_init(&r, b.data, 8 + 4 + 6 + 4 + 4 + 7);
	assert_int_equal(set_watches_begin(&it, &r, true), 0);
	assert_int_equal(set_watches_next(&it, &list, &path, &len), 1);
	assert_int_equal(set_watches_next(&it, &list, &path, &len), 1);
	assert_int_equal(set_watches_next(&it, &list, &path, &len), -EBADMSG);
	jute_buf_free(&b);
}

static void test_set_watches_count_below_minus_one_is_a_decode_error(void **state)
{
	struct jute_buf b = { 0 };
	jute_write_long(&b, 1);
	jute_write_int(&b, -2);
	struct jute_reader r;
	struct set_watches_reader it;
	unsigned list;
	const char *path;
	int32_t len;
	jute_reader_init(&r, b.data, b.len);
	assert_int_equal(set_watches_begin(&it, &r, false), 0);
	assert_int_equal(set_watches_next(&it, &list, &path, &len), -EBADMSG);
	jute_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers_are_big_endian_on_the_wire),
		cmocka_unit_test(test_null_buffer_is_distinct_from_empty),
		cmocka_unit_test(test_length_below_minus_one_is_a_decode_error),
		cmocka_unit_test(test_length_past_the_end_is_a_decode_error_and_stays_one),
		cmocka_unit_test(test_read_string_refuses_null),
		cmocka_unit_test(test_truncated_int_is_a_decode_error),
		cmocka_unit_test(test_writer_grows_over_many_writes_and_patches_lengths),
		cmocka_unit_test(test_set_watches_walks_every_list_in_order),
		cmocka_unit_test(test_set_watches_count_below_minus_one_is_a_decode_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
