/* tree: see tree.h. */
#include "tree.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "crc32.h"

#define TREE_INITIAL_BUCKETS 1024
#define PATH_ROOM_INITIAL 256

struct tree_path_room {
	size_t size;		/* bytes at buf: the longest path and its NUL */
	char buf[];
};

static uint64_t path_hash(const struct tree *t, const char *path, size_t len)
{
	return hash_bytes(&t->key, path, len);
}

static bool is_root(const struct znode *n)
{
	return !n->parent;
}

size_t znode_path_len(const struct znode *n)
{
	if (is_root(n))
		return 1;
	size_t len = 0;
	for (; !is_root(n); n = znode_parent(n))
		len += 1 + n->name_len;
	return len;
}

void znode_path_write(const struct znode *n, char *buf, size_t len)
{
	buf[len] = 0;
	if (is_root(n)) {
		buf[0] = '/';
		return;
	}
	/* from the end: the node's name, its parent's before it, ... */
	for (; !is_root(n); n = znode_parent(n)) {
		ASSERT(len >= 1u + n->name_len);
		len -= n->name_len;
		memcpy(buf + len, n->name, n->name_len);
		buf[--len] = '/';
	}
	ASSERT(len == 0);
}

const char *tree_path(const struct tree *t, const struct znode *n, size_t *len)
{
	size_t l = znode_path_len(n);
	struct tree_path_room *room = t->path_room;
	ASSERT(l < room->size);	/* tree_add made room for every node's path */
	znode_path_write(n, room->buf, l);
	if (len)
		*len = l;
	return room->buf;
}

bool znode_path_is(const struct znode *n, const char *path, size_t len)
{
	if (is_root(n))
		return len == 1 && path[0] == '/';
	for (; !is_root(n); n = znode_parent(n)) {
		size_t name_len = n->name_len;
		if (len < name_len + 1 || path[len - name_len - 1] != '/' ||
		    memcmp(path + len - name_len, n->name, name_len) != 0)
			return false;
		len -= name_len + 1;
	}
	return len == 0;
}

/* Room in the tree's path room for a path of len bytes. 0 or -ENOMEM. */
static int path_room_reserve(struct tree *t, size_t len)
{
	struct tree_path_room *room = t->path_room;
	if (room && len < room->size)
		return 0;
	size_t size = room ? room->size : PATH_ROOM_INITIAL;
	while (size <= len)
		size *= 2;
	room = realloc(room, sizeof(*room) + size);
	if (!room)
		return -ENOMEM;
	room->size = size;
	t->path_room = room;
	return 0;
}

static uint64_t node_hash(const struct tree *t, const struct znode *n)
{
	size_t len;
	const char *path = tree_path(t, n, &len);
	return path_hash(t, path, len);
}

static uint64_t hash_of(const struct ref_table *nodes, uint32_t ref)
{
	const struct tree *t = container_of(nodes, struct tree, nodes);
	return node_hash(t, slab_deref(ref));
}

int tree_reserve(struct tree *t, size_t count)
{
	return ref_table_reserve(&t->nodes, count);
}

/* The fields before the name: 7 references, 2 64-bit and 2 32-bit
 * fields and the slot's size, with no padding (README: "What a znode
 * costs"). */
_Static_assert(offsetof(struct znode, name) == 54,
	       "a znode's fixed part grew");

/* The slot: room for the data a node is made with, and for the address of
 * a buffer of its own when later data outgrows it. */
#define DATA_SLOT_MIN sizeof(uint8_t *)
#define DATA_SLOT_MAX UINT16_MAX

static uint8_t *data_slot(struct znode *n)
{
	return (uint8_t *)n->name + n->name_len + 1;
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

static struct znode *node_at(uint32_t ref)
{
	return slab_deref(ref);
}

/* n's reference: to the node, after what precedes it in its chunk. */
static uint32_t node_ref(const struct znode *n)
{
	return slab_ref_at((const char *)n - prefix_bytes(znode_owner(n)), n);
}

/* The bytes of n's allocation: what precedes it, its fields, name, NUL
 * and data slot. */
static size_t node_bytes(int64_t owner, size_t name_len, size_t slot)
{
	return prefix_bytes(owner) + offsetof(struct znode, name) + name_len + 1 + slot;
}

/* One allocation from the tree's slabs (no malloc header): [the
 * ephemeral's session link] [owner] node, name, NUL, data slot. The data
 * is the caller's to copy in. */
static struct znode *node_new(struct tree *t, const char *name, size_t len, int32_t data_len,
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
	memcpy(n->name, name, len);
	n->name[len] = 0;
	n->name_len = (uint32_t)len & 0x7fffffffu;
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
	slab_free(&t->slab, znode_kids(n), sizeof(struct znode_kids));
	slab_free(&t->slab, slab_deref(n->mod), sizeof(struct znode_mod));
	if (data_outside(n)) {
		ASSERT(t->outside_bytes >= outside_bytes(n->data_len));
		t->outside_bytes -= outside_bytes(n->data_len);
		free(data_outside(n));
	}
	slab_free(&t->slab, (char *)n - prefix_bytes(owner), node_bytes(owner, n->name_len, n->data_slot));
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
	t->digest_epoch = 1;
	r = hash_key_random(&t->key);
	if (r < 0)
		return r;
	r = acl_table_init(&t->acls);
	if (r < 0)
		return r;
	r = ref_table_init(&t->nodes, TREE_INITIAL_BUCKETS, offsetof(struct znode, hash_next), hash_of);
	if (r == 0)
		r = path_room_reserve(t, 1);
	t->root = r < 0 ? NULL : node_new(t, "", 0, 0, 0);
	if (!t->root) {
		tree_free(t);
		return -ENOMEM;
	}
	t->root->data_len = 0;
	t->root->acl = slab_ref(acl_ref(t->acls.open_acl));
	ref_table_insert(&t->nodes, node_ref(t->root), path_hash(t, "/", 1));
	t->digest = tree_node_digest(t, t->root);
	return 0;
}

void tree_free(struct tree *t)
{
	if (t->nodes.buckets) {
		ref_table_for_each_safe(&t->nodes, r, tmp) {
			struct znode *n = slab_deref(r);
			acl_unref(&t->acls, znode_acl(n));
			node_free(t, n);
		}
		ASSERT(t->outside_bytes == 0);
		ref_table_free(&t->nodes);
	}
	slab_destroy(&t->slab);
	if (t->acls.lists.buckets)
		acl_table_free(&t->acls);
	free(t->path_room);
	memset(t, 0, sizeof(*t));
}

uint64_t tree_path_hash(const struct tree *t, const char *path, size_t len)
{
	return path_hash(t, path, len);
}

struct znode *tree_lookup_hashed(const struct tree *t, const char *path, size_t len,
				 uint64_t hash)
{
	for (uint32_t r = ref_table_bucket(&t->nodes, hash); r; r = *ref_table_link(&t->nodes, r)) {
		struct znode *n = slab_deref(r);
		if (znode_path_is(n, path, len))
			return n;
	}
	return NULL;
}

struct znode *tree_lookup(const struct tree *t, const char *path, size_t len)
{
	return tree_lookup_hashed(t, path, len, path_hash(t, path, len));
}

struct znode_kids *tree_kids(struct tree *t, struct znode *n)
{
	if (!n->kids) {
		struct znode_kids *k = slab_alloc(&t->slab, sizeof(*k));
		if (!k)
			return NULL;
		k->pzxid = n->czxid;
		n->kids = slab_ref(k);
	}
	return znode_kids(n);
}

static void child_append(struct znode_kids *k, struct znode *parent, struct znode *child)
{
	uint32_t ref = node_ref(child);
	ASSERT(!child->parent && (k->first != 0) == (k->count > 0));
	child->parent = node_ref(parent);
	child->next_sibling = 0;
	if (!k->first) {
		k->first = ref;
		child->prev_sibling = ref;
	} else {
		struct znode *first = node_at(k->first);
		struct znode *last = node_at(first->prev_sibling);
		last->next_sibling = ref;
		child->prev_sibling = first->prev_sibling;
		first->prev_sibling = ref;
	}
	k->count++;
}

static void child_unlink(struct znode_kids *k, struct znode *child)
{
	ASSERT(k->count > 0 && k->first);
	struct znode *first = node_at(k->first);
	if (child == first) {
		k->first = child->next_sibling;
		if (k->first)
			node_at(k->first)->prev_sibling = child->prev_sibling;
	} else {
		node_at(child->prev_sibling)->next_sibling = child->next_sibling;
		if (child->next_sibling)
			node_at(child->next_sibling)->prev_sibling = child->prev_sibling;
		else
			first->prev_sibling = child->prev_sibling;
	}
	k->count--;
	child->parent = 0;
}

struct znode *tree_add(struct tree *t, struct znode *parent, const char *path, size_t len,
		       const void *data, int32_t data_len, struct acl_list *acl, int64_t owner,
		       int64_t zxid, int64_t time_ms)
{
	/* A node's parent is the node of its path's parent: one tree, no orphans. */
	const char *name = memrchr(path, '/', len);
	ASSERT(parent && name && name + 1 < path + len);
	name++;
	size_t dir_len = (size_t)(name - 1 - path);
	ASSERT(dir_len ? znode_path_is(parent, path, dir_len) : is_root(parent));
	if (path_room_reserve(t, len) < 0)
		return NULL;
	struct znode_kids *kids = tree_kids(t, parent);
	if (!kids)
		return NULL;
	struct znode *n = node_new(t, name, (size_t)(path + len - name), data_len, owner);
	if (!n)
		return NULL;
	if (node_store_data(t, n, data, data_len) < 0) {
		node_free(t, n);
		return NULL;
	}
	n->acl = slab_ref(acl_ref(acl));
	n->czxid = zxid;
	n->ctime = time_ms;
	uint64_t h = path_hash(t, path, len);
	child_append(kids, parent, n);
	ref_table_insert(&t->nodes, node_ref(n), h);
	if (!t->digest_deferred)
		t->digest += tree_node_digest(t, n);
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
	struct znode *parent = znode_parent(node);
	ASSERT(t->changing != node);
	if (!t->digest_deferred)
		t->digest -= tree_node_digest(t, node);
	ref_table_remove(&t->nodes, node_ref(node), node_hash(t, node));
	ASSERT(parent && parent->kids);
	child_unlink(znode_kids(parent), node);
	t->data_bytes -= node->data_len > 0 ? (uint64_t)node->data_len : 0;
	if (znode_owner(node) < 0)
		t->reapable_count--;
	acl_unref(&t->acls, znode_acl(node));
	node_free(t, node);
}

void tree_set_acl(struct tree *t, struct znode *node, struct acl_list *acl)
{
	struct acl_list *old = znode_acl(node);
	node->acl = slab_ref(acl_ref(acl));
	acl_unref(&t->acls, old);
}

uint64_t tree_memory_bytes(const struct tree *t)
{
	return t->slab.held_bytes + t->outside_bytes + sizeof(*t->path_room) + t->path_room->size +
	       (uint64_t)t->nodes.bucket_count * sizeof(*t->nodes.buckets);
}

struct znode_mod *tree_mod(struct tree *t, struct znode *n)
{
	if (!n->mod) {
		struct znode_mod *m = slab_alloc(&t->slab, sizeof(*m));
		if (!m)
			return NULL;
		m->mzxid = n->czxid;
		m->mtime = n->ctime;
		n->mod = slab_ref(m);
	}
	return slab_deref(n->mod);
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
	node->ctime = p->ctime;
	if (node->mod || p->mzxid != p->czxid || p->mtime != p->ctime || p->version ||
	    p->aversion) {
		struct znode_mod *m = tree_mod(t, node);
		if (!m)
			return -ENOMEM;
		m->mzxid = p->mzxid;
		m->mtime = p->mtime;
		m->version = p->version;
		m->aversion = p->aversion;
	}
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

/* Under /zookeeper/ (not the node itself): its ancestor just below the
 * root is /zookeeper. */
static bool digest_excluded(const struct znode *n)
{
	static const char name[] = "zookeeper";
	if (is_root(n) || is_root(znode_parent(n)))
		return false;
	do
		n = znode_parent(n);
	while (!is_root(znode_parent(n)));
	return n->name_len == sizeof(name) - 1 && memcmp(n->name, name, sizeof(name) - 1) == 0;
}

/* The stat as ZooKeeper's digest hashes it (its StatPersisted, big-endian). */
#define DIGEST_STAT_BYTES 60

static void digest_stat(const struct znode *n, uint8_t *b)
{
	struct zk_stat st;
	znode_stat(n, &st);
	uint8_t *p = b;
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
	ASSERT(p == b + DIGEST_STAT_BYTES);
}

/* The digest's CRC is over the path, the data, then the stat. The root's
 * path is "" there ("/" and "" are one node in ZooKeeper's digest). */
static size_t digest_path_len(const struct znode *n)
{
	return is_root(n) ? 0 : znode_path_len(n);
}

/* A node whose path, data and stat fit here is hashed with one CRC call
 * over a copy of the three (the same CRC as three calls in a row): a
 * call's fixed cost is most of what a short input costs, and copying 200
 * bytes is less than two more calls. */
#define DIGEST_ONE_CALL_BYTES 512

static bool digest_in_one_call(const struct znode *n, size_t path_len)
{
	size_t data_len = n->data_len > 0 ? (size_t)n->data_len : 0;
	return path_len + data_len + DIGEST_STAT_BYTES <= DIGEST_ONE_CALL_BYTES;
}

static uint32_t digest_one_call(const struct znode *n, size_t path_len)
{
	uint8_t b[DIGEST_ONE_CALL_BYTES + 1];	/* + the NUL znode_path_write() ends with */
	size_t len = path_len;
	if (path_len > 0)
		znode_path_write(n, (char *)b, path_len);
	if (n->data_len > 0) {
		memcpy(b + len, znode_data(n), (size_t)n->data_len);
		len += (size_t)n->data_len;
	}
	digest_stat(n, b + len);
	return corral_crc32(0, b, len + DIGEST_STAT_BYTES);
}

/* The CRC of the path and data alone (for a larger node), which a change
 * of the stat only (a parent's pzxid and creates) leaves as it was. */
static uint32_t digest_head(const struct tree *t, const struct znode *n)
{
	uint32_t crc = 0;
	if (!is_root(n)) {
		size_t len;
		const char *path = tree_path(t, n, &len);
		crc = corral_crc32(crc, path, len);
	}
	if (n->data_len > 0)
		crc = corral_crc32(crc, znode_data(n), (size_t)n->data_len);
	return crc;
}

static uint32_t digest_from_head(const struct znode *n, uint32_t head)
{
	uint8_t b[DIGEST_STAT_BYTES];
	digest_stat(n, b);
	return corral_crc32(head, b, sizeof(b));
}

/* n's digest (not excluded); of a larger node, *ret_head gets its head and
 * true is returned in *ret_head_valid. */
static uint32_t digest_of(const struct tree *t, const struct znode *n, uint32_t *ret_head,
			  bool *ret_head_valid)
{
	size_t path_len = digest_path_len(n);
	if (digest_in_one_call(n, path_len)) {
		*ret_head_valid = false;
		return digest_one_call(n, path_len);
	}
	*ret_head = digest_head(t, n);
	*ret_head_valid = true;
	return digest_from_head(n, *ret_head);
}

uint32_t tree_node_digest(const struct tree *t, const struct znode *n)
{
	uint32_t head;
	bool head_valid;
	return digest_excluded(n) ? 0 : digest_of(t, n, &head, &head_valid);
}

/* A larger node's path and data are hashed once for both digests (out and
 * back in) unless its data changes between: a child's create does not hash
 * its parent's data (up to 1 MB) twice. */
void tree_node_changing(struct tree *t, struct znode *n)
{
	if (t->digest_deferred)
		return;
	ASSERT(!t->changing);
	t->changing = n;
	t->changing_head_valid = false;
	if (digest_excluded(n))
		return;
	const struct znode_mod *m = n->mod ? znode_mod(n) : NULL;
	if (m && m->digest_epoch == t->digest_epoch) {
		t->digest -= m->digest;		/* as counted at its last change */
		return;
	}
	t->digest -= digest_of(t, n, &t->changing_head, &t->changing_head_valid);
}

void tree_node_changed(struct tree *t, struct znode *n)
{
	if (t->digest_deferred)
		return;
	ASSERT(t->changing == n);
	t->changing = NULL;
	if (digest_excluded(n))
		return;
	uint32_t head, d;
	bool head_valid;
	if (t->changing_head_valid)
		d = digest_from_head(n, t->changing_head);
	else
		d = digest_of(t, n, &head, &head_valid);
	t->digest += d;
	t->changing_head_valid = false;
	if (n->mod) {
		struct znode_mod *m = slab_deref(n->mod);
		m->digest = d;
		m->digest_epoch = t->digest_epoch;
	}
}

void tree_digest_unload(struct tree *t, struct znode *n)
{
	ASSERT(t->digest_deferred);
	t->digest -= tree_node_digest(t, n);
}

void tree_digest_loaded(struct tree *t, struct znode *n)
{
	ASSERT(t->digest_deferred);
	t->digest += tree_node_digest(t, n);
}

/* Forgets every digest kept in a node's modification part: fields were
 * set without tree_node_changing() and tree_node_changed(). */
static void digest_new_epoch(struct tree *t)
{
	if (++t->digest_epoch == 0)
		t->digest_epoch = 1;
}

void tree_digest_resume(struct tree *t)
{
	t->digest_deferred = false;
	digest_new_epoch(t);
}

void tree_digest_recompute(struct tree *t)
{
	t->digest_deferred = false;
	digest_new_epoch(t);
	t->digest = 0;
	tree_for_each_node(t, n)
		t->digest += tree_node_digest(t, n);
}

void znode_stat(const struct znode *n, struct zk_stat *ret)
{
	ret->czxid = n->czxid;
	ret->mzxid = znode_mzxid(n);
	ret->ctime = n->ctime;
	ret->mtime = znode_mtime(n);
	ret->version = znode_version(n);
	/* ZooKeeper's cversion counts child creates and deletes; we store creates
	 * (the sequential counter), and deletes = creates - children. Unsigned
	 * arithmetic: both wrap like Java ints. */
	ret->cversion = (int32_t)((uint32_t)znode_child_creates(n) * 2u -
				  (uint32_t)znode_num_children(n));
	ret->aversion = znode_aversion(n);
	ret->ephemeral_owner = znode_is_ephemeral(n) ? znode_owner(n) : 0;
	ret->data_length = n->data_len > 0 ? n->data_len : 0;
	ret->num_children = znode_num_children(n);
	ret->pzxid = znode_pzxid(n);
}
