/* acl: interned ACL lists. Most trees use a handful of distinct ACLs (often
 * just world:anyone:ALL), so a znode holds a counted reference to a shared,
 * immutable list instead of its own copy. The lists come from the table's
 * own slabs (base/slab.h), so that a znode names its list in 32 bits
 * (slab_ref()), not a pointer's 64. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash_table.h"
#include "records.h"
#include "slab.h"


struct acl_list {
	struct hash_node hash_node;
	uint64_t hash;			/* of the entries (a snapshot's child reuses it) */
	uint32_t refs;
	uint32_t count;
	struct acl_entry entries[];
};

struct acl_table {
	struct hash_table lists;	/* struct acl_list; lists.count: how many */
	struct acl_list *open_acl;	/* world:anyone:ALL, always present */
	struct slab_pool slab;		/* the lists */
};

#define acl_table_for_each(t, l)						\
	hash_table_for_each(&(t)->lists, l##_node)				\
		for (struct acl_list *l = container_of(l##_node, struct acl_list, hash_node); l; l = NULL)

int acl_table_init(struct acl_table *t);
void acl_table_free(struct acl_table *t);

/* Returns a referenced list equal to entries[0..n) (duplicates removed, order
 * kept), or NULL on allocation failure. The caller owns one reference. */
struct acl_list *acl_intern(struct acl_table *t, const struct acl_entry *entries, uint32_t n);
struct acl_list *acl_ref(struct acl_list *l);
void acl_unref(struct acl_table *t, struct acl_list *l);
