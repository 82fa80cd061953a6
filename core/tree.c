/* tree: see tree.h. */
#include "tree.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "crc32.h"

#define TREE_INITIAL_BUCKETS 1024

static uint64_t path_hash(const struct tree *t, const char *path, size_t len)
{
	return hash_bytes(&t->key, path, len);
}

static uint64_t hash_of(const struct hash_table *nodes, const struct hash_node *hn)
{
	const struct tree *t = container_of(nodes, struct tree, nodes);
	const struct znode *n = container_of(hn, struct znode, hash_node);
	return path_hash(t, n->path, n->path_len);
}

int tree_reserve(struct tree *t, size_t count)
{
	return hash_table_reserve(&t->nodes, count);
}

/* The fields before the path, on 64-bit machines: 6 pointers, 4 64-bit and
 * 4 32-bit fields and the slot's size, with no padding (README: "What a
 * znode costs"). */
_Static_assert(sizeof(void *) != 8 || offsetof(struct znode, path) == 98,
	       "a znode's fixed part grew");

/* The slot: room for the data a node is made with, and for the address of
 * a buffer of its own when later data outgrows it. */
#define DATA_SLOT_MIN sizeof(uint8_t *)
#define DATA_SLOT_MAX UINT16_MAX

static uint8_t *data_slot(struct znode *n)
{
	return (uint8_t *)n->path + n->path_len + 1;
}

static uint8_t *data_outside(struct znode *n)
{
	return n->data_len > n->data_slot ? (uint8_t *)znode_data(n) : NULL;
}

/* What precedes a node with this owner in its allocation: the owner (none
 * for 0), and an ephemeral's link on its session's list before it. */
static size_t prefix_bytes(int64_t owner)
{
	if (!owner)
		return 0;
	return sizeof(int64_t) + (znode_owner_is_session(owner) ? sizeof(struct list_node) : 0);
}

/* The bytes of n's allocation: what precedes it, its fields, path, NUL
 * and data slot. */
static size_t node_bytes(int64_t owner, size_t path_len, size_t slot)
{
	return prefix_bytes(owner) + offsetof(struct znode, path) + path_len + 1 + slot;
}

/* One allocation from the tree's slabs (no malloc header): [the
 * ephemeral's session link] [owner] node, path, NUL, data slot. The data
 * is the caller's to copy in. */
static struct znode *node_new(struct tree *t, const char *path, size_t len, int32_t data_len,
			      int64_t owner)
{
	ASSERT(len < (1u << 31));
	size_t slot = data_len > 0 && (size_t)data_len <= DATA_SLOT_MAX ? (size_t)data_len : 0;
	if (slot < DATA_SLOT_MIN)
		slot = DATA_SLOT_MIN;
	size_t prefix = prefix_bytes(owner);
	char *base = slab_alloc(&t->slab, node_bytes(owner, len, slot));
	if (!base)
		return NULL;
	struct znode *n = (struct znode *)(base + prefix);
	if (owner) {
		memcpy((char *)n - sizeof(owner), &owner, sizeof(owner));
		n->owned = 1;
	}
	memcpy(n->path, path, len);
	n->path[len] = 0;
	n->path_len = (uint32_t)len & 0x7fffffffu;
	n->data_slot = (uint16_t)slot;
	n->data_len = -1;
	return n;
}

/* What malloc holds for a buffer of len bytes of data: the bytes, its
 * header and its rounding (glibc's: 8 bytes of header, 16-byte chunks,
 * 32 at least). */
static uint64_t outside_bytes(int32_t len)
{
	uint64_t chunk = ((uint64_t)len + 8 + 15) & ~UINT64_C(15);
	return chunk < 32 ? 32 : chunk;
}

static void node_free(struct tree *t, struct znode *n)
{
	int64_t owner = znode_owner(n);
	slab_free(&t->slab, n->kids, sizeof(*n->kids));
	if (data_outside(n)) {
		ASSERT(t->outside_bytes >= outside_bytes(n->data_len));
		t->outside_bytes -= outside_bytes(n->data_len);
		free(data_outside(n));
	}
	slab_free(&t->slab, (char *)n - prefix_bytes(owner), node_bytes(owner, n->path_len, n->data_slot));
}

/* Stores data (data_len bytes, or -1 for null) in n's slot, or in a buffer
 * of its own when it does not fit. Returns 0 or -ENOMEM (n unchanged). */
static int node_store_data(struct tree *t, struct znode *n, const void *data, int32_t data_len)
{
	uint8_t *old = data_outside(n), *outside = NULL;
	if (data_len > n->data_slot) {
		outside = malloc((size_t)data_len);
		if (!outside)
			return -ENOMEM;
		memcpy(outside, data, (size_t)data_len);
		memcpy(data_slot(n), &outside, sizeof(outside));
	} else if (data_len > 0) {
		memmove(data_slot(n), data, (size_t)data_len);
	}
	if (old) {
		ASSERT(t->outside_bytes >= outside_bytes(n->data_len));
		t->outside_bytes -= outside_bytes(n->data_len);
		free(old);
	}
	if (outside)
		t->outside_bytes += outside_bytes(data_len);
	n->data_len = data_len;
	return 0;
}

int tree_init(struct tree *t)
{
	int r;

	memset(t, 0, sizeof(*t));
	r = hash_key_random(&t->key);
	if (r < 0)
		return r;
	r = acl_table_init(&t->acls);
	if (r < 0)
		return r;
	r = hash_table_init(&t->nodes, TREE_INITIAL_BUCKETS, hash_of);
	t->root = r < 0 ? NULL : node_new(t, "/", 1, 0, 0);
	if (!t->root) {
		tree_free(t);
		return -ENOMEM;
	}
	t->root->data_len = 0;
	t->root->acl = acl_ref(t->acls.open_acl);
	hash_table_insert(&t->nodes, &t->root->hash_node, path_hash(t, "/", 1));
	t->digest = znode_digest(t->root);
	return 0;
}

void tree_free(struct tree *t)
{
	if (t->nodes.buckets) {
		hash_table_for_each_safe(&t->nodes, hn, tmp) {
			struct znode *n = container_of(hn, struct znode, hash_node);
			acl_unref(&t->acls, n->acl);
			node_free(t, n);
		}
		ASSERT(t->outside_bytes == 0);
		hash_table_free(&t->nodes);
	}
	slab_destroy(&t->slab);
	if (t->acls.lists.buckets)
		acl_table_free(&t->acls);
	memset(t, 0, sizeof(*t));
}

struct znode *tree_lookup(const struct tree *t, const char *path, size_t len)
{
	for (struct hash_node *hn = hash_table_bucket(&t->nodes, path_hash(t, path, len)); hn;
	     hn = hn->next) {
		struct znode *n = container_of(hn, struct znode, hash_node);
		if (n->path_len == len && memcmp(n->path, path, len) == 0)
			return n;
	}
	return NULL;
}

struct znode_kids *tree_kids(struct tree *t, struct znode *n)
{
	if (!n->kids) {
		n->kids = slab_alloc(&t->slab, sizeof(*n->kids));
		if (n->kids)
			n->kids->pzxid = n->czxid;
	}
	return n->kids;
}

static void child_append(struct znode_kids *k, struct znode *parent, struct znode *child)
{
	struct znode *first = k->first;
	ASSERT(!child->parent && (first != NULL) == (k->count > 0));
	child->parent = parent;
	child->next_sibling = NULL;
	if (!first) {
		k->first = child;
		child->prev_sibling = child;
	} else {
		struct znode *last = first->prev_sibling;
		last->next_sibling = child;
		child->prev_sibling = last;
		first->prev_sibling = child;
	}
	k->count++;
}

static void child_unlink(struct znode_kids *k, struct znode *child)
{
	struct znode *first = k->first;
	ASSERT(k->count > 0 && first);
	if (child == first) {
		k->first = child->next_sibling;
		if (k->first)
			k->first->prev_sibling = child->prev_sibling;
	} else {
		child->prev_sibling->next_sibling = child->next_sibling;
		if (child->next_sibling)
			child->next_sibling->prev_sibling = child->prev_sibling;
		else
			first->prev_sibling = child->prev_sibling;
	}
	k->count--;
	child->parent = NULL;
}

struct znode *tree_add(struct tree *t, struct znode *parent, const char *path, size_t len,
		       const void *data, int32_t data_len, struct acl_list *acl, int64_t owner,
		       int64_t zxid, int64_t time_ms)
{
	/* A node's parent is the node of its path's parent: one tree, no orphans. */
	ASSERT(parent && len > parent->path_len && memcmp(path, parent->path, parent->path_len) == 0);
	struct znode_kids *kids = tree_kids(t, parent);
	if (!kids)
		return NULL;
	struct znode *n = node_new(t, path, len, data_len, owner);
	if (!n)
		return NULL;
	if (node_store_data(t, n, data, data_len) < 0) {
		node_free(t, n);
		return NULL;
	}
	n->acl = acl_ref(acl);
	n->czxid = n->mzxid = zxid;
	n->ctime = n->mtime = time_ms;
	hash_table_insert(&t->nodes, &n->hash_node, path_hash(t, path, len));
	child_append(kids, parent, n);
	if (!t->digest_deferred)
		t->digest += znode_digest(n);
	t->data_bytes += data_len > 0 ? (uint64_t)data_len : 0;
	if (owner < 0)
		t->reapable_count++;
	return n;
}

void tree_remove(struct tree *t, struct znode *node)
{
	ASSERT(znode_num_children(node) == 0 && node != t->root);
	/* its session let go of it first */
	ASSERT(!znode_is_ephemeral(node) || !list_linked(znode_owner_node(node)));
	ASSERT(t->data_bytes >= (uint64_t)(node->data_len > 0 ? node->data_len : 0));
	ASSERT(znode_owner(node) >= 0 || t->reapable_count > 0);
	struct znode *parent = node->parent;
	ASSERT(t->changing != node);
	if (!t->digest_deferred)
		t->digest -= znode_digest(node);
	hash_table_remove(&t->nodes, &node->hash_node, path_hash(t, node->path, node->path_len));
	ASSERT(node->parent == parent && parent->kids);
	child_unlink(parent->kids, node);
	t->data_bytes -= node->data_len > 0 ? (uint64_t)node->data_len : 0;
	if (znode_owner(node) < 0)
		t->reapable_count--;
	acl_unref(&t->acls, node->acl);
	node_free(t, node);
}

uint64_t tree_memory_bytes(const struct tree *t)
{
	return t->slab.held_bytes + t->outside_bytes +
	       (uint64_t)t->nodes.bucket_count * sizeof(*t->nodes.buckets);
}

int tree_set_data(struct tree *t, struct znode *node, const void *data, int32_t data_len)
{
	/* Data that fits where the node's is now is overwritten in place: no
	 * malloc and free, and (while a snapshot child shares the memory) fewer
	 * pages touched, so fewer copy-on-write faults. Nothing keeps a node's
	 * data pointer across calls: replies copy it out when they are built. */
	ASSERT(t->digest_deferred || t->changing == node);
	t->changing_head_valid = false;		/* the data is not what was hashed */
	int32_t old_len = node->data_len;
	if (data_len > 0 && data_len == old_len) {
		memmove((uint8_t *)znode_data(node), data, (size_t)data_len);
	} else if (node_store_data(t, node, data, data_len) < 0) {
		return -ENOMEM;
	}
	ASSERT(t->data_bytes >= (uint64_t)(old_len > 0 ? old_len : 0));
	t->data_bytes -= old_len > 0 ? (uint64_t)old_len : 0;
	t->data_bytes += data_len > 0 ? (uint64_t)data_len : 0;
	return 0;
}

int tree_restore_stat(struct tree *t, struct znode *node, const struct znode_persisted *p)
{
	node->czxid = p->czxid;
	node->mzxid = p->mzxid;
	node->ctime = p->ctime;
	node->mtime = p->mtime;
	node->version = p->version;
	node->aversion = p->aversion;
	if (node->kids || p->pzxid != p->czxid || p->child_creates != 0) {
		struct znode_kids *k = tree_kids(t, node);
		if (!k)
			return -ENOMEM;
		k->pzxid = p->pzxid;
		k->creates = p->child_creates;
	}
	return 0;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
	store_be64(p, v);
	return p + 8;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
	store_be32(p, v);
	return p + 4;
}

static bool digest_excluded(const struct znode *n)
{
	static const char subtree[] = "/zookeeper/";
	return n->path_len >= sizeof(subtree) - 1 &&
	       memcmp(n->path, subtree, sizeof(subtree) - 1) == 0;
}

/* The digest's CRC is over the path, the data, then the stat: the first
 * two alone, which a change of the stat only (a parent's pzxid and
 * creates) leaves as they were. */
static uint32_t digest_head(const struct znode *n)
{
	/* The root is "" in ZooKeeper's digest ("/" and "" are one node there). */
	uint32_t crc = 0;
	if (n->path_len > 1)
		crc = corral_crc32(crc, n->path, n->path_len);
	if (n->data_len > 0)
		crc = corral_crc32(crc, znode_data(n), (size_t)n->data_len);
	return crc;
}

static uint32_t digest_from_head(const struct znode *n, uint32_t head)
{
	struct zk_stat st;
	znode_stat(n, &st);
	uint8_t b[60], *p = b;
	p = put_be64(p, (uint64_t)st.czxid);
	p = put_be64(p, (uint64_t)st.mzxid);
	p = put_be64(p, (uint64_t)st.pzxid);
	p = put_be64(p, (uint64_t)st.ctime);
	p = put_be64(p, (uint64_t)st.mtime);
	p = put_be32(p, (uint32_t)st.version);
	/* StatPersisted's cversion: the creates under the node (a client's
	 * cversion, creates * 2 - children, is derived from it) */
	p = put_be32(p, (uint32_t)znode_child_creates(n));
	p = put_be32(p, (uint32_t)st.aversion);
	/* StatPersisted's ephemeralOwner: the raw marker of containers and TTL nodes too */
	p = put_be64(p, (uint64_t)znode_owner(n));
	ASSERT(p == b + sizeof(b));
	return corral_crc32(head, b, sizeof(b));
}

uint32_t znode_digest(const struct znode *n)
{
	return digest_excluded(n) ? 0 : digest_from_head(n, digest_head(n));
}

/* The node's path and data are hashed once for both digests (out and back
 * in) unless its data changes between: a child's create does not hash
 * its parent's data (up to 1 MB) twice. */
void tree_node_changing(struct tree *t, struct znode *n)
{
	if (t->digest_deferred)
		return;
	ASSERT(!t->changing);
	t->changing = n;
	if (digest_excluded(n))
		return;
	t->changing_head = digest_head(n);
	t->changing_head_valid = true;
	t->digest -= digest_from_head(n, t->changing_head);
}

void tree_node_changed(struct tree *t, struct znode *n)
{
	if (t->digest_deferred)
		return;
	ASSERT(t->changing == n);
	t->changing = NULL;
	if (digest_excluded(n))
		return;
	uint32_t head = t->changing_head_valid ? t->changing_head : digest_head(n);
	t->changing_head_valid = false;
	t->digest += digest_from_head(n, head);
}

void tree_digest_unload(struct tree *t, struct znode *n)
{
	ASSERT(t->digest_deferred);
	t->digest -= znode_digest(n);
}

void tree_digest_loaded(struct tree *t, struct znode *n)
{
	ASSERT(t->digest_deferred);
	t->digest += znode_digest(n);
}

void tree_digest_resume(struct tree *t)
{
	t->digest_deferred = false;
}

void tree_digest_recompute(struct tree *t)
{
	t->digest_deferred = false;
	t->digest = 0;
	tree_for_each_node(t, n)
		t->digest += znode_digest(n);
}

void znode_stat(const struct znode *n, struct zk_stat *ret)
{
	ret->czxid = n->czxid;
	ret->mzxid = n->mzxid;
	ret->ctime = n->ctime;
	ret->mtime = n->mtime;
	ret->version = n->version;
	/* ZooKeeper's cversion counts child creates and deletes; we store creates
	 * (the sequential counter), and deletes = creates - children. Unsigned
	 * arithmetic: both wrap like Java ints. */
	ret->cversion = (int32_t)((uint32_t)znode_child_creates(n) * 2u -
				  (uint32_t)znode_num_children(n));
	ret->aversion = n->aversion;
	ret->ephemeral_owner = znode_is_ephemeral(n) ? znode_owner(n) : 0;
	ret->data_length = n->data_len > 0 ? n->data_len : 0;
	ret->num_children = znode_num_children(n);
	ret->pzxid = znode_pzxid(n);
}
