/* request: see request.h. */
#include "request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "path.h"
#include "proto.h"
#include "read.h"
#include "records.h"
#include "server.h"
#include "session.h"
#include "write.h"
#include "commit.h"
#include "forward.h"
#include "membership.h"

int request_add_watch(struct conn *c, const char *path, size_t len, uint8_t kind)
{
	struct server *srv = c->srv;
	if (watch_has(&srv->watches, &c->watches, path, len, kind))
		return 0;
	if (c->watches.count >= srv->cfg->max_watches_per_session) {
		log_event(LOG_WARNING, { .message_id = LOG_MSGID_SLOW_CLIENT,
					 .session_id = c->session ? c->session->id : 0 },
			  "connection %llu from %s closed: more than %u watches "
			  "(session.max_watches)", (unsigned long long)c->id, c->peer_text,
			  srv->cfg->max_watches_per_session);
		conn_close(c, 0, NULL);
		return -ECONNABORTED;
	}
	return watch_add(&srv->watches, &c->watches, path, len, kind) < 0 ? -ENOMEM : 0;
}

size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, int32_t err)
{
	size_t start = c->obuf.len;
	jute_write_int(&c->obuf, 0);	/* length, patched by reply_end() */
	jute_write_int(&c->obuf, xid);
	jute_write_long(&c->obuf, zxid);
	jute_write_int(&c->obuf, err);
	return start;
}

void reply_end(struct conn *c, size_t start)
{
	struct server *srv = c->srv;
	uint64_t bytes = c->obuf.len - start - 4;
	jute_patch_int(&c->obuf, start, (int32_t)bytes);
	c->sent++;
	srv->stats.packets_sent++;
	struct server_stats *st = &srv->stats;
	if (st->responses++ == 0 || bytes < st->response_min_bytes)
		st->response_min_bytes = bytes;
	if (bytes > st->response_max_bytes)
		st->response_max_bytes = bytes;
	st->response_last_bytes = bytes;
	server_conn_dirty(srv, c);
	if (c->obuf.error) {
		conn_close(c, LOG_WARNING, "out of memory for replies");
		return;
	}
	uint64_t queued = c->obuf.len + (c->wbuf.len - c->woff);
	if (queued > srv->cfg->max_output_bytes) {
		char why[128];
		snprintf(why, sizeof(why), "client is not reading its replies: %llu bytes queued "
			 "(client.max_output_bytes)", (unsigned long long)queued);
		log_event(LOG_WARNING, { .message_id = LOG_MSGID_SLOW_CLIENT,
					 .session_id = c->session ? c->session->id : 0 }, "connection %llu from %s closed: %s",
			  (unsigned long long)c->id, c->peer_text, why);
		conn_close(c, 0, NULL);
	}
}

void reply_error(struct conn *c, int32_t xid, int32_t err)
{
	reply_end(c, reply_begin(c, xid, c->srv->state.last_zxid, err));
}

void request_note_reply(struct conn *c, int32_t op, int32_t xid, uint64_t received_ms)
{
	struct server *srv = c->srv;
	struct server_stats *st = &srv->stats;
	uint64_t ms = srv->now_ms - received_ms;
	/* As ZooKeeper's statistics: auth and SASL are answered before its
	 * request pipeline and count in neither. */
	if (op == ZK_OP_AUTH || op == ZK_OP_SASL)
		return;
	if (st->latency_count == 0 || ms < st->latency_min_ms)
		st->latency_min_ms = ms;
	if (ms > st->latency_max_ms)
		st->latency_max_ms = ms;
	st->latency_total_ms += ms;
	st->latency_count++;

	c->last_op = op;
	if (xid >= 0)
		c->last_cxid = xid;
	c->last_zxid = srv->state.last_zxid;
	c->last_response_wall_ms = (uint64_t)loop_wall_ms();
	c->last_latency_ms = ms;
	if (c->latency_count == 0 || ms < c->min_latency_ms)
		c->min_latency_ms = ms;
	if (ms > c->max_latency_ms)
		c->max_latency_ms = ms;
	c->total_latency_ms += ms;
	c->latency_count++;
}

void request_send_event(struct conn *c, int64_t zxid, int event_type, const char *path, size_t len)
{
	size_t start = reply_begin(c, ZK_XID_NOTIFICATION, zxid, ZOK);
	jute_write_int(&c->obuf, event_type);
	jute_write_int(&c->obuf, ZK_STATE_SYNC_CONNECTED);
	jute_write_string(&c->obuf, path, (int32_t)len);
	reply_end(c, start);
}

bool request_queue_full(const struct conn *c)
{
	const struct server_config *cfg = c->srv->cfg;
	return c->queue_len >= cfg->max_outstanding_requests ||
	       c->queue_bytes >= cfg->max_output_bytes;
}

static void queue_append(struct conn *c, struct request *rq)
{
	c->queue_bytes += rq->frame_bytes;
	rq->next = NULL;
	if (c->queue_tail)
		c->queue_tail->next = rq;
	else
		c->queue_head = rq;
	c->queue_tail = rq;
	c->queue_len++;
}

static bool barrier_holds(const struct server *srv, const struct request *rq)
{
	return rq->barrier > srv->state.last_zxid;
}

/* Barriers are zxids handed out, which only grow: appending keeps the list
 * in barrier order. */
static void barrier_list(struct server *srv, struct request *rq)
{
	rq->barrier_prev = srv->barrier_tail;
	rq->barrier_next = NULL;
	if (srv->barrier_tail)
		srv->barrier_tail->barrier_next = rq;
	else
		srv->barrier_head = rq;
	srv->barrier_tail = rq;
	rq->barrier_listed = true;
}

static void barrier_unlist(struct server *srv, struct request *rq)
{
	if (!rq->barrier_listed)
		return;
	if (rq->barrier_prev)
		rq->barrier_prev->barrier_next = rq->barrier_next;
	else
		srv->barrier_head = rq->barrier_next;
	if (rq->barrier_next)
		rq->barrier_next->barrier_prev = rq->barrier_prev;
	else
		srv->barrier_tail = rq->barrier_prev;
	rq->barrier_listed = false;
}

/* Keeps a copy of the body, for a request answered later as a read. */
static int keep_body(struct request *rq, const uint8_t *body, uint32_t len)
{
	rq->body = malloc(len ? len : 1);
	if (!rq->body)
		return -ENOMEM;
	memcpy(rq->body, body, len);
	rq->body_len = len;
	return 0;
}

static void request_free(struct request *rq)
{
	free(rq->multi_failure.op_types);
	if (rq->txn && rq->state == REQUEST_DONE)
		txn_free(rq->txn);
	free(rq->results);
	free(rq->body);
	free(rq);
}

/* Emits replies from the head of the queue while it can, running waiting
 * reads once everything before them is done. */
void request_pump(struct conn *c)
{
	struct server *srv = c->srv;

	while (c->queue_head && c->state != CONN_CLOSING) {
		struct request *rq = c->queue_head;
		if (rq->state == REQUEST_IN_FLIGHT || barrier_holds(srv, rq))
			break;
		barrier_unlist(srv, rq);
		c->queue_head = rq->next;
		if (!c->queue_head)
			c->queue_tail = NULL;
		c->queue_len--;
		c->queue_bytes -= rq->frame_bytes;
		if (rq->state == REQUEST_WAITING) {
			int err = read_execute(c, rq->xid, rq->op, rq->body, rq->body_len);
			if (err < 0) {
				request_free(rq);
				conn_close(c, LOG_NOTICE, err == -EBADMSG ? "malformed request" : strerror(-err));
				return;
			}
		} else {
			write_reply(c, rq);
		}
		request_note_reply(c, rq->asked_op, rq->xid, rq->received_ms);
		request_free(rq);
	}
	if (c->state != CONN_CLOSING && (c->paused || c->rlen > c->rstart) &&
	    !request_queue_full(c))
		conn_resume_reading(c);
}

int request_receive(struct conn *c, const uint8_t *frame, uint32_t len)
{
	struct server *srv = c->srv;
	struct jute_reader r;

	jute_reader_init(&r, frame, len);
	int32_t xid = jute_read_int(&r);
	int32_t op = jute_read_int(&r);
	if (r.error)
		return -EBADMSG;
	const uint8_t *body = frame + r.pos;
	uint32_t body_len = len - (uint32_t)r.pos;

	bool follower = !commit_can_prep(&srv->commit);
	/* reconfig changes the members: a write, when the ensemble allows it
	 * (otherwise read.c answers RECONFIGDISABLED). */
	bool reconfig = op == ZK_OP_RECONFIG && srv->cfg->in_ensemble && srv->cfg->reconfig_enabled;
	/* In an ensemble sync goes through the log, on the leader too: a
	 * leader cut off from the others (and replaced without knowing yet)
	 * cannot commit it, so it never answers a sync from a stale state. */
	bool log_sync = op == ZK_OP_SYNC && srv->cfg->in_ensemble;
	if (read_op(op) && !c->queue_head && !log_sync && !reconfig) {
		/* Nothing ahead of it: answer now, without queueing. */
		int err = read_execute(c, xid, op, body, body_len);
		request_note_reply(c, op, xid, srv->now_ms);
		return err;
	}

	if (!c->session) {
		/* Its session ended under it (closed, or expired by the leader). */
		conn_close(c, LOG_DEBUG, "a request after its session ended");
		return 0;
	}
	struct request *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	rq->conn = c;
	rq->xid = xid;
	rq->op = rq->asked_op = op;
	rq->frame_bytes = len;
	rq->received_ms = srv->now_ms;

	if (c->read_only && (write_op(op) || op == ZK_OP_SYNC || op == ZK_OP_RECONFIG)) {
		/* A read-only session: no quorum to write through. */
		rq->state = REQUEST_DONE;
		rq->err = op == ZK_OP_CLOSE_SESSION ? ZOK : ZNOTREADONLY;
		if (op == ZK_OP_CLOSE_SESSION) {
			rq->op = ZK_OP_ERROR;
			c->close_after_flush = true;
		}
	} else if (op == ZK_OP_CORRAL_TRANSFER_LEADER) {
		rq->state = REQUEST_DONE;
		rq->op = ZK_OP_ERROR;	/* a header-only answer */
		rq->err = membership_transfer(srv, &c->auth, body, body_len);
	} else if (log_sync && !follower && !c->read_only) {
		struct txn *t = txn_new(0);
		if (!t || keep_body(rq, body, body_len) < 0) {
			txn_free(t);
			free(rq->body);
			free(rq);
			return -ENOMEM;
		}
		t->request_op = ZK_OP_SYNC;
		t->session_id = c->session->id;
		t->time_ms = loop_wall_ms();
		t->request = rq;
		rq->txn = t;
		rq->state = REQUEST_IN_FLIGHT;
		if (server_submit(srv, t) < 0) {
			txn_free(t);
			rq->txn = NULL;
			rq->state = REQUEST_DONE;
			rq->err = ZSYSTEMERROR;
		}
	} else if (reconfig && !follower) {
		rq->state = REQUEST_IN_FLIGHT;
		rq->err = membership_reconfig(srv, &c->auth, body, body_len, rq, 0, 0);
		if (rq->err)
			rq->state = REQUEST_DONE;
	} else if (follower && (write_op(op) || op == ZK_OP_SYNC || reconfig)) {
		/* The leader preps it; the answer comes back through the log. */
		if (op == ZK_OP_SYNC && keep_body(rq, body, body_len) < 0) {
			free(rq);
			return -ENOMEM;
		}
		if (op == ZK_OP_CLOSE_SESSION)
			c->session->closing = true;
		rq->state = REQUEST_IN_FLIGHT;
		if (c->session->closing && op != ZK_OP_CLOSE_SESSION) {
			rq->state = REQUEST_DONE;
			rq->err = ZSESSIONEXPIRED;
		} else if (forward_request(c, rq, op, body, body_len, 0) < 0) {
			free(rq->body);
			free(rq);
			conn_close(c, LOG_INFO, "no leader to send its write to; the client tries again");
			return 0;
		}
	} else if (read_op(op)) {
		rq->state = REQUEST_WAITING;
		if (keep_body(rq, body, body_len) < 0) {
			free(rq);
			return -ENOMEM;
		}
	} else if (write_op(op)) {
		/* Room in the log first: prep publishes what it decides, so a write
		 * refused after prep would leave a change nobody makes. The encoded
		 * txn is never more than twice the request plus its fixed fields. A
		 * closeSession too (its txn is small: 4 KiB, as a session's
		 * creation and expiry): unreserved, closes on a full disk could
		 * fill the last segment and fail the log for good. */
		int room = commit_can_accept(&srv->commit, op == ZK_OP_CLOSE_SESSION
							    ? 4096 : 2 * len + 4096);
		if (c->session->closing) {
			rq->state = REQUEST_DONE;
			rq->err = ZSESSIONEXPIRED;
		} else if (room < 0) {
			rq->state = REQUEST_DONE;
			rq->err = ZSYSTEMERROR;
		} else {
			struct txn *t = NULL;
			struct prep_refusal no;
			int rc = write_prep(&srv->prep, c->session, &c->auth, op, body, body_len,
					    loop_wall_ms(), &t, &no);
			if (rc < 0) {
				free(rq);
				return rc;
			}
			if (!t) {
				rq->state = REQUEST_DONE;
				rq->err = no.err;
				rq->multi_failure = no.multi;
				if (no.plain)
					rq->op = ZK_OP_ERROR;
				if (srv->commit.last_zxid > srv->state.last_zxid) {
					rq->barrier = srv->commit.last_zxid;
					barrier_list(srv, rq);
				}
			} else {
				rq->state = REQUEST_IN_FLIGHT;
				rq->txn = t;
				t->request = rq;
				if (server_submit(srv, t) < 0) {
					t->request = NULL;
					txn_free(t);
					rq->txn = NULL;
					rq->state = REQUEST_DONE;
					rq->err = ZSYSTEMERROR;
				}
			}
		}
	} else if (op == ZK_OP_CREATE_SESSION) {
		/* Not a request a client sends on an open session: ZooKeeper fails
		 * to read it as one and answers MARSHALLINGERROR. */
		rq->op = ZK_OP_ERROR;	/* answered as a plain error */
		rq->state = REQUEST_DONE;
		rq->err = ZMARSHALLINGERROR;
	} else {
		/* check and notification as a request, or an opcode we do not
		 * serve: answer UNIMPLEMENTED and close, as ZooKeeper does. */
		log_notice("connection %llu from %s: unsupported opcode %d (%s); closing",
			   (unsigned long long)c->id, c->peer_text, op, zk_op_name(op));
		rq->state = REQUEST_DONE;
		rq->err = ZUNIMPLEMENTED;
		c->close_after_flush = true;
	}
	queue_append(c, rq);
	if (c->state == CONN_CLOSING) {
		/* Closed while handling it (the log failed under its write, the
		 * leader changed): the queue went before rq joined it. */
		request_queue_drop(c);
		return 0;
	}
	request_pump(c);
	return 0;
}

void request_txn_applied(struct server *srv, struct txn *t, struct txn_result *results)
{
	struct request *rq = t->request;
	if (!rq) {
		free(results);
		txn_free(t);
		return;
	}
	if (rq->forwarded) {
		forward_complete(srv, rq, t, results);
		return;
	}
	if (rq->op == ZK_OP_SYNC) {
		/* Everything committed before the sync is applied: it answers as
		 * the read it is, in order. */
		rq->txn = NULL;
		rq->state = REQUEST_WAITING;
		txn_free(t);
		free(results);
		request_pump(rq->conn);
		return;
	}
	if (rq->op == ZK_OP_RECONFIG) {
		/* The members changed: the answer is /zookeeper/config. */
		rq->txn = NULL;
		txn_free(t);
		free(results);
		if (membership_answer(rq) < 0)
			conn_close(rq->conn, LOG_WARNING, "out of memory answering a reconfig");
		else
			request_pump(rq->conn);
		return;
	}
	rq->state = REQUEST_DONE;
	rq->results = results;
	request_pump(rq->conn);
}

void request_txn_abandoned(struct server *srv, struct txn *t, int err)
{
	struct request *rq = t->request;
	txn_free(t);
	if (!rq)
		return;
	/* The log failed with this write in flight: it may or may not be on
	 * disk (after a failed fsync nobody knows); or a new leader's log
	 * replaced it. The client must see what ZooKeeper clients take for
	 * "outcome unknown": a lost connection. */
	rq->txn = NULL;
	if (err == ECONNRESET)
		conn_close(rq->conn, LOG_INFO, "a write of this connection was not committed before "
			   "the leader changed; its outcome is unknown to the client");
	else
		conn_close(rq->conn, LOG_WARNING, "the write-ahead log failed with a write of this "
			   "connection in flight; its outcome is unknown");
}

void request_barriers_passed(struct server *srv)
{
	while (srv->barrier_head && !barrier_holds(srv, srv->barrier_head)) {
		struct request *rq = srv->barrier_head;
		barrier_unlist(srv, rq);
		request_pump(rq->conn);	/* may free rq: it is unlisted already */
	}
}

void request_barriers_abandoned(struct server *srv, int err)
{
	while (srv->barrier_head) {
		struct request *rq = srv->barrier_head;
		struct conn *c = rq->conn;
		barrier_unlist(srv, rq);
		if (c->state != CONN_CLOSING && err == ECONNRESET)
			conn_close(c, LOG_INFO, "a write of this connection was refused on a state that "
				   "a new leader's log replaced; its answer would be unfounded");
		else if (c->state != CONN_CLOSING)
			conn_close(c, LOG_WARNING, "the write-ahead log failed while a write of this "
				   "connection, refused on a state not yet durable, waited for it; "
				   "its outcome is unknown");
	}
}

void request_queue_drop(struct conn *c)
{
	struct request *rq = c->queue_head;
	while (rq) {
		struct request *next = rq->next;
		barrier_unlist(c->srv, rq);
		forward_unlist(c->srv, rq);
		if (rq->state == REQUEST_IN_FLIGHT && rq->txn)
			rq->txn->request = NULL;	/* the txn goes on, unanswered */
		request_free(rq);
		rq = next;
	}
	c->queue_head = c->queue_tail = NULL;
	c->queue_len = 0;
	c->queue_bytes = 0;
}
