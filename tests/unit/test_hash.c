/* test_hash: hash_bytes is SipHash-1-3 for every length: checked against a
 * plain rendering of the algorithm here (the message padded to whole
 * 8-byte words, the length in the last byte), so the tail's handling (the
 * 0-7 bytes after the last whole word) cannot drift. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "hash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void round_(uint64_t v[4])
{
	v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
	v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
}

static uint64_t word(const uint8_t *p)
{
	uint64_t m = 0;
	for (int i = 7; i >= 0; i--)
		m = m << 8 | p[i];
	return m;
}

/* SipHash-1-3: one round per word, three at the end. */
static uint64_t siphash13(const struct hash_key *k, const uint8_t *in, size_t len)
{
	uint64_t v[4] = { 0x736f6d6570736575ULL ^ k->k0, 0x646f72616e646f6dULL ^ k->k1,
			  0x6c7967656e657261ULL ^ k->k0, 0x7465646279746573ULL ^ k->k1 };
	uint8_t padded[80] = { 0 };
	size_t words = len / 8 + 1;
	memcpy(padded, in, len);
	padded[words * 8 - 1] = (uint8_t)len;
	for (size_t w = 0; w < words; w++) {
		uint64_t m = word(padded + 8 * w);
		v[3] ^= m;
		round_(v);
		v[0] ^= m;
	}
	v[2] ^= 0xff;
	round_(v);
	round_(v);
	round_(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void test_every_length_is_siphash_1_3(void **state)
{
	(void)state;
	struct hash_key k = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };
	uint8_t msg[72];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 37 + 11);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= 64; len++)
			assert_true(hash_bytes(&k, msg + off, len) == siphash13(&k, msg + off, len));
	assert_true(hash_bytes_unkeyed(msg, 15) == siphash13(&k, msg, 15));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_length_is_siphash_1_3),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
