/* prep: see prep.h. */
#include "prep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "path.h"

int prep_init(struct prep *p, struct state *state, uint8_t server_id)
{
	memset(p, 0, sizeof(*p));
	p->state = state;
	p->server_id = server_id;
	p->next_seq = 1;
	p->extended_types = true;
	return pending_init(&p->pending, &state->tree);
}

void prep_free(struct prep *p)
{
	pending_free(&p->pending);
	memset(p, 0, sizeof(*p));
}

void prep_retire(struct prep *p, uint64_t seq)
{
	pending_retire(&p->pending, seq);
}

static struct txn *txn_start(const struct session *s, int32_t request_op, uint32_t op_count,
			     int64_t time_ms)
{
	struct txn *t = txn_new(op_count);
	if (!t)
		return NULL;
	t->time_ms = time_ms;
	t->session_id = s ? s->id : 0;
	t->request_op = request_op;
	return t;
}

/* Publishes the batch and hands out the txn; on failure frees both. */
static int finish(struct prep *p, struct txn *t, struct batch *b, struct txn **ret_txn)
{
	uint64_t seq = p->next_seq;
	int r = pending_publish(&p->pending, b, seq);
	batch_free(b);
	if (r < 0) {
		txn_free(t);
		return PREP_ENOMEM;
	}
	p->next_seq++;
	t->prep_seq = seq;
	*ret_txn = t;
	return 0;
}

static bool allowed(const struct auth_identities *ids, const struct acl_list *acl, int32_t perm)
{
	return !ids || auth_allowed(ids, acl, perm);
}

static bool is_normal_ephemeral(int64_t owner)
{
	return owner > 0;	/* container and TTL markers are negative */
}

/* ZooKeeper's checkAndIncVersion: -1 matches any version. */
static int check_version(int32_t current, int32_t expected)
{
	return (expected != -1 && expected != current) ? ZBADVERSION : ZOK;
}

/* ZooKeeper takes the parent as everything before the last '/'; "/a" has the
 * root. Returns false when the path has no '/' (or a NUL). */
static bool split_parent(const char *path, size_t len, size_t *ret_parent_len)
{
	const char *last_slash = (path && len) ? memrchr(path, '/', len) : NULL;
	if (!last_slash || memchr(path, 0, len))
		return false;
	size_t n = (size_t)(last_slash - path);
	*ret_parent_len = (n == 0 && path[0] == '/') ? 1 : n;
	return true;
}

static int fixup_acl(const struct auth_identities *ids, const struct acl_entry *in, uint32_t n,
		     struct acl_entry **ret, uint32_t *ret_count)
{
	if (!ids) {
		if (n == 0)
			return ZINVALIDACL;
		*ret = acl_entries_copy(in, n);
		*ret_count = n;
		return *ret ? 0 : PREP_ENOMEM;
	}
	int err = auth_fixup_acl(ids, in, n, ret, ret_count);
	if (err == -ENOMEM)
		return PREP_ENOMEM;
	return err < 0 ? ZINVALIDACL : 0;
}

static int copy_data(struct txn_op *o, const uint8_t *data, int32_t len)
{
	o->data_len = len;
	if (len <= 0)
		return 0;
	o->data = malloc((size_t)len);
	if (!o->data)
		return PREP_ENOMEM;
	memcpy(o->data, data, (size_t)len);
	return 0;
}

static int create_op(struct prep *p, struct batch *b, const struct session *s,
		     const struct auth_identities *ids, int32_t op,
		     const struct create_request *req, struct txn_op *o)
{
	struct node_view parent, existing;
	const char *path = req->path;
	size_t len = (size_t)req->path_len, parent_len;
	struct acl_entry *acl = NULL;
	uint32_t acl_count = 0;
	char *full = NULL;
	int err;

	if (req->flags < ZK_CREATE_PERSISTENT || req->flags > ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL)
		return ZBADARGUMENTS;
	bool ttl_mode = req->flags == ZK_CREATE_PERSISTENT_WITH_TTL ||
			req->flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	bool sequential = req->flags == ZK_CREATE_PERSISTENT_SEQUENTIAL ||
			  req->flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL ||
			  req->flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	int64_t ttl = op == ZK_OP_CREATE_TTL ? req->ttl_ms : -1;
	if (ttl_mode && !p->extended_types)
		return ZUNIMPLEMENTED;
	/* EphemeralType.validateTTL: a TTL mode needs 1..2^40-1, others no ttl. */
	if (ttl_mode ? (ttl <= 0 || ttl > ZNODE_TTL_MAX_MS) : ttl >= 0)
		return ZBADARGUMENTS;
	if (!split_parent(path, len, &parent_len))
		return ZBADARGUMENTS;
	err = fixup_acl(ids, req->acl, req->acl_count, &acl, &acl_count);
	if (err)
		return err;
	pending_lookup(&p->pending, b, path, parent_len, &parent);
	err = ZNONODE;
	if (!parent.exists || path[0] != '/')
		goto fail;
	err = ZNOAUTH;
	if (!allowed(ids, parent.acl, ZK_PERM_CREATE))
		goto fail;
	err = PREP_ENOMEM;
	full = malloc(len + 16);
	if (!full)
		goto fail;
	memcpy(full, path, len);
	if (sequential)
		len += (size_t)snprintf(full + len, 16, "%010d", parent.child_creates);
	full[len] = 0;
	err = ZBADARGUMENTS;
	if (!path_valid(full, len, false))
		goto fail;
	pending_lookup(&p->pending, b, full, len, &existing);
	err = ZNODEEXISTS;
	if (existing.exists)
		goto fail;
	err = ZNOCHILDRENFOREPHEMERALS;
	if (is_normal_ephemeral(parent.owner))
		goto fail;

	int64_t owner = 0;
	if (op == ZK_OP_CREATE_CONTAINER)
		owner = ZNODE_OWNER_CONTAINER;
	else if (op == ZK_OP_CREATE_TTL)
		owner = ZNODE_OWNER_TTL_MASK | ttl;
	else if (req->flags == ZK_CREATE_EPHEMERAL || req->flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL)
		owner = s->id;

	err = PREP_ENOMEM;
	struct acl_list *interned = acl_intern(&p->state->tree.acls, acl, acl_count);
	if (!interned || batch_hold(b, &p->state->tree.acls, interned) < 0 ||
	    copy_data(o, req->data, req->data_len) < 0)
		goto fail;
	o->type = TXN_OP_CREATE;
	o->request_type = op;
	o->path = full;
	o->path_len = (uint32_t)len;
	o->acl = acl;
	o->acl_count = acl_count;
	o->owner = owner;
	/* Wraps like ZooKeeper's Java int. */
	o->parent_child_creates = (int32_t)((uint32_t)parent.child_creates + 1u);

	parent.child_creates = o->parent_child_creates;
	parent.num_children++;
	struct node_view created = { .exists = true, .owner = owner, .acl = interned };
	/* The batch points at the txn's copy of the path; parent_len is a prefix of it. */
	err = batch_put(b, o->path, len, &created);
	if (err == 0)
		err = batch_put(b, o->path, parent_len, &parent);
	return err < 0 ? PREP_ENOMEM : 0;
fail:
	acl_entries_free(acl, acl_count);
	free(full);
	return err;
}

static int delete_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		     int32_t op, const char *path, size_t len, int32_t version, struct txn_op *o)
{
	struct node_view parent, node;
	size_t parent_len;

	if (!split_parent(path, len, &parent_len) || state_is_system_path(path, len))
		return ZBADARGUMENTS;
	pending_lookup(&p->pending, b, path, parent_len, &parent);
	if (!parent.exists || path[0] != '/')
		return ZNONODE;
	if (!allowed(ids, parent.acl, ZK_PERM_DELETE))
		return ZNOAUTH;
	pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return ZNONODE;
	int err = check_version(node.version, version);
	if (err)
		return err;
	if (node.num_children > 0)
		return ZNOTEMPTY;

	o->type = TXN_OP_DELETE;
	o->request_type = op;
	o->path = strndup(path, len);
	o->path_len = (uint32_t)len;
	if (!o->path)
		return PREP_ENOMEM;
	parent.num_children--;
	struct node_view gone = { 0 };
	if (batch_put(b, o->path, len, &gone) < 0 || batch_put(b, o->path, parent_len, &parent) < 0)
		return PREP_ENOMEM;
	return 0;
}

static int set_data_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		       const struct set_data_request *req, struct txn_op *o)
{
	struct node_view node;
	size_t len = (size_t)req->path_len;

	if (!path_valid(req->path, len, false))
		return ZBADARGUMENTS;
	pending_lookup(&p->pending, b, req->path, len, &node);
	if (!node.exists)
		return ZNONODE;
	if (!allowed(ids, node.acl, ZK_PERM_WRITE))
		return ZNOAUTH;
	int err = check_version(node.version, req->version);
	if (err)
		return err;

	o->type = TXN_OP_SET_DATA;
	o->request_type = ZK_OP_SET_DATA;
	o->path = strndup(req->path, len);
	o->path_len = (uint32_t)len;
	o->version = (int32_t)((uint32_t)node.version + 1u);
	if (!o->path || copy_data(o, req->data, req->data_len) < 0)
		return PREP_ENOMEM;
	node.version = o->version;
	return batch_put(b, o->path, len, &node) < 0 ? PREP_ENOMEM : 0;
}

static int set_acl_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		      const struct set_acl_request *req, struct txn_op *o)
{
	struct node_view node;
	size_t len = (size_t)req->path_len;
	struct acl_entry *acl = NULL;
	uint32_t acl_count = 0;
	int err;

	if (!path_valid(req->path, len, false))
		return ZBADARGUMENTS;
	err = fixup_acl(ids, req->acl, req->acl_count, &acl, &acl_count);
	if (err)
		return err;
	pending_lookup(&p->pending, b, req->path, len, &node);
	err = ZNONODE;
	if (!node.exists)
		goto fail;
	err = ZNOAUTH;
	if (!allowed(ids, node.acl, ZK_PERM_ADMIN))
		goto fail;
	err = check_version(node.aversion, req->version);
	if (err)
		goto fail;
	err = PREP_ENOMEM;
	struct acl_list *interned = acl_intern(&p->state->tree.acls, acl, acl_count);
	if (!interned || batch_hold(b, &p->state->tree.acls, interned) < 0)
		goto fail;
	o->path = strndup(req->path, len);
	if (!o->path)
		goto fail;
	o->type = TXN_OP_SET_ACL;
	o->request_type = ZK_OP_SET_ACL;
	o->path_len = (uint32_t)len;
	o->acl = acl;
	o->acl_count = acl_count;
	o->version = (int32_t)((uint32_t)node.aversion + 1u);
	node.aversion = o->version;
	node.acl = interned;
	return batch_put(b, o->path, len, &node) < 0 ? PREP_ENOMEM : 0;
fail:
	acl_entries_free(acl, acl_count);
	return err;
}

static int check_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		    const char *path, size_t len, int32_t version, struct txn_op *o)
{
	struct node_view node;
	if (!path_valid(path, len, false))
		return ZBADARGUMENTS;
	pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return ZNONODE;
	if (!allowed(ids, node.acl, ZK_PERM_READ))
		return ZNOAUTH;
	int err = check_version(node.version, version);
	if (err)
		return err;
	o->type = TXN_OP_CHECK;
	o->request_type = ZK_OP_CHECK;
	return 0;
}

/* Runs one op's check into t->ops[0] and publishes it. */
#define PREP_SINGLE(p, s, request_op, time_ms, ret_txn, call)			\
	({									\
		struct batch b_ = { 0 };					\
		struct txn *t_ = txn_start((s), (request_op), 1, (time_ms));	\
		int err_ = t_ ? 0 : PREP_ENOMEM;				\
		if (t_) {							\
			struct txn_op *o = &t_->ops[0];				\
			struct batch *b = &b_;					\
			err_ = (call);						\
			if (err_) {						\
				batch_free(&b_);				\
				txn_free(t_);					\
			} else {						\
				err_ = finish((p), t_, &b_, (ret_txn));		\
			}							\
		}								\
		err_;								\
	})

int prep_create(struct prep *p, const struct session *s, const struct auth_identities *ids,
		int32_t op, const struct create_request *req, int64_t time_ms, struct txn **ret_txn)
{
	return PREP_SINGLE(p, s, op, time_ms, ret_txn, create_op(p, b, s, ids, op, req, o));
}

int prep_delete(struct prep *p, const struct session *s, const struct auth_identities *ids,
		const struct delete_request *req, int64_t time_ms, struct txn **ret_txn)
{
	return PREP_SINGLE(p, s, ZK_OP_DELETE, time_ms, ret_txn,
			   delete_op(p, b, ids, ZK_OP_DELETE, req->path, (size_t)req->path_len,
				     req->version, o));
}

int prep_set_data(struct prep *p, const struct session *s, const struct auth_identities *ids,
		  const struct set_data_request *req, int64_t time_ms, struct txn **ret_txn)
{
	return PREP_SINGLE(p, s, ZK_OP_SET_DATA, time_ms, ret_txn, set_data_op(p, b, ids, req, o));
}

int prep_set_acl(struct prep *p, const struct session *s, const struct auth_identities *ids,
		 const struct set_acl_request *req, int64_t time_ms, struct txn **ret_txn)
{
	return PREP_SINGLE(p, s, ZK_OP_SET_ACL, time_ms, ret_txn, set_acl_op(p, b, ids, req, o));
}

/* ZooKeeper's checks, in its order: the path, the node, no children, and not
 * a session's ephemeral (which answers BADVERSION there). */
static int delete_container_op(struct prep *p, struct batch *b, const char *path, size_t len,
			       struct txn_op *o)
{
	struct node_view node;
	size_t parent_len;
	if (!split_parent(path, len, &parent_len))
		return ZBADARGUMENTS;
	pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return ZNONODE;
	if (node.num_children > 0)
		return ZNOTEMPTY;
	if (is_normal_ephemeral(node.owner))
		return ZBADVERSION;
	return delete_op(p, b, NULL, ZK_OP_DELETE_CONTAINER, path, len, -1, o);
}

int prep_delete_container(struct prep *p, const struct session *s, const char *path, size_t len,
			  int64_t time_ms, struct txn **ret_txn)
{
	return PREP_SINGLE(p, s, ZK_OP_DELETE_CONTAINER, time_ms, ret_txn,
			   delete_container_op(p, b, path, len, o));
}

int prep_create_session(struct prep *p, uint32_t timeout_ms, int64_t time_ms, struct txn **ret_txn)
{
	struct batch b = { 0 };
	struct txn *t = txn_start(NULL, ZK_OP_CREATE_SESSION, 1, time_ms);
	if (!t)
		return PREP_ENOMEM;
	struct txn_op *o = &t->ops[0];
	o->type = TXN_OP_CREATE_SESSION;
	o->session_id = session_next_id(&p->state->sessions);
	o->timeout_ms = timeout_ms;
	/* Only corral resumes its sessions, so any unguessable bytes will do. */
	if (getrandom(o->password, sizeof(o->password), 0) != (ssize_t)sizeof(o->password)) {
		txn_free(t);
		return PREP_ENOMEM;
	}
	t->session_id = o->session_id;
	return finish(p, t, &b, ret_txn);
}

/* Marks an ephemeral gone in the batch (and its parent one child short). */
static int forget_ephemeral(struct prep *p, struct batch *b, const char *path, size_t len)
{
	struct node_view node, parent;
	pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return 0;
	size_t parent_len = path_parent_len(path, len);
	pending_lookup(&p->pending, b, path, parent_len, &parent);
	parent.num_children--;
	struct node_view gone = { 0 };
	if (batch_put(b, path, len, &gone) < 0 || batch_put(b, path, parent_len, &parent) < 0)
		return -ENOMEM;
	return 0;
}

int prep_close_session(struct prep *p, int64_t session_id, int64_t time_ms, struct txn **ret_txn)
{
	struct batch b = { 0 };
	struct txn *t = txn_start(NULL, ZK_OP_CLOSE_SESSION, 1, time_ms);
	if (!t)
		return PREP_ENOMEM;
	t->session_id = session_id;
	t->ops[0].type = TXN_OP_CLOSE_SESSION;
	t->ops[0].session_id = session_id;
	/* From here on prep must see the session's ephemerals gone: a delete or
	 * setData of one, prepped before the close applies, would otherwise
	 * land in the log after it and find nothing. Both those in the tree and
	 * those whose create is still in flight. */
	int r = 0;
	struct session *s = session_lookup(&p->state->sessions, session_id);
	for (struct znode *n = s ? s->ephemerals : NULL; n && r == 0; n = n->owner_next)
		r = forget_ephemeral(p, &b, n->path, n->path_len);
	for (struct pending_node_ref it = pending_first(&p->pending); it.node && r == 0;
	     it = pending_next(it)) {
		if (it.view->exists && it.view->owner == session_id)
			r = forget_ephemeral(p, &b, it.path, it.path_len);
	}
	if (r < 0) {
		batch_free(&b);
		txn_free(t);
		return PREP_ENOMEM;
	}
	return finish(p, t, &b, ret_txn);
}

/* One op of a multi: decode its record and check it. */
static int multi_op(struct prep *p, struct batch *b, const struct session *s,
		    const struct auth_identities *ids, int32_t type, struct jute_reader *r,
		    struct txn_op *o)
{
	int err;
	switch (type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL: {
		struct create_request req;
		err = create_request_decode(r, type == ZK_OP_CREATE_TTL, &req);
		if (err < 0)
			return err == -ENOMEM ? PREP_ENOMEM : PREP_EBADMSG;
		err = create_op(p, b, s, ids, type, &req, o);
		acl_entries_free(req.acl, req.acl_count);
		return err;
	}
	case ZK_OP_DELETE: {
		struct delete_request req;
		if (delete_request_decode(r, &req) < 0)
			return PREP_EBADMSG;
		return delete_op(p, b, ids, ZK_OP_DELETE, req.path, (size_t)req.path_len, req.version, o);
	}
	case ZK_OP_SET_DATA: {
		struct set_data_request req;
		if (set_data_request_decode(r, &req) < 0)
			return PREP_EBADMSG;
		return set_data_op(p, b, ids, &req, o);
	}
	case ZK_OP_CHECK: {
		const char *path;
		int32_t len;
		jute_read_string(r, &path, &len);
		int32_t version = jute_read_int(r);
		if (r->error)
			return PREP_EBADMSG;
		return check_op(p, b, ids, path, (size_t)len, version, o);
	}
	}
	/* Not an op a multi may hold: ZooKeeper answers MARSHALLINGERROR. */
	return PREP_MARSHALLING;
}

int prep_multi(struct prep *p, const struct session *s, const struct auth_identities *ids,
	       struct jute_reader *r, int64_t time_ms, struct txn **ret_txn,
	       struct multi_failure *ret_failure)
{
	struct batch b = { 0 };
	uint32_t cap = 8, n = 0;
	struct txn *t = txn_start(s, ZK_OP_MULTI, cap, time_ms);
	int32_t failed_err = 0;
	uint32_t failed_index = 0;
	bool failed = false;

	if (!t)
		return PREP_ENOMEM;
	for (;;) {
		struct multi_header h;
		if (multi_header_decode(r, &h) < 0)
			goto bad;
		if (h.done)
			break;
		int32_t type = h.type;
		if (n == cap) {
			struct txn_op *ops = realloc(t->ops, 2 * cap * sizeof(*ops));
			if (!ops)
				goto oom;
			memset(ops + cap, 0, cap * sizeof(*ops));
			t->ops = ops;
			cap *= 2;
		}
		t->op_count = n + 1;
		struct txn_op *o = &t->ops[n];
		o->request_type = type;
		int err;
		if (failed) {
			/* Only decode the rest: their reply is RUNTIMEINCONSISTENCY. */
			struct batch scratch = { 0 };
			struct txn_op tmp = { 0 };
			err = multi_op(p, &scratch, s, ids, type, r, &tmp);
			batch_free(&scratch);
			txn_op_clear(&tmp);
		} else {
			err = multi_op(p, &b, s, ids, type, r, o);
		}
		n++;
		if (err == PREP_MARSHALLING) {
			batch_free(&b);
			txn_free(t);
			return PREP_MARSHALLING;
		}
		if (err == PREP_EBADMSG)
			goto bad;
		if (err == PREP_ENOMEM)
			goto oom;
		if (err && !failed) {
			failed = true;
			failed_err = err;
			failed_index = n - 1;
		}
	}
	t->op_count = n;
	if (failed) {
		int32_t *types = calloc(n ? n : 1, sizeof(*types));
		if (!types)
			goto oom;
		for (uint32_t i = 0; i < n; i++)
			types[i] = t->ops[i].request_type;
		*ret_failure = (struct multi_failure){ .op_count = n, .failed_index = failed_index,
						      .err = failed_err, .op_types = types };
		batch_free(&b);
		txn_free(t);
		return 1;
	}
	return finish(p, t, &b, ret_txn);
bad:
	batch_free(&b);
	txn_free(t);
	return PREP_EBADMSG;
oom:
	batch_free(&b);
	txn_free(t);
	return PREP_ENOMEM;
}

int prep_request(struct prep *p, const struct session *s, const struct auth_identities *ids,
		 int32_t op, const uint8_t *body, uint32_t len, int64_t time_ms,
		 struct txn **ret_txn, struct multi_failure *ret_failure)
{
	struct jute_reader r;
	int err;

	jute_reader_init(&r, body, len);
	switch (op) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL: {
		struct create_request req;
		err = create_request_decode(&r, op == ZK_OP_CREATE_TTL, &req);
		if (err < 0)
			return err == -ENOMEM ? PREP_ENOMEM : PREP_EBADMSG;
		err = prep_create(p, s, ids, op, &req, time_ms, ret_txn);
		acl_entries_free(req.acl, req.acl_count);
		return err;
	}
	case ZK_OP_DELETE: {
		struct delete_request req;
		if (delete_request_decode(&r, &req) < 0)
			return PREP_EBADMSG;
		return prep_delete(p, s, ids, &req, time_ms, ret_txn);
	}
	case ZK_OP_SET_DATA: {
		struct set_data_request req;
		if (set_data_request_decode(&r, &req) < 0)
			return PREP_EBADMSG;
		return prep_set_data(p, s, ids, &req, time_ms, ret_txn);
	}
	case ZK_OP_SET_ACL: {
		struct set_acl_request req;
		err = set_acl_request_decode(&r, &req);
		if (err < 0)
			return err == -ENOMEM ? PREP_ENOMEM : PREP_EBADMSG;
		err = prep_set_acl(p, s, ids, &req, time_ms, ret_txn);
		acl_entries_free(req.acl, req.acl_count);
		return err;
	}
	case ZK_OP_DELETE_CONTAINER:
		/* ZooKeeper reads the whole body as the path (no length prefix). */
		return prep_delete_container(p, s, (const char *)body, len, time_ms, ret_txn);
	case ZK_OP_MULTI:
		return prep_multi(p, s, ids, &r, time_ms, ret_txn, ret_failure);
	}
	return ZUNIMPLEMENTED;
}
