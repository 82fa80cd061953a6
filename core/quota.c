/* quota: see quota.h. */
#include "quota.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "namespace_stats.h"
#include "proto.h"

#define QUOTA_ROOT_LEN (sizeof(QUOTA_ROOT) - 1)

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

/* The /zookeeper subtree, which no quota covers. */
static bool in_system_subtree(const char *path, size_t len)
{
	return (len == 10 && memcmp(path, "/zookeeper", 10) == 0) ||
	       has_prefix(path, len, "/zookeeper/");
}

static void parse_pair(const char *k, size_t klen, const char *v, size_t vlen,
		       struct quota_track *q)
{
	int64_t *field = NULL;
	if (klen == 5 && memcmp(k, "count", 5) == 0)
		field = &q->count;
	else if (klen == 5 && memcmp(k, "bytes", 5) == 0)
		field = &q->bytes;
	else if (klen == 14 && memcmp(k, "countHardLimit", 14) == 0)
		field = &q->count_hard;
	else if (klen == 13 && memcmp(k, "byteHardLimit", 13) == 0)
		field = &q->bytes_hard;
	if (!field)
		return;
	if (vlen == 0) {
		*field = -1;
		return;
	}
	char buf[24];
	if (vlen >= sizeof(buf))
		return;
	memcpy(buf, v, vlen);
	buf[vlen] = 0;
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (errno == 0 && *end == 0 && end != buf)
		*field = x;
}

void quota_parse(const uint8_t *data, int32_t len, struct quota_track *ret)
{
	*ret = (struct quota_track){ -1, -1, -1, -1 };
	const char *s = (const char *)data;
	size_t n = len > 0 ? (size_t)len : 0, i = 0;
	while (i < n) {
		size_t start = i;
		while (i < n && s[i] != ',' && s[i] != ';')
			i++;
		/* "key=value", or "bytes=5=" as the 3.7 format writes it: the
		 * value ends at the next '=' (Java's split drops what follows). */
		const char *eq = memchr(s + start, '=', i - start);
		if (eq) {
			const char *v = eq + 1;
			const char *vend = memchr(v, '=', (size_t)(s + i - v));
			parse_pair(s + start, (size_t)(eq - (s + start)), v,
				   (size_t)((vend ? vend : s + i) - v), ret);
		}
		while (i < n && (s[i] == ',' || s[i] == ';'))
			i++;
	}
}

/* "/zookeeper/quota" + path + "/" + node, malloc'd. */
static char *quota_node_path(const char *path, size_t len, const char *node, size_t *ret_len)
{
	size_t nlen = strlen(node);
	char *p = malloc(QUOTA_ROOT_LEN + len + 1 + nlen + 1);
	if (!p)
		return NULL;
	memcpy(p, QUOTA_ROOT, QUOTA_ROOT_LEN);
	memcpy(p + QUOTA_ROOT_LEN, path, len);
	p[QUOTA_ROOT_LEN + len] = '/';
	memcpy(p + QUOTA_ROOT_LEN + len + 1, node, nlen + 1);
	*ret_len = QUOTA_ROOT_LEN + len + 1 + nlen;
	return p;
}

static struct znode *quota_node(const struct tree *t, const char *path, size_t len,
				const char *node)
{
	size_t plen;
	char *p = quota_node_path(path, len, node, &plen);
	if (!p)
		return NULL;
	struct znode *n = tree_lookup(t, p, plen);
	free(p);
	return n;
}

/* The longest prefix of path (itself included, the root not) with a
 * limits node (ZooKeeper's getMaxPrefixWithQuota): its length, 0 if none. */
static size_t limited_prefix(const struct tree *t, const char *path, size_t len)
{
	if (t->quota_count == 0 || in_system_subtree(path, len))
		return 0;
	size_t plen;
	char *p = quota_node_path(path, len, QUOTA_LIMITS_NODE, &plen);
	if (!p)
		return 0;
	size_t found = 0;
	for (size_t l = len; l > 1; ) {
		/* p holds QUOTA_ROOT + path[0..l) + "/zookeeper_limits" */
		memcpy(p + QUOTA_ROOT_LEN + l, "/" QUOTA_LIMITS_NODE, sizeof(QUOTA_LIMITS_NODE) + 1);
		if (tree_lookup(t, p, QUOTA_ROOT_LEN + l + sizeof(QUOTA_LIMITS_NODE))) {
			found = l;
			break;
		}
		while (l > 0 && path[l - 1] != '/')
			l--;
		if (l > 1)
			l--;	/* drop the '/' too */
		else
			break;
	}
	free(p);
	return found;
}

static int write_stats(struct tree *t, struct znode *stats, int64_t count, int64_t bytes)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "count=%" PRId64 ",bytes=%" PRId64, count, bytes);
	tree_node_changing(t, stats);
	int r = tree_set_data(t, stats, buf, n);
	tree_node_changed(t, stats);
	return r;
}

static int add_to_stats(struct tree *t, const char *path, size_t len, int64_t bytes_diff,
			int64_t count_diff)
{
	size_t prefix = limited_prefix(t, path, len);
	if (!prefix)
		return 0;
	struct znode *stats = quota_node(t, path, prefix, QUOTA_STATS_NODE);
	if (!stats)
		return 0;	/* ZooKeeper logs and goes on */
	struct quota_track q;
	quota_parse(znode_data(stats), stats->data_len, &q);
	return write_stats(t, stats, q.count + count_diff, q.bytes + bytes_diff);
}

/* The node after n in a pre-order walk of top's subtree, or NULL. */
static struct znode *subtree_next(const struct znode *top, const struct znode *n)
{
	if (znode_first_child(n))
		return znode_first_child(n);
	while (n != top && !n->next_sibling)
		n = znode_parent(n);
	return n == top ? NULL : znode_next_sibling(n);
}

static void subtree_counts(const struct znode *top, int64_t *count, int64_t *bytes)
{
	for (const struct znode *n = top; n; n = subtree_next(top, n)) {
		(*count)++;
		*bytes += n->data_len > 0 ? n->data_len : 0;
	}
}

/* The stats of the quota whose stats node is stats, from the tree
 * (ZooKeeper's updateQuotaForPath). */
static int recount(struct tree *t, struct znode *stats)
{
	size_t dir_len;
	const char *dir = tree_path(t, znode_parent(stats), &dir_len);
	const char *path = dir + QUOTA_ROOT_LEN;
	size_t len = dir_len - QUOTA_ROOT_LEN;
	int64_t count = 0, bytes = 0;
	const struct znode *top = tree_lookup(t, path, len);
	if (top)
		subtree_counts(top, &count, &bytes);
	return write_stats(t, stats, count, bytes);
}

/* A node named name in a directory under QUOTA_ROOT (its parent's path
 * longer than QUOTA_ROOT's). */
static bool is_quota_file(const struct tree *t, const struct znode *n, const char *name)
{
	if (strcmp(znode_name(n), name) != 0)
		return false;
	size_t len;
	const char *dir = tree_path(t, znode_parent(n), &len);
	return len > QUOTA_ROOT_LEN && has_prefix(dir, len, QUOTA_ROOT "/");
}

/* add_to_stats() for n's path (a copy: the stats' change builds paths). */
static int add_node_to_stats(struct tree *t, const struct znode *n, int64_t bytes_diff,
			     int64_t count_diff)
{
	if (t->quota_count == 0)
		return 0;	/* no quota: nothing to count, no path to build */
	size_t len = znode_path_len(n);
	char *path = malloc(len + 1);
	if (!path)
		return -ENOMEM;
	znode_path_write(n, path, len);
	int r = add_to_stats(t, path, len, bytes_diff, count_diff);
	free(path);
	return r;
}

int quota_node_added(struct tree *t, const struct znode *n)
{
	if (is_quota_file(t, n, QUOTA_LIMITS_NODE)) {
		t->quota_count++;
		return 0;
	}
	if (is_quota_file(t, n, QUOTA_STATS_NODE))
		return recount(t, (struct znode *)n);
	return add_node_to_stats(t, n, n->data_len > 0 ? n->data_len : 0, 1);
}

int quota_node_removing(struct tree *t, const struct znode *n)
{
	if (is_quota_file(t, n, QUOTA_LIMITS_NODE)) {
		ASSERT(t->quota_count > 0);
		t->quota_count--;
		return 0;
	}
	return add_node_to_stats(t, n, -(int64_t)(n->data_len > 0 ? n->data_len : 0), -1);
}

int quota_data_changed(struct tree *t, const struct znode *n, int32_t old_len)
{
	int64_t diff = (int64_t)(n->data_len > 0 ? n->data_len : 0) - (old_len > 0 ? old_len : 0);
	return diff ? add_node_to_stats(t, n, diff, 0) : 0;
}

int quota_recompute(struct tree *t)
{
	/* Quotas live under QUOTA_ROOT only: its subtree, not the tree, is
	 * walked (a load of millions of nodes would pay for two walks). */
	struct znode *top = tree_lookup(t, QUOTA_ROOT, QUOTA_ROOT_LEN);
	t->quota_count = 0;
	for (struct znode *n = top; n; n = subtree_next(top, n))
		if (is_quota_file(t, n, QUOTA_LIMITS_NODE))
			t->quota_count++;
	for (struct znode *n = top; n; n = subtree_next(top, n)) {
		if (!is_quota_file(t, n, QUOTA_STATS_NODE))
			continue;
		int r = recount(t, n);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool over(const char *path, size_t prefix, const char *what,
		 int64_t now, int64_t soft, int64_t hard, bool enforce, struct log_limit *lim,
		 uint64_t now_ms)
{
	bool is_hard = hard > -1;
	int64_t limit = is_hard ? hard : soft;
	if (now <= limit)
		return false;
	if (log_limit_allow(lim, now_ms))
		log_warning("Quota exceeded: %.*s [current %s=%" PRId64 ", %s%sLimit=%" PRId64 "]%s",
			    (int)prefix, path, what, now, is_hard ? "hard" : "soft",
			    what[0] == 'c' ? "Count" : "Byte", limit,
			    is_hard && enforce ? ": refused" : "");
	return is_hard && enforce;
}

int32_t quota_check(const struct tree *t, const char *path, size_t len, int64_t bytes_diff,
		    int64_t count_diff, bool enforce, struct log_limit *lim, uint64_t now_ms)
{
	size_t prefix = limited_prefix(t, path, len);
	if (!prefix)
		return ZOK;
	const struct znode *ln = quota_node(t, path, prefix, QUOTA_LIMITS_NODE);
	if (!ln)
		return ZOK;
	struct quota_track limits, cur;
	quota_parse(znode_data(ln), ln->data_len, &limits);
	bool check_count = count_diff != 0 && (limits.count > -1 || limits.count_hard > -1);
	bool check_bytes = bytes_diff != 0 && (limits.bytes > -1 || limits.bytes_hard > -1);
	if (!check_count && !check_bytes)
		return ZOK;
	const struct znode *sn = quota_node(t, path, prefix, QUOTA_STATS_NODE);
	if (!sn)
		return ZOK;
	quota_parse(znode_data(sn), sn->data_len, &cur);
	if (check_count && over(path, prefix, "count", cur.count + count_diff, limits.count,
				limits.count_hard, enforce, lim, now_ms))
		return ZQUOTAEXCEEDED;
	if (check_bytes && over(path, prefix, "bytes", cur.bytes + bytes_diff, limits.bytes,
				limits.bytes_hard, enforce, lim, now_ms))
		return ZQUOTAEXCEEDED;
	return ZOK;
}

/* ---- the figures per namespace ---- */

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* n, a leaf under top (QUOTA_ROOT): its namespace is the name of its
 * ancestor (or itself) just below top. */
static int collect_leaf(const struct znode *top, const struct znode *n,
			struct quota_namespace **ns, size_t *count, size_t *cap)
{
	bool limits = ends_with(n->name, n->name_len, QUOTA_LIMITS_NODE);
	if ((!limits && !ends_with(n->name, n->name_len, QUOTA_STATS_NODE)) || n->data_len < 0)
		return 0;
	const struct znode *below = n;
	while (znode_parent(below) != top)
		below = znode_parent(below);
	const char *name = below->name;
	size_t name_len = below->name_len;
	struct quota_namespace *e = NULL;
	for (size_t i = 0; i < *count && !e; i++)
		if ((*ns)[i].name_len == name_len && memcmp((*ns)[i].name, name, name_len) == 0)
			e = &(*ns)[i];
	if (!e) {
		if (*count == *cap) {
			size_t want = *cap ? *cap * 2 : 8;
			struct quota_namespace *grown = realloc(*ns, want * sizeof(**ns));
			if (!grown)
				return -ENOMEM;
			*ns = grown;
			*cap = want;
		}
		e = &(*ns)[(*count)++];
		*e = (struct quota_namespace){ .name = name, .name_len = name_len };
	}
	struct quota_track q;
	quota_parse(znode_data(n), n->data_len, &q);
	if (limits) {
		e->has_limits = true;
		e->count_limit += q.count_hard > -1 ? q.count_hard : q.count;
		e->bytes_limit += q.bytes_hard > -1 ? q.bytes_hard : q.bytes;
	} else {
		e->has_stats = true;
		e->count_usage += q.count;
		e->bytes_usage += q.bytes;
	}
	return 0;
}

long quota_namespaces(const struct tree *t, struct quota_namespace **ret)
{
	struct quota_namespace *ns = NULL;
	size_t count = 0, cap = 0;
	*ret = NULL;
	const struct znode *top = tree_lookup(t, QUOTA_ROOT, QUOTA_ROOT_LEN);
	if (!top)
		return 0;
	/* Depth first, without a stack (a path may have thousands of
	 * components): down to a leaf, then to the next sibling of the
	 * nearest node that has one. */
	const struct znode *n = top;
	for (;;) {
		const struct znode *child = znode_first_child(n);
		if (child) {
			n = child;
			continue;
		}
		if (n != top && collect_leaf(top, n, &ns, &count, &cap) < 0) {
			free(ns);
			return -ENOMEM;
		}
		while (n != top && !n->next_sibling)
			n = znode_parent(n);
		if (n == top)
			break;
		n = znode_next_sibling(n);
	}
	*ret = ns;
	return (long)count;
}
