/* quota: ZooKeeper's quotas (its DataTree quota code, StatsTrack and
 * ZooKeeperServer.checkQuota).
 *
 * A quota on a path P is the node /zookeeper/quota/P/zookeeper_limits,
 * whose data holds the limits ("count=10,bytes=-1", and since ZooKeeper 3.7
 * "count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=-1"), next to
 * /zookeeper/quota/P/zookeeper_stats, whose data the server keeps as
 * "count=N,bytes=M": the nodes in P's subtree (P included) and the sum of
 * their data lengths. The stats change only as txns apply (every server
 * applies the same ones) and are recomputed from the tree when a snapshot
 * loads, so they are the same on every server; nodes under /zookeeper/
 * are not in the tree's digest. The root and the /zookeeper subtree carry
 * no quota. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "tree.h"

#define QUOTA_ROOT "/zookeeper/quota"
#define QUOTA_LIMITS_NODE "zookeeper_limits"
#define QUOTA_STATS_NODE "zookeeper_stats"

/* A limits or stats node's data; -1 for what it does not set. */
struct quota_track {
	int64_t count, bytes;
	int64_t count_hard, bytes_hard;
};

/* Parses as StatsTrack does: key=value pairs separated by ',' or ';'. A
 * pair that does not parse is ignored (the value stays -1). */
void quota_parse(const uint8_t *data, int32_t len, struct quota_track *ret);

/* txn_apply's hooks, after a node was added, before one is removed, after
 * one's data changed (old_len: what it had). Each returns 0 or -ENOMEM. */
int quota_node_added(struct tree *t, const struct znode *n);
int quota_node_removing(struct tree *t, const struct znode *n);
int quota_data_changed(struct tree *t, const struct znode *n, int32_t old_len);

/* After a snapshot loaded: counts the limits nodes and recomputes every
 * stats node from the tree, as ZooKeeper's setupQuota. Returns 0 or -ENOMEM. */
int quota_recompute(struct tree *t);

/* Prep's check of a create (count_diff 1) or setData (count_diff 0) at
 * path against the quota over it, with the committed stats: past a soft
 * limit (or a hard one while enforce is off) it logs, rate-limited by lim;
 * past a hard limit with enforce on it returns ZQUOTAEXCEEDED. ZOK else. */
int32_t quota_check(const struct tree *t, const char *path, size_t len, int64_t bytes_diff,
		    int64_t count_diff, bool enforce, struct log_limit *lim, uint64_t now_ms);

/* ZooKeeper's quota figures per namespace, as its mntr gives them
 * (QuotaMetricsUtils): a namespace is the first component of a quota's
 * path ("a" for a quota on /a/b). Over the leaves under /zookeeper/quota
 * whose name ends in zookeeper_limits, the sum of each one's limits (the
 * hard limit where it sets one, else the soft); over those ending in
 * zookeeper_stats, the sum of its counts. */
struct quota_namespace {
	const char *name;	/* a node's name: valid until the tree changes */
	size_t name_len;
	bool has_limits, has_stats;
	int64_t count_limit, bytes_limit;	/* with has_limits */
	int64_t count_usage, bytes_usage;	/* with has_stats */
};

/* The namespaces in the order first met: *ret (malloc'd, the caller's to
 * free; NULL when none) and how many, or -ENOMEM. */
long quota_namespaces(const struct tree *t, struct quota_namespace **ret);
