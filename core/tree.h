/* tree: the znode tree, corral's replicated data.
 *
 * Owns the znodes: a hash table from full path to node (every lookup is one
 * probe; a node keeps its name only, and the probe's candidate is checked
 * against the path's components up through its parents), and for each
 * node its children as a circular sibling list (append
 * and unlink are O(1); getChildren walks it in creation order).
 * The tree changes only through txn_apply() (txn.c); everything else reads.
 * It knows nothing of sessions, connections or watches. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "acl.h"
#include "assertions.h"
#include "hash.h"
#include "list.h"
#include "ref_table.h"
#include "slab.h"

/* ephemeralOwner markers, as ZooKeeper's EphemeralType encodes them. */
#define ZNODE_OWNER_CONTAINER ((int64_t)INT64_MIN)
#define ZNODE_OWNER_TTL_MASK ((int64_t)0xff00000000000000ULL)
#define ZNODE_TTL_MAX_MS ((int64_t)0x000000ffffffffffLL)

/* What only a node that has or had children needs. A leaf, most of a tree,
 * has none (znode->kids 0): no children, no creates under it (cversion
 * 0), its pzxid its czxid. Made with its first child (or by a loaded stat
 * that says otherwise), and kept: the creates and pzxid outlive the
 * children. */
struct znode_kids {
	uint32_t first;			/* its prev_sibling is the last */
	int32_t creates;		/* creates under the node: sequential suffix */
	int32_t count;			/* children now */
	int64_t pzxid;
};

/* What only a node changed after its create needs: its data's last
 * change (mzxid, mtime, version) and its ACL's version. A node never
 * changed, most of a tree (sequential nodes, locks, registrations), has
 * none (znode->mod 0): its mzxid is its czxid, its mtime its ctime, both
 * versions 0. Made by tree_mod() with the first change (or by a loaded
 * stat that says otherwise), and kept.
 *
 * A node changed once is likely to change again (a counter, a config, a
 * lock's holder): the part also keeps the node's digest as
 * tree_node_changed() last counted it, so that the next change takes it
 * out of the tree's digest without hashing the node again. It holds while
 * digest_epoch is the tree's (a load that sets fields directly moves the
 * tree's on). */
struct znode_mod {
	int64_t mzxid, mtime;
	int32_t version, aversion;
	uint32_t digest, digest_epoch;
};

/* One allocation per node, from the tree's slabs (base/slab.h: no header,
 * 8-byte rounding): the struct, its name (the path's last component; the
 * path is its parents' names: tree_path()) and, after it, its data's
 * slot (data_slot bytes, the data's size when the node was made, at least
 * 8). Data that outgrows the slot lives in a buffer of its own, whose
 * address the slot holds then (znode_data()). A node never moves: whatever
 * holds a struct znode * (sessions, the hash table, the child lists, the
 * reaper) keeps it until tree_remove(). Only a node with an owner (an
 * ephemeral node's session, a container's or TTL node's marker: ZooKeeper's
 * ephemeralOwner) has it, just before the struct in the same allocation
 * (znode_owner()), and only an ephemeral node its link on its session's list
 * before that (znode_owner_node()): the owner never changes after the
 * create. A persistent node, most of a tree, pays for neither. */
struct znode {
	/* Links to other nodes, to the children's and modification's parts and
	 * to the ACL are slab references (base/slab.h: 32 bits, not a
	 * pointer's 64): read them with znode_acl(), znode_parent(),
	 * znode_next_sibling(), znode_kids(), znode_mzxid() and the like. */
	uint32_t acl;			/* its interned list (core/acl.h) */
	uint32_t hash_next;		/* the tree's table, by path (base/ref_table.h) */
	uint32_t parent;		/* 0 for the root */
	uint32_t kids;			/* 0 for a leaf that never had children */
	uint32_t next_sibling;		/* 0 at the end of the list */
	uint32_t prev_sibling;		/* circular: the first's names the last */
	uint32_t mod;			/* 0 for a node never changed (znode_mod) */
	int32_t data_len;		/* -1: null data, kept distinct from empty */
	int64_t czxid, ctime;
	uint32_t name_len : 31;
	uint32_t owned : 1;		/* an owner precedes the struct (znode_owner()) */
	uint16_t data_slot;		/* bytes after the name's NUL for the data */
	char name[];			/* NUL-terminated ("" for the root), then the data's slot */
};


struct tree {
	struct ref_table nodes;		/* struct znode by path; nodes.count: how many */
	uint64_t data_bytes;	/* sum of data lengths, for mntr */
	/* Data kept in buffers of their own (grown past the node's slot): the
	 * bytes malloc holds for them, for tree_memory_bytes(). */
	uint64_t outside_bytes;
	size_t reapable_count;	/* containers and TTL nodes: the reaper scans only when > 0 */
	size_t quota_count;	/* quotas' limits nodes (quota.c): none, no lookups */
	/* ZooKeeper's tree digest: the sum, wrapping, of every node's digest
	 * (its NodeHashMapImpl), kept as nodes change. */
	uint64_t digest;
	/* Set while a snapshot loads (it sets every field directly): no
	 * digest is kept until tree_digest_recompute() clears it. */
	bool digest_deferred;
	/* The nodes' digests kept in their modification parts hold while
	 * their epoch is this one (never 0; a new one when deferral ends). */
	uint32_t digest_epoch;
	/* The node between tree_node_changing() and tree_node_changed(), and
	 * (a node too large for one CRC call) the CRC of its path and data
	 * while its data has not changed. */
	const struct znode *changing;
	uint32_t changing_head;
	bool changing_head_valid;
	struct hash_key key;
	struct znode *root;
	struct acl_table acls;
	struct slab_pool slab;	/* the nodes and their children's parts */
	/* Where tree_path() writes: room for the longest path the tree has
	 * held (made when the node is added, so that building a path never
	 * fails). A pointer, so that a const tree writes it too. */
	struct tree_path_room *path_room;
};

/* n's path, NUL-terminated (*len, unless len is NULL: its length), built from its and its
 * parents' names into the tree's room for it: good until the next call
 * of tree_path() or change of the tree. Never fails. */
const char *tree_path(const struct tree *t, const struct znode *n, size_t *len);
/* n's path's length, and the path itself written to buf (len bytes and a
 * NUL), for a caller that keeps it or holds two at once. */
size_t znode_path_len(const struct znode *n);
void znode_path_write(const struct znode *n, char *buf, size_t len);
/* Whether n's path is path (len bytes; "/" for the root). */
bool znode_path_is(const struct znode *n, const char *path, size_t len);

int tree_init(struct tree *t);
void tree_free(struct tree *t);

#define tree_for_each_node(t, n)						\
	ref_table_for_each(&(t)->nodes, n##_ref)				\
		for (struct znode *n = slab_deref(n##_ref); n; n = NULL)

struct znode *tree_lookup(const struct tree *t, const char *path, size_t len);
/* The hash of a path in the tree's table, and the lookup with it: for a
 * caller that looks one path up in several tables (core/pending.c). */
uint64_t tree_path_hash(const struct tree *t, const char *path, size_t len);
struct znode *tree_lookup_hashed(const struct tree *t, const char *path, size_t len,
				 uint64_t hash);
/* Sizes the hash table for count nodes at once (loading a snapshot), so
 * adding them never rehashes. Returns 0 or -ENOMEM (nothing changed then). */
int tree_reserve(struct tree *t, size_t count);
/* The bytes the tree holds: its slabs (nodes with their paths and the
 * data that fits their slots, children's parts, slabs kept empty), the
 * data in buffers of their own, and the hash table's buckets. What the
 * memory budget counts; within a batch of slabs of the RSS it costs. */
uint64_t tree_memory_bytes(const struct tree *t);

/* Adds a node under parent (which must exist; path must not). data is copied.
 * Takes a new reference to acl. Returns the node or NULL on allocation failure. */
struct znode *tree_add(struct tree *t, struct znode *parent, const char *path, size_t len,
		       const void *data, int32_t data_len, struct acl_list *acl, int64_t owner,
		       int64_t zxid, int64_t time_ms);
/* The Stat fields a snapshot keeps of a node, corral's and ZooKeeper's
 * alike (ZooKeeper's StatPersisted less the owner, which tree_add takes;
 * child_creates is its cversion). */
struct znode_persisted {
	int64_t czxid, mzxid, pzxid, ctime, mtime;
	int32_t version, child_creates, aversion;
};
/* Sets a node's fields to what a snapshot holds: loaders only (the digest
 * is left to tree_digest_loaded() or tree_digest_recompute(), as the tree
 * defers it while a snapshot loads). Returns 0 or -ENOMEM. */
int tree_restore_stat(struct tree *t, struct znode *node, const struct znode_persisted *p);
/* n's children's part (znode_kids), made on first use: for a caller that
 * sets the creates under n or its pzxid. NULL: out of memory. */
struct znode_kids *tree_kids(struct tree *t, struct znode *n);
/* Gives node the list acl (a new reference to it), letting go of its
 * old one. */
void tree_set_acl(struct tree *t, struct znode *node, struct acl_list *acl);
/* Unlinks and frees a node without children. */
void tree_remove(struct tree *t, struct znode *node);
/* n's modification part (znode_mod), made on first use: for a caller
 * that sets its mzxid, mtime, version or aversion (between
 * tree_node_changing() and tree_node_changed()). NULL: out of memory. */
struct znode_mod *tree_mod(struct tree *t, struct znode *n);
/* Replaces the data (copied), between tree_node_changing() and
 * tree_node_changed(). Returns 0 or -ENOMEM (node unchanged then). */
int tree_set_data(struct tree *t, struct znode *node, const void *data, int32_t data_len);

/* ZooKeeper's digest of a node (DigestCalculator, digest version 2): the
 * CRC-32 of its path ("" for the root), its data and its czxid, mzxid,
 * pzxid, ctime, mtime, version, cversion, aversion and ephemeralOwner, big
 * endian, as ZooKeeper stores them (StatPersisted: cversion counts the
 * creates under the node, ephemeralOwner holds the container and TTL
 * markers). Nodes under /zookeeper/ count 0, as in ZooKeeper. ACLs and
 * sessions are not in it. */
#define TREE_DIGEST_VERSION 2
uint32_t tree_node_digest(const struct tree *t, const struct znode *n);
/* A node keeps no digest of its own (8 bytes a node): the tree's sum takes
 * a node's digest out before the caller changes any field it covers, and
 * puts it back after, each computed from the node as it is then:
 *     tree_node_changing(t, n); ...change n's fields...; tree_node_changed(t, n);
 * One node at a time. tree_add() and tree_remove() count the node they add
 * or remove themselves; its parent's counters are the caller's change. */
void tree_node_changing(struct tree *t, struct znode *n);
void tree_node_changed(struct tree *t, struct znode *n);
/* The tree's digest from scratch (after a load that set the fields
 * directly); clears digest_deferred. */
void tree_digest_recompute(struct tree *t);
/* A loader that sets each node's fields once, whole, takes the digest node
 * by node instead, while the node is still in the cache (a walk of a big
 * tree afterwards is one cache miss after another): n's fields are final
 * and its digest is added to the tree's. A node that was there before the
 * load (a built-in one) is taken out first, with tree_digest_unload(),
 * before its fields are set. Then tree_digest_resume() ends the deferral. */
void tree_digest_unload(struct tree *t, struct znode *n);
void tree_digest_loaded(struct tree *t, struct znode *n);
void tree_digest_resume(struct tree *t);

void znode_stat(const struct znode *node, struct zk_stat *ret);
/* An ephemeralOwner that is a session's id (not a container or TTL marker). */
static inline bool znode_owner_is_session(int64_t owner)
{
	return owner > 0 && (owner & ZNODE_OWNER_TTL_MASK) != ZNODE_OWNER_TTL_MASK;
}
static inline struct acl_list *znode_acl(const struct znode *n)
{
	return slab_deref(n->acl);
}
static inline struct znode *znode_parent(const struct znode *n)
{
	return slab_deref(n->parent);
}
static inline struct znode *znode_next_sibling(const struct znode *n)
{
	return slab_deref(n->next_sibling);
}
/* Its children's part, NULL for a leaf that never had children. */
static inline struct znode_kids *znode_kids(const struct znode *n)
{
	return slab_deref(n->kids);
}
static inline struct znode *znode_first_child(const struct znode *n)
{
	return n->kids ? slab_deref(znode_kids(n)->first) : NULL;
}
static inline int32_t znode_num_children(const struct znode *n)
{
	return n->kids ? znode_kids(n)->count : 0;
}
/* StatPersisted's cversion: the creates under the node. */
static inline int32_t znode_child_creates(const struct znode *n)
{
	return n->kids ? znode_kids(n)->creates : 0;
}
static inline int64_t znode_pzxid(const struct znode *n)
{
	return n->kids ? znode_kids(n)->pzxid : n->czxid;
}
/* Its modification part, NULL for a node never changed since its create. */
static inline const struct znode_mod *znode_mod(const struct znode *n)
{
	return slab_deref(n->mod);
}
static inline int64_t znode_mzxid(const struct znode *n)
{
	return n->mod ? znode_mod(n)->mzxid : n->czxid;
}
static inline int64_t znode_mtime(const struct znode *n)
{
	return n->mod ? znode_mod(n)->mtime : n->ctime;
}
static inline int32_t znode_version(const struct znode *n)
{
	return n->mod ? znode_mod(n)->version : 0;
}
static inline int32_t znode_aversion(const struct znode *n)
{
	return n->mod ? znode_mod(n)->aversion : 0;
}
/* Its session's id, ZNODE_OWNER_CONTAINER, a TTL marker, or 0. */
static inline int64_t znode_owner(const struct znode *n)
{
	int64_t owner = 0;
	if (n->owned)
		memcpy(&owner, (const char *)n - sizeof(owner), sizeof(owner));
	return owner;
}
static inline bool znode_is_ephemeral(const struct znode *n)
{
	return znode_owner_is_session(znode_owner(n));
}
/* The node's data (data_len bytes; nothing to read when data_len <= 0). */
static inline const uint8_t *znode_data(const struct znode *n)
{
	const uint8_t *slot = (const uint8_t *)n->name + n->name_len + 1;
	if (n->data_len <= n->data_slot)
		return slot;
	const uint8_t *outside;
	memcpy(&outside, slot, sizeof(outside));
	return outside;
}
/* An ephemeral node's link on its owner's list of ephemerals (session.c). */
static inline struct list_node *znode_owner_node(struct znode *n)
{
	ASSERT(znode_is_ephemeral(n));
	return (struct list_node *)((char *)n - sizeof(int64_t) - sizeof(struct list_node));
}
static inline struct znode *znode_of_owner_node(const struct list_node *l)
{
	return (struct znode *)((char *)l + sizeof(struct list_node) + sizeof(int64_t));
}
static inline const char *znode_name(const struct znode *n)
{
	return n->name;
}
