/* commit: the step between a prepped txn and its application: Raft over the
 * write-ahead log.
 *
 * A txn is encoded into a Raft entry and submitted with raft_step() (libraft's
 * event API: corral's loop does all I/O). Raft asks for the entry to be
 * persisted; the WAL writes it with its batch (group commit); once durable,
 * raft_step() learns of it and moves the commit index; every txn up to it
 * comes out through on_committed, in zxid order, and zxid = the entry's
 * index. A single server is a one-voter cluster on the same path an ensemble
 * will use. On startup the log is read back, its txns are handed to
 * on_committed again (rebuilding the state), and raft starts from the term,
 * vote and entries it finds. */
#pragma once

#include <stdint.h>

#include <raft.h>

#include "config.h"
#include "entry_cache.h"
#include "loop.h"
#include "peer_transport.h"
#include "txn.h"

#include "../storage/datadir.h"
#include "../storage/snapshot.h"
#include "../storage/wal.h"

#define ANNOUNCE_IDS 256	/* member ids are 1..255 */

struct commit {
	struct raft raft;
	bool raft_ready;
	struct wal wal;
	bool wal_open;
	struct loop *loop;
	char *data_dir;
	int lock_fd;
	struct datadir_meta meta;
	raft_time next_timeout;

	struct txn *head, *tail;	/* submitted or recovered, not applied yet */
	uint32_t queued;
	int64_t last_zxid;		/* the last index handed out */
	int failed;			/* the errno that stopped the log, or 0 */
	bool refusing_for_space;	/* ENOSPC: writes refused until a spare segment exists */

	uint64_t txns_committed;
	uint64_t batches_committed;
	uint64_t recovered_txns;

	/* Snapshots. */
	struct state *state;
	uint64_t snapshot_entries;	/* take one after this many entries */
	uint64_t snapshot_log_bytes;	/* or after this many bytes of log */
	uint64_t snapshot_bytes_mark;
	unsigned keep_snapshots;
	uint64_t snapshot_index;	/* of the newest one published */
	pid_t snapshot_pid;		/* a child writing one, or 0 */
	int snapshot_pidfd;		/* polled on the ring: the child's exit, or -1 */
	struct loop_op snapshot_exit_op;
	uint64_t snapshot_fork_us;	/* how long the last fork paused the loop */
	uint64_t snapshot_started_ms;
	struct snapshot_meta snapshot_writing;
	uint64_t snapshot_retry_ms;
	uint8_t *conf;			/* the latest configuration entry, encoded */
	uint32_t conf_len;
	uint64_t conf_index;
	struct { uint64_t start, term; } *term_runs;	/* index -> term, as runs */
	size_t term_run_count, term_run_cap;
	uint64_t snapshots_taken;

	/* The ensemble (ensemble.c); a standalone server has none of it. */
	bool ensemble;
	raft_id self;
	struct peer_transport peers;
	bool peers_ready;
	struct entry_cache entries;	/* for AppendEntries to followers */
	unsigned snapshot_trailing;	/* entries kept before a snapshot */
	uint32_t election_timeout_ms;
	struct loop_op raft_timer_op;
	struct __kernel_timespec raft_timer_ts;
	bool raft_timer_armed;
	enum raft_state state_seen;	/* as last reported through on_role */
	raft_id leader_seen;
	bool leader_ready;		/* leader: everything before its term is applied */
	uint64_t leader_ready_index;
	uint64_t conf_fired_index;	/* last configuration entry reported committed */
	uint64_t leader_changes;
	/* raft's clock runs this far ahead of the loop's: moved on when the
	 * connection to the leader drops (ensemble.c), so the election comes
	 * up to one election timeout sooner. */
	uint64_t raft_clock_ahead_ms;
	uint64_t hastened_term;
	raft_id lost_leader;		/* the leader whose link dropped, in lost_leader_term */
	uint64_t lost_leader_term;
	struct snapshot_transfers *transfers;	/* snapshot_transfer.c */
	struct raft_snapshot_metadata installed;	/* a leader's snapshot, to report */
	bool installed_pending;
	/* A follower: the commit index the leader announced (COMMIT frames),
	 * which raft learns only with the next AppendEntries. */
	uint64_t announced_commit;
	uint64_t announced_term;
	uint64_t applied_index;		/* the state holds every txn up to it */
	void *persisted_batch;		/* the batch of the last RAFT_UPDATE_ENTRIES */
	void *submit_batch;		/* the batch being submitted, ours */
	void *received_batch;		/* the batch of the AppendEntries being stepped */
	uint64_t announced_to[ANNOUNCE_IDS];	/* the leader: per member id, last announced */
	uint64_t txns_truncated;	/* dropped when a new leader's log replaced ours */
	/* Sizes of the entries submitted (ZooKeeper's "proposal sizes"); -1
	 * until the first. */
	int64_t proposal_last_bytes, proposal_min_bytes, proposal_max_bytes;

	void (*on_committed)(void *ctx, struct txn *t);
	/* A txn that will never be applied: the log failed (err an errno), or
	 * a new leader's log replaced it (err ECONNRESET). Answer its client. */
	void (*on_abandoned)(void *ctx, struct txn *t, int err);
	/* This server became or stopped being leader, or learned of another
	 * leader, or its leadership became ready for writes. */
	void (*on_role)(void *ctx);
	/* A frame of corral's own (forwarded requests, session liveness). */
	void (*on_frame)(void *ctx, const struct peer_frame *f);
	void (*on_peer_down)(void *ctx, raft_id id);
	/* A leader's snapshot replaces the state: close what refers to it and
	 * make c->state fresh (state_init) for it to load into. */
	int (*reset_state)(void *ctx);
	/* A configuration entry was committed (raft's committed one changed). */
	void (*on_configuration)(void *ctx);
	void *ctx;
};

struct commit_options {
	const char *data_dir;
	struct state *state;		/* loaded from a snapshot, written to new ones */
	uint64_t snapshot_entries;
	uint64_t snapshot_log_bytes;
	unsigned keep_snapshots;
	uint64_t server_id;
	uint64_t segment_bytes;
	struct loop *loop;
	const struct corral_config *cfg;	/* its ensemble section, if any */
	void (*on_committed)(void *ctx, struct txn *t);
	void (*on_abandoned)(void *ctx, struct txn *t, int err);
	void (*on_role)(void *ctx);
	void (*on_frame)(void *ctx, const struct peer_frame *f);
	void (*on_peer_down)(void *ctx, raft_id id);
	int (*reset_state)(void *ctx);
	void (*on_configuration)(void *ctx);
	/* During a long recovery, about once a second. */
	void (*progress)(void *ctx, uint64_t entries, uint64_t index);
	void *ctx;
#ifdef CORRAL_FAULT_INJECTION
	uint64_t fault_fsync_countdown;
#endif
};

/* Locks the data directory, bootstraps it when new, replays the log (every
 * txn goes through on_committed) and starts raft. Returns 0 or a negative
 * errno with why (naming file and offset for a damaged log). */
int commit_open(struct commit *c, const struct commit_options *o, char *why, size_t why_size);

/* Whether a write of about bytes can go in the log now: 0, -EIO once the
 * log has failed, -ENOSPC while there is no room. Checked before prep, so a
 * refused write leaves no pending change behind. */
int commit_can_accept(struct commit *c, uint32_t bytes);

/* Takes ownership of t and sets t->zxid. Returns 0, or a negative errno (the
 * txn is then still the caller's): -EIO once the log has failed, -EAGAIN
 * when this server may not prep (not the leader, or handing leadership
 * over). */
int commit_submit(struct commit *c, struct txn *t);
/* The leader: submits a change of the ensemble's members (one at a time:
 * raft refuses another until it commits). Returns 0 with the entry's index,
 * -EAGAIN (not the leader), -EBUSY (a change is on its way), -ENOMEM, -EIO. */
int commit_change(struct commit *c, const struct raft_configuration *conf, uint64_t *ret_index);
/* The leader: hands leadership to id (0: the most up to date). */
int commit_transfer(struct commit *c, raft_id id);
/* Starts the write of what gathered (once per loop turn). */
void commit_flush(struct commit *c);
/* Raft's timers, from the loop's timer. */
void commit_tick(struct commit *c, uint64_t now_ms);
void commit_free(struct commit *c);

/* Where this server stands: RAFT_LEADER, RAFT_FOLLOWER, RAFT_CANDIDATE (or
 * RAFT_UNAVAILABLE before start), and the leader it knows of (0: none). */
enum raft_state commit_state(struct commit *c);
raft_id commit_leader(struct commit *c);
/* Whether this server may prep writes: the leader, with every entry of
 * earlier terms applied (so prep decides against the latest state). */
bool commit_can_prep(struct commit *c);
/* Whether a leader is known and this server's connection to it is up (a
 * leader that crashed is known for a moment after its connection drops). */
bool commit_leader_reachable(struct commit *c);
/* Whether this server is a non-voting member (an observer). */
bool commit_is_observer(struct commit *c);

/* For ensemble.c: one raft_step() with what it asks carried out. */
int commit_step(struct commit *c, struct raft_event *e);
/* Applies what is committed (after the commit index was announced). */
void commit_apply(struct commit *c);
/* Remembers that entries from index on have term. */
int commit_note_term(struct commit *c, uint64_t index, uint64_t term);
/* Stops the log (an I/O error): no more writes; in-flight txns abandoned. */
void commit_fail(struct commit *c, int err);

/* ensemble.c: the peers of an ensemble. */
int ensemble_open(struct commit *c, const struct corral_config *cfg, char *why, size_t why_size);
void ensemble_send(struct commit *c, struct raft_message *m, unsigned n);
/* RAFT_UPDATE_SNAPSHOT: the leader's snapshot arrived whole; make it ours. */
int ensemble_install_snapshot(struct commit *c, struct raft_snapshot_metadata *m,
			      struct raft_buffer *chunk);
/* After a step: report role changes, keep the peer list and timers current. */
void ensemble_after_step(struct commit *c);
/* Closes the transport; returns true once every ring operation is done. */
bool ensemble_close(struct commit *c);
