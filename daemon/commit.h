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

#include "loop.h"
#include "txn.h"

#include "../storage/datadir.h"
#include "../storage/snapshot.h"
#include "../storage/wal.h"

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

	void (*on_committed)(void *ctx, struct txn *t);
	/* A txn that will never be applied (the log failed): answer its client. */
	void (*on_abandoned)(void *ctx, struct txn *t, int err);
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
	void (*on_committed)(void *ctx, struct txn *t);
	void (*on_abandoned)(void *ctx, struct txn *t, int err);
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
 * txn is then still the caller's): -EIO once the log has failed. */
int commit_submit(struct commit *c, struct txn *t);
/* Starts the write of what gathered (once per loop turn). */
void commit_flush(struct commit *c);
/* Raft's timers, from the loop's timer. */
void commit_tick(struct commit *c, uint64_t now_ms);
void commit_free(struct commit *c);
