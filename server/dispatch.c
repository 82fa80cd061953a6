/* dispatch: see dispatch.h. */
#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "audit.h"
#include "commit.h"
#include "floor.h"
#include "forward.h"
#include "handshake.h"
#include "log.h"
#include "membership.h"
#include "prep.h"
#include "proto.h"
#include "read.h"
#include "reply.h"
#include "request.h"
#include "server_config.h"
#include "session.h"
#include "state.h"
#include "write.h"

/* What serves a request, by its op (and the ensemble's settings). */
enum op_kind {
	KIND_READ,		/* read.c, from the applied tree (or the connection) */
	KIND_WRITE,		/* a txn, prepped here or by the leader */
	KIND_SYNC,		/* an ensemble's sync: through the log */
	KIND_RECONFIG,		/* reconfig, when the ensemble allows it */
	KIND_TRANSFER,		/* corral's transferLeader */
	KIND_CLOSE_OTHER,	/* corral's closeSession of another session */
	KIND_CREATE_SESSION,	/* a ConnectRequest's op on an open session */
	KIND_UNSUPPORTED,
	KIND_COUNT,
};

static enum op_kind op_kind(const struct request_path *p, int32_t op)
{
	/* reconfig changes the members: a write, when the ensemble allows it
	 * (otherwise read.c answers RECONFIGDISABLED). */
	if (op == ZK_OP_RECONFIG && p->cfg->in_ensemble && p->cfg->reconfig_enabled)
		return KIND_RECONFIG;
	/* In an ensemble sync goes through the log, on the leader too: a
	 * leader cut off from the others (and replaced without knowing yet)
	 * cannot commit it, so it never answers a sync from a stale state. */
	if (op == ZK_OP_SYNC && p->cfg->in_ensemble)
		return KIND_SYNC;
	if (read_op(op))
		return KIND_READ;
	if (write_op(op))
		return KIND_WRITE;
	if (op == ZK_OP_CORRAL_TRANSFER_LEADER)
		return KIND_TRANSFER;
	if (op == ZK_OP_CORRAL_CLOSE_SESSION)
		return KIND_CLOSE_OTHER;
	if (op == ZK_OP_CREATE_SESSION)
		return KIND_CREATE_SESSION;
	return KIND_UNSUPPORTED;
}

/* A handler decides rq: it is done (err set), waiting to be read, or in
 * flight. Returns 0 (rq joins the queue), a negative errno (rq is freed;
 * -EBADMSG and -ENOMEM close the connection), or -ECONNABORTED when the
 * handler closed the connection itself. */
typedef int (*request_handler)(struct request_path *p, struct conn *c, struct request *rq,
			       const uint8_t *body, uint32_t len);

static void done(struct request *rq, int32_t err)
{
	rq->state = REQUEST_DONE;
	rq->err = err;
}

static int queue_read(struct request_path *p, struct conn *c, struct request *rq,
		      const uint8_t *body, uint32_t len)
{
	rq->state = REQUEST_WAITING;
	return request_keep_body(rq, body, len);
}

/* A follower: the leader preps it; the answer comes back through the log. */
static int forward_one(struct request_path *p, struct conn *c, struct request *rq,
		       const uint8_t *body, uint32_t len)
{
	if (rq->op == ZK_OP_SYNC && request_keep_body(rq, body, len) < 0)
		return -ENOMEM;
	if (rq->op == ZK_OP_CLOSE_SESSION)
		c->session->closing = true;
	if (c->session->closing && rq->op != ZK_OP_CLOSE_SESSION) {
		done(rq, ZSESSIONEXPIRED);
		return 0;
	}
	rq->state = REQUEST_IN_FLIGHT;
	if (forward_request(p->forwarder, c, rq, rq->op, body, len, 0) < 0) {
		conn_close(c, LOG_INFO, "no room to send or park its write (out of memory, or too "
			   "many wait for a leader); the client tries again");
		return -ECONNABORTED;
	}
	return 0;
}

static int submit(struct request_path *p, struct request *rq, struct txn *t)
{
	rq->state = REQUEST_IN_FLIGHT;
	rq->txn = t;
	t->request = rq;
	if (commit_submit(p->commit, t) < 0) {
		t->request = NULL;
		txn_free(t);
		rq->txn = NULL;
		done(rq, ZSYSTEMERROR);
	}
	return 0;
}

static int write_request(struct request_path *p, struct conn *c, struct request *rq,
			 const uint8_t *body, uint32_t len)
{
	if (p->cfg->audit_log)
		audit_note_request(rq, body, len);
	if (!commit_can_prep(p->commit))
		return forward_one(p, c, rq, body, len);
	/* Room in the log first: prep publishes what it decides, so a write
	 * refused after prep would leave a change nobody makes. The encoded
	 * txn is never more than twice the request plus its fixed fields. A
	 * closeSession too (its txn is small: 4 KiB, as a session's creation
	 * and expiry): unreserved, closes on a full disk could fill the last
	 * segment and fail the log for good. */
	int room = commit_can_accept(p->commit, rq->op == ZK_OP_CLOSE_SESSION
					      ? 4096 : 2 * rq->frame_bytes + 4096);
	if (c->session->closing) {
		done(rq, ZSESSIONEXPIRED);
		return 0;
	}
	if (room < 0) {
		done(rq, ZSYSTEMERROR);
		return 0;
	}
	struct txn *t = NULL;
	struct prep_refusal no;
	int rc = write_prep(p->prep, c->session, &c->auth, rq->op, body, len, loop_wall_ms(), &t,
			    &no);
	if (rc < 0)
		return rc;
	if (t)
		return submit(p, rq, t);
	done(rq, no.err);
	rq->multi_failure = no.multi;
	if (no.plain)
		rq->op = ZK_OP_ERROR;
	if (p->commit->last_zxid > p->state->last_zxid)
		request_barrier_hold(&p->barriers, rq, p->commit->last_zxid);
	return 0;
}

static int sync_request(struct request_path *p, struct conn *c, struct request *rq,
			const uint8_t *body, uint32_t len)
{
	if (!commit_can_prep(p->commit))
		return forward_one(p, c, rq, body, len);
	struct txn *t = txn_new(0);
	if (!t || request_keep_body(rq, body, len) < 0) {
		txn_free(t);
		return -ENOMEM;
	}
	t->request_op = ZK_OP_SYNC;
	t->session_id = c->session->id;
	t->time_ms = loop_wall_ms();
	return submit(p, rq, t);
}

static int reconfig_request(struct request_path *p, struct conn *c, struct request *rq,
			    const uint8_t *body, uint32_t len)
{
	if (!commit_can_prep(p->commit))
		return forward_one(p, c, rq, body, len);
	rq->state = REQUEST_IN_FLIGHT;
	int32_t err = membership_reconfig(p->membership, &c->auth, body, len, rq, 0, 0);
	if (err)
		done(rq, err);
	return 0;
}

static int transfer_request(struct request_path *p, struct conn *c, struct request *rq,
			    const uint8_t *body, uint32_t len)
{
	rq->op = ZK_OP_ERROR;	/* a header-only answer */
	done(rq, membership_transfer(p->membership, &c->auth, body, len));
	return 0;
}

/* corral's opcode 5003 {sessionId}: the super user closes another
 * session, as its expiry would (a closeSession txn through the log: its
 * ephemerals go, its watchers hear of it, its connection is closed). Only
 * where txns are prepared (the leader, or a standalone server): elsewhere
 * APIERROR, and corralctl asks the leader. A session cannot be taken over
 * with its id alone (its password never leaves the server), hence an
 * opcode of its own. Answered once submitted: the close commits after. */
static int close_other_request(struct request_path *p, struct conn *c, struct request *rq,
			       const uint8_t *body, uint32_t len)
{
	struct jute_reader r;
	struct txn *t = NULL;
	rq->op = ZK_OP_ERROR;	/* a header-only answer */
	jute_reader_init(&r, body, len);
	int64_t id = jute_read_long(&r);
	if (!c->auth.super) {
		done(rq, ZNOAUTH);
		return 0;
	}
	if (r.error || (c->session && id == c->session->id)) {
		done(rq, ZBADARGUMENTS);
		return 0;
	}
	if (!commit_can_prep(p->commit)) {
		done(rq, ZAPIERROR);
		return 0;
	}
	struct session *s = session_lookup(&p->state->sessions, id);
	if (!s || s->closing) {
		done(rq, ZNONODE);
		return 0;
	}
	if (commit_can_accept(p->commit, 4096) < 0 ||
	    prep_close_session(p->prep, s->id, loop_wall_ms(), &t) < 0) {
		done(rq, ZSYSTEMERROR);
		return 0;
	}
	if (commit_submit(p->commit, t) < 0) {
		txn_free(t);
		done(rq, ZAPIERROR);
		return 0;
	}
	log_notice("session 0x%llx closed by the super user (connection %llu from %s)",
		   (unsigned long long)id, (unsigned long long)c->id, c->peer_text);
	s->closing = true;
	if (s->conn)
		conn_close(s->conn, LOG_DEBUG, "its session was closed by the administrator");
	done(rq, ZOK);
	return 0;
}

static int create_session_request(struct request_path *p, struct conn *c, struct request *rq,
				  const uint8_t *body, uint32_t len)
{
	/* Not a request a client sends on an open session: ZooKeeper fails to
	 * read it as one and answers MARSHALLINGERROR. */
	rq->op = ZK_OP_ERROR;	/* answered as a plain error */
	done(rq, ZMARSHALLINGERROR);
	return 0;
}

static int unsupported_request(struct request_path *p, struct conn *c, struct request *rq,
			       const uint8_t *body, uint32_t len)
{
	/* check and notification as a request, or an opcode we do not serve:
	 * answer UNIMPLEMENTED and close, as ZooKeeper does. */
	log_notice("connection %llu from %s: unsupported opcode %d (%s); closing",
		   (unsigned long long)c->id, c->peer_text, rq->op, zk_op_name(rq->op));
	done(rq, ZUNIMPLEMENTED);
	c->close_after_flush = true;
	return 0;
}

static const request_handler handlers[KIND_COUNT] = {
	[KIND_READ] = queue_read,
	[KIND_WRITE] = write_request,
	[KIND_SYNC] = sync_request,
	[KIND_RECONFIG] = reconfig_request,
	[KIND_TRANSFER] = transfer_request,
	[KIND_CLOSE_OTHER] = close_other_request,
	[KIND_CREATE_SESSION] = create_session_request,
	[KIND_UNSUPPORTED] = unsupported_request,
};

/* A read-only session: no quorum to write through. */
static bool refused_read_only(struct conn *c, struct request *rq)
{
	int32_t op = rq->op;
	if (!c->read_only || !(write_op(op) || op == ZK_OP_SYNC || op == ZK_OP_RECONFIG))
		return false;
	if (op == ZK_OP_CLOSE_SESSION) {
		rq->op = ZK_OP_ERROR;
		c->close_after_flush = true;
		done(rq, ZOK);
	} else {
		done(rq, ZNOTREADONLY);
	}
	return true;
}

static void drop_queue(struct request_path *p, struct conn *c)
{
	struct request *rq;
	while ((rq = request_queue_head(c))) {
		request_queue_remove(c, rq);
		request_barrier_release(&p->barriers, rq);
		if (p->forwarder)
			forward_unlist(p->forwarder, rq);
		request_free(rq);
	}
	ASSERT(c->queue_bytes == 0);
}

/* ZooKeeper 3.8's enforced authentication (AuthenticationHelper): a
 * connection without an identity of one of auth.enforce.schemes gets
 * SESSIONCLOSEDREQUIRESASLAUTH (zxid 0) for anything but auth and sasl,
 * ping included, and is closed; its session is left to expire. True when
 * it was refused. */
static bool refuse_unauthenticated(struct request_path *p, struct conn *c, int32_t xid, int32_t op)
{
	if (!p->cfg->enforce_auth || op == ZK_OP_AUTH || op == ZK_OP_SASL ||
	    auth_has_scheme_of(&c->auth, p->cfg->enforce_auth_schemes))
		return false;
	if (c->close_after_flush)
		return true;	/* refused already: what it sent after goes unanswered */
	log_info("connection %llu from %s closed: %s without authenticating (auth.enforce)",
		 (unsigned long long)c->id, c->peer_text, zk_op_name(op));
	reply_error(c, xid, 0, ZSESSIONCLOSEDREQUIRESASLAUTH);
	c->hub->stats.auth_failed++;
	conn_close_after_flush(c);
	return true;
}

int dispatch_request(struct request_path *p, struct conn *c, const uint8_t *frame, uint32_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, frame, len);
	int32_t xid = jute_read_int(&r);
	int32_t op = jute_read_int(&r);
	if (r.error)
		return -EBADMSG;
	const uint8_t *body = frame + r.pos;
	uint32_t body_len = len - (uint32_t)r.pos;

	if (c->session) {
		session_touch(c->session, c->hub->now_ms);
		c->touched = true;
	}
	if (refuse_unauthenticated(p, c, xid, op))
		return 0;
	if (op == ZK_OP_CORRAL_BACKUP && c->session)
		return backup_request(p->backup, p, c, xid);
#ifdef CORRAL_BENCH_FLOOR
	if (c->session && list_empty(&c->queue)) {
		int answered = floor_answer(p, c, xid, op, body, body_len);
		if (answered != 0) {
			reply_account(c, op, xid, c->hub->now_ms, 0, false);
			return answered < 0 ? answered : 0;
		}
	}
#endif
	enum op_kind kind = op_kind(p, op);
	if (kind == KIND_READ && list_empty(&c->queue)) {
		/* Nothing ahead of it: answer now, without queueing. */
		int err = read_execute(p, c, xid, op, body, body_len);
		reply_account(c, op, xid, c->hub->now_ms, p->state->last_zxid, false);
		return err;
	}
	if (!c->session) {
		/* Its session ended under it (closed, or expired by the leader). */
		conn_close(c, LOG_DEBUG, "a request after its session ended");
		return 0;
	}
	struct request *rq = request_new(c, xid, op, len, c->hub->now_ms);
	if (!rq)
		return -ENOMEM;
	int rc = refused_read_only(c, rq) ? 0 : handlers[kind](p, c, rq, body, body_len);
	if (rc < 0) {
		request_free(rq);
		return rc == -ECONNABORTED ? 0 : rc;
	}
	request_queue_append(c, rq);
	if (c->state == CONN_CLOSING) {
		/* Closed while handling it (the log failed under its write, the
		 * leader changed): the queue went before rq joined it. */
		drop_queue(p, c);
		return 0;
	}
	dispatch_pump(p, c);
	return 0;
}

/* Answers the head of the queue, done or waiting to be read. Returns 0, or
 * -1 when the connection was closed. */
static int answer(struct request_path *p, struct conn *c, struct request *rq)
{
	if (rq->state == REQUEST_WAITING) {
		if (rq->asked_op == ZK_OP_RECONFIG)
			audit_write(c, rq);	/* done: answered with /zookeeper/config */
		int err = read_execute(p, c, rq->xid, rq->op, rq->body, rq->body_len);
		if (err < 0) {
			conn_close(c, LOG_NOTICE, err == -EBADMSG ? "malformed request" : strerror(-err));
			return -1;
		}
	} else if (rq->op == ZK_OP_CREATE_SESSION) {
		struct txn *t = rq->txn;
		struct session *s = t ? session_lookup(&p->state->sessions, t->session_id) : NULL;
		handshake_session_created(p, c, s, rq->err);
		return 0;	/* counted with the handshake */
	} else {
		write_reply(c, rq, p->state->last_zxid);
	}
	reply_account(c, rq->asked_op, rq->xid, rq->received_ms, p->state->last_zxid,
		      rq->state != REQUEST_WAITING);
	return 0;
}

void dispatch_pump(struct request_path *p, struct conn *c)
{
	struct request *rq;
	while (c->state != CONN_CLOSING && (rq = request_queue_head(c))) {
		if (rq->state == REQUEST_IN_FLIGHT || request_barrier_holds(rq, p->state->last_zxid))
			break;
		request_barrier_release(&p->barriers, rq);
		request_queue_remove(c, rq);
		int r = answer(p, c, rq);
		request_free(rq);
		if (r < 0)
			return;
	}
	if (c->state != CONN_CLOSING && (c->paused || c->rlen > c->rstart) && !conn_queue_full(c))
		conn_resume_reading(c);
}

/* After each applied txn: replies of refused writes whose barrier it
 * passed leave (the waiting reads behind them see exactly that state). The
 * list is in barrier order, so this costs nothing when none is due. */
static void barriers_passed(struct request_path *p)
{
	struct request *rq;
	while ((rq = list_first_entry(&p->barriers, struct request, barrier_node)) &&
	       !request_barrier_holds(rq, p->state->last_zxid)) {
		request_barrier_release(&p->barriers, rq);
		dispatch_pump(p, rq->conn);	/* may free rq: it is unlisted already */
	}
}

/* The txn of rq (not forwarded) was applied. Returns 0, or -ENOMEM. */
static int complete(struct request *rq, struct txn *t, struct txn_result *results)
{
	if (rq->op == ZK_OP_RECONFIG && txn_is_error(t)) {
		/* refused after it was taken (membership.c: NEWCONFIGNOQUORUM) */
		rq->txn = NULL;
		t->request = NULL;
		done(rq, t->ops[0].err);
		txn_free(t);
		free(results);
		return 0;
	}
	if (rq->op == ZK_OP_SYNC || rq->op == ZK_OP_RECONFIG) {
		/* Everything committed before the sync is applied: it answers as
		 * the read it is, in order. A reconfig's answer is
		 * /zookeeper/config, as a read too. */
		rq->txn = NULL;
		t->request = NULL;
		txn_free(t);
		free(results);
		rq->state = REQUEST_WAITING;
		return rq->op == ZK_OP_RECONFIG ? membership_answer(rq) : 0;
	}
	rq->state = REQUEST_DONE;
	rq->results = results;
	return 0;
}

void dispatch_txn_applied(struct request_path *p, struct txn *t, struct txn_result *results)
{
	struct request *rq = t->request;
	if (!rq) {
		free(results);
		txn_free(t);
		barriers_passed(p);
		return;
	}
	struct conn *c = rq->conn;
	ASSERT(rq->txn == t && rq->state == REQUEST_IN_FLIGHT);
	int r = rq->forwarded ? forward_complete(rq, t, results) : complete(rq, t, results);
	if (r == -EBADMSG)
		conn_close(c, LOG_NOTICE, "malformed request (refused by the leader)");
	else if (r < 0)
		conn_close(c, LOG_WARNING, "out of memory answering a reconfig");
	else
		dispatch_pump(p, c);
	barriers_passed(p);
}

void dispatch_txn_abandoned(struct request_path *p, struct txn *t, int err)
{
	struct request *rq = t->request;
	txn_free(t);
	if (rq) {
		/* The log failed with this write in flight: it may or may not be
		 * on disk (after a failed fsync nobody knows); or a new leader's
		 * log replaced it. The client must see what ZooKeeper clients take
		 * for "outcome unknown": a lost connection. */
		rq->txn = NULL;
		if (err == ECONNRESET)
			conn_close(rq->conn, LOG_INFO, "a write of this connection was not committed "
				   "before the leader changed; its outcome is unknown to the client");
		else
			conn_close(rq->conn, LOG_WARNING, "the write-ahead log failed with a write of this "
				   "connection in flight; its outcome is unknown");
	}
	/* A refused write waiting for txns that will never apply was decided on
	 * a state that may never exist; its connection is closed too. */
	while ((rq = list_first_entry(&p->barriers, struct request, barrier_node))) {
		struct conn *c = rq->conn;
		request_barrier_release(&p->barriers, rq);
		if (c->state != CONN_CLOSING && err == ECONNRESET)
			conn_close(c, LOG_INFO, "a write of this connection was refused on a state that "
				   "a new leader's log replaced; its answer would be unfounded");
		else if (c->state != CONN_CLOSING)
			conn_close(c, LOG_WARNING, "the write-ahead log failed while a write of this "
				   "connection, refused on a state not yet durable, waited for it; "
				   "its outcome is unknown");
	}
}

void dispatch_conn_closed(struct request_path *p, struct conn *c)
{
	if (c->session && c->session->conn == c)
		c->session->conn = NULL;
	c->session = NULL;
	free(c->ro_session);
	c->ro_session = NULL;
	drop_queue(p, c);
	watch_remove_owner(p->watches, &c->watches);
}
