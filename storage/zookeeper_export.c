/* zookeeper_export: corral's state as Apache ZooKeeper's snapshot, for a
 * rollback (zookeeper.h). The snapshot is what FileSnap.serialize writes:
 * a FileHeader ("ZKSN", version 2, dbid -1), the session table (id,
 * timeout), the ACL map (an id per distinct list), every node in pre-order
 * (path, data, ACL id, StatPersisted; the root's path is ""), the end mark
 * "/", and the Adler-32 seal. No digest: ZooKeeper then has none to compare
 * and computes its own. Beside it an empty log (a FileHeader only), where
 * ZooKeeper's next txns go.
 *
 * Each file is written to a temp file, fsynced and renamed, and the
 * directory fsynced. */
#include "zookeeper_format.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "tree.h"

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const struct acl_list *const *)a;
	uintptr_t y = (uintptr_t)*(const struct acl_list *const *)b;
	return x < y ? -1 : x > y;
}

/* The ACL map: every list of the tree, sorted by address; a list's id is
 * its index + 1. */
struct acl_ids {
	const struct acl_list **lists;
	size_t count;
};

static int64_t acl_id(const struct acl_ids *ids, const struct acl_list *l)
{
	const struct acl_list **at = bsearch(&l, ids->lists, ids->count, sizeof(*ids->lists), ptr_cmp);
	return at ? (int64_t)(at - ids->lists) + 1 : -1;
}

static int write_acl_map(struct jute_buf *b, const struct tree *t, struct acl_ids *ids)
{
	ids->lists = calloc(t->acls.lists.count + 1, sizeof(*ids->lists));
	if (!ids->lists)
		return -ENOMEM;
	acl_table_for_each(&t->acls, l)
		ids->lists[ids->count++] = l;
	qsort(ids->lists, ids->count, sizeof(*ids->lists), ptr_cmp);
	jute_write_int(b, (int32_t)ids->count);
	for (size_t i = 0; i < ids->count; i++) {
		const struct acl_list *l = ids->lists[i];
		jute_write_long(b, (int64_t)i + 1);
		jute_write_int(b, (int32_t)l->count);
		for (uint32_t e = 0; e < l->count; e++) {
			jute_write_int(b, l->entries[e].perms);
			jute_write_string(b, l->entries[e].scheme, (int32_t)strlen(l->entries[e].scheme));
			jute_write_string(b, l->entries[e].id, (int32_t)strlen(l->entries[e].id));
		}
	}
	return 0;
}

static void write_node(struct jute_buf *b, const struct tree *t, const struct znode *n,
		       const struct acl_ids *ids)
{
	bool root = znode_parent(n) == NULL;
	size_t path_len;
	const char *path = tree_path(t, n, &path_len);
	/* /zookeeper/config holds corral's membership, which ZooKeeper does not
	 * read: empty, as a standalone ZooKeeper's. */
	bool own = strcmp(path, "/zookeeper/config") == 0;
	jute_write_string(b, path, root ? 0 : (int32_t)path_len);
	if (own)
		jute_write_buffer(b, "", 0);
	else
		jute_write_buffer(b, znode_data(n), n->data_len);
	jute_write_long(b, acl_id(ids, znode_acl(n)));
	jute_write_long(b, n->czxid);
	jute_write_long(b, znode_mzxid(n));
	jute_write_long(b, n->ctime);
	jute_write_long(b, znode_mtime(n));
	jute_write_int(b, znode_version(n));
	jute_write_int(b, znode_child_creates(n));
	jute_write_int(b, znode_aversion(n));
	jute_write_long(b, znode_owner(n));
	jute_write_long(b, znode_pzxid(n));
}

static void write_nodes(struct jute_buf *b, const struct tree *t, const struct acl_ids *ids)
{
	for (const struct znode *n = t->root; n;) {
		write_node(b, t, n, ids);
		if (znode_first_child(n)) {
			n = znode_first_child(n);
			continue;
		}
		while (n && n != t->root && !n->next_sibling)
			n = znode_parent(n);
		n = (n && n != t->root) ? znode_next_sibling(n) : NULL;
	}
	jute_write_string(b, "/", 1);
}

static int encode_snapshot(struct jute_buf *b, const struct state *st)
{
	jute_write_int(b, ZK_SNAP_MAGIC);
	jute_write_int(b, ZK_FILE_FORMAT_VERSION);
	jute_write_long(b, -1);
	jute_write_int(b, (int32_t)st->sessions.by_id.count);
	session_for_each(&st->sessions, s) {
		jute_write_long(b, s->id);
		jute_write_int(b, (int32_t)s->timeout_ms);
	}
	struct acl_ids ids = { 0 };
	int r = write_acl_map(b, &st->tree, &ids);
	if (r == 0)
		write_nodes(b, &st->tree, &ids);
	free(ids.lists);
	if (r == 0 && !b->error) {
		jute_write_long(b, (int64_t)adler32(1, b->data, (uInt)b->len));
		jute_write_string(b, "/", 1);
	}
	return r < 0 ? r : b->error ? -ENOMEM : 0;
}

static int write_durably(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	char tmp[4400], path[4400];
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	int r = done == len && fsync(fd) == 0 ? 0 : -(errno ? errno : EIO);
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* version-2/ made, or there without ZooKeeper's files. */
static int prepare_dir(const char *zk_dir, char *ret, size_t size, char *why, size_t why_size)
{
	if (mkdir(zk_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(why, why_size, "%s: %s", zk_dir, strerror(errno));
		return -errno;
	}
	snprintf(ret, size, "%.4000s/version-2", zk_dir);
	if (mkdir(ret, 0750) < 0 && errno != EEXIST) {
		snprintf(why, why_size, "%s: %s", ret, strerror(errno));
		return -errno;
	}
	DIR *d = opendir(ret);
	if (!d) {
		snprintf(why, why_size, "%s: %s", ret, strerror(errno));
		return -errno;
	}
	int r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));)
		if (strncmp(e->d_name, "snapshot.", 9) == 0 || strncmp(e->d_name, "log.", 4) == 0)
			r = -EEXIST;
	closedir(d);
	if (r < 0)
		snprintf(why, why_size, "%s: holds ZooKeeper's files already; export into a new or "
			 "empty directory", ret);
	return r;
}

int zookeeper_export(const char *zk_dir, const struct state *st, uint64_t zxid, char *why,
		     size_t why_size)
{
	char dir[4100], name[64];
	int r = prepare_dir(zk_dir, dir, sizeof(dir), why, why_size);
	if (r < 0)
		return r;
	struct jute_buf b = { 0 };
	r = encode_snapshot(&b, st);
	if (r < 0) {
		jute_buf_free(&b);
		snprintf(why, why_size, "out of memory");
		return r;
	}
	snprintf(name, sizeof(name), "snapshot.%" PRIx64, zxid);
	r = write_durably(dir, name, b.data, b.len);
	if (r == 0) {
		b.len = 0;
		jute_write_int(&b, ZK_LOG_MAGIC);
		jute_write_int(&b, ZK_FILE_FORMAT_VERSION);
		jute_write_long(&b, 0);
		snprintf(name, sizeof(name), "log.%" PRIx64, zxid + 1);
		r = b.error ? -ENOMEM : write_durably(dir, name, b.data, b.len);
	}
	jute_buf_free(&b);
	if (r == 0) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = fd >= 0 && fsync(fd) == 0 ? 0 : -errno;
		if (fd >= 0)
			close(fd);
	}
	if (r < 0)
		snprintf(why, why_size, "%s/%s: %s", dir, name, strerror(-r));
	return r;
}
