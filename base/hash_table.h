/* hash_table: the chained hash table every in-memory index of corrald uses
 * (the tree's paths, sessions, watched paths, pending changes, interned
 * ACLs, connections per client address).
 *
 * Intrusive: a struct hash_node is embedded in each entry, so the table
 * allocates nothing but its bucket array. The table keeps no hashes: it
 * asks hash_of when it grows (at one entry per bucket, doubling). Lookups
 * walk one bucket; the caller compares keys:
 *
 *	for (struct hash_node *n = hash_table_bucket(t, h); n; n = n->next)
 *		if (key_equal(entry_of(n), key)) ...
 *
 * Hashing is the caller's: keyed SipHash (hash.h) where clients choose the
 * keys. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

struct hash_node {
	struct hash_node *next;
};

struct hash_table;
typedef uint64_t (*hash_of_fn)(const struct hash_table *t, const struct hash_node *n);

struct hash_table {
	struct hash_node **buckets;
	size_t bucket_count;		/* a power of two */
	size_t count;
	hash_of_fn hash_of;
};

/* An empty table of at least buckets buckets. Returns 0 or -ENOMEM. */
int hash_table_init(struct hash_table *t, size_t buckets, hash_of_fn hash_of);
/* Frees the buckets; the entries are the caller's (free them first, e.g.
 * with hash_table_for_each_safe). */
void hash_table_free(struct hash_table *t);
/* Sizes the table for count entries, so adding them never rehashes.
 * Returns 0 or -ENOMEM (the table is unchanged then). */
int hash_table_reserve(struct hash_table *t, size_t count);
/* Adds n, whose hash is h. When the table cannot grow (out of memory) it
 * stays correct, only its chains get longer. */
void hash_table_insert(struct hash_table *t, struct hash_node *n, uint64_t h);
/* Removes n (hash h), which must be in the table. */
void hash_table_remove(struct hash_table *t, struct hash_node *n, uint64_t h);

static inline struct hash_node *hash_table_bucket(const struct hash_table *t, uint64_t h)
{
	return t->buckets[h & (t->bucket_count - 1)];
}

/* Every entry, in no particular order; the body must not change the table. */
#define hash_table_for_each(t, n)						\
	for (size_t n##_bucket = 0; n##_bucket < (t)->bucket_count; n##_bucket++)	\
		for (struct hash_node *n = (t)->buckets[n##_bucket]; n; n = n->next)

/* Every entry; the body may remove or free n (the table does not grow or
 * shrink while it runs). */
#define hash_table_for_each_safe(t, n, tmp)					\
	for (size_t n##_bucket = 0; n##_bucket < (t)->bucket_count; n##_bucket++)	\
		for (struct hash_node *n = (t)->buckets[n##_bucket], *tmp = n ? n->next : NULL; \
		     n; n = tmp, tmp = n ? n->next : NULL)
