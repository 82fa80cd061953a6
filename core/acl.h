/* acl: interned ACL lists. Most trees use a handful of distinct ACLs (often
 * just world:anyone:ALL), so a znode holds a counted reference to a shared,
 * immutable list instead of its own copy. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "records.h"


struct acl_list {
	struct acl_list *hash_next;
	uint64_t hash;
	uint32_t refs;
	uint32_t count;
	struct acl_entry entries[];
};

struct acl_table {
	struct acl_list **buckets;
	size_t bucket_count;
	size_t count;
	struct acl_list *open_acl;	/* world:anyone:ALL, always present */
};

int acl_table_init(struct acl_table *t);
void acl_table_free(struct acl_table *t);

/* Returns a referenced list equal to entries[0..n) (duplicates removed, order
 * kept), or NULL on allocation failure. The caller owns one reference. */
struct acl_list *acl_intern(struct acl_table *t, const struct acl_entry *entries, uint32_t n);
struct acl_list *acl_ref(struct acl_list *l);
void acl_unref(struct acl_table *t, struct acl_list *l);
