/* forward: see forward.h. */
#include "forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "conn.h"
#include "log.h"
#include "membership.h"
#include "proto.h"
#include "request.h"
#include "server.h"
#include "session.h"
#include "sockaddr.h"
#include "write.h"

/* A FORWARD frame the leader could not prep yet (not ready). */
struct held_frame {
	struct held_frame *next;
	raft_id from;
	size_t len;
	uint8_t body[];
};

static int hold(struct server *srv, raft_id from, const uint8_t *body, size_t len);

/* ---- the follower's side ---- */

static void fwd_list(struct server *srv, struct request *rq)
{
	/* in sequence order: the log brings the answers back in that order */
	struct list_node *last = list_last(&srv->fwd);
	ASSERT(!last || list_entry(last, struct request, fwd_node)->forward_seq < rq->forward_seq);
	list_push_back(&srv->fwd, &rq->fwd_node);
	rq->forwarded = true;
}

void forward_unlist(struct server *srv, struct request *rq)
{
	/* Listed until its answer is matched (forward_match); a matched one
	 * is no longer on the list, though it still completes as forwarded. */
	if (list_linked(&rq->fwd_node))
		list_remove(&srv->fwd, &rq->fwd_node);
}

/* FORWARD body: u64 seq, i64 session, i32 op, u32 timeout, u8 super,
 * string peer address, u32 identity count, {string scheme, string id}...,
 * buffer request body. */
int forward_request(struct conn *c, struct request *rq, int32_t op, const uint8_t *body,
		    uint32_t len, uint32_t timeout_ms)
{
	struct server *srv = c->srv;
	raft_id leader = commit_leader(&srv->commit);
	if (!leader)
		return -EAGAIN;
	struct jute_buf b = { 0 };
	uint64_t seq = ++srv->fwd_next_seq;
	char peer[96];
	sockaddr_text(&c->auth.peer, peer, sizeof(peer));
	jute_write_long(&b, (int64_t)seq);
	jute_write_long(&b, c->session ? c->session->id : 0);
	jute_write_int(&b, op);
	jute_write_int(&b, (int32_t)timeout_ms);
	jute_write_bool(&b, c->auth.super);
	jute_write_string(&b, peer, (int32_t)strlen(peer));
	jute_write_int(&b, (int32_t)c->auth.count);
	for (uint32_t i = 0; i < c->auth.count; i++) {
		jute_write_string(&b, c->auth.ids[i].scheme, (int32_t)strlen(c->auth.ids[i].scheme));
		jute_write_string(&b, c->auth.ids[i].id, (int32_t)strlen(c->auth.ids[i].id));
	}
	jute_write_buffer(&b, body, (int32_t)len);
	int r = -ENOMEM;
	if (!b.error && leader == srv->commit.self) {
		/* This server was just elected and is not ready for writes yet:
		 * the request waits here as if it came from a follower. */
		r = hold(srv, leader, b.data, b.len);
	} else if (!b.error) {
		r = ensemble_send_frame(&srv->ensemble, leader, PEER_FRAME_FORWARD,
					      b.data, b.len);
	}
	jute_buf_free(&b);
	if (r < 0)
		return r;
	rq->forward_seq = seq;
	fwd_list(srv, rq);
	srv->forwarded++;
	return 0;
}

static void close_waiting(struct request *rq, const char *why)
{
	struct conn *c = rq->conn;
	if (c->state != CONN_CLOSING)
		conn_close(c, LOG_INFO, why);	/* drops its queue, rq with it */
}

void forward_fail_all(struct server *srv, const char *why)
{
	struct request *rq;
	while ((rq = list_first_entry(&srv->fwd, struct request, fwd_node))) {
		forward_unlist(srv, rq);
		srv->forwards_lost++;
		close_waiting(rq, why);
	}
}

void forward_match(struct server *srv, struct txn *t)
{
	struct request *rq;
	while ((rq = list_first_entry(&srv->fwd, struct request, fwd_node)) &&
	       rq->forward_seq < t->origin_seq) {
		forward_unlist(srv, rq);
		srv->forwards_lost++;
		close_waiting(rq, "a write it sent to the leader never came back; its outcome is "
			      "unknown");
	}
	rq = list_first_entry(&srv->fwd, struct request, fwd_node);
	if (!rq || rq->forward_seq != t->origin_seq)
		return;
	forward_unlist(srv, rq);
	if (t->request_op != rq->op && t->request_op != ZK_OP_ERROR) {
		/* Never expected: an answer of another kind would be garbage. */
		log_error("a txn of op %d (%s) came back for request %llu of op %d (%s); its "
			  "connection is closed", t->request_op, zk_op_name(t->request_op),
			  (unsigned long long)rq->forward_seq, rq->op, zk_op_name(rq->op));
		srv->forwards_lost++;
		close_waiting(rq, "the answer to its write did not match it");
		return;
	}
	/* off the list, still forwarded: it completes through forward_complete */
	ASSERT(rq->forwarded);
	rq->txn = t;
	t->request = rq;
}

/* An error txn: every op is TXN_OP_ERROR (a successful txn has none). */
static bool is_error_txn(const struct txn *t)
{
	if (t->op_count == 0)
		return false;
	for (uint32_t i = 0; i < t->op_count; i++)
		if (t->ops[i].type != TXN_OP_ERROR)
			return false;
	return true;
}

void forward_complete(struct server *srv, struct request *rq, struct txn *t,
		      struct txn_result *results)
{
	struct conn *c = rq->conn;
	rq->forwarded = false;
	if (rq->op == ZK_OP_RECONFIG && !is_error_txn(t)) {
		t->request = NULL;
		rq->txn = NULL;
		txn_free(t);
		free(results);
		if (membership_answer(rq) < 0)
			conn_close(c, LOG_WARNING, "out of memory answering a reconfig");
		else
			request_pump(c);
		return;
	}
	if (rq->op == ZK_OP_SYNC) {
		/* Everything the leader had committed when the sync reached it is
		 * applied here now: the sync answers as a read does, in order. */
		rq->state = REQUEST_WAITING;
		rq->txn = NULL;
		t->request = NULL;
		txn_free(t);
		free(results);
		request_pump(c);
		return;
	}
	if (is_error_txn(t)) {
		const struct txn_op *o = &t->ops[0];
		rq->txn = NULL;
		rq->state = REQUEST_DONE;
		if (o->err == TXN_ERR_MALFORMED) {
			txn_free(t);
			free(results);
			conn_close(c, LOG_NOTICE, "malformed request (refused by the leader)");
			return;
		}
		if (t->request_op == ZK_OP_ERROR) {
			rq->op = ZK_OP_ERROR;
			rq->err = o->err;
		} else if (t->request_op == ZK_OP_MULTI) {
			struct multi_failure *f = &rq->multi_failure;
			f->op_count = t->op_count;
			f->op_types = calloc(t->op_count, sizeof(*f->op_types));
			f->failed_index = 0;
			f->err = ZOK;
			for (uint32_t i = 0; i < t->op_count; i++) {
				if (f->op_types)
					f->op_types[i] = t->ops[i].request_type;
				if (f->err == ZOK && t->ops[i].err != ZOK) {
					f->failed_index = i;
					f->err = t->ops[i].err;
				}
			}
			rq->err = ZOK;
		} else {
			rq->err = o->err;
		}
		txn_free(t);
		free(results);
		request_pump(c);
		return;
	}
	rq->state = REQUEST_DONE;
	rq->results = results;
	request_pump(c);
}

void forward_touch(struct server *srv)
{
	raft_id leader = commit_leader(&srv->commit);
	if (!srv->cfg->in_ensemble || srv->now_ms < srv->next_touch_ms)
		return;
	uint32_t period = srv->cfg->tick_time_ms / 2;
	srv->next_touch_ms = srv->now_ms + (period ? period : 1);
	if (!leader || leader == srv->commit.self)
		return;
	struct jute_buf b = { 0 };
	jute_write_int(&b, 0);	/* count, patched */
	int32_t n = 0;
	for (struct conn *c = srv->conns; c; c = c->next) {
		if (c->session && c->touched && c->state == CONN_ESTABLISHED) {
			jute_write_long(&b, c->session->id);
			c->touched = false;
			n++;
		}
	}
	jute_patch_int(&b, 0, n);
	if (n && !b.error)
		ensemble_send_frame(&srv->ensemble, leader, PEER_FRAME_TOUCH, b.data, b.len);
	jute_buf_free(&b);
}

/* ---- the leader's side ---- */

static void receive_touch(struct server *srv, const uint8_t *body, size_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	int32_t n = jute_read_int(&r);
	if (r.error || n < 0 || (size_t)n * 8 > jute_remaining(&r))
		return;
	for (int32_t i = 0; i < n; i++) {
		struct session *s = session_lookup(&srv->state.sessions, jute_read_long(&r));
		if (s && !s->closing)
			session_touch(s, srv->now_ms);
	}
}

/* An error txn answering a forwarded request that failed. */
static struct txn *error_txn(int32_t op, const struct prep_refusal *no)
{
	const struct multi_failure *f = &no->multi;
	bool multi = op == ZK_OP_MULTI && !no->plain && f->op_count;
	uint32_t n = multi ? f->op_count : 1;
	struct txn *t = txn_new(n);
	if (!t)
		return NULL;
	t->request_op = no->plain ? ZK_OP_ERROR : op;
	for (uint32_t i = 0; i < n; i++) {
		struct txn_op *o = &t->ops[i];
		o->type = TXN_OP_ERROR;
		if (multi) {
			o->request_type = f->op_types ? f->op_types[i] : ZK_OP_ERROR;
			o->err = i < f->failed_index ? ZOK
			       : i == f->failed_index ? f->err : ZRUNTIMEINCONSISTENCY;
		} else {
			o->request_type = op;
			o->err = no->err;
		}
	}
	return t;
}

static void prep_forwarded(struct server *srv, raft_id from, const uint8_t *body, size_t len)
{
	struct jute_reader r;
	const char *peer, *scheme, *id;
	int32_t peer_len, scheme_len, id_len;
	struct auth_identities ids;
	jute_reader_init(&r, body, len);
	uint64_t seq = (uint64_t)jute_read_long(&r);
	int64_t sid = jute_read_long(&r);
	int32_t op = jute_read_int(&r);
	uint32_t timeout_ms = (uint32_t)jute_read_int(&r);
	bool super = jute_read_bool(&r);
	jute_read_string(&r, &peer, &peer_len);
	int32_t n = jute_read_int(&r);
	if (r.error || n < 0 || n > AUTH_IDS_MAX || peer_len >= 96) {
		log_warning("a forwarded request from server %llu does not decode; dropped",
			    (unsigned long long)from);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	char peer_text[96];
	memcpy(peer_text, peer, (size_t)peer_len);
	peer_text[peer_len] = 0;
	if (sockaddr_parse(peer_text, true, &ss, &sl) < 0)
		memset(&ss, 0, sizeof(ss));
	/* The identities come whole from the follower (the ip one included). */
	auth_identities_init(&ids, &ss);
	auth_identities_free(&ids);
	memset(ids.ids, 0, sizeof(ids.ids));
	ids.count = 0;
	ids.peer = ss;
	ids.super = super;
	for (int32_t i = 0; i < n; i++) {
		jute_read_string(&r, &scheme, &scheme_len);
		jute_read_string(&r, &id, &id_len);
		if (r.error)
			break;
		ids.ids[i].scheme = strndup(scheme, (size_t)scheme_len);
		ids.ids[i].id = strndup(id, (size_t)id_len);
		ids.count = (uint32_t)i + 1;
	}
	const uint8_t *req;
	int32_t req_len;
	jute_read_buffer(&r, &req, &req_len);
	if (r.error || req_len < 0) {
		auth_identities_free(&ids);
		log_warning("a forwarded request from server %llu does not decode; dropped",
			    (unsigned long long)from);
		return;
	}
	srv->forwards_received++;

	struct prep_refusal no = { .err = ZOK };
	struct txn *t = NULL;
	int rc = 0;
	int64_t now = loop_wall_ms();
	if (op == ZK_OP_RECONFIG) {
		no.err = membership_reconfig(srv, &ids, req, (uint32_t)req_len, NULL, (uint32_t)from,
					     seq);
		if (no.err == ZOK) {
			auth_identities_free(&ids);
			return;		/* answered once the change commits */
		}
	} else if (op == ZK_OP_CREATE_SESSION) {
		if (srv->state.sessions.by_id.count >= srv->cfg->max_sessions)
			no.err = ZSYSTEMERROR;
		else
			rc = prep_create_session(&srv->prep, timeout_ms, now, &t);
	} else if (op == ZK_OP_SYNC) {
		t = txn_new(0);
		if (t) {
			t->request_op = ZK_OP_SYNC;
			t->time_ms = now;
		}
	} else {
		struct session *s = session_lookup(&srv->state.sessions, sid);
		if (!s || s->closing)
			no.err = ZSESSIONEXPIRED;
		else if (!write_op(op))
			no.err = ZUNIMPLEMENTED;
		else
			rc = write_prep(&srv->prep, s, &ids, op, req, (uint32_t)req_len, now, &t, &no);
	}
	auth_identities_free(&ids);
	if (rc == -EBADMSG) {
		no = (struct prep_refusal){ .err = TXN_ERR_MALFORMED };
	} else if (rc < 0) {
		log_warning("out of memory prepping a request from server %llu; dropped",
			    (unsigned long long)from);
		free(no.multi.op_types);
		return;
	}
	if (!t)
		t = error_txn(op, &no);
	free(no.multi.op_types);
	if (!t)
		return;
	if (!t->session_id)
		t->session_id = sid;
	if (!t->time_ms)
		t->time_ms = now;
	t->origin = (uint32_t)from;
	t->origin_seq = seq;
	if (commit_submit(&srv->commit, t) < 0)
		txn_free(t);
}

static int hold(struct server *srv, raft_id from, const uint8_t *body, size_t len)
{
	struct held_frame *h = malloc(sizeof(*h) + len);
	if (!h)
		return -ENOMEM;
	h->next = NULL;
	h->from = from;
	h->len = len;
	memcpy(h->body, body, len);
	if (srv->held_tail)
		srv->held_tail->next = h;
	else
		srv->held_head = h;
	srv->held_tail = h;
	return 0;
}

void forward_receive(struct server *srv, const struct peer_frame *f)
{
	switch (f->type) {
	case PEER_FRAME_FORWARD:
		if (commit_can_prep(&srv->commit))
			prep_forwarded(srv, f->from, f->body, f->body_len);
		else if (commit_state(&srv->commit) == RAFT_LEADER &&
			 hold(srv, f->from, f->body, f->body_len) < 0)
			log_warning("out of memory holding a request from server %llu; dropped",
				    (unsigned long long)f->from);
		/* else: not the leader; the sender learns of the leader and fails it */
		break;
	case PEER_FRAME_TOUCH:
		if (commit_state(&srv->commit) == RAFT_LEADER)
			receive_touch(srv, f->body, f->body_len);
		break;
	default:
		log_warning("server %llu sent a frame of unknown type %u; ignored",
			    (unsigned long long)f->from, f->type);
	}
}

void forward_release_held(struct server *srv)
{
	while (srv->held_head && commit_can_prep(&srv->commit)) {
		struct held_frame *h = srv->held_head;
		srv->held_head = h->next;
		if (!srv->held_head)
			srv->held_tail = NULL;
		prep_forwarded(srv, h->from, h->body, h->len);
		free(h);
	}
}

void forward_drop_held(struct server *srv)
{
	while (srv->held_head) {
		struct held_frame *h = srv->held_head;
		srv->held_head = h->next;
		free(h);
	}
	srv->held_tail = NULL;
}
