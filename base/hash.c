/* hash: SipHash-1-3 (Aumasson and Bernstein), see hash.h for why. */
#include "hash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND()						\
	do {							\
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;		\
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;		\
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

int hash_key_random(struct hash_key *key)
{
	ssize_t n = getrandom(key, sizeof(*key), 0);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*key) ? 0 : -EIO;
}

uint64_t hash_bytes(const struct hash_key *key, const void *p, size_t len)
{
	const unsigned char *in = p;
	uint64_t v0 = 0x736f6d6570736575ULL ^ key->k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ key->k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ key->k0;
	uint64_t v3 = 0x7465646279746573ULL ^ key->k1;
	uint64_t b = (uint64_t)len << 56;
	size_t whole = len & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m;
		memcpy(&m, in + i, 8);	/* little-endian hosts only: x86_64, aarch64 */
		v3 ^= m;
		SIPROUND();
		v0 ^= m;
	}
	/* The last 0-7 bytes, little-endian, without a call to memcpy of a
	 * length only known here (a third of a short path's hash). */
	const unsigned char *tail = in + whole;
	switch (len & 7) {
	case 7: b |= (uint64_t)tail[6] << 48; /* fall through */
	case 6: b |= (uint64_t)tail[5] << 40; /* fall through */
	case 5: b |= (uint64_t)tail[4] << 32; /* fall through */
	case 4: b |= (uint64_t)tail[3] << 24; /* fall through */
	case 3: b |= (uint64_t)tail[2] << 16; /* fall through */
	case 2: b |= (uint64_t)tail[1] << 8; /* fall through */
	case 1: b |= (uint64_t)tail[0]; break;
	case 0: break;
	}
	v3 ^= b;
	SIPROUND();
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND();
	SIPROUND();
	SIPROUND();
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t hash_bytes_unkeyed(const void *p, size_t len)
{
	static const struct hash_key fixed = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };
	return hash_bytes(&fixed, p, len);
}
