/* test_crc32: corral_crc32 gives zlib's crc32() for every length and
 * alignment (ISA-L folds 16, 32 and 64 bytes at a time, with tails), from
 * a zero start and chained from any earlier value, so logs, snapshots,
 * peer frames and tree digests written before it stay valid. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <zlib.h>

#include "crc32.h"

static uint8_t bytes[4096 + 64];

static void fill(void)
{
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < sizeof(bytes); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		bytes[i] = (uint8_t)x;
	}
}

static void test_every_length_and_alignment_is_zlibs_crc(void **state)
{
	(void)state;
	fill();
	for (size_t off = 0; off < 17; off++)
		for (size_t len = 0; len <= 1100; len++)
			assert_int_equal(corral_crc32(0, bytes + off, len),
					 (uint32_t)crc32(0L, bytes + off, (uInt)len));
	assert_int_equal(corral_crc32(0, bytes, 4096), (uint32_t)crc32(0L, bytes, 4096));
}

static void test_chaining_is_zlibs(void **state)
{
	(void)state;
	fill();
	for (size_t cut = 0; cut <= 300; cut += 7) {
		uint32_t a = corral_crc32(0, bytes, cut);
		assert_int_equal(corral_crc32(a, bytes + cut, 300 - cut), (uint32_t)crc32(0L, bytes, 300));
	}
	/* from an arbitrary earlier value, as the digest goes on from a node's content */
	assert_int_equal(corral_crc32(0xdeadbeef, bytes, 60), (uint32_t)crc32(0xdeadbeefL, bytes, 60));
	/* a known value: "123456789" */
	assert_int_equal(corral_crc32(0, "123456789", 9), 0xcbf43926);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_length_and_alignment_is_zlibs_crc),
		cmocka_unit_test(test_chaining_is_zlibs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
