/* forward_leader: see forward_leader.h. */
#include "forward_leader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "log.h"
#include "proto.h"
#include "session.h"
#include "sockaddr.h"
#include "write.h"

/* A FORWARD frame the leader could not prep yet (not ready). */
struct held_frame {
	struct list_node node;
	raft_id from;
	size_t len;
	uint8_t body[];
};

/* A FORWARD frame's fields; the strings and the request point into it. */
struct forwarded {
	uint64_t seq;
	int64_t session_id;
	int32_t op;
	uint32_t timeout_ms;
	const uint8_t *req;
	int32_t req_len;
	struct auth_identities ids;	/* the client's, whole (ip included), owned */
};

void forward_leader_init(struct forward_leader *fl, struct prep *prep, struct state *state,
			 struct commit *commit, struct membership *membership,
			 struct ensemble *ensemble, const struct server_config *cfg)
{
	memset(fl, 0, sizeof(*fl));
	list_init(&fl->held);
	fl->prep = prep;
	fl->state = state;
	fl->commit = commit;
	fl->membership = membership;
	fl->ensemble = ensemble;
	fl->cfg = cfg;
}

/* Notes seq as the last request of from this leader took (FORWARD_DRAINED
 * tells it). Frames of one member come in its order: seq only grows. */
static void note_taken(struct forward_leader *fl, raft_id from, uint64_t seq)
{
	for (size_t i = 0; i < fl->taken_count; i++)
		if (fl->taken[i].from == from) {
			fl->taken[i].seq = seq;
			return;
		}
	struct forward_taken *t = realloc(fl->taken, (fl->taken_count + 1) * sizeof(*t));
	if (!t) {
		fl->untracked = true;	/* no DRAINED: the members fail them as before */
		return;
	}
	fl->taken = t;
	fl->taken[fl->taken_count++] = (struct forward_taken){ .from = from, .seq = seq };
}

/* Decodes a FORWARD body. Returns 0 (ret->ids to free with
 * auth_identities_free) or -EBADMSG. */
static int forwarded_decode(const uint8_t *body, size_t len, struct forwarded *ret)
{
	struct jute_reader r;
	const char *peer, *scheme, *id;
	int32_t peer_len, scheme_len, id_len;
	jute_reader_init(&r, body, len);
	ret->seq = (uint64_t)jute_read_long(&r);
	ret->session_id = jute_read_long(&r);
	ret->op = jute_read_int(&r);
	ret->timeout_ms = (uint32_t)jute_read_int(&r);
	bool super = jute_read_bool(&r);
	jute_read_string(&r, &peer, &peer_len);
	int32_t n = jute_read_int(&r);
	if (r.error || n < 0 || n > AUTH_IDS_MAX || peer_len >= 96)
		return -EBADMSG;
	struct sockaddr_storage ss;
	socklen_t sl;
	char peer_text[96];
	memcpy(peer_text, peer, (size_t)peer_len);
	peer_text[peer_len] = 0;
	if (sockaddr_parse(peer_text, true, &ss, &sl) < 0)
		memset(&ss, 0, sizeof(ss));
	/* The identities come whole from the follower (the ip one included). */
	memset(&ret->ids, 0, sizeof(ret->ids));
	ret->ids.peer = ss;
	ret->ids.super = super;
	for (int32_t i = 0; i < n; i++) {
		jute_read_string(&r, &scheme, &scheme_len);
		jute_read_string(&r, &id, &id_len);
		if (r.error)
			break;
		ret->ids.ids[i].scheme = strndup(scheme, (size_t)scheme_len);
		ret->ids.ids[i].id = strndup(id, (size_t)id_len);
		ret->ids.count = (uint32_t)i + 1;
	}
	jute_read_buffer(&r, &ret->req, &ret->req_len);
	if (r.error || ret->req_len < 0) {
		auth_identities_free(&ret->ids);
		return -EBADMSG;
	}
	return 0;
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

/* Preps what a forwarded request asks: 0 with *ret_txn, or with the
 * refusal in *no (ZOK there: a reconfig on its way, answered once its
 * change commits, membership.c); or -EBADMSG, -ENOMEM. */
static int prep_one(struct forward_leader *fl, raft_id from, struct forwarded *fw, int64_t now,
		    struct txn **ret_txn, struct prep_refusal *no)
{
	*ret_txn = NULL;
	*no = (struct prep_refusal){ .err = ZOK };
	switch (fw->op) {
	case ZK_OP_RECONFIG:
		no->err = membership_reconfig(fl->membership, &fw->ids, fw->req,
					      (uint32_t)fw->req_len, NULL, (uint32_t)from, fw->seq);
		return 0;
	case ZK_OP_CREATE_SESSION:
		if (fl->state->sessions.by_id.count >= fl->cfg->max_sessions) {
			no->err = ZSYSTEMERROR;
			return 0;
		}
		return prep_create_session(fl->prep, fw->timeout_ms, now, ret_txn);
	case ZK_OP_SYNC:
		*ret_txn = txn_new(0);
		if (!*ret_txn)
			return -ENOMEM;
		(*ret_txn)->request_op = ZK_OP_SYNC;
		(*ret_txn)->time_ms = now;
		return 0;
	}
	struct session *s = session_lookup(&fl->state->sessions, fw->session_id);
	if (!s || s->closing)
		no->err = ZSESSIONEXPIRED;
	else if (!write_op(fw->op))
		no->err = ZUNIMPLEMENTED;
	else
		return write_prep(fl->prep, s, &fw->ids, fw->op, fw->req, (uint32_t)fw->req_len, now,
				  ret_txn, no);
	return 0;
}

static void prep_forwarded(struct forward_leader *fl, raft_id from, const uint8_t *body,
			   size_t len)
{
	struct forwarded fw;
	if (forwarded_decode(body, len, &fw) < 0) {
		log_warning("a forwarded request from server %llu does not decode; dropped",
			    (unsigned long long)from);
		return;
	}
	fl->received++;
	note_taken(fl, from, fw.seq);
	struct prep_refusal no;
	struct txn *t;
	int64_t now = loop_wall_ms();
	int rc = prep_one(fl, from, &fw, now, &t, &no);
	auth_identities_free(&fw.ids);
	if (rc == 0 && !t && no.err == ZOK)
		return;		/* a reconfig: answered once the change commits */
	if (rc == -EBADMSG) {
		no = (struct prep_refusal){ .err = TXN_ERR_MALFORMED };
	} else if (rc < 0) {
		log_warning("out of memory prepping a request from server %llu; dropped",
			    (unsigned long long)from);
		free(no.multi.op_types);
		return;
	}
	if (!t)
		t = error_txn(fw.op, &no);
	free(no.multi.op_types);
	if (!t)
		return;
	if (!t->session_id)
		t->session_id = fw.session_id;
	if (!t->time_ms)
		t->time_ms = now;
	t->origin = (uint32_t)from;
	t->origin_seq = fw.seq;
	if (commit_submit(fl->commit, t) < 0)
		txn_free(t);
}

static void receive_touch(struct forward_leader *fl, const uint8_t *body, size_t len,
			  uint64_t now_ms)
{
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	int32_t n = jute_read_int(&r);
	if (r.error || n < 0 || (size_t)n * 8 > jute_remaining(&r))
		return;
	for (int32_t i = 0; i < n; i++) {
		struct session *s = session_lookup(&fl->state->sessions, jute_read_long(&r));
		if (s && !s->closing)
			session_touch(s, now_ms);
	}
}

/* A FORWARD frame this leader never prepped and never will: its sender
 * sends it to the next leader. */
static void refuse(struct forward_leader *fl, raft_id from, const uint8_t *body, size_t len)
{
	if (len < 8)
		return;
	fl->refused++;
	if (from == fl->commit->self) {
		if (fl->own_refused)
			fl->own_refused(fl->ctx, load_be64(body));
		return;
	}
	ensemble_send_frame(fl->ensemble, from, PEER_FRAME_FORWARD_REFUSED, body, 8);
}

int forward_leader_hold(struct forward_leader *fl, raft_id from, const uint8_t *body, size_t len)
{
	struct held_frame *h = calloc(1, sizeof(*h) + len);
	if (!h)
		return -ENOMEM;
	h->from = from;
	h->len = len;
	memcpy(h->body, body, len);
	list_push_back(&fl->held, &h->node);
	return 0;
}

void forward_leader_receive(struct forward_leader *fl, const struct peer_frame *f, uint64_t now_ms)
{
	switch (f->type) {
	case PEER_FRAME_FORWARD:
		if (fl->draining)
			refuse(fl, f->from, f->body, f->body_len);
		else if (commit_can_prep(fl->commit))
			prep_forwarded(fl, f->from, f->body, f->body_len);
		else if (commit_state(fl->commit) == RAFT_LEADER &&
			 forward_leader_hold(fl, f->from, f->body, f->body_len) < 0)
			log_warning("out of memory holding a request from server %llu; dropped",
				    (unsigned long long)f->from);
		/* else: not the leader; the sender learns of the leader and fails it */
		break;
	case PEER_FRAME_TOUCH:
		if (commit_state(fl->commit) == RAFT_LEADER)
			receive_touch(fl, f->body, f->body_len, now_ms);
		break;
	default:
		log_warning("server %llu sent a frame of unknown type %u; ignored",
			    (unsigned long long)f->from, f->type);
	}
}

void forward_leader_release(struct forward_leader *fl)
{
	struct held_frame *h;
	while (commit_can_prep(fl->commit) &&
	       (h = list_first_entry(&fl->held, struct held_frame, node))) {
		list_remove(&fl->held, &h->node);
		prep_forwarded(fl, h->from, h->body, h->len);
		free(h);
	}
}

void forward_leader_drop(struct forward_leader *fl)
{
	struct list_node *n;
	while ((n = list_pop_front(&fl->held))) {
		struct held_frame *h = list_entry(n, struct held_frame, node);
		/* This server's own: it knows it never prepped them and sends
		 * nothing later to itself as this leader. Another member's
		 * later frames may still reach this server as a leader again:
		 * those are failed at the leader change, as before. */
		if (h->from == fl->commit->self)
			refuse(fl, h->from, h->body, h->len);
		free(h);
	}
}

void forward_leader_drain(struct forward_leader *fl)
{
	if (fl->draining)
		return;
	fl->draining = true;
	/* This server's own stay: its writes are answered before it hands
	 * over, as those it prepped itself. */
	list_for_each_safe(&fl->held, n, next) {
		struct held_frame *h = list_entry(n, struct held_frame, node);
		if (h->from == fl->commit->self)
			continue;
		list_remove(&fl->held, n);
		refuse(fl, h->from, h->body, h->len);
		free(h);
	}
}

void forward_leader_announce_drained(struct forward_leader *fl)
{
	const struct raft_configuration *conf = &fl->commit->raft.configuration;
	if (fl->untracked)
		return;	/* a member's "0" would have it send again what was logged */
	for (unsigned i = 0; i < conf->n; i++) {
		raft_id id = conf->servers[i].id;
		uint64_t seq = 0;
		if (id == fl->commit->self)
			continue;
		for (size_t j = 0; j < fl->taken_count; j++)
			if (fl->taken[j].from == id)
				seq = fl->taken[j].seq;
		uint8_t body[16];
		store_be64(body, seq);
		store_be64(body + 8, fl->commit->applied_index);
		ensemble_send_frame(fl->ensemble, id, PEER_FRAME_FORWARD_DRAINED, body, sizeof(body));
	}
}

void forward_leader_free(struct forward_leader *fl)
{
	struct list_node *n;
	while ((n = list_pop_front(&fl->held)))
		free(list_entry(n, struct held_frame, node));
	free(fl->taken);
	fl->taken = NULL;
	fl->taken_count = 0;
}
