/* txn: see txn.h. txn_apply() is the one function that changes the state. */
#include "txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "assertions.h"
#include "path.h"
#include "quota.h"

struct txn *txn_new(uint32_t op_count)
{
	struct txn *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ops = calloc(op_count ? op_count : 1, sizeof(*t->ops));
	if (!t->ops) {
		free(t);
		return NULL;
	}
	t->op_count = op_count;
	return t;
}

void txn_op_clear(struct txn_op *op)
{
	free(op->path);
	free(op->data);
	for (uint32_t k = 0; k < op->acl_count; k++) {
		free(op->acl[k].scheme);
		free(op->acl[k].id);
	}
	free(op->acl);
	memset(op, 0, sizeof(*op));
}

bool txn_is_error(const struct txn *t)
{
	if (t->op_count == 0)
		return false;
	for (uint32_t i = 0; i < t->op_count; i++)
		if (t->ops[i].type != TXN_OP_ERROR)
			return false;
	return true;
}

void txn_free(struct txn *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->op_count; i++)
		txn_op_clear(&t->ops[i]);
	free(t->ops);
	free(t);
}

static void notify(struct state *s, int64_t zxid, int type, const struct znode *n, const char *path,
		   size_t len)
{
	if (s->listener.node_event)
		s->listener.node_event(s->listener.ctx, zxid, type, n, path, len);
}

static int apply_create(struct state *s, const struct txn *t, const struct txn_op *op,
			struct txn_result *res)
{
	size_t plen = path_parent_len(op->path, op->path_len);
	struct znode *parent = tree_lookup(&s->tree, op->path, plen);
	/* Prep checked this against the same state. Should a txn still not fit
	 * (a bug), it fails alone, the same way on every replay, as ZooKeeper's
	 * processTxn does: a durable txn must never stop the server from starting. */
	if (!parent) {
		res->err = ZNONODE;
		return 0;
	}
	if (tree_lookup(&s->tree, op->path, op->path_len)) {
		res->err = ZNODEEXISTS;
		return 0;
	}

	struct acl_list *acl = acl_intern(&s->tree.acls, op->acl, op->acl_count);
	if (!acl)
		return -ENOMEM;
	struct znode *n = tree_add(&s->tree, parent, op->path, op->path_len, op->data,
				   op->data_len, acl, op->owner, t->zxid, t->time_ms);
	acl_unref(&s->tree.acls, acl);
	if (!n)
		return -ENOMEM;
	/* tree_add made the parent's children's part */
	tree_node_changing(&s->tree, parent);
	znode_kids(parent)->creates = op->parent_child_creates;
	if (t->zxid > znode_kids(parent)->pzxid)
		znode_kids(parent)->pzxid = t->zxid;
	tree_node_changed(&s->tree, parent);
	ASSERT(znode_parent(n) == parent && znode_num_children(parent) > 0 && n->czxid == t->zxid);
	if (quota_node_added(&s->tree, n) < 0)
		return -ENOMEM;
	if (znode_is_ephemeral(n)) {
		struct session *owner = session_lookup(&s->sessions, znode_owner(n));
		if (owner)
			session_link_ephemeral(owner, n);
	}
	znode_stat(n, &res->stat);
	notify(s, t->zxid, ZK_EVENT_NODE_CREATED, n, op->path, op->path_len);
	notify(s, t->zxid, ZK_EVENT_NODE_CHILDREN_CHANGED, parent, op->path, plen);
	return 0;
}

/* Deletes n, whose path is path (len bytes). */
static int delete_node(struct state *s, struct znode *n, const char *path, size_t len, int64_t zxid)
{
	struct znode *parent = znode_parent(n);
	ASSERT(parent && parent->kids && znode_num_children(n) == 0);
	if (quota_node_removing(&s->tree, n) < 0)
		return -ENOMEM;
	if (znode_is_ephemeral(n)) {
		struct session *owner = session_lookup(&s->sessions, znode_owner(n));
		if (owner)
			session_unlink_ephemeral(owner, n);
	}
	/* Only move pzxid forward, as ZooKeeper does. */
	if (zxid > znode_kids(parent)->pzxid) {
		tree_node_changing(&s->tree, parent);
		znode_kids(parent)->pzxid = zxid;
		tree_node_changed(&s->tree, parent);
	}
	notify(s, zxid, ZK_EVENT_NODE_DELETED, n, path, len);
	tree_remove(&s->tree, n);
	notify(s, zxid, ZK_EVENT_NODE_CHILDREN_CHANGED, parent, path, path_parent_len(path, len));
	return 0;
}

/* The node an op names: by the hash prep looked its path up with, when it
 * did. A miss looks again: the tree may have been replaced since (a
 * leader's snapshot installed) by one that hashes with another key, and a
 * wrong bucket can only miss, never find another node. */
static struct znode *op_node(struct state *s, const struct txn_op *op)
{
	if (op->path_hashed) {
		struct znode *n = tree_lookup_hashed(&s->tree, op->path, op->path_len, op->path_hash);
		if (n)
			return n;
	}
	return tree_lookup(&s->tree, op->path, op->path_len);
}

static int apply_op(struct state *s, const struct txn *t, const struct txn_op *op,
		    struct txn_result *res)
{
	struct znode *n;

	res->err = ZOK;
	switch (op->type) {
	case TXN_OP_CREATE:
		return apply_create(s, t, op, res);
	case TXN_OP_DELETE:
		n = op_node(s, op);
		if (!n || znode_num_children(n) > 0 || n == s->tree.root) {
			res->err = !n ? ZNONODE : ZNOTEMPTY;
			return 0;
		}
		return delete_node(s, n, op->path, op->path_len, t->zxid);
	case TXN_OP_SET_DATA: {
		n = op_node(s, op);
		if (!n) {
			res->err = ZNONODE;
			return 0;
		}
		int32_t old_len = n->data_len;
		tree_node_changing(&s->tree, n);
		struct znode_mod *m = tree_mod(&s->tree, n);
		if (!m || tree_set_data(&s->tree, n, op->data, op->data_len) < 0) {
			tree_node_changed(&s->tree, n);
			return -ENOMEM;
		}
		m->mzxid = t->zxid;
		m->mtime = t->time_ms;
		m->version = op->version;
		tree_node_changed(&s->tree, n);
		if (quota_data_changed(&s->tree, n, old_len) < 0)
			return -ENOMEM;
		znode_stat(n, &res->stat);
		notify(s, t->zxid, ZK_EVENT_NODE_DATA_CHANGED, n, op->path, op->path_len);
		return 0;
	}
	case TXN_OP_SET_ACL: {
		n = op_node(s, op);
		if (!n) {
			res->err = ZNONODE;
			return 0;
		}
		struct acl_list *acl = acl_intern(&s->tree.acls, op->acl, op->acl_count);
		if (!acl)
			return -ENOMEM;
		tree_node_changing(&s->tree, n);
		struct znode_mod *m = tree_mod(&s->tree, n);
		if (m) {
			tree_set_acl(&s->tree, n, acl);
			m->aversion = op->version;
		}
		tree_node_changed(&s->tree, n);
		acl_unref(&s->tree.acls, acl);
		if (!m)
			return -ENOMEM;
		znode_stat(n, &res->stat);
		return 0;
	}
	case TXN_OP_CHECK:
		return 0;
	case TXN_OP_ERROR:
		res->err = op->err;
		return 0;
	case TXN_OP_CREATE_SESSION:
		if (!session_add(&s->sessions, op->session_id, op->timeout_ms, op->password,
				 s->local_now_ms))
			return -ENOMEM;
		return 0;
	case TXN_OP_CLOSE_SESSION: {
		struct session *sess = session_lookup(&s->sessions, op->session_id);
		if (!sess)
			return 0;
		struct znode *eph;
		while ((eph = session_first_ephemeral(sess))) {
			ASSERT(znode_owner(eph) == sess->id);
			/* a copy: the delete builds other paths in the tree's room */
			size_t len = znode_path_len(eph);
			char *path = malloc(len + 1);
			if (!path)
				return -ENOMEM;
			znode_path_write(eph, path, len);
			int r = delete_node(s, eph, path, len, t->zxid);
			free(path);
			if (r < 0)
				return r;
		}
		session_remove(&s->sessions, sess);
		return 0;
	}
	}
	ASSERT(!"a txn op of a type txn_codec.c lets through");
	return -EINVAL;
}

int txn_apply(struct state *s, const struct txn *t, struct txn_result *results)
{
	/* Each txn once, in zxid order: the state is the log's prefix. */
	ASSERT(t->zxid > s->last_zxid);
	for (uint32_t i = 0; i < t->op_count; i++) {
		int r = apply_op(s, t, &t->ops[i], &results[i]);
		if (r < 0)
			return r;
	}
	s->last_zxid = t->zxid;
	state_note_digest(s);
	return 0;
}
