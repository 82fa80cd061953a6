/* ref_table: a chained hash table of slab chunks (base/slab.h) linked by
 * their 32-bit references, for the one index whose links are counted in
 * bytes per entry: the tree's paths (millions of nodes). Otherwise as
 * hash_table.h: intrusive (each entry holds its next link, a uint32_t at
 * link_offset from what its reference names), no hashes kept (hash_of is
 * asked when the table grows, at one entry per bucket, doubling), the
 * caller compares keys:
 *
 *	for (uint32_t r = ref_table_bucket(t, h); r; r = *ref_table_link(t, r))
 *		if (key_equal(slab_deref(r), key)) ...
 *
 * A bucket is a reference too: 4 bytes, not a pointer's 8. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "slab.h"

struct ref_table;
typedef uint64_t (*ref_hash_of_fn)(const struct ref_table *t, uint32_t ref);

struct ref_table {
	uint32_t *buckets;
	size_t bucket_count;		/* a power of two */
	size_t count;
	size_t link_offset;		/* of an entry's next link, from what its reference names */
	ref_hash_of_fn hash_of;
};

/* An empty table of at least buckets buckets. Returns 0 or -ENOMEM. */
int ref_table_init(struct ref_table *t, size_t buckets, size_t link_offset, ref_hash_of_fn hash_of);
/* Frees the buckets; the entries are the caller's. */
void ref_table_free(struct ref_table *t);
/* Sizes the table for count entries, so adding them never rehashes.
 * Returns 0 or -ENOMEM (the table is unchanged then). */
int ref_table_reserve(struct ref_table *t, size_t count);
/* Adds ref, whose hash is h. When the table cannot grow (out of memory)
 * it stays correct, only its chains get longer. */
void ref_table_insert(struct ref_table *t, uint32_t ref, uint64_t h);
/* Removes ref (hash h), which must be in the table. */
void ref_table_remove(struct ref_table *t, uint32_t ref, uint64_t h);

static inline uint32_t *ref_table_link(const struct ref_table *t, uint32_t ref)
{
	return (uint32_t *)((char *)slab_deref(ref) + t->link_offset);
}

static inline uint32_t ref_table_bucket(const struct ref_table *t, uint64_t h)
{
	return t->buckets[h & (t->bucket_count - 1)];
}

/* Every entry's reference, in no particular order; the body must not
 * change the table. */
#define ref_table_for_each(t, r)						\
	for (size_t r##_bucket = 0; r##_bucket < (t)->bucket_count; r##_bucket++)	\
		for (uint32_t r = (t)->buckets[r##_bucket]; r; r = *ref_table_link((t), r))

/* Every entry's reference; the body may remove or free r (the table does
 * not grow or shrink while it runs). */
#define ref_table_for_each_safe(t, r, tmp)					\
	for (size_t r##_bucket = 0; r##_bucket < (t)->bucket_count; r##_bucket++)	\
		for (uint32_t r = (t)->buckets[r##_bucket], tmp = r ? *ref_table_link((t), r) : 0; \
		     r; r = tmp, tmp = r ? *ref_table_link((t), r) : 0)
