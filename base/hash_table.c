/* hash_table: see hash_table.h. */
#include "hash_table.h"

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

int hash_table_init(struct hash_table *t, size_t buckets, hash_of_fn hash_of)
{
	t->bucket_count = round_up_pow2(buckets);
	t->buckets = calloc(t->bucket_count, sizeof(*t->buckets));
	t->count = 0;
	t->hash_of = hash_of;
	return t->buckets ? 0 : -ENOMEM;
}

void hash_table_free(struct hash_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->bucket_count = 0;
	t->count = 0;
}

static int rehash(struct hash_table *t, size_t bucket_count)
{
	struct hash_node **b = calloc(bucket_count, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct hash_node *n = t->buckets[i];
		while (n) {
			struct hash_node *next = n->next;
			size_t slot = t->hash_of(t, n) & (bucket_count - 1);
			n->next = b[slot];
			b[slot] = n;
			n = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->bucket_count = bucket_count;
	return 0;
}

int hash_table_reserve(struct hash_table *t, size_t count)
{
	size_t want = round_up_pow2(count + 1);
	return want <= t->bucket_count ? 0 : rehash(t, want);
}

void hash_table_insert(struct hash_table *t, struct hash_node *n, uint64_t h)
{
	if (t->count >= t->bucket_count && rehash(t, t->bucket_count * 2) < 0) {
		/* Longer chains, same answers: growing is an optimisation. */
	}
	struct hash_node **head = &t->buckets[h & (t->bucket_count - 1)];
	n->next = *head;
	*head = n;
	t->count++;
}

void hash_table_remove(struct hash_table *t, struct hash_node *n, uint64_t h)
{
	struct hash_node **p = &t->buckets[h & (t->bucket_count - 1)];
	while (*p && *p != n)
		p = &(*p)->next;
	ASSERT(*p == n);
	*p = n->next;
	n->next = NULL;
	t->count--;
}
