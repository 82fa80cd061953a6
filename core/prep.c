/* prep: see prep.h. */
#include "prep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "path.h"
#include "quota.h"

int prep_init(struct prep *p, struct state *state, uint8_t server_id)
{
	memset(p, 0, sizeof(*p));
	p->state = state;
	p->server_id = server_id;
	p->next_seq = 1;
	p->extended_types = true;
	p->quota_log.what = "quota warnings";
	int r = namespace_stats_init(&p->quota_refused);
	if (r == 0)
		r = pending_init(&p->pending, &state->tree);
	return r;
}

void prep_free(struct prep *p)
{
	pending_free(&p->pending);
	namespace_stats_free(&p->quota_refused);
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
		return r;
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

/* A check that refuses: the client's answer goes to *ret_err; nothing
 * failed, so the function returns 0. */
static int refuse(int32_t *ret_err, int32_t zk_err)
{
	*ret_err = zk_err;
	return 0;
}

static bool is_normal_ephemeral(int64_t owner)
{
	return owner > 0;	/* container and TTL markers are negative */
}

/* ZooKeeper's checkAndIncVersion: -1 matches any version. Returns the
 * verdict: ZOK or ZBADVERSION. */
/* Past the memory budget: as the last tick found it (refuse_growth, with
 * its hysteresis), or now, the state grown past its room since (a burst of
 * writes between two ticks must not overshoot the budget by a tick's
 * worth). */
static bool over_budget(const struct prep *p)
{
	return p->refuse_growth ||
	       (p->state_room_bytes && state_memory_bytes(p->state) > p->state_room_bytes);
}

/* A write that would grow the tree, past the memory budget. */
static bool refused_for_memory(struct prep *p)
{
	if (!over_budget(p))
		return false;
	p->refused_growth++;
	return true;
}

static int32_t check_version(int32_t current, int32_t expected)
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

/* Returns 0 with *ret (or with *ret_err ZINVALIDACL), or -ENOMEM. The
 * x509 scheme is ZooKeeper's X509AuthenticationProvider's, which a server
 * without TLS does not register: its ids are refused there too. */
static int fixup_acl(const struct prep *p, const struct auth_identities *ids,
		     const struct acl_entry *in, uint32_t n, struct acl_entry **ret,
		     uint32_t *ret_count, int32_t *ret_err)
{
	for (uint32_t i = 0; i < n && !p->x509_acls; i++)
		if (strcmp(in[i].scheme, "x509") == 0)
			return refuse(ret_err, ZINVALIDACL);
	/* Likewise sasl: ZooKeeper knows it only with SASLAuthenticationProvider
	 * configured, corral only with a SASL mechanism (auth.sasl). */
	for (uint32_t i = 0; i < n && !p->sasl_acls; i++)
		if (strcmp(in[i].scheme, "sasl") == 0)
			return refuse(ret_err, ZINVALIDACL);
	if (!ids) {
		if (n == 0)
			return refuse(ret_err, ZINVALIDACL);
		*ret = acl_entries_copy(in, n);
		*ret_count = n;
		return *ret ? 0 : -ENOMEM;
	}
	int r = auth_fixup_acl(ids, in, n, ret, ret_count);
	if (r == -ENOMEM)
		return r;
	return r < 0 ? refuse(ret_err, ZINVALIDACL) : 0;
}

static int copy_data(struct txn_op *o, const uint8_t *data, int32_t len)
{
	o->data_len = len;
	if (len <= 0)
		return 0;
	o->data = malloc((size_t)len);
	if (!o->data)
		return -ENOMEM;
	memcpy(o->data, data, (size_t)len);
	return 0;
}

/* The create mode's checks, before the tree is looked at: a mode there is,
 * and a TTL exactly with the TTL modes (which need the extended types).
 * Returns ZOK or the client's error. */
static int32_t check_create_mode(const struct prep *p, int32_t op,
				 const struct create_request *req)
{
	if (req->flags < ZK_CREATE_PERSISTENT || req->flags > ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL)
		return ZBADARGUMENTS;
	bool ttl_mode = req->flags == ZK_CREATE_PERSISTENT_WITH_TTL ||
			req->flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	int64_t ttl = op == ZK_OP_CREATE_TTL ? req->ttl_ms : -1;
	if (ttl_mode && !p->extended_types)
		return ZUNIMPLEMENTED;
	/* EphemeralType.validateTTL: a TTL mode needs 1..2^40-1, others no ttl. */
	if (ttl_mode ? (ttl <= 0 || ttl > ZNODE_TTL_MAX_MS) : ttl >= 0)
		return ZBADARGUMENTS;
	return ZOK;
}

/* The owner field of the node created: the container or TTL marker, the
 * session of an ephemeral, else 0. */
static int64_t create_owner(const struct session *s, int32_t op, const struct create_request *req)
{
	if (op == ZK_OP_CREATE_CONTAINER)
		return ZNODE_OWNER_CONTAINER;
	if (op == ZK_OP_CREATE_TTL)
		return ZNODE_OWNER_TTL_MASK | req->ttl_ms;
	if (req->flags == ZK_CREATE_EPHEMERAL || req->flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL)
		return s->id;
	return 0;
}

/* Each *_op checks one op against the tree and the changes on their way,
 * in ZooKeeper's order. It returns 0 with the op filled in and its changes
 * in the batch, or 0 with *ret_err set (refused: o holds nothing the
 * caller must keep), or -ENOMEM. */
static int create_op(struct prep *p, struct batch *b, const struct session *s,
		     const struct auth_identities *ids, int32_t op,
		     const struct create_request *req, struct txn_op *o, int32_t *ret_err)
{
	struct node_view parent, existing;
	const char *path = req->path;
	size_t len = (size_t)req->path_len, parent_len;
	struct acl_entry *acl = NULL;
	uint32_t acl_count = 0;
	char *full = NULL;
	int32_t err;
	int r;

	err = check_create_mode(p, op, req);
	if (err)
		return refuse(ret_err, err);
	bool sequential = req->flags == ZK_CREATE_PERSISTENT_SEQUENTIAL ||
			  req->flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL ||
			  req->flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	if (!split_parent(path, len, &parent_len))
		return refuse(ret_err, ZBADARGUMENTS);
	*ret_err = ZOK;
	r = fixup_acl(p, ids, req->acl, req->acl_count, &acl, &acl_count, ret_err);
	if (r < 0 || *ret_err)
		return r;
	uint64_t parent_hash = pending_lookup(&p->pending, b, path, parent_len, &parent);
	err = ZNONODE;
	if (!parent.exists || path[0] != '/')
		goto fail;
	err = ZNOAUTH;
	if (!allowed(ids, parent.acl, ZK_PERM_CREATE))
		goto fail;
	err = ZOK;
	r = -ENOMEM;
	full = malloc(len + 16);
	if (!full)
		goto fail;
	r = 0;
	memcpy(full, path, len);
	if (sequential)
		len += (size_t)snprintf(full + len, 16, "%010d", parent.child_creates);
	full[len] = 0;
	err = ZBADARGUMENTS;
	if (!path_valid(full, len, false))
		goto fail;
	uint64_t hash = pending_lookup(&p->pending, b, full, len, &existing);
	err = ZNODEEXISTS;
	if (existing.exists)
		goto fail;
	err = ZNOCHILDRENFOREPHEMERALS;
	if (is_normal_ephemeral(parent.owner))
		goto fail;
	err = quota_check(&p->state->tree, full, len, req->data_len > 0 ? req->data_len : 0, 1,
			  p->enforce_quota, &p->quota_log, (uint64_t)p->now_ms);
	if (err == ZQUOTAEXCEEDED)
		namespace_stats_add(&p->quota_refused, full, len, 1);
	if (err)
		goto fail;
	err = ZSYSTEMERROR;
	if (refused_for_memory(p))
		goto fail;

	int64_t owner = create_owner(s, op, req);
	err = ZOK;
	r = -ENOMEM;
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
	r = batch_put(b, o->path, len, hash, &created);
	if (r == 0)
		r = batch_put(b, o->path, parent_len, parent_hash, &parent);
	return r;
fail:
	acl_entries_free(acl, acl_count);
	free(full);
	*ret_err = err;
	return r;
}

static int delete_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		     int32_t op, const char *path, size_t len, int32_t version, struct txn_op *o,
		     int32_t *ret_err)
{
	struct node_view parent, node;
	size_t parent_len;

	if (!split_parent(path, len, &parent_len) || state_is_system_path(path, len))
		return refuse(ret_err, ZBADARGUMENTS);
	uint64_t parent_hash = pending_lookup(&p->pending, b, path, parent_len, &parent);
	if (!parent.exists || path[0] != '/')
		return refuse(ret_err, ZNONODE);
	if (!allowed(ids, parent.acl, ZK_PERM_DELETE))
		return refuse(ret_err, ZNOAUTH);
	uint64_t hash = pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return refuse(ret_err, ZNONODE);
	int32_t err = check_version(node.version, version);
	if (err)
		return refuse(ret_err, err);
	if (node.num_children > 0)
		return refuse(ret_err, ZNOTEMPTY);

	o->type = TXN_OP_DELETE;
	o->request_type = op;
	o->path = strndup(path, len);
	o->path_len = (uint32_t)len;
	o->path_hashed = true;
	o->path_hash = hash;
	if (!o->path)
		return -ENOMEM;
	parent.num_children--;
	struct node_view gone = { 0 };
	if (batch_put(b, o->path, len, hash, &gone) < 0 ||
	    batch_put(b, o->path, parent_len, parent_hash, &parent) < 0)
		return -ENOMEM;
	return 0;
}

static int set_data_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		       const struct set_data_request *req, struct txn_op *o, int32_t *ret_err)
{
	struct node_view node;
	size_t len = (size_t)req->path_len;

	if (!path_valid(req->path, len, false))
		return refuse(ret_err, ZBADARGUMENTS);
	uint64_t hash = pending_lookup(&p->pending, b, req->path, len, &node);
	if (!node.exists)
		return refuse(ret_err, ZNONODE);
	if (!allowed(ids, node.acl, ZK_PERM_WRITE))
		return refuse(ret_err, ZNOAUTH);
	/* As ZooKeeper, the quota before the version; the size it had when
	 * last applied (a pending setData's is not known here). */
	/* Looked up only when a quota or the budget asks (not per setData). */
	bool quotas = p->state->tree.quota_count > 0, budget = over_budget(p);
	const struct znode *cur = quotas || budget ? tree_lookup(&p->state->tree, req->path, len)
						   : NULL;
	int32_t err = ZOK;
	if (quotas) {
		int64_t old_len = cur && cur->data_len > 0 ? cur->data_len : 0;
		err = quota_check(&p->state->tree, req->path, len,
				  (req->data_len > 0 ? req->data_len : 0) - old_len, 0,
				  p->enforce_quota, &p->quota_log, (uint64_t)p->now_ms);
		if (err == ZQUOTAEXCEEDED)
			namespace_stats_add(&p->quota_refused, req->path, len, 1);
		if (err)
			return refuse(ret_err, err);
	}
	err = check_version(node.version, req->version);
	if (err)
		return refuse(ret_err, err);
	if (budget && (!cur || req->data_len > cur->data_len) && refused_for_memory(p))
		return refuse(ret_err, ZSYSTEMERROR);

	o->type = TXN_OP_SET_DATA;
	o->request_type = ZK_OP_SET_DATA;
	o->path = strndup(req->path, len);
	o->path_len = (uint32_t)len;
	o->path_hashed = true;
	o->path_hash = hash;
	o->version = (int32_t)((uint32_t)node.version + 1u);
	if (!o->path || copy_data(o, req->data, req->data_len) < 0)
		return -ENOMEM;
	node.version = o->version;
	return batch_put(b, o->path, len, hash, &node);
}

static int set_acl_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		      const struct set_acl_request *req, struct txn_op *o, int32_t *ret_err)
{
	struct node_view node;
	size_t len = (size_t)req->path_len;
	struct acl_entry *acl = NULL;
	uint32_t acl_count = 0;
	int32_t err;
	int r;

	if (!path_valid(req->path, len, false))
		return refuse(ret_err, ZBADARGUMENTS);
	*ret_err = ZOK;
	r = fixup_acl(p, ids, req->acl, req->acl_count, &acl, &acl_count, ret_err);
	if (r < 0 || *ret_err)
		return r;
	r = 0;
	uint64_t hash = pending_lookup(&p->pending, b, req->path, len, &node);
	err = ZNONODE;
	if (!node.exists)
		goto fail;
	err = ZNOAUTH;
	if (!allowed(ids, node.acl, ZK_PERM_ADMIN))
		goto fail;
	err = check_version(node.aversion, req->version);
	if (err)
		goto fail;
	r = -ENOMEM;
	struct acl_list *interned = acl_intern(&p->state->tree.acls, acl, acl_count);
	if (!interned || batch_hold(b, &p->state->tree.acls, interned) < 0)
		goto fail;
	o->path = strndup(req->path, len);
	if (!o->path)
		goto fail;
	o->type = TXN_OP_SET_ACL;
	o->request_type = ZK_OP_SET_ACL;
	o->path_len = (uint32_t)len;
	o->path_hashed = true;
	o->path_hash = hash;
	o->acl = acl;
	o->acl_count = acl_count;
	o->version = (int32_t)((uint32_t)node.aversion + 1u);
	node.aversion = o->version;
	node.acl = interned;
	return batch_put(b, o->path, len, hash, &node);
fail:
	acl_entries_free(acl, acl_count);
	*ret_err = err;
	return r;
}

static int check_op(struct prep *p, struct batch *b, const struct auth_identities *ids,
		    const char *path, size_t len, int32_t version, struct txn_op *o, int32_t *ret_err)
{
	struct node_view node;
	if (!path_valid(path, len, false))
		return refuse(ret_err, ZBADARGUMENTS);
	pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return refuse(ret_err, ZNONODE);
	if (!allowed(ids, node.acl, ZK_PERM_READ))
		return refuse(ret_err, ZNOAUTH);
	int32_t err = check_version(node.version, version);
	if (err)
		return refuse(ret_err, err);
	o->type = TXN_OP_CHECK;
	o->request_type = ZK_OP_CHECK;
	return 0;
}

/* Runs one op's check into t->ops[0] and publishes it: 0 with *ret_txn or
 * with *ret_err, or -ENOMEM. */
#define PREP_SINGLE(p, s, request_op, time_ms, ret_txn, ret_err, call)		\
	({									\
		struct batch b_ = { 0 };					\
		struct txn *t_ = txn_start((s), (request_op), 1, (time_ms));	\
		int r_ = t_ ? 0 : -ENOMEM;					\
		*(ret_txn) = NULL;						\
		*(ret_err) = ZOK;						\
		if (t_) {							\
			struct txn_op *o = &t_->ops[0];				\
			struct batch *b = &b_;					\
			r_ = (call);						\
			if (r_ < 0 || *(ret_err) != ZOK) {			\
				batch_free(&b_);				\
				txn_free(t_);					\
			} else {						\
				r_ = finish((p), t_, &b_, (ret_txn));		\
			}							\
		}								\
		ASSERT(r_ < 0 || (*(ret_txn) != NULL) == (*(ret_err) == ZOK));	\
		r_;								\
	})

int prep_create(struct prep *p, const struct session *s, const struct auth_identities *ids,
		int32_t op, const struct create_request *req, int64_t time_ms,
		struct txn **ret_txn, int32_t *ret_err)
{
	p->now_ms = time_ms;
	return PREP_SINGLE(p, s, op, time_ms, ret_txn, ret_err,
			   create_op(p, b, s, ids, op, req, o, ret_err));
}

int prep_delete(struct prep *p, const struct session *s, const struct auth_identities *ids,
		const struct delete_request *req, int64_t time_ms, struct txn **ret_txn,
		int32_t *ret_err)
{
	return PREP_SINGLE(p, s, ZK_OP_DELETE, time_ms, ret_txn, ret_err,
			   delete_op(p, b, ids, ZK_OP_DELETE, req->path, (size_t)req->path_len,
				     req->version, o, ret_err));
}

int prep_set_data(struct prep *p, const struct session *s, const struct auth_identities *ids,
		  const struct set_data_request *req, int64_t time_ms, struct txn **ret_txn,
		  int32_t *ret_err)
{
	p->now_ms = time_ms;
	return PREP_SINGLE(p, s, ZK_OP_SET_DATA, time_ms, ret_txn, ret_err,
			   set_data_op(p, b, ids, req, o, ret_err));
}

int prep_set_acl(struct prep *p, const struct session *s, const struct auth_identities *ids,
		 const struct set_acl_request *req, int64_t time_ms, struct txn **ret_txn,
		 int32_t *ret_err)
{
	return PREP_SINGLE(p, s, ZK_OP_SET_ACL, time_ms, ret_txn, ret_err,
			   set_acl_op(p, b, ids, req, o, ret_err));
}

/* ZooKeeper's checks, in its order: the path, the node, no children, and not
 * a session's ephemeral (which answers BADVERSION there). */
static int delete_container_op(struct prep *p, struct batch *b, const char *path, size_t len,
			       struct txn_op *o, int32_t *ret_err)
{
	struct node_view node;
	size_t parent_len;
	if (!split_parent(path, len, &parent_len))
		return refuse(ret_err, ZBADARGUMENTS);
	pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return refuse(ret_err, ZNONODE);
	if (node.num_children > 0)
		return refuse(ret_err, ZNOTEMPTY);
	if (is_normal_ephemeral(node.owner))
		return refuse(ret_err, ZBADVERSION);
	return delete_op(p, b, NULL, ZK_OP_DELETE_CONTAINER, path, len, -1, o, ret_err);
}

int prep_delete_container(struct prep *p, const struct session *s, const char *path, size_t len,
			  int64_t time_ms, struct txn **ret_txn, int32_t *ret_err)
{
	return PREP_SINGLE(p, s, ZK_OP_DELETE_CONTAINER, time_ms, ret_txn, ret_err,
			   delete_container_op(p, b, path, len, o, ret_err));
}

int prep_create_session(struct prep *p, uint32_t timeout_ms, int64_t time_ms, struct txn **ret_txn)
{
	struct batch b = { 0 };
	struct txn *t = txn_start(NULL, ZK_OP_CREATE_SESSION, 1, time_ms);
	if (!t)
		return -ENOMEM;
	struct txn_op *o = &t->ops[0];
	o->type = TXN_OP_CREATE_SESSION;
	o->session_id = session_next_id(&p->state->sessions);
	o->timeout_ms = timeout_ms;
	/* Only corral resumes its sessions, so any unguessable bytes will do. */
	if (getrandom(o->password, sizeof(o->password), 0) != (ssize_t)sizeof(o->password)) {
		int r = -errno;
		txn_free(t);
		return r;
	}
	t->session_id = o->session_id;
	return finish(p, t, &b, ret_txn);
}

/* Marks an ephemeral gone in the batch (and its parent one child short). */
static int forget_ephemeral(struct prep *p, struct batch *b, const char *path, size_t len)
{
	struct node_view node, parent;
	uint64_t hash = pending_lookup(&p->pending, b, path, len, &node);
	if (!node.exists)
		return 0;
	size_t parent_len = path_parent_len(path, len);
	uint64_t parent_hash = pending_lookup(&p->pending, b, path, parent_len, &parent);
	parent.num_children--;
	struct node_view gone = { 0 };
	if (batch_put(b, path, len, hash, &gone) < 0 ||
	    batch_put(b, path, parent_len, parent_hash, &parent) < 0)
		return -ENOMEM;
	return 0;
}

int prep_close_session(struct prep *p, int64_t session_id, int64_t time_ms, struct txn **ret_txn)
{
	struct batch b = { 0 };
	struct txn *t = txn_start(NULL, ZK_OP_CLOSE_SESSION, 1, time_ms);
	if (!t)
		return -ENOMEM;
	t->session_id = session_id;
	t->ops[0].type = TXN_OP_CLOSE_SESSION;
	t->ops[0].session_id = session_id;
	/* From here on prep must see the session's ephemerals gone: a delete or
	 * setData of one, prepped before the close applies, would otherwise
	 * land in the log after it and find nothing. Both those in the tree and
	 * those whose create is still in flight. */
	int r = 0;
	struct session *s = session_lookup(&p->state->sessions, session_id);
	/* The batch holds the paths it is given until finish() publishes it;
	 * a node has only its name, so the ephemerals' paths are built into
	 * one buffer that lives until then. */
	size_t room = 0;
	for (struct znode *n = s ? session_first_ephemeral(s) : NULL; n; n = session_next_ephemeral(s, n))
		room += znode_path_len(n) + 1;
	char *paths = room ? malloc(room) : NULL;
	if (room && !paths)
		r = -ENOMEM;
	char *w = paths;
	for (struct znode *n = s && paths ? session_first_ephemeral(s) : NULL; n && r == 0;
	     n = session_next_ephemeral(s, n)) {
		size_t len = znode_path_len(n);
		znode_path_write(n, w, len);
		r = forget_ephemeral(p, &b, w, len);
		w += len + 1;
	}
	pending_for_each(&p->pending, pn) {
		if (r == 0 && pn->view.exists && pn->view.owner == session_id)
			r = forget_ephemeral(p, &b, pn->path, pn->path_len);
	}
	if (r < 0) {
		batch_free(&b);
		txn_free(t);
		free(paths);
		return r;
	}
	r = finish(p, t, &b, ret_txn);
	free(paths);
	return r;
}

/* One op of a multi: decode its record and check it. Returns 0 (with
 * *ret_err the op's verdict), -EBADMSG (the record does not parse) or
 * -ENOMEM. An op a multi may not hold answers ZMARSHALLINGERROR. */
static int multi_op(struct prep *p, struct batch *b, const struct session *s,
		    const struct auth_identities *ids, int32_t type, struct jute_reader *r,
		    struct txn_op *o, int32_t *ret_err)
{
	int err;
	*ret_err = ZOK;
	switch (type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL: {
		struct create_request req;
		err = create_request_decode(r, type == ZK_OP_CREATE_TTL, &req);
		if (err < 0)
			return err == -ENOMEM ? -ENOMEM : -EBADMSG;
		err = create_op(p, b, s, ids, type, &req, o, ret_err);
		acl_entries_free(req.acl, req.acl_count);
		return err;
	}
	case ZK_OP_DELETE: {
		struct delete_request req;
		if (delete_request_decode(r, &req) < 0)
			return -EBADMSG;
		return delete_op(p, b, ids, ZK_OP_DELETE, req.path, (size_t)req.path_len, req.version,
				 o, ret_err);
	}
	case ZK_OP_SET_DATA: {
		struct set_data_request req;
		if (set_data_request_decode(r, &req) < 0)
			return -EBADMSG;
		return set_data_op(p, b, ids, &req, o, ret_err);
	}
	case ZK_OP_CHECK: {
		const char *path;
		int32_t len;
		jute_read_string(r, &path, &len);
		int32_t version = jute_read_int(r);
		if (r->error)
			return -EBADMSG;
		return check_op(p, b, ids, path, (size_t)len, version, o, ret_err);
	}
	}
	/* Not an op a multi may hold: ZooKeeper answers MARSHALLINGERROR. */
	return refuse(ret_err, ZMARSHALLINGERROR);
}

int prep_multi(struct prep *p, const struct session *s, const struct auth_identities *ids,
	       struct jute_reader *r, int64_t time_ms, struct txn **ret_txn,
	       struct multi_failure *ret_failure, int32_t *ret_err)
{
	p->now_ms = time_ms;
	struct batch b = { 0 };
	uint32_t cap = 8, n = 0;
	struct txn *t = txn_start(s, ZK_OP_MULTI, cap, time_ms);
	int32_t failed_err = ZOK;
	uint32_t failed_index = 0;
	int rc = -ENOMEM;

	*ret_txn = NULL;
	*ret_err = ZOK;
	if (!t)
		return -ENOMEM;
	for (;;) {
		struct multi_header h;
		rc = -EBADMSG;
		if (multi_header_decode(r, &h) < 0)
			goto fail;
		if (h.done)
			break;
		int32_t type = h.type;
		if (n == cap) {
			rc = -ENOMEM;
			struct txn_op *ops = realloc(t->ops, 2 * cap * sizeof(*ops));
			if (!ops)
				goto fail;
			memset(ops + cap, 0, cap * sizeof(*ops));
			t->ops = ops;
			cap *= 2;
		}
		t->op_count = n + 1;
		struct txn_op *o = &t->ops[n];
		o->request_type = type;
		int32_t err;
		if (failed_err) {
			/* Only decode the rest: their reply is RUNTIMEINCONSISTENCY. */
			struct batch scratch = { 0 };
			struct txn_op tmp = { 0 };
			rc = multi_op(p, &scratch, s, ids, type, r, &tmp, &err);
			batch_free(&scratch);
			txn_op_clear(&tmp);
		} else {
			rc = multi_op(p, &b, s, ids, type, r, o, &err);
		}
		n++;
		if (rc < 0)
			goto fail;
		if (err == ZMARSHALLINGERROR) {
			/* the whole multi is answered with it, as a plain error */
			*ret_err = err;
			rc = 0;
			goto fail;
		}
		if (err && !failed_err) {
			failed_err = err;
			failed_index = n - 1;
		}
	}
	t->op_count = n;
	if (failed_err) {
		int32_t *types = calloc(n ? n : 1, sizeof(*types));
		rc = -ENOMEM;
		if (!types)
			goto fail;
		for (uint32_t i = 0; i < n; i++)
			types[i] = t->ops[i].request_type;
		*ret_failure = (struct multi_failure){ .op_count = n, .failed_index = failed_index,
						      .err = failed_err, .op_types = types };
		rc = 0;
		goto fail;
	}
	return finish(p, t, &b, ret_txn);
fail:
	batch_free(&b);
	txn_free(t);
	return rc;
}

int prep_request(struct prep *p, const struct session *s, const struct auth_identities *ids,
		 int32_t op, const uint8_t *body, uint32_t len, int64_t time_ms,
		 struct txn **ret_txn, struct prep_refusal *ret)
{
	struct jute_reader r;
	int rc;

	*ret_txn = NULL;
	*ret = (struct prep_refusal){ .err = ZOK };
	jute_reader_init(&r, body, len);
	switch (op) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL: {
		struct create_request req;
		rc = create_request_decode(&r, op == ZK_OP_CREATE_TTL, &req);
		if (rc < 0)
			return rc == -ENOMEM ? rc : -EBADMSG;
		rc = prep_create(p, s, ids, op, &req, time_ms, ret_txn, &ret->err);
		acl_entries_free(req.acl, req.acl_count);
		return rc;
	}
	case ZK_OP_DELETE: {
		struct delete_request req;
		if (delete_request_decode(&r, &req) < 0)
			return -EBADMSG;
		return prep_delete(p, s, ids, &req, time_ms, ret_txn, &ret->err);
	}
	case ZK_OP_SET_DATA: {
		struct set_data_request req;
		if (set_data_request_decode(&r, &req) < 0)
			return -EBADMSG;
		return prep_set_data(p, s, ids, &req, time_ms, ret_txn, &ret->err);
	}
	case ZK_OP_SET_ACL: {
		struct set_acl_request req;
		rc = set_acl_request_decode(&r, &req);
		if (rc < 0)
			return rc == -ENOMEM ? rc : -EBADMSG;
		rc = prep_set_acl(p, s, ids, &req, time_ms, ret_txn, &ret->err);
		acl_entries_free(req.acl, req.acl_count);
		return rc;
	}
	case ZK_OP_DELETE_CONTAINER:
		/* ZooKeeper reads the whole body as the path (no length prefix). */
		return prep_delete_container(p, s, (const char *)body, len, time_ms, ret_txn,
					     &ret->err);
	case ZK_OP_MULTI:
		rc = prep_multi(p, s, ids, &r, time_ms, ret_txn, &ret->multi, &ret->err);
		/* MARSHALLINGERROR answers the whole multi, not per op */
		ret->plain = rc == 0 && ret->err != ZOK;
		return rc;
	}
	ret->err = ZUNIMPLEMENTED;
	return 0;
}
