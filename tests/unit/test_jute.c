/* Unit tests of the jute codec (daemon/jute.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "jute.h"

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
