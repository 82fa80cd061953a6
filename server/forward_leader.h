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
 * FORWARD body: u64 seq, i64 session, i32 op, u32 timeout (a new
 * session's), u8 super, string peer address, u32 identity count,
 * {string scheme, string id}..., buffer request body. TOUCH body: i32
 * count, i64 session... */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "commit.h"
#include "list.h"
#include "membership.h"
#include "peer_message.h"
#include "prep.h"
#include "server_config.h"
#include "state.h"

struct forward_leader {
	struct list held;		/* frames waiting for this leader to be ready */
	uint64_t received;		/* requests prepped for other servers (mntr) */
	struct prep *prep;
	struct state *state;
	struct commit *commit;
	struct membership *membership;
	const struct server_config *cfg;
};

void forward_leader_init(struct forward_leader *fl, struct prep *prep, struct state *state,
			 struct commit *commit, struct membership *membership,
			 const struct server_config *cfg);
/* A FORWARD or TOUCH frame from another server (now_ms: the loop's clock). */
void forward_leader_receive(struct forward_leader *fl, const struct peer_frame *f,
			    uint64_t now_ms);
/* Keeps a FORWARD body until this leader is ready (also this server's own
 * request, forwarded to itself as the new leader). Returns 0 or -ENOMEM. */
int forward_leader_hold(struct forward_leader *fl, raft_id from, const uint8_t *body, size_t len);
/* This leader became ready: the held frames are prepped, in order. */
void forward_leader_release(struct forward_leader *fl);
/* This server stopped leading: the held frames go (their senders learn
 * of the new leader and fail the requests). */
void forward_leader_drop(struct forward_leader *fl);
