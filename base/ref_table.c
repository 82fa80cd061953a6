/* ref_table: see ref_table.h. */
#include "ref_table.h"

#include <errno.h>
#include <stdlib.h>

#include "assertions.h"

static size_t round_up_pow2(size_t n)
{
	size_t p = 16;
	while (p < n)
		p *= 2;
	return p;
}

int ref_table_init(struct ref_table *t, size_t buckets, size_t link_offset, ref_hash_of_fn hash_of)
{
	t->bucket_count = round_up_pow2(buckets);
	t->buckets = calloc(t->bucket_count, sizeof(*t->buckets));
	t->count = 0;
	t->link_offset = link_offset;
	t->hash_of = hash_of;
	return t->buckets ? 0 : -ENOMEM;
}

void ref_table_free(struct ref_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->bucket_count = 0;
	t->count = 0;
}

static int rehash(struct ref_table *t, size_t bucket_count)
{
	uint32_t *b = calloc(bucket_count, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->bucket_count; i++) {
		uint32_t r = t->buckets[i];
		while (r) {
			uint32_t *link = ref_table_link(t, r);
			uint32_t next = *link;
			size_t slot = t->hash_of(t, r) & (bucket_count - 1);
			*link = b[slot];
			b[slot] = r;
			r = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->bucket_count = bucket_count;
	return 0;
}

int ref_table_reserve(struct ref_table *t, size_t count)
{
	size_t want = round_up_pow2(count + 1);
	return want <= t->bucket_count ? 0 : rehash(t, want);
}

void ref_table_insert(struct ref_table *t, uint32_t ref, uint64_t h)
{
	ASSERT(ref);
	if (t->count >= t->bucket_count && rehash(t, t->bucket_count * 2) < 0) {
		/* Longer chains, same answers: growing is an optimisation. */
	}
	uint32_t *head = &t->buckets[h & (t->bucket_count - 1)];
	*ref_table_link(t, ref) = *head;
	*head = ref;
	t->count++;
}

void ref_table_remove(struct ref_table *t, uint32_t ref, uint64_t h)
{
	uint32_t *p = &t->buckets[h & (t->bucket_count - 1)];
	while (*p && *p != ref)
		p = ref_table_link(t, *p);
	ASSERT(*p == ref);
	*p = *ref_table_link(t, ref);
	*ref_table_link(t, ref) = 0;
	t->count--;
}
