/* namespace_stats: see namespace_stats.h. */
#include "namespace_stats.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

static uint64_t stat_hash(const struct hash_table *t, const struct hash_node *n)
{
	const struct namespace_stats *s = container_of(t, struct namespace_stats, table);
	const struct namespace_stat *e = container_of(n, struct namespace_stat, node);
	return hash_bytes(&s->key, e->name, e->name_len);
}

int namespace_stats_init(struct namespace_stats *s)
{
	memset(s, 0, sizeof(*s));
	int r = hash_key_random(&s->key);
	return r < 0 ? r : hash_table_init(&s->table, 16, stat_hash);
}

void namespace_stats_free(struct namespace_stats *s)
{
	if (s->table.buckets) {
		hash_table_for_each_safe(&s->table, n, tmp)
			free(container_of(n, struct namespace_stat, node));
		hash_table_free(&s->table);
	}
	memset(s, 0, sizeof(*s));
}

size_t namespace_of(const char *path, size_t len, const char **ret)
{
	if (len < 2 || path[0] != '/')
		return 0;
	const char *slash = memchr(path + 1, '/', len - 1);
	*ret = path + 1;
	return slash ? (size_t)(slash - path - 1) : len - 1;
}

void namespace_stats_add(struct namespace_stats *s, const char *path, size_t len, int64_t value)
{
	const char *name;
	size_t name_len = namespace_of(path, len, &name);
	if (name_len == 0 || !s->table.buckets)
		return;
	uint64_t h = hash_bytes(&s->key, name, name_len);
	struct namespace_stat *e = NULL;
	for (struct hash_node *n = hash_table_bucket(&s->table, h); n && !e; n = n->next) {
		struct namespace_stat *c = container_of(n, struct namespace_stat, node);
		if (c->name_len == name_len && memcmp(c->name, name, name_len) == 0)
			e = c;
	}
	if (!e) {
		if (s->table.count >= NAMESPACE_STATS_MAX)
			return;
		e = calloc(1, sizeof(*e) + name_len);
		if (!e)
			return;
		e->name_len = name_len;
		memcpy(e->name, name, name_len);
		hash_table_insert(&s->table, &e->node, h);
	}
	if (e->count == 0 || value < e->min)
		e->min = value;
	if (e->count == 0 || value > e->max)
		e->max = value;
	e->count++;
	e->sum += value;
}

void namespace_stats_zero(struct namespace_stats *s)
{
	if (!s->table.buckets)
		return;
	hash_table_for_each(&s->table, n) {
		struct namespace_stat *e = container_of(n, struct namespace_stat, node);
		e->count = 0;
		e->sum = e->min = e->max = 0;
	}
}
