/* zookeeper_log: ZooKeeper's txn log files (log.<zxid>) read and applied
 * to corral's state with ZooKeeper's own rules (DataTree.processTxn and
 * FileTxnSnapLog.processTransaction), for the import (zookeeper.h).
 *
 * A log file: a FileHeader (magic "ZKLG", version 2, dbid), then records:
 * the Adler-32 of the txn bytes (a long), the txn bytes (a jute buffer) and
 * an end-of-record byte 'B'. ZooKeeper preallocates the file with zeros, so
 * a record of length 0 ends it. The txn bytes: a TxnHeader (clientId, cxid,
 * zxid, time, type), the txn record of the type, and since 3.6 the tree's
 * digest after the txn (TxnDigest).
 *
 * ZooKeeper's snapshot is fuzzy (taken while txns go on), so replaying the
 * log after it may meet effects already there: a create of a node that
 * exists, a delete of one that is gone. ZooKeeper ignores those, adjusting
 * the parent's cversion and pzxid for a create and its pzxid for a delete;
 * so does this file. */
#include "zookeeper_format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "records.h"
#include "tree.h"

/* A create txn of any kind, decoded. */
struct zk_create {
	const char *path;
	int32_t plen;
	const uint8_t *data;
	int32_t dlen;
	struct acl_entry *acl;
	uint32_t acl_count;
	int64_t owner;
	int32_t parent_cversion;
};

static int damaged(struct zk_apply *a, const char *what)
{
	snprintf(a->why, a->why_size, "%s: offset %" PRIu64 ": %s", a->file, a->offset, what);
	return -EBADMSG;
}

struct session *zk_session_for(struct state *st, int64_t id)
{
	struct session *s = session_lookup(&st->sessions, id);
	if (s)
		return s;
	uint8_t pw[ZK_PASSWORD_BYTES];
	zookeeper_session_password(id, pw);
	return session_add(&st->sessions, id, ZK_PLACEHOLDER_TIMEOUT_MS, pw, st->local_now_ms);
}

/* The parent of path ("/a/b": "/a"; "/a": "/"), or NULL. */
static struct znode *parent_of(const struct tree *t, const char *path, size_t len)
{
	size_t slash = len;
	while (slash > 0 && path[slash - 1] != '/')
		slash--;
	size_t parent_len = slash > 1 ? slash - 1 : 1;
	return tree_lookup(t, path, parent_len);
}

static bool path_sound(const char *path, int32_t len)
{
	return len >= 2 && path[0] == '/' && path[len - 1] != '/' && !memchr(path, 0, (size_t)len);
}

/* DataTree.setCversionPzxid: a create replayed over its own effect.
 * Returns 0 or -ENOMEM. */
static int set_cversion_pzxid(struct tree *t, struct znode *parent, int32_t cversion, int64_t zxid)
{
	if (cversion == -1)
		cversion = znode_child_creates(parent) + 1;
	if (cversion > znode_child_creates(parent)) {
		struct znode_kids *k = tree_kids(t, parent);
		if (!k)
			return -ENOMEM;
		k->creates = cversion;
		k->pzxid = zxid;
	}
	return 0;
}

static int apply_create(struct zk_apply *a, int32_t type, const struct zk_create *c, int64_t zxid,
			int64_t time_ms)
{
	struct tree *t = &a->st->tree;
	struct znode *parent = parent_of(t, c->path, (size_t)c->plen);
	if (!parent)
		return 0;	/* NONODE: ignored, as ZooKeeper does */
	if (tree_lookup(t, c->path, (size_t)c->plen))
		return type == ZK_OP_CREATE ? set_cversion_pzxid(t, parent, c->parent_cversion, zxid) : 0;
	/* A node created and deleted within the fuzzy range may come back
	 * here: only a larger cversion moves the parent's. */
	if (set_cversion_pzxid(t, parent, c->parent_cversion, zxid) < 0)
		return -ENOMEM;
	struct acl_list *acl = acl_intern(&t->acls, c->acl, c->acl_count);
	if (!acl)
		return -ENOMEM;
	struct znode *n = tree_add(t, parent, c->path, (size_t)c->plen, c->data, c->dlen, acl,
				   c->owner, zxid, time_ms);
	acl_unref(&t->acls, acl);
	if (!n)
		return -ENOMEM;
	if (znode_is_ephemeral(n)) {
		struct session *s = zk_session_for(a->st, znode_owner(n));
		if (!s)
			return -ENOMEM;
		session_link_ephemeral(s, n);
	}
	return 0;
}

static int delete_node(struct zk_apply *a, struct znode *n, int64_t zxid)
{
	struct tree *t = &a->st->tree;
	if (n == t->root)
		return damaged(a, "a delete of the root");
	if (znode_num_children(n) > 0)
		return damaged(a, "a delete of a node that has children");
	struct znode *parent = znode_parent(n);
	if (znode_is_ephemeral(n)) {
		struct session *s = session_lookup(&a->st->sessions, znode_owner(n));
		if (s)
			session_unlink_ephemeral(s, n);
	}
	tree_remove(t, n);
	if (zxid > znode_kids(parent)->pzxid)	/* made with its first child */
		znode_kids(parent)->pzxid = zxid;
	return 0;
}

static int apply_delete(struct zk_apply *a, const char *path, int32_t plen, int64_t zxid)
{
	struct tree *t = &a->st->tree;
	struct znode *n = tree_lookup(t, path, (size_t)plen);
	if (n)
		return delete_node(a, n, zxid);
	/* Gone already: deleted after the fuzzy snapshot wrote its parent and
	 * before it came to the node. The parent was written with the pzxid
	 * before the delete, and DataTree.deleteNode moves it all the same. */
	struct znode *parent = parent_of(t, path, (size_t)plen);
	if (!parent || zxid <= znode_pzxid(parent))
		return 0;
	struct znode_kids *k = tree_kids(t, parent);
	if (!k)
		return -ENOMEM;
	k->pzxid = zxid;
	return 0;
}

static int apply_set_data(struct zk_apply *a, struct jute_reader *r, int64_t zxid, int64_t time_ms)
{
	const char *path;
	const uint8_t *data;
	int32_t plen, dlen;
	jute_read_string(r, &path, &plen);
	jute_read_buffer(r, &data, &dlen);
	int32_t version = jute_read_int(r);
	if (r->error || !path_sound(path, plen))
		return damaged(a, "a setData txn that does not parse");
	struct tree *t = &a->st->tree;
	struct znode *n = tree_lookup(t, path, (size_t)plen);
	if (!n)
		return 0;
	struct znode_mod *m = tree_mod(t, n);
	if (!m || tree_set_data(t, n, data, dlen) < 0)
		return -ENOMEM;
	m->mzxid = zxid;
	m->mtime = time_ms;
	m->version = version;
	return 0;
}

static int apply_set_acl(struct zk_apply *a, struct jute_reader *r)
{
	const char *path;
	int32_t plen;
	struct acl_entry *e = NULL;
	uint32_t count = 0;
	jute_read_string(r, &path, &plen);
	int err = acl_vector_decode(r, &e, &count);
	int32_t version = jute_read_int(r);
	if (err < 0 || r->error || !path_sound(path, plen)) {
		acl_entries_free(e, count);
		return err == -ENOMEM ? err : damaged(a, "a setACL txn that does not parse");
	}
	struct tree *t = &a->st->tree;
	struct znode *n = tree_lookup(t, path, (size_t)plen);
	int ret = 0;
	if (n) {
		struct znode_mod *m = tree_mod(t, n);
		struct acl_list *acl = m ? acl_intern(&t->acls, e, count) : NULL;
		if (acl) {
			tree_set_acl(t, n, acl);
			acl_unref(&t->acls, acl);
			m->aversion = version;
		} else {
			ret = -ENOMEM;
		}
	}
	acl_entries_free(e, count);
	return ret;
}

/* create, create2, createContainer, createTTL: the record of the type. */
static int decode_create(struct zk_apply *a, struct jute_reader *r, int32_t type, int64_t client,
			 struct zk_create *c)
{
	memset(c, 0, sizeof(*c));
	jute_read_string(r, &c->path, &c->plen);
	jute_read_buffer(r, &c->data, &c->dlen);
	int err = acl_vector_decode(r, &c->acl, &c->acl_count);
	if (err == -ENOMEM)
		return err;
	if (type == ZK_OP_CREATE || type == ZK_OP_CREATE2) {
		bool ephemeral = jute_read_bool(r);
		c->owner = ephemeral ? client : 0;
		/* A 3.3 CreateTxn (V0) has no parentCVersion: -1, as ZooKeeper. */
		c->parent_cversion = jute_remaining(r) >= 4 ? jute_read_int(r) : -1;
	} else {
		c->parent_cversion = jute_read_int(r);
		c->owner = ZNODE_OWNER_CONTAINER;
		if (type == ZK_OP_CREATE_TTL) {
			int64_t ttl = jute_read_long(r);
			if (ttl <= 0 || ttl > ZNODE_TTL_MAX_MS)
				err = -EBADMSG;
			c->owner = ZNODE_OWNER_TTL_MASK | ttl;
		}
	}
	if (err < 0 || r->error || !path_sound(c->path, c->plen) || c->dlen < -1) {
		acl_entries_free(c->acl, c->acl_count);
		return damaged(a, "a create txn that does not parse");
	}
	return 0;
}

static int apply_close_session(struct zk_apply *a, struct jute_reader *r, int64_t client,
			       int64_t zxid)
{
	/* CloseSessionTxn (3.6+): the paths it deleted; 3.4's has no body. */
	int32_t n = jute_remaining(r) >= 4 ? jute_read_int(r) : 0;
	if (n < -1 || (n > 0 && (size_t)n > jute_remaining(r) / 4))
		return damaged(a, "a closeSession txn that does not parse");
	for (int32_t i = 0; i < n; i++) {
		const char *path;
		int32_t plen;
		jute_read_string(r, &path, &plen);
		if (r->error || !path_sound(path, plen))
			return damaged(a, "a closeSession txn that does not parse");
		int err = apply_delete(a, path, plen, zxid);
		if (err < 0)
			return err;
	}
	struct session *s = session_lookup(&a->st->sessions, client);
	if (!s)
		return 0;
	for (struct znode *e; (e = session_first_ephemeral(s));) {
		int err = delete_node(a, e, zxid);
		if (err < 0)
			return err;
	}
	session_remove(&a->st->sessions, s);
	return 0;
}

static int apply_create_session(struct zk_apply *a, struct jute_reader *r, int64_t client)
{
	int32_t timeout = jute_read_int(r);
	if (r->error || timeout <= 0)
		return damaged(a, "a createSession txn that does not parse");
	struct session *s = zk_session_for(a->st, client);
	if (!s)
		return -ENOMEM;
	s->timeout_ms = (uint32_t)timeout;
	return 0;
}

static int apply_txn(struct zk_apply *a, int32_t type, struct jute_reader *r, int64_t client,
		     int64_t zxid, int64_t time_ms, bool in_multi);

static int apply_multi(struct zk_apply *a, struct jute_reader *r, int64_t client, int64_t zxid,
		       int64_t time_ms)
{
	int32_t n = jute_read_int(r);
	if (r->error || n < 0 || (size_t)n > jute_remaining(r) / 8)
		return damaged(a, "a multi txn that does not parse");
	/* One failed op (an error txn among them) and the multi changed nothing. */
	struct jute_reader scan = *r;
	for (int32_t i = 0; i < n; i++) {
		const uint8_t *sub;
		int32_t sub_len;
		int32_t type = jute_read_int(&scan);
		jute_read_buffer(&scan, &sub, &sub_len);
		if (scan.error || sub_len < 0)
			return damaged(a, "a multi txn that does not parse");
		if (type == ZK_OP_ERROR)
			return 0;
	}
	for (int32_t i = 0; i < n; i++) {
		const uint8_t *sub;
		int32_t sub_len;
		int32_t type = jute_read_int(r);
		jute_read_buffer(r, &sub, &sub_len);
		struct jute_reader sr;
		jute_reader_init(&sr, sub, (size_t)sub_len);
		int err = apply_txn(a, type, &sr, client, zxid, time_ms, true);
		if (err < 0)
			return err;
	}
	return 0;
}

static int apply_txn(struct zk_apply *a, int32_t type, struct jute_reader *r, int64_t client,
		     int64_t zxid, int64_t time_ms, bool in_multi)
{
	const char *path;
	int32_t plen;
	struct zk_create c;
	int err;
	switch (type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
		err = decode_create(a, r, type, client, &c);
		if (err == 0)
			err = apply_create(a, type, &c, zxid, time_ms);
		if (err == 0 || err == -ENOMEM)
			acl_entries_free(c.acl, c.acl_count);
		return err;
	case ZK_OP_DELETE:
	case ZK_OP_DELETE_CONTAINER:
		jute_read_string(r, &path, &plen);
		if (r->error || !path_sound(path, plen))
			return damaged(a, "a delete txn that does not parse");
		return apply_delete(a, path, plen, zxid);
	case ZK_OP_SET_DATA:
		return apply_set_data(a, r, zxid, time_ms);
	case ZK_OP_CHECK:	/* CheckVersionTxn: nothing to apply */
		jute_read_string(r, &path, &plen);
		(void)jute_read_int(r);
		return r->error ? damaged(a, "a check txn that does not parse") : 0;
	case ZK_OP_ERROR:	/* ErrorTxn: a request that failed changed nothing */
		(void)jute_read_int(r);
		return r->error ? damaged(a, "an error txn that does not parse") : 0;
	}
	if (in_multi)
		return damaged(a, "a multi holds an op ZooKeeper never puts in one");
	switch (type) {
	case ZK_OP_SET_ACL:
		return apply_set_acl(a, r);
	case ZK_OP_MULTI:
		return apply_multi(a, r, client, zxid, time_ms);
	case ZK_OP_CREATE_SESSION:
		return apply_create_session(a, r, client);
	case ZK_OP_CLOSE_SESSION:
		return apply_close_session(a, r, client, zxid);
	case ZK_OP_RECONFIG: {
		/* A setData of /zookeeper/config: corral keeps its own membership. */
		const uint8_t *data;
		int32_t dlen;
		jute_read_string(r, &path, &plen);
		jute_read_buffer(r, &data, &dlen);
		(void)jute_read_int(r);
		return r->error ? damaged(a, "a reconfig txn that does not parse") : 0;
	}
	}
	char what[96];
	snprintf(what, sizeof(what), "a txn of type %d, which ZooKeeper does not write", type);
	return damaged(a, what);
}

int zk_apply_record(struct zk_apply *a, const uint8_t *p, size_t len, int64_t *ret_zxid)
{
	struct jute_reader r;
	jute_reader_init(&r, p, len);
	int64_t client = jute_read_long(&r);
	(void)jute_read_int(&r);	/* cxid */
	int64_t zxid = jute_read_long(&r);
	int64_t time_ms = jute_read_long(&r);
	int32_t type = jute_read_int(&r);
	if (r.error)
		return damaged(a, "a txn header that does not parse");
	*ret_zxid = zxid;
	/* The txn, then the digest when there is one (ZooKeeper 3.6+): what
	 * decoding the txn leaves. A closeSession without its body (3.4, or
	 * closeSessionTxn disabled) is all digest. */
	size_t body = len - r.pos;
	struct jute_reader txn, digest;
	bool bodiless = type == ZK_OP_CLOSE_SESSION && (body == 12 || body == 0);
	jute_reader_init(&txn, p + r.pos, bodiless ? 0 : body);
	int err = apply_txn(a, type, &txn, client, zxid, time_ms, false);
	if (err < 0)
		return err;
	if (bodiless)
		jute_reader_init(&digest, p + r.pos, body);
	else
		digest = txn;
	if (jute_remaining(&digest) >= 12) {
		a->digest_version = jute_read_int(&digest);
		a->digest = (uint64_t)jute_read_long(&digest);
		a->digest_zxid = zxid;
	} else if (type != ZK_OP_ERROR) {
		/* A txn that may have changed the tree, without the digest after
		 * it: the one before no longer tells. (An error txn, which ZooKeeper
		 * logs without one, changed nothing.) */
		a->digest_zxid = 0;
	}
	a->res->last_time_ms = time_ms;
	return 0;
}

/* The whole file, read into memory. */
static int read_file(const char *path, uint8_t **ret, size_t *ret_len, char *why, size_t why_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int err = errno;
		snprintf(why, why_size, "%s: %s", path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	uint8_t *p = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	size_t got = 0;
	while (p && got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!p || got != (size_t)st.st_size) {
		snprintf(why, why_size, "%s: %s", path, p ? "cannot read it whole" : "out of memory");
		int err = p ? -EIO : -ENOMEM;
		free(p);
		return err;
	}
	*ret = p;
	*ret_len = got;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* A bad record: damage, unless it is the torn tail of the last file (only
 * zeros after it, ZooKeeper's preallocation) and the caller accepts one. */
static int bad_record(struct zk_apply *a, const char *what, const uint8_t *p, size_t len,
		      size_t end, bool last_file, const struct zookeeper_import_options *opt,
		      bool *ret_stop)
{
	if (a->following && last_file) {
		*ret_stop = true;	/* not all written yet: the next poll reads it again */
		return 0;
	}
	bool torn = last_file && (end >= len || all_zero(p + end, len - end));
	if (torn && opt->accept_torn_tail) {
		*ret_stop = true;
		return 0;
	}
	char msg[256];
	snprintf(msg, sizeof(msg), "%s%s", what, torn ?
		 " (the last record, cut short: ZooKeeper stopped while writing it and never "
		 "acknowledged it; --accept-torn-tail imports up to the record before it)" : "");
	return damaged(a, msg);
}

/* Checks one log file's header and applies its records after snap_zxid. */
static int check_log_header(struct zk_apply *a, struct jute_reader *r)
{
	int32_t magic = jute_read_int(r), version = jute_read_int(r);
	(void)jute_read_long(r);	/* dbid */
	a->offset = 0;
	if (r->error || magic != ZK_LOG_MAGIC)
		return damaged(a, "not a ZooKeeper txn log (no \"ZKLG\" header)");
	if (version != ZK_FILE_FORMAT_VERSION) {
		char what[160];
		snprintf(what, sizeof(what), "txn log format version %d; this corrald reads version "
			 "%d (ZooKeeper 3.4 to 3.9)", version, ZK_FILE_FORMAT_VERSION);
		damaged(a, what);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

/* Applies the records of p[0..len), the log file's bytes from a->base (0:
 * from its header) after snap_zxid; a->next is where the next record
 * begins. */
static int read_log(const uint8_t *p, size_t len, bool last_file, uint64_t snap_zxid,
		    const struct zookeeper_import_options *opt, struct zk_apply *a, bool *ret_stop)
{
	struct jute_reader r;
	jute_reader_init(&r, p, len);
	if (a->base == 0) {
		if (a->following && len < 16) {
			*ret_stop = true;	/* the header is not written yet */
			return 0;
		}
		int err = check_log_header(a, &r);
		if (err < 0)
			return err;
	}
	a->next = a->base + r.pos;
	while (r.pos < len) {
		a->offset = a->base + r.pos;
		if (len - r.pos < 12)
			return all_zero(p + r.pos, len - r.pos) ? 0 :
				bad_record(a, "a record cut short", p, len, len, last_file, opt, ret_stop);
		uint64_t crc = (uint64_t)jute_read_long(&r);
		int32_t n = jute_read_int(&r);
		if (n == 0)
			return 0;	/* the preallocated zeros: the end */
		size_t end = r.pos + (n > 0 ? (size_t)n : 0) + 1;
		if (n < 0 || (size_t)n >= len - r.pos)
			return bad_record(a, "a record cut short", p, len, len, last_file, opt, ret_stop);
		const uint8_t *txn = p + r.pos;
		if (txn[n] != 'B')
			return bad_record(a, "a record without its end marker", p, len, end, last_file,
					  opt, ret_stop);
		if (adler32(1, txn, (uInt)n) != crc)
			return bad_record(a, "a record whose Adler-32 checksum does not match", p, len,
					  end, last_file, opt, ret_stop);
		r.pos = end;
		a->next = a->base + end;
		if (n < 32)
			return damaged(a, "a record too short for a txn header");
		uint64_t zxid_be;
		memcpy(&zxid_be, txn + 12, 8);	/* TxnHeader: clientId, cxid, zxid */
		int64_t zxid = (int64_t)be64toh(zxid_be);
		if ((uint64_t)zxid <= snap_zxid)
			continue;	/* in the snapshot already */
		if ((uint64_t)zxid <= a->res->last_zxid)
			return damaged(a, "a txn whose zxid is not above the one before it");
		if (zxid >> 32 == (int64_t)(a->res->last_zxid >> 32) &&
		    (uint64_t)zxid != a->res->last_zxid + 1) {
			char what[160];
			snprintf(what, sizeof(what), "zxid 0x%" PRIx64 " follows 0x%" PRIx64 ": the txns "
				 "between are missing", (uint64_t)zxid, a->res->last_zxid);
			return damaged(a, what);
		}
		int err = zk_apply_record(a, txn, (size_t)n, &zxid);
		if (err < 0)
			return err;
		a->res->last_zxid = (uint64_t)zxid;
		a->res->txns_applied++;
	}
	return 0;
}

int zk_read_logs(const char *dir, char **names, const uint64_t *zxids, size_t count,
		 uint64_t snap_zxid, const struct zookeeper_import_options *opt, struct zk_apply *a)
{
	/* The newest log that begins at or before the snapshot, and all after. */
	size_t first = 0;
	for (size_t i = 0; i < count; i++)
		if (zxids[i] <= snap_zxid)
			first = i;
	bool stop = false;
	for (size_t i = first; i < count && !stop; i++) {
		char path[4200];
		uint8_t *p = NULL;
		size_t len = 0;
		snprintf(path, sizeof(path), "%.3900s/%.255s", dir, names[i]);
		int err = read_file(path, &p, &len, a->why, a->why_size);
		if (err < 0)
			return err;
		a->file = path;
		a->base = 0;
		err = read_log(p, len, i + 1 == count, snap_zxid, opt, a, &stop);
		a->file = NULL;
		free(p);
		if (err < 0)
			return err;
		a->res->log_files++;
		snprintf(a->log_name, sizeof(a->log_name), "%s", names[i]);
		a->log_zxid = zxids[i];
	}
	a->snap_zxid = snap_zxid;
	return 0;
}

/* Up to max bytes of path from offset. */
static int read_range(const char *path, uint64_t offset, size_t max, uint8_t **ret,
		      size_t *ret_len, char *why, size_t why_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *p = malloc(max);
	ssize_t n = fd >= 0 && p ? pread(fd, p, max, (off_t)offset) : -1;
	int err = n < 0 ? (p ? errno : ENOMEM) : 0;
	if (fd >= 0)
		close(fd);
	if (err) {
		snprintf(why, why_size, "%s: %s", path, strerror(err));
		free(p);
		return -err;
	}
	*ret = p;
	*ret_len = (size_t)n;
	return 0;
}

/* Reads one file from a->next on (a->base = a->next), in chunks. */
static int follow_file(const char *path, bool last, const struct zookeeper_import_options *opt,
		       struct zk_apply *a)
{
	size_t chunk = 1 << 20;
	for (;;) {
		uint8_t *p = NULL;
		size_t len = 0;
		a->base = a->next;
		int err = read_range(path, a->base, chunk, &p, &len, a->why, a->why_size);
		if (err < 0)
			return err;
		bool stop = false;
		a->file = path;
		err = read_log(p, len, last, a->snap_zxid, opt, a, &stop);
		a->file = NULL;
		free(p);
		if (err < 0 || len < chunk)
			return err;	/* the end of what is written */
		if (!stop && a->next == a->base)
			return 0;	/* the preallocated zeros */
		if (stop && a->next != a->base)
			return 0;	/* a record not all written yet */
		if (stop && chunk >= (64u << 20))
			return 0;
		if (stop)
			chunk *= 2;	/* a record longer than the chunk */
	}
}

int zk_follow_logs(const char *dir, char **names, const uint64_t *zxids, size_t count,
		   const struct zookeeper_import_options *opt, struct zk_apply *a)
{
	for (size_t i = 0; i < count; i++) {
		if (zxids[i] < a->log_zxid || (zxids[i] == a->log_zxid && strcmp(names[i], a->log_name)))
			continue;
		if (zxids[i] != a->log_zxid || !a->log_name[0]) {
			/* A log ZooKeeper began since: read from its header. */
			a->next = 0;
			snprintf(a->log_name, sizeof(a->log_name), "%s", names[i]);
			a->log_zxid = zxids[i];
			a->res->log_files++;
		}
		char path[4200];
		snprintf(path, sizeof(path), "%.3900s/%.255s", dir, names[i]);
		int err = follow_file(path, i + 1 == count, opt, a);
		if (err < 0)
			return err;
	}
	return 0;
}
