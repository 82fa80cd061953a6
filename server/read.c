/* read: the requests that read (exists, getData, getChildren, getACL,
 * multiRead, getEphemerals, getAllChildrenNumber, sync) and the ones that
 * touch only the connection (ping, auth, whoAmI, the watch ops). They run
 * against the applied tree, once dispatch.c decides their turn has come. */
#include "read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "conn.h"
#include "log.h"
#include "path.h"
#include "proto.h"
#include "records.h"
#include "reply.h"
#include "sasl.h"
#include "server_config.h"
#include "session.h"
#include "state.h"

/* Adds a watch for the connection, within session.max_watches; past it the
 * connection is closed and -ECONNABORTED returned. */
static int add_watch(struct request_path *p, struct conn *c, const char *path, size_t len,
		     uint8_t kind)
{
	if (watch_has(p->watches, &c->watches, path, len, kind))
		return 0;
	if (c->watches.count >= p->cfg->max_watches_per_session) {
		log_event(LOG_WARNING, { .message_id = LOG_MSGID_SLOW_CLIENT,
					 .session_id = c->session ? c->session->id : 0 },
			  "connection %llu from %s closed: more than %u watches "
			  "(session.max_watches)", (unsigned long long)c->id, c->peer_text,
			  p->cfg->max_watches_per_session);
		conn_close(c, 0, NULL);
		return -ECONNABORTED;
	}
	return watch_add(p->watches, &c->watches, path, len, kind) < 0 ? -ENOMEM : 0;
}

/* setWatches/setWatches2: a reconnecting client's watches, relative to the
 * last zxid it saw. What changed meanwhile fires now; the rest is registered. */
static int set_watches(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		       struct jute_reader *r)
{
	struct set_watches_reader it;
	/* dataWatches, existWatches, childWatches[, persistent, persistentRecursive] */
	static const uint8_t kinds[] = { WATCH_DATA, WATCH_EXIST, WATCH_CHILD,
					 WATCH_PERSISTENT, WATCH_RECURSIVE };
	unsigned l;
	const char *path;
	int32_t len;
	int more;

	if (set_watches_begin(&it, r, op == ZK_OP_SET_WATCHES2) < 0)
		return -EBADMSG;
	int64_t rel = it.relative_zxid;
	while ((more = set_watches_next(&it, &l, &path, &len)) > 0) {
		struct znode *node = tree_lookup(&p->state->tree, path, (size_t)len);
		int fire = 0;
		switch (kinds[l]) {
		case WATCH_DATA:
			if (!node)
				fire = ZK_EVENT_NODE_DELETED;
			else if (znode_mzxid(node) > rel)
				fire = ZK_EVENT_NODE_DATA_CHANGED;
			break;
		case WATCH_EXIST:
			if (node)
				fire = ZK_EVENT_NODE_CREATED;
			break;
		case WATCH_CHILD:
			if (!node)
				fire = ZK_EVENT_NODE_DELETED;
			else if (znode_pzxid(node) > rel)
				fire = ZK_EVENT_NODE_CHILDREN_CHANGED;
			break;
		}
		if (fire) {
			reply_event(c, p->state->last_zxid, fire, path, (size_t)len);
			continue;
		}
		int err = add_watch(p, c, path, (size_t)len, kinds[l]);
		if (err)
			return err;
	}
	if (more < 0)
		return -EBADMSG;
	reply_end(c, reply_begin(c, xid, p->state->last_zxid, ZOK));
	return 0;
}

static int get_acl(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		   struct jute_reader *r)
{
	struct path_request req;
	struct zk_stat st;

	if (path_request_decode(r, &req) < 0)
		return -EBADMSG;
	struct znode *n = tree_lookup(&p->state->tree, req.path, (size_t)req.path_len);
	if (!n) {
		reply_error(c, xid, p->state->last_zxid, ZNONODE);
		return 0;
	}
	if (!auth_allowed(&c->auth, znode_acl(n), ZK_PERM_READ | ZK_PERM_ADMIN)) {
		reply_error(c, xid, p->state->last_zxid, ZNOAUTH);
		return 0;
	}
	/* Without ADMIN, digest ids are shown as "user:x", as ZooKeeper does. */
	bool admin = auth_allowed(&c->auth, znode_acl(n), ZK_PERM_ADMIN);
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	const struct acl_list *acl = znode_acl(n);
	jute_write_int(&c->obuf, (int32_t)acl->count);
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		jute_write_int(&c->obuf, e->perms);
		jute_write_string(&c->obuf, e->scheme, (int32_t)strlen(e->scheme));
		const char *colon = strchr(e->id, ':');
		if (!admin && strcmp(e->scheme, "digest") == 0 && colon) {
			int32_t ulen = (int32_t)(colon - e->id);
			jute_write_int(&c->obuf, ulen + 2);
			jute_write_raw(&c->obuf, e->id, (size_t)ulen);
			jute_write_raw(&c->obuf, ":x", 2);
		} else {
			jute_write_string(&c->obuf, e->id, (int32_t)strlen(e->id));
		}
	}
	znode_stat(n, &st);
	stat_encode(&c->obuf, &st);
	reply_end(c, start);
	return 0;
}

/* auth: success answers {xid, zxid, 0} (clients send xid -4; ZooKeeper echoes
 * what came); failure AUTHFAILED and the connection closes. */
static int auth_packet(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		       struct jute_reader *r)
{
	struct auth_request req;

	if (auth_request_decode(r, &req) < 0)
		return -EBADMSG;
	int err = auth_add(&c->auth, req.scheme, (size_t)req.scheme_len, req.auth,
			   (size_t)req.auth_len, p->cfg->super_digest);
	if (err == -ENOMEM)
		return -ENOMEM;
	if (err == -ENOSPC) {
		log_warning("connection %llu from %s closed: addauth past the %d identities one "
			    "connection may hold (its ip identity and %d added)",
			    (unsigned long long)c->id, c->peer_text, AUTH_IDS_MAX, AUTH_IDS_MAX - 1);
		reply_error(c, xid, p->state->last_zxid, ZAUTHFAILED);
		conn_close_after_flush(c);
		return 0;
	}
	if (err < 0) {
		log_info("connection %llu from %s: authentication with scheme %.*s failed; closing",
			 (unsigned long long)c->id, c->peer_text, (int)req.scheme_len, req.scheme);
		reply_error(c, xid, p->state->last_zxid, ZAUTHFAILED);
		c->hub->stats.auth_failed++;
		conn_close_after_flush(c);
		return 0;
	}
	reply_error(c, xid, p->state->last_zxid, ZOK);
	return 0;
}

static int who_am_i(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		    struct jute_reader *r)
{
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	jute_write_int(&c->obuf, (int32_t)c->auth.count);
	for (uint32_t i = 0; i < c->auth.count; i++) {
		const struct auth_id *id = &c->auth.ids[i];
		/* For digest, the user is the part before ':' (ZooKeeper's getUserName). */
		const char *colon = strcmp(id->scheme, "digest") == 0 ? strchr(id->id, ':') : NULL;
		jute_write_string(&c->obuf, id->scheme, (int32_t)strlen(id->scheme));
		jute_write_string(&c->obuf, id->id, colon ? (int32_t)(colon - id->id) : (int32_t)strlen(id->id));
	}
	reply_end(c, start);
	return 0;
}

/* exists/getData/getChildren(2): looks the node up, checks READ and leaves
 * the watch, in ZooKeeper's order. Returns 0 with *ret_zk_err (ZOK and
 * *ret_node, or the error for the client), or a negative errno after which
 * the connection goes (-ENOMEM, or -ECONNABORTED past the watch limit). */
static int node_read(struct request_path *p, struct conn *c, int32_t op, const struct path_watch_request *pw,
		     struct znode **ret_node, int *ret_zk_err)
{
	struct tree *tree = &p->state->tree;
	if (op == ZK_OP_EXISTS && memchr(pw->path, 0, (size_t)pw->path_len)) {
		*ret_zk_err = ZBADARGUMENTS;
		return 0;
	}
	/* ZooKeeper keys its root under "" as well as "/". */
	struct znode *n = pw->path_len == 0 ? tree->root
					    : tree_lookup(tree, pw->path, (size_t)pw->path_len);
	/* ZooKeeper 3.8 checks READ for getData and getChildren, not for exists. */
	if (n && op != ZK_OP_EXISTS && !auth_allowed(&c->auth, znode_acl(n), ZK_PERM_READ)) {
		*ret_zk_err = ZNOAUTH;
		return 0;
	}
	/* exists watches a missing node too; the others only an existing one. */
	if (pw->watch && (n || op == ZK_OP_EXISTS)) {
		enum watch_kind kind = op == ZK_OP_GET_CHILDREN || op == ZK_OP_GET_CHILDREN2
			? WATCH_CHILD : (n ? WATCH_DATA : WATCH_EXIST);
		/* the node's path is the request's ("/" for the root's "") */
		bool root = pw->path_len == 0;
		int err = add_watch(p, c, root ? "/" : pw->path, root ? 1 : (size_t)pw->path_len, kind);
		if (err < 0)
			return err;
	}
	*ret_zk_err = n ? ZOK : ZNONODE;
	*ret_node = n;
	return 0;
}

/* A read answered, as ZooKeeper's DataTree counts it (read_per_namespace):
 * the path, what it returned, and 68 bytes for the rest. */
#define READ_OVERHEAD_BYTES 68

/* n's part of the reply; pw asked for it. */
static void node_read_body(struct request_path *p, struct conn *c, int32_t op,
			   const struct path_watch_request *pw, const struct znode *n)
{
	struct zk_stat st;
	int64_t read_bytes = 0;
	if (op == ZK_OP_GET_DATA) {
		jute_write_buffer(&c->obuf, znode_data(n), n->data_len);
		read_bytes = n->data_len > 0 ? n->data_len : 0;
	}
	if (op == ZK_OP_GET_CHILDREN || op == ZK_OP_GET_CHILDREN2) {
		/* The hot part of a wide getChildren: size the vector<ustring>
		 * first, then copy the names in one pass with no further checks. */
		size_t total = 4;
		for (const struct znode *ch = znode_first_child(n); ch; ch = znode_next_sibling(ch))
			total += 4 + ch->name_len;
		read_bytes = (int64_t)(total - 4 - 4 * (size_t)znode_num_children(n));
		uint8_t *w = jute_buf_extend(&c->obuf, total);
		if (w) {
			w = jute_put_int(w, znode_num_children(n));
			for (const struct znode *ch = znode_first_child(n); ch; ch = znode_next_sibling(ch)) {
				uint32_t len = ch->name_len;
				w = jute_put_int(w, (int32_t)len);
				memcpy(w, ch->name, len);
				w += len;
			}
		}
	}
	if (op != ZK_OP_GET_CHILDREN) {
		znode_stat(n, &st);
		stat_encode(&c->obuf, &st);
	}
	namespace_stats_add(&p->clients->reads, pw->path, (size_t)pw->path_len,
			    (int64_t)pw->path_len + read_bytes + READ_OVERHEAD_BYTES);
}

static uint64_t count_descendants(const struct znode *n)
{
	uint64_t count = 0;
	/* Iterative walk: the tree's depth is the client's choice. */
	const struct znode *cur = znode_first_child(n);
	while (cur) {
		count++;
		if (znode_first_child(cur)) {
			cur = znode_first_child(cur);
			continue;
		}
		while (cur && cur != n && !cur->next_sibling)
			cur = znode_parent(cur);
		cur = (cur && cur != n) ? znode_next_sibling(cur) : NULL;
	}
	return count;
}

/* multiRead: getData and getChildren ops, each answered on its own. */
static int multi_read(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		      struct jute_reader *r)
{
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	for (;;) {
		struct multi_header h;
		if (multi_header_decode(r, &h) < 0)
			return -EBADMSG;
		if (h.done)
			break;
		int32_t type = h.type;
		if (type != ZK_OP_GET_DATA && type != ZK_OP_GET_CHILDREN) {
			/* Only reads belong in a multiRead: ZooKeeper answers the whole
			 * request with MARSHALLINGERROR and keeps the connection. */
			c->obuf.len = start;
			reply_error(c, xid, p->state->last_zxid, ZMARSHALLINGERROR);
			return 0;
		}
		struct path_watch_request pw;
		struct znode *n = NULL;
		if (path_watch_request_decode(r, &pw) < 0)
			return -EBADMSG;
		pw.watch = false;	/* ZooKeeper ignores watch flags in a multiRead */
		int err;
		int r2 = node_read(p, c, type, &pw, &n, &err);
		if (r2 < 0)
			return r2;
		jute_write_int(&c->obuf, err ? ZK_OP_ERROR : type);
		jute_write_bool(&c->obuf, false);
		jute_write_int(&c->obuf, err);
		if (err)
			jute_write_int(&c->obuf, err);
		else
			node_read_body(p, c, type, &pw, n);
	}
	jute_write_int(&c->obuf, -1);
	jute_write_bool(&c->obuf, true);
	jute_write_int(&c->obuf, -1);
	reply_end(c, start);
	return 0;
}

/* getEphemerals: the caller's session's ephemerals under a path prefix
 * ("" or "/" for all), as ZooKeeper: a plain string prefix. */
static int get_ephemerals(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
			  struct jute_reader *r)
{
	struct path_request req;
	if (path_request_decode(r, &req) < 0)
		return -EBADMSG;
	const char *prefix = req.path;
	int32_t plen = req.path_len;
	bool all = plen == 0 || (plen == 1 && prefix[0] == '/');
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	size_t count_at = c->obuf.len;
	int32_t count = 0;
	jute_write_int(&c->obuf, 0);
	for (struct znode *n = c->session ? session_first_ephemeral(c->session) : NULL; n;
	     n = session_next_ephemeral(c->session, n)) {
		size_t len;
		const char *path = tree_path(&p->state->tree, n, &len);
		if (!all && (len < (size_t)plen || memcmp(path, prefix, (size_t)plen) != 0))
			continue;
		jute_write_string(&c->obuf, path, (int32_t)len);
		count++;
	}
	jute_patch_int(&c->obuf, count_at, count);
	reply_end(c, start);
	return 0;
}

/* Each read runs against the applied tree (or the connection alone) and
 * queues its reply. Returns 0, -EBADMSG (malformed), -ENOMEM or
 * -ECONNABORTED. */
typedef int (*read_handler)(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
			    struct jute_reader *r);

static int ping(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		struct jute_reader *r)
{
	/* ZooKeeper answers a ping with xid -2 whatever xid it came with. */
	reply_end(c, reply_begin(c, ZK_XID_PING, p->state->last_zxid, ZOK));
	return 0;
}

/* exists, getData, getChildren, getChildren2. */
static int read_node(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		     struct jute_reader *r)
{
	struct path_watch_request pw;
	struct znode *n;
	int zk_err;
	if (path_watch_request_decode(r, &pw) < 0)
		return -EBADMSG;
	int err = node_read(p, c, op, &pw, &n, &zk_err);
	if (err < 0)
		return err;
	if (zk_err) {
		reply_error(c, xid, p->state->last_zxid, zk_err);
		return 0;
	}
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	node_read_body(p, c, op, &pw, n);
	reply_end(c, start);
	return 0;
}

static int all_children_number(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
			       struct jute_reader *r)
{
	struct path_request req;
	if (path_request_decode(r, &req) < 0)
		return -EBADMSG;
	const struct znode *n = tree_lookup(&p->state->tree, req.path, (size_t)req.path_len);
	if (!n) {
		reply_error(c, xid, p->state->last_zxid, ZNONODE);
		return 0;
	}
	if (!auth_allowed(&c->auth, znode_acl(n), ZK_PERM_READ)) {
		reply_error(c, xid, p->state->last_zxid, ZNOAUTH);
		return 0;
	}
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	jute_write_int(&c->obuf, (int32_t)count_descendants(n));
	reply_end(c, start);
	return 0;
}

/* One server, or a sync whose txn was applied: what is committed is
 * applied, so it has nothing to wait for beyond this session's earlier
 * requests (the queue). */
static int sync_path(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		     struct jute_reader *r)
{
	struct path_request req;
	if (path_request_decode(r, &req) < 0)
		return -EBADMSG;
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	jute_write_string(&c->obuf, req.path, req.path_len);
	reply_end(c, start);
	return 0;
}

/* Without ensemble.reconfig (a write otherwise, dispatch.c): off, as in a
 * ZooKeeper without reconfigEnabled. */
static int reconfig_disabled(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
			     struct jute_reader *r)
{
	reply_error(c, xid, p->state->last_zxid, ZRECONFIGDISABLED);
	return 0;
}

/* A failed exchange, as ZooKeeper's processSasl: zxid 0, a null token,
 * AUTHFAILED (SESSIONCLOSEDREQUIRESASLAUTH when auth.enforce.schemes holds
 * sasl), and the connection closes, with one log line. (The Java client
 * reads the token whatever the error.) */
static void sasl_refuse(struct request_path *p, struct conn *c, int32_t xid, const char *why)
{
	bool required = p->cfg->enforce_auth && (p->cfg->enforce_auth_schemes & AUTH_SCHEME_SASL);
	log_info("connection %llu from %s: SASL authentication failed: %s; closing",
		 (unsigned long long)c->id, c->peer_text, why ? why : "no reason given");
	size_t start = reply_begin(c, xid, 0, required ? ZSESSIONCLOSEDREQUIRESASLAUTH : ZAUTHFAILED);
	jute_write_buffer(&c->obuf, NULL, -1);
	reply_end(c, start);
	c->hub->stats.auth_failed++;
	conn_close_after_flush(c);
}

/* The exchange is complete: the session gains ("sasl", name). */
static int sasl_complete(struct request_path *p, struct conn *c, int32_t xid, char *authid)
{
	char *name = auth_sasl_name(authid, p->cfg->sasl_remove_host, p->cfg->sasl_remove_realm);
	free(authid);
	if (!name)
		return -ENOMEM;
	int err = auth_add_sasl(&c->auth, name, p->cfg->sasl_super_user);
	if (err == -ENOSPC)
		sasl_refuse(p, c, xid, "past the identities one connection may hold");
	else if (err == 0)
		log_info("connection %llu from %s: SASL authenticated as %s%s",
			 (unsigned long long)c->id, c->peer_text, name,
			 c->auth.super ? " (super)" : "");
	free(name);
	return err == -ENOSPC ? 1 : err;
}

/* sasl: GetSASLRequest {token} in, SetSASLResponse {token} out (server/sasl.c
 * runs the exchange). With no mechanism configured every exchange fails. */
static int sasl(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		struct jute_reader *r)
{
	const uint8_t *token, *out = NULL;
	int32_t token_len;
	uint32_t out_len = 0;
	char *authid = NULL;
	const char *why = NULL;

	jute_read_buffer(r, &token, &token_len);
	if (r->error)
		return -EBADMSG;
	if (token_len < 0)
		token_len = 0;
	int err = sasl_enabled()
		? sasl_step(&c->sasl, token, (size_t)token_len, &out, &out_len, &authid, &why)
		: -EACCES;
	if (!sasl_enabled())
		why = "no SASL mechanism is configured (auth.sasl)";
	if (err == -ENOMEM)
		return err;
	if (err == -EACCES) {
		sasl_refuse(p, c, xid, why);
		return 0;
	}
	if (err == 1) {
		int done = sasl_complete(p, c, xid, authid);
		if (done != 0)
			return done < 0 ? done : 0;
	}
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	jute_write_buffer(&c->obuf, out, (int32_t)out_len);
	reply_end(c, start);
	return 0;
}

static int add_watch_request(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
			     struct jute_reader *r)
{
	struct watch_request req;
	if (watch_request_decode(r, &req) < 0)
		return -EBADMSG;
	/* As ZooKeeper 3.8: an unknown mode is a marshalling error; the path
	 * is not checked (a watch on a path that cannot exist never fires). */
	if (req.type != 0 && req.type != 1) {
		reply_error(c, xid, p->state->last_zxid, ZMARSHALLINGERROR);
		return 0;
	}
	int err = add_watch(p, c, req.path, (size_t)req.path_len,
			    req.type == 0 ? WATCH_PERSISTENT : WATCH_RECURSIVE);
	if (err)
		return err;
	size_t start = reply_begin(c, xid, p->state->last_zxid, ZOK);
	jute_write_int(&c->obuf, 0);
	reply_end(c, start);
	return 0;
}

/* checkWatches and removeWatches. */
static int check_watches(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
			 struct jute_reader *r)
{
	struct watch_request req;
	if (watch_request_decode(r, &req) < 0)
		return -EBADMSG;
	/* WatcherType as ZooKeeper 3.8 knows it: Children 1, Data 2, Any 3;
	 * anything else, or a path without '/', is a marshalling error there.
	 * ZooKeeper 3.8 has no types for persistent watches here: Children
	 * and Data reach them too (a watcher is one thing per path there). */
	static const uint8_t by_type[] = {
		[1] = WATCH_CHILD | WATCH_PERSISTENT | WATCH_RECURSIVE,
		[2] = WATCH_DATA | WATCH_EXIST | WATCH_PERSISTENT | WATCH_RECURSIVE,
		[3] = WATCH_ONE_SHOT | WATCH_PERSISTENT | WATCH_RECURSIVE,
	};
	size_t len = (size_t)req.path_len;
	if (req.type < 1 || req.type > 3 || !memchr(req.path, '/', len)) {
		reply_error(c, xid, p->state->last_zxid, ZMARSHALLINGERROR);
		return 0;
	}
	uint8_t types = by_type[req.type];
	bool found = op == ZK_OP_CHECK_WATCHES
		? watch_has(p->watches, &c->watches, req.path, len, types)
		: watch_remove(p->watches, &c->watches, req.path, len, types);
	reply_error(c, xid, p->state->last_zxid, found ? ZOK : ZNOWATCHER);
	return 0;
}

/* The handler of a read op, or NULL when op is not one. */
static read_handler handler_of(int32_t op)
{
	switch (op) {
	case ZK_OP_PING: return ping;
	case ZK_OP_EXISTS:
	case ZK_OP_GET_DATA:
	case ZK_OP_GET_CHILDREN:
	case ZK_OP_GET_CHILDREN2: return read_node;
	case ZK_OP_SYNC: return sync_path;
	case ZK_OP_SET_WATCHES:
	case ZK_OP_SET_WATCHES2: return set_watches;
	case ZK_OP_ADD_WATCH: return add_watch_request;
	case ZK_OP_CHECK_WATCHES:
	case ZK_OP_REMOVE_WATCHES: return check_watches;
	case ZK_OP_GET_ACL: return get_acl;
	case ZK_OP_AUTH: return auth_packet;
	case ZK_OP_WHO_AM_I: return who_am_i;
	case ZK_OP_MULTI_READ: return multi_read;
	case ZK_OP_GET_EPHEMERALS: return get_ephemerals;
	case ZK_OP_GET_ALL_CHILDREN_NUMBER: return all_children_number;
	case ZK_OP_RECONFIG: return reconfig_disabled;
	case ZK_OP_SASL: return sasl;
	}
	return NULL;
}

int read_execute(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		 const uint8_t *body, uint32_t len)
{
	struct jute_reader r;
	read_handler h = handler_of(op);
	jute_reader_init(&r, body, len);
	if (!h) {
		reply_error(c, xid, p->state->last_zxid, ZUNIMPLEMENTED);
		return 0;
	}
	return h(p, c, xid, op, &r);
}

bool read_op(int32_t op)
{
	return handler_of(op) != NULL;
}
