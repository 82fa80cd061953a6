/* write: the requests that change the state: their decoding and prep into
 * a txn (prep.c decides), and their replies once the txn is applied. */
#include "write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "records.h"
#include "reply.h"
#include "request.h"
#include "session.h"

bool write_op(int32_t op)
{
	switch (op) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_DELETE:
	case ZK_OP_SET_DATA:
	case ZK_OP_SET_ACL:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
	case ZK_OP_DELETE_CONTAINER:
	case ZK_OP_MULTI:
	case ZK_OP_CLOSE_SESSION:
		return true;
	}
	return false;
}

int write_prep(struct prep *prep, struct session *s, const struct auth_identities *ids,
	       int32_t op, const uint8_t *body, uint32_t len, int64_t now_ms,
	       struct txn **ret_txn, struct prep_refusal *ret)
{
	if (op == ZK_OP_CLOSE_SESSION) {
		*ret_txn = NULL;
		*ret = (struct prep_refusal){ .err = ZOK };
		int rc = prep_close_session(prep, s->id, now_ms, ret_txn);
		if (rc == 0)
			s->closing = true;
		return rc;
	}
	return prep_request(prep, s, ids, op, body, len, now_ms, ret_txn, ret);
}

/* multi's reply: {MultiHeader{type, done=false, err} + result} per op, then
 * {-1, true, -1}. A failed multi lists every op as an error result: 0 before
 * the failing one, its code, RUNTIMEINCONSISTENCY after; its header err is 0. */
static void emit_multi_reply(struct conn *c, struct request *rq, int64_t applied_zxid)
{
	struct txn *t = rq->txn;
	const struct multi_failure *f = &rq->multi_failure;
	int64_t zxid = t ? t->zxid : applied_zxid;
	size_t start = reply_begin(c, rq->xid, zxid, ZOK);

	if (!t) {
		for (uint32_t i = 0; i < f->op_count; i++) {
			int32_t err = i < f->failed_index ? ZOK
				    : i == f->failed_index ? f->err : ZRUNTIMEINCONSISTENCY;
			jute_write_int(&c->obuf, ZK_OP_ERROR);
			jute_write_bool(&c->obuf, false);
			jute_write_int(&c->obuf, err);
			jute_write_int(&c->obuf, err);
		}
	}
	for (uint32_t i = 0; t && i < t->op_count; i++) {
		const struct txn_op *o = &t->ops[i];
		int32_t type = o->request_type;
		/* createTTL and createContainer answer as create2 with a Stat;
		 * ZooKeeper 3.8 answers a create2 inside a multi as a plain create. */
		bool with_stat = type == ZK_OP_CREATE_TTL || type == ZK_OP_CREATE_CONTAINER;
		if (type == ZK_OP_CREATE2)
			type = ZK_OP_CREATE;
		jute_write_int(&c->obuf, with_stat ? ZK_OP_CREATE2 : type);
		jute_write_bool(&c->obuf, false);
		jute_write_int(&c->obuf, 0);
		if (type == ZK_OP_CREATE || with_stat)
			jute_write_string(&c->obuf, o->path, (int32_t)o->path_len);
		if (with_stat || type == ZK_OP_SET_DATA)
			stat_encode(&c->obuf, &rq->results[i].stat);
	}
	jute_write_int(&c->obuf, -1);
	jute_write_bool(&c->obuf, true);
	jute_write_int(&c->obuf, -1);
	reply_end(c, start);
}

void write_reply(struct conn *c, struct request *rq, int64_t applied_zxid)
{
	struct txn *t = rq->txn;

	ASSERT(rq->state == REQUEST_DONE && rq->op != ZK_OP_CREATE_SESSION);
	audit_write(c, rq);
	if (rq->op == ZK_OP_MULTI && !rq->err) {
		emit_multi_reply(c, rq, applied_zxid);
		return;
	}
	bool has_record = rq->op == ZK_OP_CREATE || rq->op == ZK_OP_CREATE2 ||
			  rq->op == ZK_OP_CREATE_TTL || rq->op == ZK_OP_CREATE_CONTAINER ||
			  rq->op == ZK_OP_SET_DATA || rq->op == ZK_OP_SET_ACL;
	if (!rq->err && !t && has_record) {
		/* A reply without its record would read as success with nothing
		 * in it: never sent. */
		log_error("connection %llu: write xid %d (%s) finished with no txn and no error; "
			  "closed", (unsigned long long)c->id, rq->xid, zk_op_name(rq->op));
		conn_close(c, 0, NULL);
		return;
	}
	if (rq->err || !t) {
		reply_error(c, rq->xid, applied_zxid, rq->err);
		if (rq->op == ZK_OP_CHECK || rq->err == ZUNIMPLEMENTED)
			conn_close_after_flush(c);
		return;
	}
	size_t start = reply_begin(c, rq->xid, t->zxid, ZOK);
	switch (rq->op) {
	case ZK_OP_CREATE:
		jute_write_string(&c->obuf, t->ops[0].path, (int32_t)t->ops[0].path_len);
		break;
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
		jute_write_string(&c->obuf, t->ops[0].path, (int32_t)t->ops[0].path_len);
		stat_encode(&c->obuf, &rq->results[0].stat);
		break;
	case ZK_OP_SET_DATA:
	case ZK_OP_SET_ACL:
		stat_encode(&c->obuf, &rq->results[0].stat);
		break;
	default:
		break;
	}
	reply_end(c, start);
	if (rq->op == ZK_OP_CLOSE_SESSION)
		conn_close_after_flush(c);
}
