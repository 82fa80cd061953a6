/* acl: see acl.h. The interning table is a small chained hash keyed by the
 * list's contents. */
#include "acl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

static uint64_t acl_hash(const struct acl_entry *e, uint32_t n)
{
	uint64_t h = 0x6a09e667f3bcc908ULL;
	for (uint32_t i = 0; i < n; i++) {
		h = hash_mix(h, (uint64_t)(uint32_t)e[i].perms);
		h = hash_mix(h, hash_bytes_unkeyed(e[i].scheme, strlen(e[i].scheme)));
		h = hash_mix(h, hash_bytes_unkeyed(e[i].id, strlen(e[i].id)));
	}
	return h;
}

static uint64_t hash_of(const struct hash_table *t, const struct hash_node *n)
{
	return container_of(n, struct acl_list, hash_node)->hash;
}

static bool entry_equal(const struct acl_entry *a, const struct acl_entry *b)
{
	return a->perms == b->perms && strcmp(a->scheme, b->scheme) == 0 && strcmp(a->id, b->id) == 0;
}

static bool list_equal(const struct acl_list *l, const struct acl_entry *e, uint32_t n)
{
	if (l->count != n)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!entry_equal(&l->entries[i], &e[i]))
			return false;
	return true;
}

static size_t list_bytes(uint32_t count)
{
	return sizeof(struct acl_list) + count * sizeof(struct acl_entry);
}

/* count: the entries the list was made with. */
static void list_free(struct acl_table *t, struct acl_list *l, uint32_t count)
{
	for (uint32_t i = 0; i < l->count; i++) {
		free(l->entries[i].scheme);
		free(l->entries[i].id);
	}
	slab_free(&t->slab, l, list_bytes(count));
}

int acl_table_init(struct acl_table *t)
{
	memset(t, 0, sizeof(*t));
	int r = hash_table_init(&t->lists, 64, hash_of);
	if (r < 0)
		return r;
	struct acl_entry open = { .perms = 31, .scheme = "world", .id = "anyone" };
	t->open_acl = acl_intern(t, &open, 1);
	if (!t->open_acl) {
		hash_table_free(&t->lists);
		return -ENOMEM;
	}
	return 0;
}

void acl_table_free(struct acl_table *t)
{
	hash_table_for_each_safe(&t->lists, n, tmp) {
		struct acl_list *l = container_of(n, struct acl_list, hash_node);
		list_free(t, l, l->count);
	}
	hash_table_free(&t->lists);
	slab_destroy(&t->slab);
	memset(t, 0, sizeof(*t));
}

struct acl_list *acl_intern(struct acl_table *t, const struct acl_entry *entries, uint32_t n)
{
	/* Remove duplicates first, keeping the first occurrence (ZooKeeper does the same). */
	struct acl_entry *uniq = calloc(n ? n : 1, sizeof(*uniq));
	uint32_t u = 0;
	if (!uniq)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		bool dup = false;
		for (uint32_t k = 0; k < u && !dup; k++)
			dup = entry_equal(&uniq[k], &entries[i]);
		if (!dup)
			uniq[u++] = entries[i];
	}

	uint64_t h = acl_hash(uniq, u);
	for (struct hash_node *hn = hash_table_bucket(&t->lists, h); hn; hn = hn->next) {
		struct acl_list *l = container_of(hn, struct acl_list, hash_node);
		if (l->hash == h && list_equal(l, uniq, u)) {
			free(uniq);
			return acl_ref(l);
		}
	}

	struct acl_list *l = slab_alloc(&t->slab, list_bytes(u));
	if (!l)
		goto fail;
	l->count = u;
	l->hash = h;
	l->refs = 1;
	for (uint32_t i = 0; i < u; i++) {
		l->entries[i].perms = uniq[i].perms;
		l->entries[i].scheme = strdup(uniq[i].scheme);
		l->entries[i].id = strdup(uniq[i].id);
		if (!l->entries[i].scheme || !l->entries[i].id) {
			l->count = i + 1;
			list_free(t, l, u);
			goto fail;
		}
	}
	free(uniq);
	hash_table_insert(&t->lists, &l->hash_node, h);
	return l;
fail:
	free(uniq);
	return NULL;
}

struct acl_list *acl_ref(struct acl_list *l)
{
	l->refs++;
	return l;
}

void acl_unref(struct acl_table *t, struct acl_list *l)
{
	if (!l || --l->refs > 0)
		return;
	hash_table_remove(&t->lists, &l->hash_node, l->hash);
	list_free(t, l, l->count);
}
