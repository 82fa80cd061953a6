/* snapshot: see snapshot.h. */
#include "snapshot.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <zlib.h>

#include "archive.h"
#include "session.h"
#include "quota.h"
#include "tree.h"

#define SNAP_MAGIC "CORRALSN"
#define SNAP_END_MAGIC "CORRALSE"
#define SNAP_VERSION 1
#define SNAP_TRAILER_BYTES 16
/* A node's fields with a one-byte path, no data: path length and byte,
 * data length, ACL number, czxid, mzxid, pzxid, ctime, mtime, version,
 * cversion, aversion, owner. */
#define SNAP_NODE_MIN_BYTES (4 + 1 + 4 + 8 + 5 * 8 + 3 * 4 + 8)

/* A buffered writer that keeps a running crc32 (over each buffer as it is
 * flushed, not field by field) and starts writeback every few MiB, so the
 * final fsync is short and the log's fdatasyncs don't queue behind a
 * snapshot-sized flush. */
#define OUT_WRITEBACK_BYTES (8u << 20)
struct out {
	int fd;
	uint8_t buf[1 << 20];
	size_t len;
	size_t crc_len;		/* bytes of buf already in crc */
	uLong crc;
	int error;
	off_t written, writeback_from;
};

static void out_crc(struct out *o)
{
	o->crc = crc32_z(o->crc, o->buf + o->crc_len, o->len - o->crc_len);
	o->crc_len = o->len;
}

static void out_flush(struct out *o)
{
	out_crc(o);
	o->crc_len = 0;
	size_t off = 0;
	while (off < o->len && !o->error) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			o->error = n < 0 ? errno : EIO;
		else
			off += (size_t)n;
	}
	o->written += (off_t)off;
	o->len = 0;
	if (!o->error && o->written - o->writeback_from >= (off_t)OUT_WRITEBACK_BYTES) {
		sync_file_range(o->fd, o->writeback_from, o->written - o->writeback_from,
				SYNC_FILE_RANGE_WRITE);
		o->writeback_from = o->written;
	}
}

static void out_bytes(struct out *o, const void *p, size_t n)
{
	const uint8_t *s = p;
	while (n > 0) {
		if (o->len == sizeof(o->buf))
			out_flush(o);
		size_t k = sizeof(o->buf) - o->len < n ? sizeof(o->buf) - o->len : n;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
	}
}

static void out_u32(struct out *o, uint32_t v) { v = htobe32(v); out_bytes(o, &v, 4); }
static void out_u64(struct out *o, uint64_t v) { v = htobe64(v); out_bytes(o, &v, 8); }
static void out_str(struct out *o, const char *s, uint32_t len) { out_u32(o, len); out_bytes(o, s, len); }

static void write_state(struct out *o, const struct wal_identity *id, const struct state *st,
			const struct snapshot_meta *m)
{
	out_bytes(o, SNAP_MAGIC, 8);
	out_u32(o, SNAP_VERSION);
	out_u32(o, 0);
	out_bytes(o, id->cluster_id, WAL_CLUSTER_ID_BYTES);
	out_u64(o, id->server_id);
	out_u64(o, m->index);
	out_u64(o, m->term);
	out_u64(o, m->conf_index);
	out_u32(o, m->conf_len);
	out_bytes(o, m->conf, m->conf_len);

	const struct session_table *sessions = &st->sessions;
	out_u64(o, sessions->by_id.count);
	session_for_each(sessions, s) {
		out_u64(o, (uint64_t)s->id);
		out_u32(o, s->timeout_ms);
		out_bytes(o, s->password, ZK_PASSWORD_BYTES);
	}

	/* ACL lists once each; nodes refer to them by number. This runs in the
	 * child, on its own copy of memory: the hash field becomes the number. */
	const struct acl_table *acls = &st->tree.acls;
	out_u64(o, acls->lists.count);
	uint64_t next = 0;
	acl_table_for_each(acls, l) {
		l->hash = next++;
		out_u32(o, l->count);
		for (uint32_t k = 0; k < l->count; k++) {
			out_u32(o, (uint32_t)l->entries[k].perms);
			out_str(o, l->entries[k].scheme, (uint32_t)strlen(l->entries[k].scheme));
			out_str(o, l->entries[k].id, (uint32_t)strlen(l->entries[k].id));
		}
	}

	/* Nodes in pre-order: a parent always comes before its children. */
	out_u64(o, st->tree.nodes.count);
	const struct znode *root = st->tree.root, *n = root;
	while (n) {
		out_str(o, n->path, n->path_len);
		out_u32(o, (uint32_t)n->data_len);
		if (n->data_len > 0)
			out_bytes(o, n->data, (size_t)n->data_len);
		out_u64(o, n->acl->hash);
		out_u64(o, (uint64_t)n->czxid);
		out_u64(o, (uint64_t)n->mzxid);
		out_u64(o, (uint64_t)n->pzxid);
		out_u64(o, (uint64_t)n->ctime);
		out_u64(o, (uint64_t)n->mtime);
		out_u32(o, (uint32_t)n->version);
		out_u32(o, (uint32_t)n->child_creates);
		out_u32(o, (uint32_t)n->aversion);
		out_u64(o, (uint64_t)n->owner);
		if (n->first_child) {
			n = n->first_child;
			continue;
		}
		while (n && n != root && !n->next_sibling)
			n = n->parent;
		n = (n && n != root) ? n->next_sibling : NULL;
	}
	out_crc(o);
	uLong crc = o->crc;
	out_bytes(o, SNAP_END_MAGIC, 8);
	out_u32(o, (uint32_t)crc);
	out_u32(o, 0);
	out_flush(o);
}

static int snap_dir(const char *data_dir, bool create, char *out, size_t size)
{
	snprintf(out, size, "%s/snap", data_dir);
	if (create && mkdir(out, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Test builds: CORRAL_FAULT_SNAPSHOT_STOP=1 stops the child (SIGSTOP) once
 * its temp file is whole and synced, just before it would publish it, so a
 * test can kill the server at the worst moment. */
static void fault_stop_before_publish(void)
{
#ifdef CORRAL_FAULT_INJECTION
	const char *v = getenv("CORRAL_FAULT_SNAPSHOT_STOP");
	if (v && strcmp(v, "1") == 0)
		raise(SIGSTOP);
#endif
}

pid_t snapshot_start(const char *data_dir, const struct wal_identity *id, const struct state *st,
		     const struct snapshot_meta *m)
{
	char dir[4096];
	int r = snap_dir(data_dir, true, dir, sizeof(dir));
	if (r < 0)
		return r;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;

	/* The child: write, sync, publish, exit. It dies with the server (a
	 * kill -9 of corrald must not leave it writing, nor let it publish a
	 * snapshot under the next corrald on this data directory); a server
	 * gone before this line is seen by getppid(). (The signal comes when
	 * the thread that forked ends: corrald forks from its one loop thread.) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(4);
	/* It drops every descriptor it inherited (the data directory's lock,
	 * the listening sockets, the ring): a restarted server must not find
	 * them held. */
	close_range(3, ~0U, 0);
	/* The server's log writes come first on the disk (the lowest
	 * best-effort I/O priority, where the I/O scheduler honours it). Not a
	 * lower CPU priority: while the child lives, every page the server
	 * writes is copied (copy-on-write), so a child that finishes sooner
	 * costs the server less (nice 10 vs 0 on setData at 1M znodes: p99 5.3 vs
	 * 4.2 ms in one run each, within this machine's noise). */
	(void)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (2 << 13) | 7 /* BE, 7 */);
	char tmp[4200], final[4200];
	snprintf(tmp, sizeof(tmp), "%s/%016llx.snap.tmp", dir, (unsigned long long)m->index);
	snprintf(final, sizeof(final), "%s/%016llx.snap", dir, (unsigned long long)m->index);
	struct out *o = calloc(1, sizeof(*o));
	if (!o)
		_exit(12);
	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (o->fd < 0)
		_exit(2);
	o->crc = crc32(0L, Z_NULL, 0);
	write_state(o, id, st, m);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->error || fsync(o->fd) < 0 || close(o->fd) < 0 || dfd < 0) {
		unlink(tmp);
		_exit(3);
	}
	fault_stop_before_publish();
	/* Publish only for the server that asked: should the death signal
	 * ever come late, a snapshot appearing under the next server would
	 * break its count of kept snapshots. */
	if (getppid() != parent) {
		unlink(tmp);
		_exit(4);
	}
	if (rename(tmp, final) < 0 || fsync(dfd) < 0) {
		unlink(tmp);
		_exit(3);
	}
	_exit(0);
}

int snapshot_remove_temp_files(const char *data_dir, unsigned *ret_removed)
{
	char dir[4096];
	unsigned removed = 0;
	int r = 0;
	snap_dir(data_dir, false, dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno != ENOENT)
			return -errno;
		*ret_removed = 0;
		return 0;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".tmp") != 0)
			continue;
		if (unlinkat(dfd, e->d_name, 0) < 0) {
			if (errno != ENOENT) {
				r = -errno;
				break;
			}
			continue;
		}
		removed++;
	}
	if (r == 0 && removed > 0 && fsync(dfd) < 0)
		r = -errno;
	closedir(d);
	if (r == 0)
		*ret_removed = removed;
	return r;
}

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
static int check_file(const uint8_t *p, size_t len, const struct wal_identity *id, char *why,
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
	    be32toh(crc) != (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)(len - SNAP_TRAILER_BYTES))) {
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
		if (b->first_child) {
			b = b->first_child;
			continue;
		}
		while (b && !b->next_sibling)
			b = b->parent;
		b = b ? b->next_sibling : NULL;
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
	int64_t czxid, mzxid, pzxid, ctime, mtime;
	int32_t version, creates, aversion;
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
	n->czxid = (int64_t)in_u64(i);
	n->mzxid = (int64_t)in_u64(i);
	n->pzxid = (int64_t)in_u64(i);
	n->ctime = (int64_t)in_u64(i);
	n->mtime = (int64_t)in_u64(i);
	n->version = (int32_t)in_u32(i);
	n->creates = (int32_t)in_u32(i);
	n->aversion = (int32_t)in_u32(i);
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
	struct znode *parent = prev;
	while (parent && !(parent->path_len == parent_len &&
			   memcmp(parent->path, path, parent_len) == 0))
		parent = parent->parent;
	if (!parent)
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
				n->owner, n->czxid, n->ctime);
		if (!node)
			return -ENOMEM;
		if (znode_is_ephemeral(node)) {
			struct session *s = session_lookup(&ld->st->sessions, n->owner);
			if (s)
				session_link_ephemeral(s, node);
		}
	} else {
		if (tree_set_data(tree, node, n->data, n->dlen) < 0)
			return -ENOMEM;
		acl_unref(&tree->acls, node->acl);
		node->acl = acl_ref(ld->acls[n->acl_id]);
	}
	node->czxid = n->czxid;
	node->mzxid = n->mzxid;
	node->pzxid = n->pzxid;
	node->ctime = n->ctime;
	node->mtime = n->mtime;
	node->version = n->version;
	node->child_creates = n->creates;
	node->aversion = n->aversion;
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
	/* Nodes come with their fields set one by one: the digest is taken
	 * once, at the end, not per node added (and per child for a parent). */
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
	tree_digest_recompute(tree);
	if (r == 0)
		r = quota_recompute(tree);
	if (r == 0) {
		st->last_zxid = (int64_t)ret->index;
		state_note_digest(st);
	}
	return r;
}

struct snap_file {
	char name[32];
	uint64_t index;
};

static int snap_cmp_desc(const void *a, const void *b)
{
	const struct snap_file *x = a, *y = b;
	return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

static int list_snapshots(const char *dir, struct snap_file **ret, size_t *ret_count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct snap_file *list = NULL;
	size_t n = 0, cap = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		unsigned long long index;
		if (strlen(e->d_name) != 21 || sscanf(e->d_name, "%16llx.snap", &index) != 1 ||
		    strcmp(e->d_name + 16, ".snap") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			struct snap_file *l = realloc(list, cap * sizeof(*l));
			if (!l) {
				free(list);
				closedir(d);
				return -ENOMEM;
			}
			list = l;
		}
		memcpy(list[n].name, e->d_name, 22);
		list[n].index = index;
		n++;
	}
	closedir(d);
	/* An empty snap/ (a snapshot that failed on ENOSPC leaves one) has no
	 * list at all: qsort() must not be handed its NULL. */
	if (n > 1)
		qsort(list, n, sizeof(*list), snap_cmp_desc);
	*ret = list;
	*ret_count = n;
	return 0;
}

static int map_file(const char *path, uint8_t **ret, size_t *ret_len)
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

int snapshot_load_newest(const char *data_dir, const struct wal_identity *id, struct state *st,
			 struct snapshot_meta *ret, char *why, size_t why_size,
			 void (*skipped)(const char *file, const char *reason))
{
	char dir[4096], path[4200], reason[256];
	struct snap_file *list = NULL;
	size_t n = 0;
	memset(ret, 0, sizeof(*ret));
	snap_dir(data_dir, false, dir, sizeof(dir));
	int r = list_snapshots(dir, &list, &n);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", dir, strerror(-r));
		return r;
	}
	r = -ENOENT;
	for (size_t k = 0; k < n; k++) {
		uint8_t *p;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, list[k].name);
		if (map_file(path, &p, &len) < 0)
			continue;
		int c = check_file(p, len, id, reason, sizeof(reason));
		if (c == -EXDEV) {
			snprintf(why, why_size, "%s %s", path, reason);
			munmap(p, len);
			r = c;
			break;
		}
		if (c < 0) {
			if (skipped)
				skipped(path, reason);
			munmap(p, len);
			continue;
		}
		struct in i = { .p = p, .len = len - SNAP_TRAILER_BYTES };
		r = load_body(&i, st, ret);
		munmap(p, len);
		if (r < 0)
			snprintf(why, why_size, "%s: cannot load: %s", path,
				 r == -ENOMEM ? "out of memory" : "malformed contents");
		break;
	}
	free(list);
	return r;
}

uint64_t snapshot_purge(const char *data_dir, unsigned keep, const char *archive_dir,
			int *ret_archive_err)
{
	char dir[4096], path[4200];
	struct snap_file *list = NULL;
	size_t n = 0;
	*ret_archive_err = 0;
	snap_dir(data_dir, false, dir, sizeof(dir));
	if (list_snapshots(dir, &list, &n) < 0)
		return 0;
	int dfd = archive_dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	uint64_t oldest = 0;
	for (size_t k = 0; k < n; k++) {
		if (k < keep) {
			oldest = list[k].index;
			continue;
		}
		if (archive_dir) {
			int r = dfd < 0 ? -errno : archive_file(dfd, list[k].name, archive_dir, "snap");
			if (r < 0) {
				if (!*ret_archive_err)
					*ret_archive_err = r;
				continue;	/* kept until it is archived */
			}
		}
		snprintf(path, sizeof(path), "%s/%s", dir, list[k].name);
		unlink(path);
	}
	if (dfd >= 0)
		close(dfd);
	free(list);
	return oldest;
}

int snapshot_verify(const char *data_dir, const struct wal_identity *id, void *out_file)
{
	FILE *out = out_file;
	char dir[4096], path[4200], reason[256];
	struct snap_file *list = NULL;
	size_t n = 0;
	int bad = 0;
	snap_dir(data_dir, false, dir, sizeof(dir));
	if (list_snapshots(dir, &list, &n) < 0) {
		fprintf(out, "%s: no snapshots\n", dir);
		return 0;
	}
	for (size_t k = 0; k < n; k++) {
		uint8_t *p;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, list[k].name);
		if (map_file(path, &p, &len) < 0) {
			fprintf(out, "DAMAGED: %s: cannot read: %s\n", path, strerror(errno));
			bad = -EIO;
			continue;
		}
		if (check_file(p, len, id, reason, sizeof(reason)) < 0) {
			fprintf(out, "DAMAGED: %s: %s\n", path, reason);
			bad = -EBADMSG;
		} else {
			fprintf(out, "%s: index %llu, %zu bytes\n", path, (unsigned long long)list[k].index, len);
		}
		munmap(p, len);
	}
	free(list);
	return bad;
}

void snapshot_path(const char *data_dir, uint64_t index, char *out, size_t size)
{
	snprintf(out, size, "%s/snap/%016llx.snap", data_dir, (unsigned long long)index);
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

/* Writes the whole snapshot to fd with the buffered writer. Returns 0 or
 * a negative errno. */
static int write_to_fd(int fd, const struct wal_identity *id, const struct state *st,
		       const struct snapshot_meta *m)
{
	struct out *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->fd = fd;
	o->crc = crc32(0L, Z_NULL, 0);
	write_state(o, id, st, m);
	int r = -o->error;
	free(o);
	return r;
}

int snapshot_write_file(const char *path, const struct wal_identity *id, const struct state *st,
			const struct snapshot_meta *m)
{
	char tmp[4200], dir[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	/* write_state() numbers the ACL lists in their hash field (harmless
	 * in a child): here they are put back, as the table is keyed by them. */
	const struct acl_table *acls = &st->tree.acls;
	uint64_t *hashes = calloc(acls->lists.count + 1, sizeof(*hashes));
	size_t k = 0;
	if (!hashes)
		return -ENOMEM;
	acl_table_for_each(acls, l)
		hashes[k++] = l->hash;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	int r = fd < 0 ? -errno : write_to_fd(fd, id, st, m);
	k = 0;
	acl_table_for_each(acls, l)
		l->hash = hashes[k++];
	free(hashes);
	if (fd < 0)
		return r;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		r = -errno;
	if (dfd >= 0)
		close(dfd);
	return r;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

pid_t snapshot_stream_start(int fd, const void *prefix, size_t prefix_len,
			    const struct wal_identity *id, const struct state *st,
			    const struct snapshot_meta *m)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	/* The child, as snapshot_start()'s: dies with the server, keeps only
	 * the descriptor it writes to, yields the disk to the server's log. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(4);
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0U, 0);
	(void)syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 7);
	int r = write_all(fd, prefix, prefix_len);
	if (r == 0)
		r = write_to_fd(fd, id, st, m);
	/* The end of the stream (for a socket: after what is queued). */
	shutdown(fd, SHUT_RDWR);
	_exit(r == 0 ? 0 : 3);
}

int snapshot_load_file(const char *path, const struct wal_identity *id, struct state *st,
		       struct snapshot_meta *ret, char *why, size_t why_size)
{
	uint8_t *p;
	size_t len;
	char reason[256];
	memset(ret, 0, sizeof(*ret));
	int r = map_file(path, &p, &len);
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", path, strerror(-r));
		return r;
	}
	r = check_file(p, len, id, reason, sizeof(reason));
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", path, reason);
	} else {
		struct in i = { .p = p, .len = len - SNAP_TRAILER_BYTES };
		r = load_body(&i, st, ret);
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
	int r = map_file(path, &p, &len);
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", path, strerror(-r));
		return r;
	}
	r = check_file(p, len, NULL, reason, sizeof(reason));
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

int snapshot_find(const char *data_dir, uint64_t max_index, char *ret_path, size_t size,
		  uint64_t *ret_index)
{
	char dir[4096];
	struct snap_file *list = NULL;
	size_t n = 0;
	snap_dir(data_dir, false, dir, sizeof(dir));
	int r = list_snapshots(dir, &list, &n);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t k = 0; k < n; k++) {
		if (list[k].index > max_index)
			continue;
		snprintf(ret_path, size, "%s/%s", dir, list[k].name);
		*ret_index = list[k].index;
		r = 0;
		break;
	}
	free(list);
	return r;
}
