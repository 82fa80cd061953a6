/* hash: hashing for corrald's in-memory tables.
 *
 * Paths are chosen by clients, so the tree's table uses SipHash-1-3 keyed with
 * a random seed: a client cannot craft paths that all land in one bucket.
 * (libcrypto offers SipHash only through EVP_MAC objects, far too heavy for a
 * per-lookup hash of a short string.) */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct hash_key {
	uint64_t k0, k1;
};

/* Fills key from getrandom(). Returns 0 or a negative errno. */
int hash_key_random(struct hash_key *key);
uint64_t hash_bytes(const struct hash_key *key, const void *p, size_t len);
/* Same function with a fixed key: for tables whose keys clients do not choose freely. */
uint64_t hash_bytes_unkeyed(const void *p, size_t len);

static inline uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

static inline uint64_t hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	v *= 0xc4ceb9fe1a85ec53ULL;
	v ^= v >> 33;
	return v;
}
