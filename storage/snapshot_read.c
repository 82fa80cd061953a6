/* snapshot_read: the snapshot format decoded: a file's framing and
 * checksum checked, its body loaded into a state (sessions, ACLs, nodes in
 * parent-before-child order, the digest and the quotas' stats computed
 * once at the end), its header or identity read without loading it. */
#include "snapshot.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32.h"
#include "quota.h"
#include "session.h"
#include "snapshot_format.h"
#include "tree.h"

/* A reader over a whole file in memory. */
struct in {
	const uint8_t *p;
	size_t len, pos;
	bool error;
};

static const uint8_t *in_take(struct in *i, size_t n)
{
	if (i->error || n > i->len - i->pos) {
		i->error = true;
		return NULL;
	}
	const uint8_t *p = i->p + i->pos;
	i->pos += n;
	return p;
}

static uint32_t in_u32(struct in *i)
{
	const uint8_t *p = in_take(i, 4);
	uint32_t v = 0;
	if (p)
		memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t in_u64(struct in *i)
{
	const uint8_t *p = in_take(i, 8);
	uint64_t v = 0;
	if (p)
		memcpy(&v, p, 8);
	return be64toh(v);
}

static char *in_str(struct in *i)
{
	uint32_t len = in_u32(i);
	const uint8_t *p = in_take(i, len);
	if (!p)
		return NULL;
	char *s = malloc((size_t)len + 1);
	if (s) {
		memcpy(s, p, len);
		s[len] = 0;
	}
	return s;
}

/* Checks a file's framing and checksum; on success points h at its body. */
int snapshot_check(const uint8_t *p, size_t len, const struct wal_identity *id, char *why,
		      size_t why_size)
{
	if (len < 60 + SNAP_TRAILER_BYTES || memcmp(p, SNAP_MAGIC, 8) != 0) {
		snprintf(why, why_size, "not a snapshot (bad magic at offset 0)");
		return -EBADMSG;
	}
	const uint8_t *t = p + len - SNAP_TRAILER_BYTES;
	uint32_t crc;
	memcpy(&crc, t + 8, 4);
	if (memcmp(t, SNAP_END_MAGIC, 8) != 0 ||
	    be32toh(crc) != corral_crc32(0, p, len - SNAP_TRAILER_BYTES)) {
		snprintf(why, why_size, "checksum mismatch (damaged or incomplete, %zu bytes)", len);
		return -EBADMSG;
	}
	/* The cluster only: the server id is the writer's, and a follower
	 * keeps the snapshots its leader sent it. */
	if (id && memcmp(p + 16, id->cluster_id, WAL_CLUSTER_ID_BYTES) != 0) {
		snprintf(why, why_size, "belongs to another cluster");
		return -EXDEV;
	}
	return 0;
}

/* The header's fields after the identity: the index and term the snapshot
 * ends at and the configuration then (copied to ret->conf). */
static int load_meta(struct in *i, struct snapshot_meta *ret)
{
	in_take(i, 8 + 4 + 4 + WAL_CLUSTER_ID_BYTES + 8);
	ret->index = in_u64(i);
	ret->term = in_u64(i);
	ret->conf_index = in_u64(i);
	ret->conf_len = in_u32(i);
	const uint8_t *conf = in_take(i, ret->conf_len);
	if (!conf)
		return -EBADMSG;
	ret->conf = malloc(ret->conf_len ? ret->conf_len : 1);
	if (!ret->conf)
		return -ENOMEM;
	memcpy(ret->conf, conf, ret->conf_len);
	return 0;
}

static int load_sessions(struct in *i, struct state *st)
{
	uint64_t n = in_u64(i);
	for (uint64_t k = 0; k < n && !i->error; k++) {
		int64_t sid = (int64_t)in_u64(i);
		uint32_t timeout = in_u32(i);
		const uint8_t *pw = in_take(i, ZK_PASSWORD_BYTES);
		if (!pw)
			return -EBADMSG;
		if (!session_add(&st->sessions, sid, timeout, pw, st->local_now_ms))
			return -ENOMEM;
	}
	return 0;
}

/* One list of the ACL table, interned into the tree's: *ret holds a
 * reference to it. */
static int load_acl(struct in *i, struct tree *tree, struct acl_list **ret)
{
	uint32_t entries = in_u32(i);
	if (i->error || entries > i->len)
		return -EBADMSG;
	struct acl_entry *e = calloc(entries ? entries : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	int r = 0;
	for (uint32_t x = 0; x < entries; x++) {
		e[x].perms = (int32_t)in_u32(i);
		e[x].scheme = in_str(i);
		e[x].id = in_str(i);
		if (!e[x].scheme || !e[x].id)
			r = i->error ? -EBADMSG : -ENOMEM;
	}
	if (r == 0) {
		*ret = acl_intern(&tree->acls, e, entries);
		if (!*ret)
			r = -ENOMEM;
	}
	for (uint32_t x = 0; x < entries; x++) {
		free(e[x].scheme);
		free(e[x].id);
	}
	free(e);
	return r;
}

/* Lists the nodes the tree starts with (/ and /zookeeper's), in pre-order:
 * the only ones a node of the file may already be. Returns false, listing
 * none, when there are more than max (then every node is looked up). */
static bool list_builtin(const struct tree *tree, const struct znode **builtin, size_t max,
			 size_t *ret_count)
{
	*ret_count = 0;
	if (tree->nodes.count > max)
		return false;
	for (const struct znode *b = tree->root; b;) {
		builtin[(*ret_count)++] = b;
		if (znode_first_child(b)) {
			b = znode_first_child(b);
			continue;
		}
		while (b && !b->next_sibling)
			b = znode_parent(b);
		b = b ? znode_next_sibling(b) : NULL;
	}
	return true;
}

/* A node as the file holds it; path and data point into the file. */
struct node_record {
	const char *path;
	uint32_t plen;
	const uint8_t *data;
	int32_t dlen;
	uint64_t acl_id;
	struct znode_persisted stat;
	int64_t owner;
};

/* Reads one node's fields; i->error says whether they were all there. */
static void read_node(struct in *i, struct node_record *n)
{
	n->plen = in_u32(i);
	n->path = (const char *)in_take(i, n->plen);
	n->dlen = (int32_t)in_u32(i);
	n->data = n->dlen > 0 ? in_take(i, (size_t)n->dlen) : NULL;
	n->acl_id = in_u64(i);
	n->stat.czxid = (int64_t)in_u64(i);
	n->stat.mzxid = (int64_t)in_u64(i);
	n->stat.pzxid = (int64_t)in_u64(i);
	n->stat.ctime = (int64_t)in_u64(i);
	n->stat.mtime = (int64_t)in_u64(i);
	n->stat.version = (int32_t)in_u32(i);
	n->stat.child_creates = (int32_t)in_u32(i);
	n->stat.aversion = (int32_t)in_u32(i);
	n->owner = (int64_t)in_u64(i);
}

/* The parent of path (not "/"): one of prev's ancestors, as the file is in
 * pre-order, else looked up. NULL when it is not in the tree. */
static struct znode *find_parent(struct tree *tree, struct znode *prev, const char *path,
				 size_t plen)
{
	size_t parent_len = 1;
	for (size_t x = plen; x-- > 1;)
		if (path[x] == '/') {
			parent_len = x;
			break;
		}
	if (parent_len == 1)
		return tree->root;
	/* The one of prev's ancestors as deep as the parent (its path's
	 * components) is the parent or none is. */
	size_t depth = 0, prev_depth = 0;
	for (size_t x = 0; x < parent_len; x++)
		depth += path[x] == '/';
	for (const struct znode *a = prev; a && a != tree->root; a = znode_parent(a))
		prev_depth++;
	struct znode *parent = prev;
	for (; parent && prev_depth > depth; prev_depth--)
		parent = znode_parent(parent);
	if (!parent || prev_depth != depth || !znode_path_is(parent, path, parent_len))
		parent = tree_lookup(tree, path, parent_len);
	return parent;
}

/* What loading the nodes keeps from one node to the next. */
struct node_loader {
	struct state *st;
	struct acl_list **acls;		/* the file's ACL table */
	const struct znode *builtin[16];
	size_t builtin_count;
	bool lookup_all;		/* the tree started with too many nodes to list */
	struct znode *prev;		/* the node loaded last */
};

/* Adds a node of the file to the tree, or updates the one the tree starts
 * with at its path. */
static int load_node(struct node_loader *ld, const struct node_record *n)
{
	struct tree *tree = &ld->st->tree;
	struct znode *node = NULL, *parent = NULL;
	if (n->plen == 1 && n->path[0] == '/') {
		node = tree->root;
	} else {
		/* a path the tree can hold: "/", a name, and no '/' at its end
		 * (an empty name, "//", finds no parent below) */
		if (n->plen < 2 || n->path[0] != '/' || n->path[n->plen - 1] == '/')
			return -EBADMSG;
		parent = find_parent(tree, ld->prev, n->path, n->plen);
		if (!parent)
			return -EBADMSG;	/* a child before its parent */
		bool may_exist = ld->lookup_all;
		for (size_t b = 0; b < ld->builtin_count && !may_exist; b++)
			may_exist = ld->builtin[b] == parent;
		if (may_exist)
			node = tree_lookup(tree, n->path, n->plen);
	}
	if (!node) {
		node = tree_add(tree, parent, n->path, n->plen, n->data, n->dlen, ld->acls[n->acl_id],
				n->owner, n->stat.czxid, n->stat.ctime);
		if (!node)
			return -ENOMEM;
		if (znode_is_ephemeral(node)) {
			struct session *s = session_lookup(&ld->st->sessions, n->owner);
			if (s)
				session_link_ephemeral(s, node);
		}
	} else {
		tree_digest_unload(tree, node);
		if (tree_set_data(tree, node, n->data, n->dlen) < 0)
			return -ENOMEM;
		tree_set_acl(tree, node, ld->acls[n->acl_id]);
	}
	if (tree_restore_stat(tree, node, &n->stat) < 0)
		return -ENOMEM;
	tree_digest_loaded(tree, node);
	ld->prev = node;
	return 0;
}

static int load_nodes(struct in *i, struct state *st, struct acl_list **acls, uint64_t acl_count)
{
	struct tree *tree = &st->tree;
	uint64_t nodes = in_u64(i);
	/* The count sizes the tree's table before any node is read: it must be
	 * one the file can hold, or a damaged count asks for gigabytes. */
	if (nodes > (i->len - i->pos) / SNAP_NODE_MIN_BYTES)
		return -EBADMSG;
	/* Loading is one hash insert per node: the table is sized once, parents
	 * are found among the previous node's ancestors (the file is in
	 * pre-order), and only the few nodes the tree starts with (/ and
	 * /zookeeper's) are looked up to be updated rather than added. */
	(void)tree_reserve(tree, tree->nodes.count + (size_t)nodes);
	struct node_loader ld = { .st = st, .acls = acls };
	ld.lookup_all = !list_builtin(tree, ld.builtin, sizeof(ld.builtin) / sizeof(*ld.builtin),
				      &ld.builtin_count);
	for (uint64_t k = 0; k < nodes; k++) {
		struct node_record n;
		read_node(i, &n);
		if (i->error || !n.path || n.plen == 0 || n.acl_id >= acl_count || n.dlen < -1)
			return -EBADMSG;
		int r = load_node(&ld, &n);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_body(struct in *i, struct state *st, struct snapshot_meta *ret)
{
	struct tree *tree = &st->tree;
	int r = load_meta(i, ret);
	if (r == 0)
		r = load_sessions(i, st);
	if (r < 0)
		return r;

	uint64_t acl_count = in_u64(i);
	if (i->error || acl_count > i->len)
		return -EBADMSG;
	/* Nodes come with their fields set one by one: each node's digest is
	 * taken once, when its last field is set (not per field, and not per
	 * child for a parent). */
	tree->digest_deferred = true;
	struct acl_list **acls = calloc(acl_count ? acl_count : 1, sizeof(*acls));
	r = acls ? 0 : -ENOMEM;
	for (uint64_t k = 0; k < acl_count && r == 0; k++)
		r = load_acl(i, tree, &acls[k]);
	if (r == 0)
		r = load_nodes(i, st, acls, acl_count);
	for (uint64_t k = 0; acls && k < acl_count; k++)
		acl_unref(&tree->acls, acls[k]);
	free(acls);
	if (r == 0 && i->error)
		r = -EBADMSG;
	if (r == 0)
		tree_digest_resume(tree);
	else
		tree_digest_recompute(tree);	/* consistent, for whoever frees it */
	if (r == 0)
		r = quota_recompute(tree);
	if (r == 0) {
		st->last_zxid = (int64_t)ret->index;
		state_note_digest(st);
	}
	return r;
}

int snapshot_load_body(const uint8_t *p, size_t len, struct state *st, struct snapshot_meta *ret)
{
	struct in i = { .p = p, .len = len - SNAP_TRAILER_BYTES };
	return load_body(&i, st, ret);
}

int snapshot_map(const char *path, uint8_t **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	void *p = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	*ret = p;
	*ret_len = (size_t)st.st_size;
	return 0;
}

int snapshot_read_header(const char *path, struct snapshot_meta *ret)
{
	uint8_t head[128];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, head, sizeof(head), 0);
	if (n < 40 + 28 || memcmp(head, SNAP_MAGIC, 8) != 0) {
		close(fd);
		return -EBADMSG;
	}
	struct in i = { .p = head, .len = (size_t)n, .pos = 40 };
	memset(ret, 0, sizeof(*ret));
	ret->index = in_u64(&i);
	ret->term = in_u64(&i);
	ret->conf_index = in_u64(&i);
	ret->conf_len = in_u32(&i);
	if (i.error || ret->conf_len > (1u << 24)) {
		close(fd);
		return -EBADMSG;
	}
	ret->conf = malloc(ret->conf_len ? ret->conf_len : 1);
	if (!ret->conf) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, ret->conf, ret->conf_len, 40 + 28);
	close(fd);
	if (n != (ssize_t)ret->conf_len) {
		free(ret->conf);
		ret->conf = NULL;
		return -EBADMSG;
	}
	return 0;
}

int snapshot_load_file(const char *path, const struct wal_identity *id, struct state *st,
		       struct snapshot_meta *ret, char *why, size_t why_size)
{
	uint8_t *p;
	size_t len;
	char reason[256];
	memset(ret, 0, sizeof(*ret));
	int r = snapshot_map(path, &p, &len);
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", path, strerror(-r));
		return r;
	}
	r = snapshot_check(p, len, id, reason, sizeof(reason));
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", path, reason);
	} else {
		r = snapshot_load_body(p, len, st, ret);
		if (r < 0)
			snprintf(why, why_size, "%s: cannot load: %s", path,
				 r == -ENOMEM ? "out of memory" : "malformed contents");
	}
	if (len)
		munmap(p, len);
	if (r < 0) {
		free(ret->conf);
		ret->conf = NULL;
	}
	return r;
}

int snapshot_file_identity(const char *path, struct wal_identity *ret, char *why, size_t why_size)
{
	uint8_t *p;
	size_t len;
	char reason[256];
	int r = snapshot_map(path, &p, &len);
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", path, strerror(-r));
		return r;
	}
	r = snapshot_check(p, len, NULL, reason, sizeof(reason));
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", path, reason);
	} else {
		memcpy(ret->cluster_id, p + 16, WAL_CLUSTER_ID_BYTES);
		uint64_t v;
		memcpy(&v, p + 32, 8);
		ret->server_id = be64toh(v);
	}
	if (len)
		munmap(p, len);
	return r;
}
