/* watch: who watches which path, and the events they get.
 *
 * A watch belongs to an owner, which the server layer embeds in each
 * connection (as in ZooKeeper, watches live with the connection; a client
 * re-sends them with setWatches when it reconnects). Per (path, owner)
 * there is one entry with a set of kinds. Standard watches fire once; one
 * trigger sends an owner at most one event. Registration rules (which read
 * leaves which watch) are the caller's; this file fires and forgets, and
 * knows nothing of connections. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "hash_table.h"
#include "list.h"

enum watch_kind {
	WATCH_DATA = 1 << 0,		/* getData, or exists on an existing node */
	WATCH_EXIST = 1 << 1,		/* exists on a missing node */
	WATCH_CHILD = 1 << 2,		/* getChildren */
	WATCH_PERSISTENT = 1 << 3,	/* addWatch mode 0: data and child events, kept */
	WATCH_RECURSIVE = 1 << 4,	/* addWatch mode 1: the subtree's node events, kept */
};
#define WATCH_ONE_SHOT (WATCH_DATA | WATCH_EXIST | WATCH_CHILD)

/* Who holds watches: embedded in the server layer's connection, which
 * finds itself again from it (container_of) when an event is delivered. */
struct watch_owner {
	struct list entries;		/* its watch_entry, through owner_node */
	uint32_t count;			/* (path, kind) pairs */
	uint64_t stamp;			/* the last trigger that sent it an event */
};

/* The watches on one path. */
struct watch_path {
	struct hash_node hash_node;
	struct list entries;		/* watch_entry, through path_node */
	uint32_t path_len;
	char path[];
};

/* One owner's watches on one path. */
struct watch_entry {
	struct watch_path *wp;
	struct watch_owner *owner;
	struct list_node path_node;
	struct list_node owner_node;
	uint8_t kinds;
};

struct watch_table {
	struct hash_table paths;	/* struct watch_path */
	struct hash_key key;
	size_t watch_count;		/* (path, owner, kind) triples */
	size_t recursive_count;		/* of which WATCH_RECURSIVE: ancestors matter */
	uint64_t trigger_stamp;		/* one event per owner per trigger */
};

int watch_table_init(struct watch_table *t);
void watch_table_free(struct watch_table *t);
void watch_owner_init(struct watch_owner *o);

/* Adds kind for (path, o). Returns 0 or -ENOMEM. */
int watch_add(struct watch_table *t, struct watch_owner *o, const char *path, size_t len,
	      enum watch_kind kind);
/* Drops every watch of o. */
void watch_remove_owner(struct watch_table *t, struct watch_owner *o);
/* True when (path, o) has any of kinds. */
bool watch_has(const struct watch_table *t, const struct watch_owner *o, const char *path,
	       size_t len, uint8_t kinds);
/* Removes the given kinds of (path, o); returns whether there was any. */
bool watch_remove(struct watch_table *t, struct watch_owner *o, const char *path, size_t len,
		  uint8_t kinds);

/* Called for each owner that must get an event; the watch is already gone
 * when it runs. */
typedef void (*watch_deliver_fn)(void *ctx, struct watch_owner *o, int event_type,
				 const char *path, size_t len, const void *node);

/* Fires the watches an event triggers (ZooKeeper's WatchManager.triggerWatch):
 *   NodeCreated, NodeDataChanged: data and exist watches on path;
 *   NodeDeleted: data, exist and child watches on path;
 *   NodeChildrenChanged: child watches on path;
 *   persistent watches on path: all four; recursive watches on path or an
 *   ancestor: all but NodeChildrenChanged. One-shot kinds that fire are
 *   removed. An owner gets one event per trigger. node is passed through
 *   to deliver (for the permission check). */
void watch_trigger(struct watch_table *t, int event_type, const char *path, size_t len,
		   const void *node, watch_deliver_fn deliver, void *ctx);

/* For listings (wchc, wchp): */
#define watch_for_each_path(t, wp)						\
	hash_table_for_each(&(t)->paths, wp##_node)				\
		for (const struct watch_path *wp = container_of(wp##_node, struct watch_path, \
								 hash_node); wp; wp = NULL)
#define watch_path_for_each_entry(wp, e)					\
	list_for_each(&(wp)->entries, e##_node)					\
		for (const struct watch_entry *e = list_entry(e##_node, struct watch_entry, \
							    path_node); e; e = NULL)
#define watch_owner_for_each_entry(o, e)					\
	list_for_each(&(o)->entries, e##_node)					\
		for (const struct watch_entry *e = list_entry(e##_node, struct watch_entry, \
							    owner_node); e; e = NULL)
