/* zookeeper_import: ZooKeeper's data directory into corral's state (see
 * zookeeper.h): the directory's files, the snapshot (FileSnap: a
 * FileHeader, the session table, the tree as DataTree.serialize writes it,
 * the Adler-32 seal, the digest), then the logs (zookeeper_log.c). */
#include "zookeeper_format.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <snappy-c.h>
#include <zlib.h>

#include "quota.h"
#include "records.h"
#include "tree.h"

#define ZK_FILES_MAX 100000	/* snapshot and log files in one directory */

void zookeeper_session_password(int64_t session_id, uint8_t ret[ZK_PASSWORD_BYTES])
{
	/* java.util.Random: a 48-bit linear congruential generator. */
	const uint64_t mult = 0x5DEECE66DULL, mask = (1ULL << 48) - 1;
	uint64_t seed = ((uint64_t)session_id ^ 0xB3415C00ULL ^ mult) & mask;
	for (int i = 0; i < ZK_PASSWORD_BYTES;) {
		seed = (seed * mult + 0xBULL) & mask;
		uint32_t rnd = (uint32_t)(seed >> 16);	/* nextInt() */
		for (int n = 0; n < 4 && i < ZK_PASSWORD_BYTES; n++, rnd >>= 8)
			ret[i++] = (uint8_t)rnd;
	}
}

/* The snapshot.<zxid>[.gz|.snappy] and log.<zxid> files of a directory. */
struct zk_files {
	char **snaps, **logs;
	uint64_t *snap_zxids, *log_zxids;
	size_t snap_count, log_count;
};

static void files_free(struct zk_files *f)
{
	for (size_t i = 0; i < f->snap_count; i++)
		free(f->snaps[i]);
	for (size_t i = 0; i < f->log_count; i++)
		free(f->logs[i]);
	free(f->snaps);
	free(f->logs);
	free(f->snap_zxids);
	free(f->log_zxids);
}

/* "prefix<hex zxid>[suffix]": the zxid, or false. */
static bool zxid_of_name(const char *name, const char *prefix, uint64_t *ret)
{
	size_t pl = strlen(prefix);
	if (strncmp(name, prefix, pl) != 0 || !name[pl])
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(name + pl, &end, 16);
	if (errno || end == name + pl)
		return false;
	if (*end && strcmp(end, ".gz") != 0 && strcmp(end, ".snappy") != 0)
		return false;
	if (*end && prefix[0] == 'l')
		return false;
	*ret = v;
	return true;
}

static int add_file(char ***names, uint64_t **zxids, size_t *count, const char *name, uint64_t z)
{
	if (*count >= ZK_FILES_MAX)
		return -E2BIG;
	char **n = realloc(*names, (*count + 1) * sizeof(**names));
	if (n)
		*names = n;
	uint64_t *zx = realloc(*zxids, (*count + 1) * sizeof(**zxids));
	if (zx)
		*zxids = zx;
	char *copy = strdup(name);
	if (!n || !zx || !copy) {
		free(copy);
		return -ENOMEM;
	}
	(*names)[*count] = copy;
	(*zxids)[(*count)++] = z;
	return 0;
}

/* Sorts names by zxid (insertion sort, file counts are small). */
static void sort_files(char **names, uint64_t *zxids, size_t count)
{
	for (size_t i = 1; i < count; i++)
		for (size_t k = i; k > 0 && zxids[k - 1] > zxids[k]; k--) {
			uint64_t z = zxids[k];
			zxids[k] = zxids[k - 1];
			zxids[k - 1] = z;
			char *s = names[k];
			names[k] = names[k - 1];
			names[k - 1] = s;
		}
}

static int list_files(const char *dir, struct zk_files *f, char *why, size_t why_size)
{
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(why, why_size, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	int r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		uint64_t z;
		if (zxid_of_name(e->d_name, "snapshot.", &z))
			r = add_file(&f->snaps, &f->snap_zxids, &f->snap_count, e->d_name, z);
		else if (zxid_of_name(e->d_name, "log.", &z))
			r = add_file(&f->logs, &f->log_zxids, &f->log_count, e->d_name, z);
	}
	closedir(d);
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", dir, strerror(-r));
		return r;
	}
	sort_files(f->snaps, f->snap_zxids, f->snap_count);
	sort_files(f->logs, f->log_zxids, f->log_count);
	return 0;
}

/* snappy-java's SnappyOutputStream, as snapshot.compression.method=snappy
 * writes it: a header (0x82 "SNAPPY" 0, version, compatible version), then
 * blocks of a big-endian length and that many bytes of raw snappy. */
static int unsnappy(const char *path, const uint8_t *in, size_t in_len, uint8_t **ret,
		    size_t *ret_len, char *why, size_t why_size)
{
	static const uint8_t magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };
	if (in_len < 16 || memcmp(in, magic, sizeof(magic)) != 0) {
		snprintf(why, why_size, "%s: offset 0: not a snappy stream (no SNAPPY header)", path);
		return -EBADMSG;
	}
	size_t pos = 16, len = 0, cap = in_len * 2 + 4096;
	uint8_t *out = malloc(cap);
	const char *what = NULL;
	while (out && pos < in_len && !what) {
		uint32_t n;
		size_t ulen;
		if (in_len - pos < 4 || (n = (uint32_t)in[pos] << 24 | (uint32_t)in[pos + 1] << 16 |
					 (uint32_t)in[pos + 2] << 8 | in[pos + 3]) > in_len - pos - 4) {
			what = "a block cut short";
			break;
		}
		if (snappy_uncompressed_length((const char *)in + pos + 4, n, &ulen) != SNAPPY_OK) {
			what = "a damaged snappy block";
			break;
		}
		while (out && cap - len < ulen) {
			uint8_t *bigger = realloc(out, cap * 2);
			if (!bigger)
				free(out);
			out = bigger;
			cap *= 2;
		}
		if (out && snappy_uncompress((const char *)in + pos + 4, n, (char *)out + len,
					     &ulen) != SNAPPY_OK)
			what = "a damaged snappy block";
		len += ulen;
		if (!what)
			pos += 4 + n;
	}
	if (!out || what) {
		snprintf(why, why_size, "%s: offset %zu: %s", path, pos, out ? what : "out of memory");
		int err = out ? -EBADMSG : -ENOMEM;
		free(out);
		return err;
	}
	*ret = out;
	*ret_len = len;
	return 0;
}

/* The snapshot file, uncompressed (gzip through zlib, snappy through
 * libsnappy; a plain file as it is). */
static int read_snapshot_file(const char *path, uint8_t **ret, size_t *ret_len, char *why,
			      size_t why_size)
{
	gzFile gz = gzopen(path, "rb");	/* reads a plain file through, as it is */
	if (!gz) {
		snprintf(why, why_size, "%s: %s", path, strerror(errno ? errno : ENOMEM));
		return errno ? -errno : -ENOMEM;
	}
	gzbuffer(gz, 1 << 17);
	size_t len = 0, cap = 1 << 20;
	uint8_t *p = malloc(cap);
	int n = 0;
	while (p && (n = gzread(gz, p + len, (unsigned)(cap - len))) > 0) {
		len += (size_t)n;
		if (len == cap) {
			uint8_t *bigger = realloc(p, cap * 2);
			if (!bigger) {
				free(p);
				p = NULL;
				break;
			}
			p = bigger;
			cap *= 2;
		}
	}
	int errnum = Z_OK;
	const char *msg = gzerror(gz, &errnum);
	char what[160];
	snprintf(what, sizeof(what), "%s", msg ? msg : "");
	gzclose_r(gz);
	if (!p || n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
		snprintf(why, why_size, "%s: offset %zu of the uncompressed stream: %s", path, len,
			 !p ? "out of memory" : what[0] ? what : "a damaged compressed stream");
		int err = p ? -EBADMSG : -ENOMEM;
		free(p);
		return err;
	}
	size_t plen = strlen(path);
	if (plen > 7 && strcmp(path + plen - 7, ".snappy") == 0) {
		int err = unsnappy(path, p, len, ret, ret_len, why, why_size);
		free(p);
		return err;
	}
	*ret = p;
	*ret_len = len;
	return 0;
}

struct acl_map_entry {
	int64_t id;
	struct acl_list *acl;
};

/* What loading a snapshot keeps: the file's ACL map, sorted by id. */
struct snap_loader {
	struct state *st;
	const char *file;
	struct acl_map_entry *acls;
	size_t acl_count;
	char *why;
	size_t why_size;
};

static int snap_damaged(struct snap_loader *l, size_t offset, const char *what)
{
	snprintf(l->why, l->why_size, "%s: offset %zu: %s", l->file, offset, what);
	return -EBADMSG;
}

static int acl_map_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct acl_map_entry *)a)->id, y = ((const struct acl_map_entry *)b)->id;
	return x < y ? -1 : x > y;
}

static int load_acl_map(struct snap_loader *l, struct jute_reader *r)
{
	int32_t n = jute_read_int(r);
	if (r->error || n < 0 || (size_t)n > jute_remaining(r) / 12)
		return snap_damaged(l, r->pos, "an ACL map that does not parse");
	l->acls = calloc((size_t)n + 1, sizeof(*l->acls));
	if (!l->acls)
		return -ENOMEM;
	for (int32_t i = 0; i < n; i++) {
		size_t at = r->pos;
		struct acl_entry *e = NULL;
		uint32_t count = 0;
		int64_t id = jute_read_long(r);
		int err = acl_vector_decode(r, &e, &count);
		if (err == -ENOMEM)
			return err;
		if (err < 0 || r->error)
			return snap_damaged(l, at, "an ACL map entry that does not parse");
		l->acls[i].acl = acl_intern(&l->st->tree.acls, e, count);
		acl_entries_free(e, count);
		if (!l->acls[i].acl)
			return -ENOMEM;
		l->acls[i].id = id;
		l->acl_count++;
	}
	qsort(l->acls, l->acl_count, sizeof(*l->acls), acl_map_cmp);
	return 0;
}

/* A node's ACL by the map's id (-1: world:anyone:ALL, ReferenceCountedACLCache's). */
static struct acl_list *acl_by_id(const struct snap_loader *l, int64_t id)
{
	if (id == -1)
		return l->st->tree.acls.open_acl;
	struct acl_map_entry key = { .id = id };
	const struct acl_map_entry *e = bsearch(&key, l->acls, l->acl_count, sizeof(*l->acls),
						acl_map_cmp);
	return e ? e->acl : NULL;
}

struct zk_node {
	const char *path;
	int32_t plen;
	const uint8_t *data;
	int32_t dlen;
	int64_t acl_id;
	struct znode_persisted stat;
	int64_t owner;
};

/* DataNode: data, acl id, StatPersisted (czxid, mzxid, ctime, mtime,
 * version, cversion, aversion, ephemeralOwner, pzxid). */
static void read_node(struct jute_reader *r, struct zk_node *n)
{
	jute_read_buffer(r, &n->data, &n->dlen);
	n->acl_id = jute_read_long(r);
	n->stat.czxid = jute_read_long(r);
	n->stat.mzxid = jute_read_long(r);
	n->stat.ctime = jute_read_long(r);
	n->stat.mtime = jute_read_long(r);
	n->stat.version = jute_read_int(r);
	n->stat.child_creates = jute_read_int(r);
	n->stat.aversion = jute_read_int(r);
	n->owner = jute_read_long(r);
	n->stat.pzxid = jute_read_long(r);
}

static int load_node(struct snap_loader *l, const struct zk_node *n, size_t at)
{
	struct tree *t = &l->st->tree;
	struct acl_list *acl = acl_by_id(l, n->acl_id);
	if (!acl)
		return snap_damaged(l, at, "a node whose ACL is not in the ACL map");
	const char *path = n->plen ? n->path : "/";
	size_t plen = n->plen ? (size_t)n->plen : 1;
	struct znode *node = tree_lookup(t, path, plen);
	if (node && plen == 17 && memcmp(path, "/zookeeper/config", 17) == 0)
		return 0;	/* corral's own membership stays */
	if (node) {
		if (tree_set_data(t, node, n->data, n->dlen) < 0)
			return -ENOMEM;
		tree_set_acl(t, node, acl);
	} else {
		/* Pre-order: the parent ("/a/b": "/a"; "/a": "/") came before. */
		size_t slash = plen;
		while (slash > 0 && path[slash - 1] != '/')
			slash--;
		struct znode *parent = slash >= 1 ? tree_lookup(t, path, slash > 1 ? slash - 1 : 1) : NULL;
		if (!parent || path[plen - 1] == '/')
			return snap_damaged(l, at, "a node before its parent");
		node = tree_add(t, parent, path, plen, n->data, n->dlen, acl, n->owner, n->stat.czxid,
				n->stat.ctime);
		if (!node)
			return -ENOMEM;
		if (znode_is_ephemeral(node)) {
			struct session *s = zk_session_for(l->st, znode_owner(node));
			if (!s)
				return -ENOMEM;
			session_link_ephemeral(s, node);
		}
	}
	return tree_restore_stat(t, node, &n->stat);
}

static int load_nodes(struct snap_loader *l, struct jute_reader *r)
{
	for (;;) {
		size_t at = r->pos;
		struct zk_node n;
		jute_read_string(r, &n.path, &n.plen);
		if (r->error)
			return snap_damaged(l, at, "the tree ends before its end mark");
		if (n.plen == 1 && n.path[0] == '/')
			return 0;	/* DataTree.serializeNodes' end mark */
		read_node(r, &n);
		if (r->error && r->len - at < 4096)
			return snap_damaged(l, at, "the file ends inside a node: cut short (a snapshot "
					    "ZooKeeper did not finish writing?)");
		if (r->error || n.dlen < -1 || (n.plen > 0 && n.path[0] != '/') ||
		    memchr(n.path, 0, (size_t)n.plen))
			return snap_damaged(l, at, "a node that does not parse (or the file is cut "
					    "short there)");
		int err = load_node(l, &n, at);
		if (err < 0)
			return err;
	}
}

/* SnapStream's seal: the Adler-32 of everything before it, then "/". */
static int check_seal(struct snap_loader *l, struct jute_reader *r, const uint8_t *p)
{
	size_t at = r->pos;
	uint64_t want = adler32(1, p, (uInt)at);
	uint64_t got = (uint64_t)jute_read_long(r);
	const char *slash;
	int32_t slen;
	jute_read_string(r, &slash, &slen);
	if (r->error)
		return snap_damaged(l, at, "the file ends before its checksum");
	if (got != want || slen != 1 || slash[0] != '/')
		return snap_damaged(l, at, "the Adler-32 checksum does not match: the file is damaged");
	return 0;
}

static int load_header(struct snap_loader *l, struct jute_reader *r)
{
	int32_t magic = jute_read_int(r), version = jute_read_int(r);
	(void)jute_read_long(r);	/* dbid */
	if (r->error || magic != ZK_SNAP_MAGIC)
		return snap_damaged(l, 0, "not a ZooKeeper snapshot (no \"ZKSN\" header)");
	if (version != ZK_FILE_FORMAT_VERSION) {
		snprintf(l->why, l->why_size, "%s: offset 4: snapshot format version %d; this corrald "
			 "reads version %d (ZooKeeper 3.4 to 3.9)", l->file, version,
			 ZK_FILE_FORMAT_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

static int load_sessions(struct snap_loader *l, struct jute_reader *r)
{
	int32_t n = jute_read_int(r);
	if (r->error || n < 0 || (size_t)n > jute_remaining(r) / 12)
		return snap_damaged(l, 8 + 8, "a session table that does not parse");
	for (int32_t i = 0; i < n; i++) {
		int64_t id = jute_read_long(r);
		int32_t timeout = jute_read_int(r);
		struct session *s = zk_session_for(l->st, id);
		if (!s)
			return -ENOMEM;
		s->timeout_ms = timeout > 0 ? (uint32_t)timeout : ZOOKEEPER_ORPHAN_TIMEOUT_MS;
	}
	return 0;
}

static int load_snapshot(struct snap_loader *l, const uint8_t *p, size_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, p, len);
	int err = load_header(l, &r);
	if (err == 0)
		err = load_sessions(l, &r);
	if (err == 0)
		err = load_acl_map(l, &r);
	if (err == 0)
		err = load_nodes(l, &r);
	if (err == 0)
		err = check_seal(l, &r, p);
	/* 3.6+: the digest (ZxidDigest), sealed again; 3.9: the last
	 * processed zxid, sealed again. Checked, not used. */
	for (int extra = 0; err == 0 && extra < 2 && jute_remaining(&r) > 0; extra++) {
		jute_read_long(&r);
		if (extra == 0)
			(void)jute_read_int(&r), (void)jute_read_long(&r);
		if (r.error)
			return snap_damaged(l, r.pos, "the file ends inside its digest");
		err = check_seal(l, &r, p);
	}
	if (err == 0 && jute_remaining(&r) > 0)
		err = snap_damaged(l, r.pos, "bytes after the snapshot's last seal");
	return err;
}

static void snap_loader_free(struct snap_loader *l)
{
	for (size_t i = 0; i < l->acl_count; i++)
		acl_unref(&l->st->tree.acls, l->acls[i].acl);
	free(l->acls);
}

/* Loads one snapshot file into a fresh state. */
static int try_snapshot(const char *path, struct state *st, char *why, size_t why_size)
{
	uint8_t *p = NULL;
	size_t len = 0;
	int err = read_snapshot_file(path, &p, &len, why, why_size);
	if (err < 0)
		return err;
	struct snap_loader l = { .st = st, .file = path, .why = why, .why_size = why_size };
	err = state_init(st, 1, 0);
	if (err == 0) {
		st->tree.digest_deferred = true;
		err = load_snapshot(&l, p, len);
		snap_loader_free(&l);
		if (err < 0)
			state_free(st);
	}
	free(p);
	if (err == -ENOMEM)
		snprintf(why, why_size, "%s: out of memory", path);
	return err;
}

/* Ephemerals whose session no snapshot or txn made: kept with a short
 * timeout, so they go soon after corral starts. */
static void settle_placeholders(struct state *st, struct zookeeper_import *res)
{
	session_for_each(&st->sessions, s) {
		if (s->timeout_ms != ZK_PLACEHOLDER_TIMEOUT_MS)
			continue;
		s->timeout_ms = ZOOKEEPER_ORPHAN_TIMEOUT_MS;
		for (struct znode *n = session_first_ephemeral(s); n; n = session_next_ephemeral(s, n))
			res->orphan_ephemerals++;
	}
}

/* The newest snapshot that loads; a damaged one is skipped for the one
 * before it (as ZooKeeper does), a newer format stops the import. */
static int load_newest_snapshot(const char *dir, const struct zk_files *f,
				const struct zookeeper_import_options *opt, struct state *st,
				struct zookeeper_import *res, char *why, size_t why_size)
{
	int err = -ENOENT;
	snprintf(why, why_size, "%s: no snapshot.<zxid> file: not a ZooKeeper data directory", dir);
	for (size_t i = f->snap_count; i-- > 0;) {
		char path[4200];
		snprintf(path, sizeof(path), "%.3900s/%.255s", dir, f->snaps[i]);
		err = try_snapshot(path, st, why, why_size);
		if (err != -EBADMSG) {
			res->snapshot_zxid = res->last_zxid = f->snap_zxids[i];
			return err;
		}
		res->snapshots_skipped++;
		if (opt->skipped)
			opt->skipped(path, why);
	}
	return err;
}

/* dataDir/version-2, or the directory itself when it holds the files. */
static void files_dir(const char *zk_dir, char *ret, size_t size)
{
	struct stat sb;
	snprintf(ret, size, "%.3900s/version-2", zk_dir);
	if (stat(ret, &sb) < 0 || !S_ISDIR(sb.st_mode))
		snprintf(ret, size, "%s", zk_dir);
}

static int finish(struct state *st, struct zk_apply *a, bool accept_mismatch, char *why,
		  size_t why_size)
{
	settle_placeholders(st, a->res);
	tree_digest_recompute(&st->tree);
	if (quota_recompute(&st->tree) < 0)
		return -ENOMEM;
	st->last_zxid = (int64_t)a->res->last_zxid;
	state_note_digest(st);
	if (a->digest_zxid && a->digest_version == TREE_DIGEST_VERSION) {
		if (a->digest != st->tree.digest && accept_mismatch) {
			a->res->digest_mismatch = true;
			a->res->digest_zxid = (uint64_t)a->digest_zxid;
			a->res->digest_zookeeper = a->digest;
			a->res->digest_tree = st->tree.digest;
			return 0;
		}
		if (a->digest != st->tree.digest) {
			snprintf(why, why_size, "the imported tree's digest (%" PRIx64 ") differs from "
				 "ZooKeeper's at zxid 0x%" PRIx64 " (%" PRIx64 "): the import does not "
				 "reproduce ZooKeeper's tree; nothing was written", st->tree.digest,
				 (uint64_t)a->digest_zxid, a->digest);
			return -EBADMSG;
		}
		a->res->digest_checked = true;
	}
	return 0;
}

/* One look at the log directory: what ZooKeeper appended since. */
static int follow_once(const char *log_dir, const struct zookeeper_import_options *opt,
		       struct zk_apply *a)
{
	struct zk_files f = { 0 };
	int err = list_files(log_dir, &f, a->why, a->why_size);
	if (err == 0)
		err = zk_follow_logs(log_dir, f.logs, f.log_zxids, f.log_count, opt, a);
	files_free(&f);
	return err;
}

static int follow(const char *log_dir, const struct zookeeper_import_options *opt,
		  struct zk_apply *a)
{
	int err = 0;
	while (err == 0 && opt->keep_following(opt->ctx, a->res)) {
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
		err = follow_once(log_dir, opt, a);
	}
	/* ZooKeeper stopped: what it wrote last (a record it never finished
	 * writing, never acknowledged, is left out). */
	return err == 0 ? follow_once(log_dir, opt, a) : err;
}

int zookeeper_import(const char *zk_dir, const struct zookeeper_import_options *opt,
		     struct state *st, struct zookeeper_import *ret, char *why, size_t why_size)
{
	char dir[4200], log_dir[4200];
	struct zk_files f = { 0 }, lf = { 0 };
	memset(ret, 0, sizeof(*ret));
	files_dir(zk_dir, dir, sizeof(dir));
	/* dataLogDir, when ZooKeeper keeps its logs apart: the logs are there only. */
	files_dir(opt->log_dir ? opt->log_dir : zk_dir, log_dir, sizeof(log_dir));
	int err = list_files(dir, &f, why, why_size);
	if (err == 0 && opt->log_dir)
		err = list_files(log_dir, &lf, why, why_size);
	const struct zk_files *logs = opt->log_dir ? &lf : &f;
	if (err == 0)
		err = load_newest_snapshot(dir, &f, opt, st, ret, why, why_size);
	if (err == 0) {
		struct zk_apply a = { .st = st, .res = ret, .why = why, .why_size = why_size,
				      .following = opt->keep_following != NULL };
		err = zk_read_logs(log_dir, logs->logs, logs->log_zxids, logs->log_count,
				   ret->snapshot_zxid, opt, &a);
		if (err == 0 && opt->keep_following)
			err = follow(log_dir, opt, &a);
		if (err == 0)
			err = finish(st, &a, opt->accept_digest_mismatch, why, why_size);
		if (err == -ENOMEM)
			snprintf(why, why_size, "out of memory");
		if (err < 0)
			state_free(st);
	}
	files_free(&f);
	files_free(&lf);
	return err;
}
