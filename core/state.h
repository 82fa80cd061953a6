/* state: everything that replication keeps identical on every server: the
 * tree, the sessions (with their ephemerals) and the zxid of the last txn
 * applied. It changes only through txn_apply(). */
#pragma once

#include <stdint.h>

#include "session.h"
#include "tree.h"

/* Called by txn_apply() for every change a watch may see (watch.c listens). */
struct state_listener {
	void (*node_event)(void *ctx, int64_t zxid, int event_type, const struct znode *node,
			   const char *path, size_t path_len);
	void *ctx;
};

/* The tree's digest after a txn (ZooKeeper's ZxidDigest). */
struct zxid_digest {
	int64_t zxid;
	uint64_t digest;
};

/* ZooKeeper's digest log, which its `hash` word lists: the digest at every
 * zxid that is a multiple of 128, the last 1024 of them. */
#define STATE_DIGEST_LOG_INTERVAL 128
#define STATE_DIGEST_LOG_LIMIT 1024
/* The digest after each of the last txns applied, for the ensemble's
 * check (a leader's digest at a zxid this server applied a moment ago). */
#define STATE_DIGEST_RECENT 1024

struct digest_history {
	struct zxid_digest log[STATE_DIGEST_LOG_LIMIT];	/* a ring, oldest at log_start */
	uint32_t log_start, log_count;
	struct zxid_digest recent[STATE_DIGEST_RECENT];	/* a ring, next at recent_next */
	uint32_t recent_next, recent_count;
};

struct state {
	struct tree tree;
	struct session_table sessions;
	int64_t last_zxid;
	struct digest_history digests;
	struct state_listener listener;
	/* This server's monotonic clock, set by the server before each apply:
	 * an applied createSession starts its expiry from it. Not replicated,
	 * and nothing replicated depends on it. */
	uint64_t local_now_ms;
};

/* An empty tree with the built-in nodes /zookeeper, /zookeeper/quota and /zookeeper/config. */
int state_init(struct state *s, uint8_t server_id, uint64_t wall_ms);
void state_free(struct state *s);

/* True for the nodes no client may delete: /, /zookeeper and its built-in children. */
bool state_is_system_path(const char *path, size_t len);
/* What the state holds in memory, for the memory budget: the tree's
 * (tree_memory_bytes()) and an estimate per session. */
uint64_t state_memory_bytes(const struct state *s);

/* The tree's digest is now that at s->last_zxid: into the history. */
void state_note_digest(struct state *s);
/* The digest this server's tree had right after zxid. Returns 0, or
 * -ENOENT when zxid is not among the recent ones. */
int state_digest_at(const struct state *s, int64_t zxid, uint64_t *ret_digest);
