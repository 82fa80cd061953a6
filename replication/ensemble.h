/* ensemble: the part of a replicated corral that only an ensemble has: the
 * other servers. Raft's messages go to and come from them (peer_transport),
 * AppendEntries are filled from the commit step's entry cache, raft has its
 * own timer, the leader announces its commit index at once (COMMIT), and
 * who leads and whether that leader is ready for writes is tracked here.
 * Snapshots for a follower too far behind go through snapshot_transfer.c.
 *
 * The ensemble attaches to the commit step as its struct commit_peers;
 * the commit step never calls it by name. What concerns the server above
 * (roles, corral's own frames, a peer going down) goes up through the
 * callbacks it is opened with. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <linux/time_types.h>
#include <raft.h>

#include "commit.h"
#include "ensemble_config.h"
#include "hasten.h"
#include "peer_transport.h"

#define ANNOUNCE_IDS 256	/* member ids are 1..255 */

struct ensemble_callbacks {
	/* This server became or stopped being leader, learned of another
	 * leader, or its leadership became ready for writes. */
	void (*on_role)(void *ctx);
	/* A frame of corral's own that is not the ensemble's (forwarded
	 * requests, session liveness). */
	void (*on_frame)(void *ctx, const struct peer_frame *f);
	void (*on_peer_down)(void *ctx, raft_id id);
	void *ctx;
};

struct ensemble {
	struct commit *commit;
	struct commit_peers ops;		/* what the commit step calls */
	struct ensemble_callbacks cb;
	struct peer_transport peers;
	bool peers_ready;
	struct ssl_ctx_st *tls_ctx;		/* ensemble.tls: both roles, or NULL */
	struct snapshot_transfers *transfers;
	uint32_t election_timeout_ms;
	struct loop_op raft_timer_op;
	struct __kernel_timespec raft_timer_ts;
	bool raft_timer_armed;

	enum raft_state state_seen;		/* as last reported through on_role */
	raft_id leader_seen;
	bool leader_ready;			/* leader: everything before its term is applied */
	uint64_t leader_ready_index;
	uint64_t leader_changes;
	uint64_t hastened_term;
	raft_id lost_leader;			/* the leader whose link dropped, in lost_leader_term */
	uint64_t lost_leader_term;
	struct hasten hasten;			/* turns to stand after the leader's link dropped */
	uint64_t announced_to[ANNOUNCE_IDS];	/* the leader: per member id, last announced */
};

/* Connects c to the ensemble cfg describes: listens for peers, reaches out
 * to the members, attaches as c's peers and starts raft's timer. Returns 0
 * or a negative errno with why. */
int ensemble_open(struct ensemble *e, struct commit *c, const struct ensemble_config *cfg,
		  const struct ensemble_callbacks *cb, char *why, size_t why_size);
/* Closes the transport; returns true once every ring operation is done
 * (call again from the loop until then). */
bool ensemble_close(struct ensemble *e);
void ensemble_free(struct ensemble *e);

/* The leader: sends its newest snapshot to a follower whose state
 * diverged (snapshot_transfer_rebuild). */
void ensemble_send_rebuild(struct ensemble *e, raft_id to);

/* A frame of corral's own to a member (forwarded requests, liveness). */
int ensemble_send_frame(struct ensemble *e, raft_id to, uint16_t type, const void *body,
			size_t len);
