/* pending: the changes prepped but not yet applied, as ZooKeeper's
 * "outstanding changes". For each path touched by a txn still in flight it
 * keeps a view (exists, versions, counters, owner, ACL) as the path will be
 * once that txn applies, so the next request is checked against it.
 *
 * A batch gathers the views one prep call decides (one op, or every op of a
 * multi) and is published only when the whole call succeeded. A view is
 * forgotten once the last txn that touched it has been applied. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash_table.h"
#include "list.h"
#include "tree.h"

struct node_view {
	bool exists;
	int32_t version;
	int32_t aversion;
	int32_t child_creates;
	int32_t num_children;
	int64_t owner;
	int64_t mtime;
	struct acl_list *acl;	/* borrowed in a lookup; referenced when stored */
};

/* A path some txn on its way changes, as it will be. */
struct pending_node {
	struct hash_node hash_node;
	struct list_node seq_node;	/* pending.by_seq */
	uint64_t seq;			/* the last txn that changed it */
	uint64_t hash;			/* of the path, as the tree's table hashes it */
	struct node_view view;
	uint32_t path_len;
	char path[];
};

struct pending {
	struct tree *tree;
	struct hash_table nodes;	/* struct pending_node by path */
	struct list by_seq;		/* oldest first */
};

struct batch_item {
	const char *path;	/* points into the txn being built */
	size_t len;
	uint64_t hash;		/* the path's, from pending_lookup() */
	struct node_view view;
	/* pending_publish()'s, while it runs: the node made for the path, or
	 * the one already pending for it */
	struct pending_node *fresh, *found;
};

struct batch {
	struct batch_item *items;
	uint32_t count, cap;
	/* ACL lists interned for views of this batch: held until it is freed. */
	struct acl_table *acls;
	struct acl_list **held;
	uint32_t held_count, held_cap;
};

int pending_init(struct pending *p, struct tree *tree);
void pending_free(struct pending *p);

/* The view of a path: the batch's, else the pending one, else the tree's.
 * Returns the path's hash (tree_path_hash()), for batch_put(): a path is
 * hashed once however many tables it is looked up and kept in. */
uint64_t pending_lookup(const struct pending *p, const struct batch *b, const char *path,
			size_t len, struct node_view *ret);

/* Records a view in the batch (hash: the path's, as pending_lookup() gave
 * it); returns 0 or -ENOMEM. */
int batch_put(struct batch *b, const char *path, size_t len, uint64_t hash,
	      const struct node_view *v);
/* Keeps a reference to an interned list (which the caller gives up) alive
 * while views in the batch point at it. Returns 0 or -ENOMEM (then the
 * reference is dropped). */
int batch_hold(struct batch *b, struct acl_table *acls, struct acl_list *l);
void batch_free(struct batch *b);

/* Makes the batch's views pending for txn seq (copies paths, takes ACL
 * references). Returns 0 or -ENOMEM (then nothing changed). */
int pending_publish(struct pending *p, struct batch *b, uint64_t seq);

/* Walks the pending views (oldest first). */
#define pending_for_each(p, pn)							\
	list_for_each(&(p)->by_seq, pn##_node)					\
		for (const struct pending_node *pn = list_entry(pn##_node, struct pending_node, \
							      seq_node); pn; pn = NULL)

/* Forgets the views whose last txn has seq <= seq. */
void pending_retire(struct pending *p, uint64_t seq);
