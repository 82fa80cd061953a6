/* namespace_stats: figures kept per namespace, the first component of a
 * path ("a" of "/a/b/c"), as ZooKeeper keeps its counter and summary sets
 * (quota_exceeded_error_per_namespace, read_per_namespace,
 * write_per_namespace): how many values were added, and their sum, least
 * and most. Namespaces are clients' names: the table is keyed with
 * SipHash, and at most NAMESPACE_STATS_MAX are kept (a value for another
 * one past them is dropped). A path with no first component ("/") has no
 * namespace and counts nowhere. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "hash_table.h"

#define NAMESPACE_STATS_MAX 4096

struct namespace_stat {
	struct hash_node node;
	uint64_t count;
	int64_t sum, min, max;	/* of the values added (0 while count is 0) */
	size_t name_len;
	char name[];		/* not NUL-terminated */
};

struct namespace_stats {
	struct hash_table table;	/* struct namespace_stat by name */
	struct hash_key key;
};

/* The namespace of path: *ret and its length, 0 for none. */
size_t namespace_of(const char *path, size_t len, const char **ret);

/* Returns 0 or a negative errno. */
int namespace_stats_init(struct namespace_stats *s);
void namespace_stats_free(struct namespace_stats *s);
/* Adds value to the figures of path's namespace. */
void namespace_stats_add(struct namespace_stats *s, const char *path, size_t len, int64_t value);
/* Every figure back to 0, the namespaces kept (srst, as ZooKeeper's reset). */
void namespace_stats_zero(struct namespace_stats *s);

#define namespace_stats_for_each(s, e)						\
	hash_table_for_each(&(s)->table, e##_node)					\
		for (const struct namespace_stat *e =					\
			     container_of(e##_node, struct namespace_stat, node); e; e = NULL)
