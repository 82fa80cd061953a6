/* digest_check: the ensemble's consistency check of the replicated tree.
 *
 * Every server keeps the tree's digest, ZooKeeper's, as txns apply
 * (tree.h, state.h). The leader sends its digest at a zxid to the
 * followers (a DIGEST frame, after every DIGEST_CHECK_TXNS txns it applies
 * and on the timer when fewer came); each follower compares its own at the
 * same zxid (the recent ones are kept), at once or as soon as it applied
 * that far. A mismatch means this server applied some txn differently
 * from the leader: it is logged (MESSAGE_ID LOG_MSGID_DIGEST_MISMATCH) and
 * counted (mntr's zk_digest_mismatches_count), and the server stops
 * serving from its state: its client connections are closed and new ones
 * refused, as a server without a leader does (ZooKeeper's clients go to
 * another server and come back later; a read refused is better than a
 * read of a state no other server has). Committed txns wait; the server
 * asks the leader (a REBUILD frame) for a snapshot at or past the index it
 * applied, the leader writes one if its newest is older and streams it
 * (snapshot_transfer_rebuild), the state is replaced by it (the raft log
 * is sound and stays), the waiting txns after it apply, and the server
 * serves again.
 *
 * The leader's digest is the reference: a leader whose own state diverged
 * would lead followers to take its state (as ZooKeeper's learners do). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "commit.h"
#include "ensemble.h"
#include "peer_message.h"
#include "state.h"

/* The leader sends its digest at least every this many txns applied. */
#define DIGEST_CHECK_TXNS 16
/* Rebuild requests the leader keeps at once (one per follower). */
#define DIGEST_CHECK_WANTS_MAX 16

struct digest_check {
	struct state *state;
	struct commit *commit;
	struct ensemble *ensemble;
	/* The state diverged: close the clients (the server's). */
	void (*on_diverged)(void *ctx);
	void *ctx;

	int64_t sent_zxid;		/* leader: the last zxid whose digest went out */
	bool pending;			/* follower: a leader's digest for a zxid not applied yet */
	struct zxid_digest pending_digest;
	bool diverged;
	uint64_t ask_at_ms;		/* when to ask (again) for the rebuild */
	uint64_t rebuilds_seen;		/* commit->rebuilds when the divergence was found */
	struct { raft_id id; uint64_t min_index; } wants[DIGEST_CHECK_WANTS_MAX];
	unsigned want_count;

	uint64_t checks;		/* digests compared, equal */
	uint64_t mismatches;
	uint64_t unchecked;		/* the leader's zxid was no longer among the recent ones */
	uint64_t rebuilds;
#ifdef CORRAL_FAULT_INJECTION
	/* CORRAL_FAULT_DIVERGE_SET_DATA=N: the Nth setData this server applies
	 * after startup changes the node's data differently (its first byte
	 * flipped), as a nondeterministic apply would. */
	uint64_t fault_set_data_countdown;
	/* CORRAL_FAULT_REBUILD_DELAY_MS: a diverged server waits this long
	 * before it asks for the rebuild (so a test sees it refuse clients). */
	uint64_t fault_rebuild_delay_ms;
#endif
};

void digest_check_init(struct digest_check *d, struct state *state, struct commit *commit,
		       struct ensemble *ensemble, void (*on_diverged)(void *ctx), void *ctx);
/* Right after t applied (test builds: the fault injected, see above). */
void digest_check_fault(struct digest_check *d, const struct txn *t);
/* After each txn applied and answered (not during recovery). */
void digest_check_applied(struct digest_check *d, uint64_t now_ms);
/* A DIGEST or REBUILD frame; false for other frames. */
bool digest_check_receive(struct digest_check *d, const struct peer_frame *f, uint64_t now_ms);
/* From the server's timer: the leader's idle sends and rebuild requests; a
 * diverged follower's request again, and its return to service. */
void digest_check_tick(struct digest_check *d, uint64_t now_ms);
