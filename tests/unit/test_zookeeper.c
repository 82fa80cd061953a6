/* Unit tests of what the ZooKeeper import computes by itself
 * (storage/zookeeper_import.c): the password ZooKeeper gives a session,
 * java.util.Random seeded with id ^ 0xB3415C00 and 16 bytes of nextBytes,
 * against values Java printed: an id as ZooKeeper makes them (its server
 * id in the top byte), zero, and -1 (every bit set: the seed's scrambling
 * and sign extension). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "zookeeper.h"

static void check(int64_t id, const uint8_t want[ZK_PASSWORD_BYTES])
{
	uint8_t got[ZK_PASSWORD_BYTES];
	zookeeper_session_password(id, got);
	assert_memory_equal(got, want, ZK_PASSWORD_BYTES);
}

static void test_session_password_is_javas(void **state)
{
	static const uint8_t a[] = { 0x53, 0x6b, 0xae, 0x48, 0x87, 0xad, 0x0e, 0xee,
				     0x09, 0x6a, 0x93, 0x81, 0x6d, 0x42, 0xa0, 0xb4 };
	static const uint8_t zero[] = { 0xf2, 0x2a, 0xcd, 0x4a, 0x97, 0xe6, 0x9d, 0x6d,
					0x20, 0xa4, 0x9b, 0xb6, 0x38, 0xea, 0xdb, 0x38 };
	static const uint8_t ones[] = { 0x20, 0xf6, 0x2c, 0xb5, 0x64, 0x8d, 0xc2, 0xd7,
					0x71, 0x47, 0x1c, 0x8a, 0x24, 0x86, 0xa9, 0xee };
	check(0x1000000abcdef01LL, a);
	check(0, zero);
	check(-1, ones);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_password_is_javas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
