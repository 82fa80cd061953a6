/* forward_park: see forward_park.h. */
#include "forward_park.h"

#include "bytes.h"
#include "conn.h"
#include "log.h"
#include "request.h"

/* Whether a waiting request's fate depends on the leader it was sent to. */
static bool has_uncertain(const struct forwarder *f)
{
	struct list_node *n = list_last(&f->waiting);
	return n && list_entry(n, struct request, fwd_node)->forward_seq > f->certain_seq;
}

void forward_refused(struct forwarder *f, raft_id from, uint64_t seq)
{
	/* A leader refuses from its first refusal on (it drains): nothing
	 * more is sent to it. */
	if (from != f->commit->self)
		f->drained = from;
	list_for_each(&f->waiting, n) {
		struct request *rq = list_entry(n, struct request, fwd_node);
		if (rq->forward_seq > seq)
			break;
		if (rq->forward_seq < seq || seq <= f->certain_seq)
			continue;
		forward_unlist(f, rq);
		if (forward_park(f, rq) < 0 && rq->conn->state != CONN_CLOSING)
			conn_close(rq->conn, LOG_INFO, "its write, refused by a leader stepping down, "
				   "found no room to wait for the next leader; it was not applied");
		break;
	}
}

/* FORWARD_DRAINED from a leader stepping down: what it took (up to seq)
 * is committed, up to raft index index; the rest it never logs. */
static void drained(struct forwarder *f, raft_id from, uint64_t seq, uint64_t index)
{
	if (from != commit_leader(f->commit) && from != f->orphaned_by)
		return;
	if (seq > f->certain_seq)
		f->certain_seq = seq;
	if (index > f->certain_index)
		f->certain_index = index;
	struct list_node *n;
	while ((n = list_last(&f->waiting)) &&
	       list_entry(n, struct request, fwd_node)->forward_seq > f->certain_seq) {
		struct request *rq = list_entry(n, struct request, fwd_node);
		forward_unlist(f, rq);
		if (forward_park(f, rq) < 0 && rq->conn->state != CONN_CLOSING)
			conn_close(rq->conn, LOG_INFO, "its write, not taken by a leader stepping down, "
				   "found no room to wait for the next leader; it was not applied");
	}
	if (from == f->orphaned_by)
		f->orphaned_by = 0;
	if (from == commit_leader(f->commit))
		f->drained = from;
	forward_flush(f);
}

bool forward_receive(struct forwarder *f, const struct peer_frame *fr)
{
	if (fr->type == PEER_FRAME_FORWARD_REFUSED) {
		if (fr->body_len >= 8)
			forward_refused(f, fr->from, load_be64(fr->body));
		return true;
	}
	if (fr->type == PEER_FRAME_FORWARD_DRAINED) {
		if (fr->body_len >= 16)
			drained(f, fr->from, load_be64(fr->body), load_be64(fr->body + 8));
		return true;
	}
	return false;
}

void forward_leader_changed(struct forwarder *f, raft_id old, uint64_t now_ms)
{
	raft_id leader = commit_leader(f->commit);
	if (old && !f->orphaned_by && has_uncertain(f)) {
		f->orphaned_by = old;
		f->orphan_deadline_ms = now_ms + f->cfg->ensemble.election_timeout_ms;
	}
	if (leader != f->drained)
		f->drained = 0;	/* a draining leader refuses again if it leads again */
	forward_flush(f);
}

void forward_peer_down(struct forwarder *f, raft_id id)
{
	if (id != f->orphaned_by && (f->orphaned_by || id != commit_leader(f->commit)))
		return;
	forward_fail_above(f, f->certain_seq, "the connection to the leader dropped with a write "
			   "of this connection on its way; its outcome is unknown to the client");
	f->orphaned_by = 0;
	forward_flush(f);
}

/* Parked requests past their deadline: their connections close (the
 * requests were not applied; the clients send them again). */
static void expire_parked(struct forwarder *f, uint64_t now_ms)
{
	bool again = true;
	while (again) {
		again = false;
		list_for_each(&f->parked, n) {
			struct request *rq = list_entry(n, struct request, fwd_node);
			if (now_ms < rq->park_deadline_ms)
				continue;
			forward_unlist(f, rq);
			if (rq->conn->state != CONN_CLOSING)
				conn_close(rq->conn, LOG_INFO, "its write waited a session timeout for a "
					   "leader to take it; it was not applied");
			again = true;
			break;
		}
	}
}

void forward_tick(struct forwarder *f, uint64_t now_ms)
{
	if (f->orphaned_by && now_ms >= f->orphan_deadline_ms) {
		forward_fail_above(f, f->certain_seq, "the leader changed with a write of this "
				   "connection on its way; its outcome is unknown to the client");
		f->orphaned_by = 0;
	}
	if (f->certain_index && f->commit->applied_index >= f->certain_index) {
		/* Everything the drained leader took is applied: what did not
		 * come back never will. */
		struct request *rq;
		while ((rq = list_first_entry(&f->waiting, struct request, fwd_node)) &&
		       rq->forward_seq <= f->certain_seq) {
			forward_unlist(f, rq);
			f->lost++;
			if (rq->conn->state != CONN_CLOSING)
				conn_close(rq->conn, LOG_WARNING, "a write a leader said it committed never "
					   "came back; its outcome is unknown to the client");
		}
		f->certain_index = 0;
	}
	expire_parked(f, now_ms);
	forward_flush(f);
}
