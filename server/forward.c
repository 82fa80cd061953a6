/* forward: see forward.h. */
#include "forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "conn.h"
#include "log.h"
#include "membership.h"
#include "proto.h"
#include "session.h"
#include "sockaddr.h"

/* What may wait parked, all connections together. */
#define PARKED_MAX 16384
#define PARKED_BYTES_MAX (64u << 20)

void forwarder_init(struct forwarder *f, struct commit *commit, struct ensemble *ensemble,
		    struct forward_leader *leader, struct clients *clients,
		    const struct server_config *cfg)
{
	memset(f, 0, sizeof(*f));
	list_init(&f->waiting);
	list_init(&f->parked);
	f->commit = commit;
	f->ensemble = ensemble;
	f->leader = leader;
	f->clients = clients;
	f->cfg = cfg;
	/* Numbered from the wall clock, so a restarted server's numbers are
	 * above those of its earlier run: a txn of that run, still in the log,
	 * never answers a request of this one. */
	f->next_seq = (uint64_t)loop_wall_ms() << 20;
}

static void list_waiting(struct forwarder *f, struct request *rq)
{
	/* in sequence order: the log brings the answers back in that order */
	struct list_node *last = list_last(&f->waiting);
	ASSERT(!last || list_entry(last, struct request, fwd_node)->forward_seq < rq->forward_seq);
	list_push_back(&f->waiting, &rq->fwd_node);
}

void forward_unlist(struct forwarder *f, struct request *rq)
{
	/* Listed until its answer is matched (forward_match); a matched one
	 * is no longer on the list, though it still completes as forwarded. */
	if (!list_linked(&rq->fwd_node))
		return;
	if (rq->parked) {
		list_remove(&f->parked, &rq->fwd_node);
		f->parked_bytes -= rq->fwd_len;
		rq->parked = false;
	} else {
		list_remove(&f->waiting, &rq->fwd_node);
	}
}

/* rq's FORWARD body, its number left to patch when it is sent. */
static int encode(struct conn *c, struct request *rq, int32_t op, const uint8_t *body,
		  uint32_t len, uint32_t timeout_ms)
{
	struct jute_buf b = { 0 };
	char peer[96];
	sockaddr_text(&c->auth.peer, peer, sizeof(peer));
	jute_write_long(&b, 0);		/* seq, patched */
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
	if (b.error) {
		jute_buf_free(&b);
		return -ENOMEM;
	}
	rq->fwd_body = b.data;		/* taken */
	rq->fwd_len = (uint32_t)b.len;
	return 0;
}

/* Sends rq under a new number and lists it as waiting. */
static int send_one(struct forwarder *f, struct request *rq)
{
	raft_id leader = commit_leader(f->commit);
	if (!leader)
		return -EAGAIN;
	uint64_t seq = ++f->next_seq;
	store_be64(rq->fwd_body, seq);
	int r;
	if (leader == f->commit->self) {
		/* This server was just elected and is not ready for writes yet:
		 * the request waits here as if it came from a follower (a parked
		 * one sent once it is ready is prepped at once, in order). */
		r = forward_leader_hold(f->leader, leader, rq->fwd_body, rq->fwd_len);
		if (r == 0 && commit_can_prep(f->commit))
			forward_leader_release(f->leader);
	} else {
		r = ensemble_send_frame(f->ensemble, leader, PEER_FRAME_FORWARD, rq->fwd_body,
					rq->fwd_len);
	}
	if (r < 0)
		return r;
	rq->forward_seq = seq;
	list_waiting(f, rq);
	f->forwarded++;
	return 0;
}

bool forward_leader_usable(struct forwarder *f)
{
	raft_id leader = commit_leader(f->commit);
	return leader && !f->orphaned_by && leader != f->drained;
}

int forward_park(struct forwarder *f, struct request *rq)
{
	if (f->parked.length >= PARKED_MAX || f->parked_bytes + rq->fwd_len > PARKED_BYTES_MAX)
		return -EAGAIN;
	/* One sent before keeps its place among those sent (by number),
	 * ahead of every one never sent. */
	struct list_node *at = &f->parked.head;
	if (rq->forward_seq) {
		list_for_each(&f->parked, n) {
			struct request *o = list_entry(n, struct request, fwd_node);
			if (!o->forward_seq || o->forward_seq > rq->forward_seq) {
				at = n;
				break;
			}
		}
	}
	list_link_between(&f->parked, at->prev, &rq->fwd_node, at);
	f->parked_bytes += rq->fwd_len;
	rq->parked = true;
	f->parked_total++;
	return 0;
}

void forward_flush(struct forwarder *f)
{
	struct request *rq;
	while (forward_leader_usable(f) &&
	       (rq = list_first_entry(&f->parked, struct request, fwd_node))) {
		forward_unlist(f, rq);
		int r = send_one(f, rq);
		if (r < 0) {
			/* first again, where it was */
			list_push_front(&f->parked, &rq->fwd_node);
			f->parked_bytes += rq->fwd_len;
			rq->parked = true;
			if (r == -ENOMEM)
				log_warning("out of memory sending a parked request to the leader; "
					    "tried again later");
			return;
		}
	}
}

int forward_request(struct forwarder *f, struct conn *c, struct request *rq, int32_t op,
		    const uint8_t *body, uint32_t len, uint32_t timeout_ms)
{
	int r = encode(c, rq, op, body, len, timeout_ms);
	if (r < 0)
		return r;
	rq->forwarded = true;
	rq->park_deadline_ms = f->clients->hub.now_ms +
			       (c->session ? c->session->timeout_ms : timeout_ms);
	if (forward_leader_usable(f) && list_empty(&f->parked)) {
		r = send_one(f, rq);
		if (r == 0 || r == -ENOMEM || r == -EMSGSIZE)
			return r;
	}
	r = forward_park(f, rq);
	if (r == 0)
		forward_flush(f);
	return r;
}

static void close_waiting(struct request *rq, const char *why)
{
	struct conn *c = rq->conn;
	if (c->state != CONN_CLOSING)
		conn_close(c, LOG_INFO, why);	/* drops its queue, rq with it */
}

void forward_fail_above(struct forwarder *f, uint64_t seq, const char *why)
{
	struct list_node *n;
	while ((n = list_last(&f->waiting)) &&
	       list_entry(n, struct request, fwd_node)->forward_seq > seq) {
		struct request *rq = list_entry(n, struct request, fwd_node);
		forward_unlist(f, rq);
		f->lost++;
		close_waiting(rq, why);
	}
}

void forward_fail_all(struct forwarder *f, const char *why)
{
	struct request *rq;
	forward_fail_above(f, 0, why);
	while ((rq = list_first_entry(&f->parked, struct request, fwd_node))) {
		forward_unlist(f, rq);
		close_waiting(rq, why);
	}
	f->orphaned_by = 0;
}

void forward_match(struct forwarder *f, struct txn *t)
{
	struct request *rq;
	while ((rq = list_first_entry(&f->waiting, struct request, fwd_node)) &&
	       rq->forward_seq < t->origin_seq) {
		forward_unlist(f, rq);
		f->lost++;
		close_waiting(rq, "a write it sent to the leader never came back; its outcome is "
			      "unknown");
	}
	rq = list_first_entry(&f->waiting, struct request, fwd_node);
	if (!rq || rq->forward_seq != t->origin_seq)
		return;
	forward_unlist(f, rq);
	if (t->request_op != rq->op && t->request_op != ZK_OP_ERROR) {
		/* Never expected: an answer of another kind would be garbage. */
		log_error("a txn of op %d (%s) came back for request %llu of op %d (%s); its "
			  "connection is closed", t->request_op, zk_op_name(t->request_op),
			  (unsigned long long)rq->forward_seq, rq->op, zk_op_name(rq->op));
		f->lost++;
		close_waiting(rq, "the answer to its write did not match it");
		return;
	}
	/* off the list, still forwarded: it completes through forward_complete */
	ASSERT(rq->forwarded);
	rq->txn = t;
	t->request = rq;
}

/* An error txn: every op is TXN_OP_ERROR (a successful txn has none). */
/* An error txn's refusal, as prep would have told it here. */
static void take_refusal(struct request *rq, const struct txn *t)
{
	const struct txn_op *o = &t->ops[0];
	if (t->request_op == ZK_OP_ERROR) {
		rq->op = ZK_OP_ERROR;
		rq->err = o->err;
		return;
	}
	if (t->request_op != ZK_OP_MULTI) {
		rq->err = o->err;
		return;
	}
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
}

int forward_complete(struct request *rq, struct txn *t, struct txn_result *results)
{
	ASSERT(rq->forwarded && rq->txn == t && !list_linked(&rq->fwd_node));
	rq->forwarded = false;
	rq->txn = NULL;
	t->request = NULL;
	bool error = txn_is_error(t);
	int r = 0;
	if (rq->op == ZK_OP_RECONFIG && !error) {
		/* The members changed: the answer is /zookeeper/config. */
		r = membership_answer(rq);
	} else if (rq->op == ZK_OP_SYNC) {
		/* Everything the leader had committed when the sync reached it is
		 * applied here now: the sync answers as a read does, in order. */
		rq->state = REQUEST_WAITING;
	} else if (error) {
		rq->state = REQUEST_DONE;
		if (t->ops[0].err == TXN_ERR_MALFORMED)
			r = -EBADMSG;
		else
			take_refusal(rq, t);
	} else {
		rq->state = REQUEST_DONE;
		rq->txn = t;
		t->request = rq;
		rq->results = results;
		return 0;
	}
	txn_free(t);
	free(results);
	return r;
}

void forward_touch(struct forwarder *f, uint64_t now_ms)
{
	raft_id leader = commit_leader(f->commit);
	if (now_ms < f->next_touch_ms)
		return;
	uint32_t period = f->cfg->tick_time_ms / 2;
	f->next_touch_ms = now_ms + (period ? period : 1);
	if (!leader || leader == f->commit->self)
		return;
	struct jute_buf b = { 0 };
	jute_write_int(&b, 0);	/* count, patched */
	int32_t n = 0;
	clients_for_each(f->clients, c) {
		if (c->session && c->touched && c->state == CONN_ESTABLISHED) {
			jute_write_long(&b, c->session->id);
			c->touched = false;
			n++;
		}
	}
	jute_patch_int(&b, 0, n);
	if (n && !b.error)
		ensemble_send_frame(f->ensemble, leader, PEER_FRAME_TOUCH, b.data, b.len);
	jute_buf_free(&b);
}
