/* forward_leader: the leader's half of forwarding (forward.h has the
 * follower's): requests that other servers of the ensemble send in
 * FORWARD frames are prepped here as the leader's own, and their txns
 * submitted marked with the sender and its number; a request that fails
 * becomes an error txn (ZooKeeper's ErrorTxn), so its answer too goes back
 * through the log, in session order. Until the leader is ready for writes
 * (everything of earlier terms applied), frames are held, then prepped in
 * the order they came. TOUCH frames (the sessions a server's clients were
 * heard from) renew those sessions here, where they expire.
 *
 * A leader handing its clients over (a planned restart) drains before it
 * hands leadership on: from forward_leader_drain on it preps no forwarded
 * request again (this process leads no more) and answers each FORWARD
 * frame with FORWARD_REFUSED: certainly not in its log, the sender sends
 * it to the next leader (forward_park.h). Once what it prepped is applied
 * (committed), FORWARD_DRAINED tells each member the last of its requests
 * it took: everything up to it is committed, nothing after it ever will
 * be from this leader. A member of an earlier version logs such a frame
 * as of an unknown type and ignores it: it fails its requests at the
 * leader change, as before.
 *
 * FORWARD body: u64 seq, i64 session, i32 op, u32 timeout (a new
 * session's), u8 super, string peer address, u32 identity count,
 * {string scheme, string id}..., buffer request body. TOUCH body: i32
 * count, i64 session... FORWARD_REFUSED body: u64 seq. FORWARD_DRAINED
 * body: u64 seq (0: none taken), u64 the raft index applied (every
 * request taken is applied there). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "commit.h"
#include "ensemble.h"
#include "list.h"
#include "membership.h"
#include "peer_message.h"
#include "prep.h"
#include "server_config.h"
#include "state.h"

/* The last request of one member this leader prepped. */
struct forward_taken {
	raft_id from;
	uint64_t seq;
};

struct forward_leader {
	struct list held;		/* frames waiting for this leader to be ready */
	uint64_t received;		/* requests prepped for other servers (mntr) */
	uint64_t refused;		/* FORWARD_REFUSED sent while draining */
	bool draining;			/* handing over: nothing more is prepped */
	struct forward_taken *taken;	/* per member that forwarded */
	size_t taken_count;
	bool untracked;			/* out of memory noting one: no DRAINED */
	/* this server's own held requests, dropped unprepped (forward_park.h) */
	void (*own_refused)(void *ctx, uint64_t seq);
	void *ctx;
	struct ensemble *ensemble;
	struct prep *prep;
	struct state *state;
	struct commit *commit;
	struct membership *membership;
	const struct server_config *cfg;
};

void forward_leader_init(struct forward_leader *fl, struct prep *prep, struct state *state,
			 struct commit *commit, struct membership *membership,
			 struct ensemble *ensemble, const struct server_config *cfg);
/* A FORWARD or TOUCH frame from another server (now_ms: the loop's clock). */
void forward_leader_receive(struct forward_leader *fl, const struct peer_frame *f,
			    uint64_t now_ms);
/* Keeps a FORWARD body until this leader is ready (also this server's own
 * request, forwarded to itself as the new leader). Returns 0 or -ENOMEM. */
int forward_leader_hold(struct forward_leader *fl, raft_id from, const uint8_t *body, size_t len);
/* This leader became ready: the held frames are prepped, in order. */
void forward_leader_release(struct forward_leader *fl);
/* This server stopped leading: the held frames go (their senders learn
 * of the new leader and fail the requests; this server's own, never
 * prepped, go to own_refused). */
void forward_leader_drop(struct forward_leader *fl);
/* A planned step-down begins: nothing more of the others' is prepped;
 * their held frames and every FORWARD frame from now on are refused. */
void forward_leader_drain(struct forward_leader *fl);
/* Everything prepped is applied: each member hears FORWARD_DRAINED. */
void forward_leader_announce_drained(struct forward_leader *fl);
/* Frees what forward_leader_init did not get from its caller. */
void forward_leader_free(struct forward_leader *fl);
