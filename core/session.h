/* session: the table of client sessions.
 *
 * A session's identity (id, password, timeout) and its ephemeral znodes are
 * replicated state: they change only through createSession/closeSession txns
 * (txn.c). Its liveness (when it expires, which connection holds it) is this
 * server's own business. Expiry uses a min-heap with lazy deadlines: touching
 * a session only moves its deadline; the heap entry is re-queued when it
 * comes up early, so a ping costs O(1). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash_table.h"
#include "list.h"
#include "proto.h"
#include "tree.h"

struct conn;
struct znode;

struct session {
	struct hash_node hash_node;	/* the table, by id */
	int64_t id;
	uint32_t timeout_ms;
	uint8_t password[ZK_PASSWORD_BYTES];
	struct list ephemerals;		/* its znodes, through znode_owner_node() */

	/* Not replicated: */
	uint64_t deadline_ms;		/* monotonic; expires when now passes it */
	struct conn *conn;		/* the connection holding it, if any */
	bool closing;			/* a closeSession txn is on its way */
};

struct session_heap_entry {
	uint64_t deadline_ms;
	int64_t id;
};

struct session_table {
	struct hash_table by_id;	/* struct session; by_id.count: how many */
	struct session_heap_entry *heap;
	size_t heap_len, heap_cap;
	int64_t next_id;
	/* As ZooKeeper's session tracker: a session expires at the first
	 * multiple of this interval (the tick) after its deadline, so it lives
	 * its timeout and up to one tick more. 0: at its deadline. */
	uint32_t expiry_interval_ms;
};

int session_table_init(struct session_table *t, uint8_t server_id, uint64_t wall_ms);
void session_table_free(struct session_table *t);

#define session_for_each(t, s)							\
	hash_table_for_each(&(t)->by_id, s##_node)				\
		for (struct session *s = container_of(s##_node, struct session, hash_node); s; s = NULL)

/* The first of a session's ephemerals, or NULL; the next after n. */
static inline struct znode *session_first_ephemeral(const struct session *s)
{
	return s->ephemerals.length ? znode_of_owner_node(s->ephemerals.head.next) : NULL;
}
struct znode *session_next_ephemeral(const struct session *s, const struct znode *n);

struct session *session_lookup(const struct session_table *t, int64_t id);
/* Adds a session (from an applied createSession txn). Returns it, or NULL on ENOMEM. */
struct session *session_add(struct session_table *t, int64_t id, uint32_t timeout_ms,
			    const uint8_t password[ZK_PASSWORD_BYTES], uint64_t now_ms);
/* Removes and frees a session whose ephemerals are already gone. */
void session_remove(struct session_table *t, struct session *s);

/* A new session id: server id in the top byte, like ZooKeeper. */
int64_t session_next_id(struct session_table *t);

static inline void session_touch(struct session *s, uint64_t now_ms)
{
	s->deadline_ms = now_ms + s->timeout_ms;
}

/* When a session whose deadline is deadline_ms expires (monotonic). */
static inline uint64_t session_expires_at(const struct session_table *t, uint64_t deadline_ms)
{
	uint64_t i = t->expiry_interval_ms;
	return i > 1 ? (deadline_ms / i + 1) * i : deadline_ms;
}

/* Returns the next session whose expiry (session_expires_at) has passed and takes it off the
 * expiry heap, or NULL. The caller ends it, or puts it back with session_requeue(). */
struct session *session_next_expired(struct session_table *t, uint64_t now_ms);
int session_requeue(struct session_table *t, struct session *s);

void session_link_ephemeral(struct session *s, struct znode *n);
void session_unlink_ephemeral(struct session *s, struct znode *n);
