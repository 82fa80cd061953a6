/* audit: see audit.h. */
#include "audit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "jute.h"
#include "log.h"
#include "proto.h"
#include "request.h"
#include "session.h"
#include "tree.h"
#include "txn.h"

#define AUDIT_ACL_BYTES 1024
#define AUDIT_USER_BYTES 1024

static bool create_op(int32_t op)
{
	return op == ZK_OP_CREATE || op == ZK_OP_CREATE2 || op == ZK_OP_CREATE_TTL ||
	       op == ZK_OP_CREATE_CONTAINER;
}

static bool audited_op(int32_t op)
{
	return create_op(op) || op == ZK_OP_DELETE || op == ZK_OP_DELETE_CONTAINER ||
	       op == ZK_OP_SET_DATA || op == ZK_OP_SET_ACL || op == ZK_OP_MULTI ||
	       op == ZK_OP_RECONFIG;
}

/* Identities and ACL ids are the client's bytes: a tab or a newline in
 * one would forge a field or a record. Control characters become '?'. */
static void make_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void audit_note_request(struct request *rq, const uint8_t *body, uint32_t len)
{
	if (!audited_op(rq->asked_op) || rq->asked_op == ZK_OP_MULTI ||
	    rq->asked_op == ZK_OP_RECONFIG)
		return;
	struct jute_reader r;
	const char *path;
	int32_t path_len;
	jute_reader_init(&r, body, len);
	jute_read_string(&r, &path, &path_len);
	if (r.error)
		return;		/* malformed: prep says so, with no path to name */
	if (create_op(rq->asked_op)) {
		const uint8_t *data;
		int32_t data_len, acl_count;
		const char *s;
		int32_t s_len;
		jute_read_buffer(&r, &data, &data_len);
		acl_count = jute_read_int(&r);
		for (int32_t k = 0; k < acl_count && !r.error; k++) {
			jute_read_int(&r);
			jute_read_string(&r, &s, &s_len);
			jute_read_string(&r, &s, &s_len);
		}
		rq->audit_create_flags = jute_read_int(&r);
		if (rq->asked_op == ZK_OP_CREATE_CONTAINER)
			rq->audit_create_flags = 4;
	}
	free(rq->audit_path);
	rq->audit_path = strndup(path, (size_t)path_len);
	if (rq->audit_path)
		make_printable(rq->audit_path);	/* not validated yet: prep may refuse it */
}

/* CreateMode's names, lower case, as ZooKeeper's audit log has them. */
static const char *create_mode(int32_t flags)
{
	static const char *const modes[] = {
		"persistent", "ephemeral", "persistent_sequential", "ephemeral_sequential",
		"container", "persistent_with_ttl", "persistent_sequential_with_ttl",
	};
	return flags >= 0 && flags < 7 ? modes[flags] : "unknown";
}

static void perms_text(int32_t perms, char *out)
{
	static const char letters[] = "rwcda";	/* READ WRITE CREATE DELETE ADMIN */
	int n = 0;
	for (int k = 0; k < 5; k++)
		if (perms & (1 << k))
			out[n++] = letters[k];
	out[n] = 0;
}

/* "scheme:id:perms,..." (ZooKeeper's ZKUtil.aclToString). */
static void acl_text(const struct acl_entry *acl, uint32_t n, char *out, size_t size)
{
	size_t used = 0;
	out[0] = 0;
	for (uint32_t k = 0; k < n && used < size; k++) {
		char perms[8];
		perms_text(acl[k].perms, perms);
		int w = snprintf(out + used, size - used, "%s%s:%s:%s", k ? "," : "", acl[k].scheme,
				 acl[k].id, perms);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	make_printable(out);
}

/* The identities' user names, ZooKeeper's way: a digest's user, an ip's
 * address; the ones added with addauth first, the connection's address
 * last, in the order ZooKeeper 3.8 lists them. */
static void user_text(const struct auth_identities *a, char *out, size_t size)
{
	size_t used = 0;
	out[0] = 0;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t k = 0; k < a->count && used < size; k++) {
			const char *scheme = a->ids[k].scheme, *id = a->ids[k].id;
			if ((strcmp(scheme, "ip") == 0) != (pass == 1))
				continue;
			size_t len = strcmp(scheme, "digest") == 0 ? strcspn(id, ":") : strlen(id);
			int w = snprintf(out + used, size - used, "%s%.*s", used ? "," : "", (int)len, id);
			if (w < 0)
				break;
			used += (size_t)w;
		}
	make_printable(out);
}

/* The client's address without its port, as ZooKeeper's ip= has it. */
static void host_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
	out[0] = 0;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)size);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)size);
}

struct audit_record {
	const char *operation;
	const char *path;
	const char *znode_type;
	const char *acl;		/* NULL or "" for none */
	int32_t err;
	int64_t zxid;
};

/* Who asked: a client's session and connection, or the server itself. */
struct audit_who {
	int64_t session;
	const char *user;
	const char *ip;			/* NULL for the server */
	const char *address;		/* with the port, NULL for the server */
};

static void emit(const struct audit_who *who, const struct audit_record *a)
{
	char f_addr[300], f_user[AUDIT_USER_BYTES + 8], f_op[96], f_result[32], f_type[64],
	     f_acl[AUDIT_ACL_BYTES + 8], f_err[32];
	const char *extra[LOG_EXTRA_FIELDS_MAX + 1];
	int n = 0;
	const char *result = a->err ? "failure" : "success";
	snprintf(f_user, sizeof(f_user), "USER=%s", who->user);
	snprintf(f_op, sizeof(f_op), "OPERATION=%s", a->operation);
	snprintf(f_result, sizeof(f_result), "RESULT=%s", result);
	if (who->address) {
		snprintf(f_addr, sizeof(f_addr), "CLIENT_ADDRESS=%s", who->address);
		extra[n++] = f_addr;
	}
	extra[n++] = f_user;
	extra[n++] = f_op;
	extra[n++] = f_result;
	if (a->znode_type) {
		snprintf(f_type, sizeof(f_type), "ZNODE_TYPE=%s", a->znode_type);
		extra[n++] = f_type;
	}
	if (a->acl && a->acl[0]) {
		snprintf(f_acl, sizeof(f_acl), "ACL=%s", a->acl);
		extra[n++] = f_acl;
	}
	if (a->err) {
		snprintf(f_err, sizeof(f_err), "ERROR=%s", zk_err_name(a->err));
		extra[n++] = f_err;
	}
	extra[n] = NULL;
	struct log_fields fields = { .message_id = LOG_MSGID_AUDIT, .session_id = who->session,
				     .zxid = a->err ? 0 : a->zxid, .path = a->path, .extra = extra };
	/* ZooKeeper's line: key=value, tab-separated, absent keys left out. A
	 * failure is the client's ordinary outcome, not the server's error:
	 * notice (ZooKeeper logs it at ERROR). */
	log_full(a->err ? LOG_NOTICE : LOG_INFO, &fields,
		 "session=0x%llx\tuser=%s%s%s\toperation=%s%s%s%s%s%s%s\tresult=%s",
		 (unsigned long long)who->session, who->user, who->ip ? "\tip=" : "",
		 who->ip ? who->ip : "", a->operation,
		 a->path ? "\tznode=" : "", a->path ? a->path : "",
		 a->znode_type ? "\tznode_type=" : "", a->znode_type ? a->znode_type : "",
		 a->acl && a->acl[0] ? "\tacl=" : "", a->acl && a->acl[0] ? a->acl : "", result);
}

static void client_who(const struct conn *c, char *user, char *ip, struct audit_who *ret)
{
	user_text(&c->auth, user, AUDIT_USER_BYTES);
	host_text(&c->auth.peer, ip, INET6_ADDRSTRLEN);
	*ret = (struct audit_who){ .session = c->session ? c->session->id : 0, .user = user,
				   .ip = ip, .address = c->peer_text };
}

static const char *op_name(int32_t op)
{
	switch (op) {
	case ZK_OP_CREATE: case ZK_OP_CREATE2: case ZK_OP_CREATE_TTL: case ZK_OP_CREATE_CONTAINER:
		return "create";
	case ZK_OP_DELETE: case ZK_OP_DELETE_CONTAINER:
		return "delete";
	case ZK_OP_SET_DATA:
		return "setData";
	case ZK_OP_SET_ACL:
		return "setAcl";
	}
	return NULL;
}

/* A create's node type from what the txn made (a multi's creates). */
static const char *type_from_txn(const struct txn_op *o)
{
	if (o->owner == ZNODE_OWNER_CONTAINER)
		return "container";
	if (o->owner < 0)
		return "persistent_with_ttl";
	return o->owner > 0 ? "ephemeral" : "persistent";
}

static void emit_multi(const struct audit_who *who, const struct request *rq)
{
	const struct txn *t = rq->txn;
	char acl[AUDIT_ACL_BYTES];
	for (uint32_t i = 0; t && i < t->op_count; i++) {
		const struct txn_op *o = &t->ops[i];
		const char *name = op_name(o->type);
		if (!name)
			continue;	/* check */
		bool has_acl = o->type == TXN_OP_CREATE || o->type == TXN_OP_SET_ACL;
		if (has_acl)
			acl_text(o->acl, o->acl_count, acl, sizeof(acl));
		struct audit_record a = {
			.operation = name, .path = o->path, .zxid = t->zxid,
			.znode_type = o->type == TXN_OP_CREATE ? type_from_txn(o) : NULL,
			.acl = has_acl ? acl : NULL,
		};
		emit(who, &a);
	}
}

void audit_write(const struct conn *c, const struct request *rq)
{
	if (!c->hub->cfg->audit_log || !audited_op(rq->asked_op))
		return;
	const struct txn *t = rq->txn;
	char user[AUDIT_USER_BYTES], ip[INET6_ADDRSTRLEN];
	struct audit_who who;
	client_who(c, user, ip, &who);
	if (rq->asked_op == ZK_OP_RECONFIG) {
		/* as ZooKeeper's: the members are in /zookeeper/config */
		struct audit_record a = { .operation = "reconfig", .path = "/zookeeper/config",
					  .err = rq->err };
		emit(&who, &a);
		return;
	}
	if (rq->asked_op == ZK_OP_MULTI) {
		if (!rq->err && t) {
			emit_multi(&who, rq);
			return;
		}
		struct audit_record a = { .operation = "multiOperation", .err = rq->err ? rq->err : -1 };
		emit(&who, &a);
		return;
	}
	bool ok = !rq->err && t && t->op_count == 1;
	char acl[AUDIT_ACL_BYTES] = "";
	if (ok && (t->ops[0].type == TXN_OP_CREATE || t->ops[0].type == TXN_OP_SET_ACL))
		acl_text(t->ops[0].acl, t->ops[0].acl_count, acl, sizeof(acl));
	struct audit_record a = {
		.operation = op_name(rq->asked_op),
		.path = ok ? t->ops[0].path : rq->audit_path,
		.znode_type = create_op(rq->asked_op) ? create_mode(rq->audit_create_flags) : NULL,
		.acl = acl,
		.err = ok ? 0 : (rq->err ? rq->err : -1),
		.zxid = ok ? t->zxid : 0,
	};
	emit(&who, &a);
}

/* What the server does itself is done, in ZooKeeper's records, by the
 * user it runs as (looked up once: NSS may block, and a record is written
 * for every session that ends). */
static const char *server_user(void)
{
	static char self[64];
	if (!self[0]) {
		const struct passwd *pw = getpwuid(geteuid());
		snprintf(self, sizeof(self), "%s", pw ? pw->pw_name : "corral");
	}
	return self;
}

void audit_server(const struct server_config *cfg, const char *operation, const char *result)
{
	if (!cfg || !cfg->audit_log)
		return;
	char f_user[AUDIT_USER_BYTES + 8], f_op[96], f_result[32];
	snprintf(f_user, sizeof(f_user), "USER=%s", server_user());
	snprintf(f_op, sizeof(f_op), "OPERATION=%s", operation);
	snprintf(f_result, sizeof(f_result), "RESULT=%s", result);
	const char *extra[] = { f_user, f_op, f_result, NULL };
	struct log_fields fields = { .message_id = LOG_MSGID_AUDIT, .extra = extra };
	log_full(strcmp(result, "failure") == 0 ? LOG_NOTICE : LOG_INFO, &fields,
		 "user=%s\toperation=%s\tresult=%s", server_user(), operation, result);
}

void audit_session_ending(const struct server_config *cfg, const struct session *s, int64_t zxid)
{
	if (!cfg->audit_log || !s)
		return;
	struct audit_who who = { .session = s->id, .user = server_user() };
	list_for_each(&s->ephemerals, n) {
		const struct znode *z = znode_of_owner_node(n);
		size_t len = znode_path_len(z);
		char *path = malloc(len + 1);
		if (path)
			znode_path_write(z, path, len);
		struct audit_record a = { .operation = "ephemeralZNodeDeletionOnSessionCloseOrExpire",
					  .path = path ? path : z->name, .zxid = zxid };
		emit(&who, &a);
		free(path);
	}
}
