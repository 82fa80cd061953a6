/* watch: who watches which path, and the events they get.
 *
 * A watch belongs to a connection (as in ZooKeeper, watches live with the
 * connection; a client re-sends them with setWatches when it reconnects).
 * Per (path, connection) there is one entry with a set of kinds. Standard
 * watches fire once; one trigger sends a connection at most one event.
 * Registration rules (which read leaves which watch) are the caller's:
 * request.c knows them; this file fires and forgets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

struct conn;
struct watch_path;

enum watch_kind {
	WATCH_DATA = 1 << 0,		/* getData, or exists on an existing node */
	WATCH_EXIST = 1 << 1,		/* exists on a missing node */
	WATCH_CHILD = 1 << 2,		/* getChildren */
	WATCH_PERSISTENT = 1 << 3,	/* addWatch mode 0: data and child events, kept */
	WATCH_RECURSIVE = 1 << 4,	/* addWatch mode 1: the subtree's node events, kept */
};
#define WATCH_ONE_SHOT (WATCH_DATA | WATCH_EXIST | WATCH_CHILD)

struct watch_entry {
	struct watch_path *wp;
	struct conn *conn;
	struct watch_entry *path_next, *path_prev;
	struct watch_entry *conn_next, *conn_prev;
	uint8_t kinds;
};

struct watch_table {
	struct watch_path **buckets;
	size_t bucket_count;
	size_t path_count;
	size_t watch_count;		/* (path, connection, kind) triples */
	size_t recursive_count;		/* of which WATCH_RECURSIVE: ancestors matter */
	uint64_t trigger_stamp;		/* one event per connection per trigger */
	struct hash_key key;
};

/* Per connection: the head of its entries. */
struct watch_owner {
	struct watch_entry *entries;
	uint32_t count;
	uint64_t stamp;			/* the last trigger that sent it an event */
};

/* For listings (wchc, wchp): */
const char *watch_entry_path(const struct watch_entry *e);
const struct watch_path *watch_path_next(const struct watch_path *wp);
const char *watch_path_text(const struct watch_path *wp);
const struct watch_entry *watch_path_entries(const struct watch_path *wp);

/* The watch_owner of a connection (conn.c keeps it in struct conn). */
struct watch_owner *conn_watch_owner(struct conn *c);

int watch_table_init(struct watch_table *t);
void watch_table_free(struct watch_table *t);

/* Adds kind for (path, conn). Returns 0 or -ENOMEM. */
int watch_add(struct watch_table *t, struct conn *c, struct watch_owner *o,
	      const char *path, size_t len, enum watch_kind kind);
/* Drops every watch of a connection. */
void watch_remove_owner(struct watch_table *t, struct watch_owner *o);
/* True when (path, conn) has any of kinds. */
bool watch_has(const struct watch_table *t, struct conn *c, const char *path, size_t len,
	       uint8_t kinds);
/* Removes the given kinds of (path, conn); returns whether there was any. */
bool watch_remove(struct watch_table *t, struct conn *c, struct watch_owner *o,
		  const char *path, size_t len, uint8_t kinds);

/* Called for each connection that must get an event; the watch is already
 * gone when it runs. */
typedef void (*watch_deliver_fn)(void *ctx, struct conn *c, int event_type,
				 const char *path, size_t len, const void *node);

/* Fires the watches an event triggers (ZooKeeper's WatchManager.triggerWatch):
 *   NodeCreated, NodeDataChanged: data and exist watches on path;
 *   NodeDeleted: data, exist and child watches on path;
 *   NodeChildrenChanged: child watches on path;
 *   persistent watches on path: all four; recursive watches on path or an
 *   ancestor: all but NodeChildrenChanged. One-shot kinds that fire are
 *   removed. A connection gets one event per trigger. node is passed through
 *   to deliver (for the permission check). */
void watch_trigger(struct watch_table *t, int event_type, const char *path, size_t len,
		   const void *node, watch_deliver_fn deliver, void *ctx);
