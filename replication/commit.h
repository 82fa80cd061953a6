/* commit: the step between a prepped txn and its application: Raft over the
 * write-ahead log.
 *
 * A txn is encoded into a Raft entry and submitted with raft_step() (libraft's
 * event API: corral's loop does all I/O). Raft asks for the entry to be
 * persisted; the WAL writes it with its batch (group commit); once durable,
 * raft_step() learns of it and moves the commit index; every txn up to it
 * comes out through on_committed, in zxid order, and zxid = the entry's
 * index. A single server is a one-voter cluster on the same path an ensemble
 * uses. On startup the log is read back, its txns are handed to
 * on_committed again (rebuilding the state), and raft starts from the term,
 * vote and entries it finds.
 *
 * What lies beyond this server (sending raft's messages, a leader's
 * snapshot arriving, whether the leader is ready and reachable) is behind
 * struct commit_peers: a standalone server has commit_alone's (nothing to
 * send, its own raft timeouts); an ensemble installs its own (ensemble.c).
 * This file never asks which one it has. */
#pragma once

#include <stdint.h>

#include <raft.h>

#include "ensemble_config.h"
#include "entry_cache.h"
#include "list.h"
#include "loop.h"
#include "txn.h"

#include "datadir.h"
#include "snapshot.h"
#include "wal.h"
#include "summary.h"

struct commit;

/* The servers around this one, as the commit step needs them. */
struct commit_peers {
	/* raft's messages to send */
	void (*send)(void *ctx, struct raft_message *m, unsigned n);
	/* RAFT_UPDATE_SNAPSHOT: the leader's snapshot arrived whole; make it
	 * this server's (commit_install_snapshot). Returns 0 or -errno. */
	int (*install_snapshot)(void *ctx, struct raft_snapshot_metadata *m,
				struct raft_buffer *chunk);
	/* After every raft step: roles, announcements, the peer list. */
	void (*after_step)(void *ctx);
	/* Whether this server may prep writes now (the leader, ready). */
	bool (*can_prep)(void *ctx);
	/* Whether the leader this server knows of can be reached. */
	bool (*leader_reachable)(void *ctx, raft_id leader);
	/* Whether this server's connection to server id is up now. */
	bool (*peer_up)(void *ctx, raft_id id);
	/* Raft's timeouts come from the peers' own timer, not commit_tick(). */
	bool own_timer;
	void *ctx;
};

/* A standalone server's peers: none. */
extern const struct commit_peers commit_alone;

struct commit {
	struct raft raft;
	bool raft_ready;
	raft_id self;
	struct wal wal;
	bool wal_open;
	struct loop *loop;
	char *data_dir;
	int lock_fd;
	struct datadir_meta meta;
	raft_time next_timeout;
	raft_id catching_up;		/* the server commit_catch_up() started, or 0 */
	const struct commit_peers *peers;

	struct list queue;		/* txns submitted or recovered, not applied yet */
	int64_t last_zxid;		/* the last index handed out */
	int failed;			/* the errno that stopped the log, or 0 */
	bool refusing_for_space;	/* ENOSPC: writes refused until a spare segment exists */
	uint64_t applied_index;		/* the state holds every txn up to it */
	/* A commit index learned before raft learns it (the leader's COMMIT
	 * frame, ensemble.c): applied at once when it is of the current term. */
	uint64_t known_commit, known_commit_term;
	/* raft's clock runs this far ahead of the loop's: moved on when the
	 * connection to the leader drops, so the election comes sooner. */
	uint64_t raft_clock_ahead_ms;

	uint64_t txns_committed;
	uint64_t batches_committed;
	uint64_t recovered_txns;
	uint64_t txns_truncated;	/* dropped when a new leader's log replaced ours */

	/* Snapshots (commit_snapshot.c). */
	struct state *state;
	uint64_t snapshot_entries;	/* take one after this many entries */
	uint64_t snapshot_log_bytes;	/* or after this many bytes of log */
	uint64_t snapshot_bytes_mark;
	unsigned keep_snapshots;
	char *archive_dir;		/* storage.archive_dir, or NULL */
	unsigned archive_keep_snapshots;
	unsigned snapshot_trailing;	/* entries raft keeps before a snapshot */
	uint64_t snapshot_index;	/* of the newest one published */
	pid_t snapshot_pid;		/* a child writing one, or 0 */
	int snapshot_pidfd;		/* polled on the ring: the child's exit, or -1 */
	struct loop_op snapshot_exit_op;
	struct reclaim reclaim;		/* the purges' unlinks, on the ring */
	uint64_t reclaim_failed_seen;
	bool purge_pending;		/* one waits for the last one's unlinks */
	uint64_t snapshot_fork_us;	/* how long the last fork paused the loop */
	uint64_t snapshot_started_ms;
	struct snapshot_meta snapshot_writing;
	uint64_t snapshot_retry_ms;
	uint64_t snapshots_taken;
	struct summary snapshot_ms;	/* how long each took, fork to rename */
	struct raft_snapshot_metadata installed;	/* a leader's snapshot, to report */
	bool installed_pending;
	/* A snapshot wanted at once, of an index at least this (the leader,
	 * for a follower that rebuilds its state), or 0. */
	uint64_t snapshot_wanted_index;
	bool snapshot_for_stop;		/* the server is stopping: snapshots stay cached */
	/* The next snapshot at or after this index leaves raft no entry from
	 * it on before the snapshot (trailing cut short), so a follower that
	 * needs one the log cannot give gets the snapshot; or 0. */
	uint64_t snapshot_cut_index;

	/* A state found diverged from the leader's (the server's digest
	 * check): committed txns wait in the queue, and no snapshot is taken
	 * of it, until commit_rebuild() replaces it. */
	bool apply_paused;
	uint64_t rebuilt_index;		/* the last rebuild's snapshot: txns up to it are in the state */
	uint64_t rebuilds;

	/* The configuration and terms, as the log holds them. */
	uint8_t *conf;			/* the latest configuration entry, encoded */
	uint32_t conf_len;
	uint64_t conf_index;
	uint64_t conf_fired_index;	/* last configuration entry reported committed */
	struct { uint64_t start, term; } *term_runs;	/* index -> term, as runs */
	size_t term_run_count, term_run_cap;

	/* The recent entries, for a leader to send (an ensemble keeps them,
	 * within ensemble.entry_cache_bytes; older ones are read back from the
	 * log: commit_entry). */
	struct entry_cache entries;
	/* The last entry logged as unreadable for each server (a few). */
	struct { uint64_t server, index; } unreadable[8];
	void *persisted_batch;		/* the batch of the last RAFT_UPDATE_ENTRIES */
	void *submit_batch;		/* the batch being submitted, ours */
	void *received_batch;		/* the batch of the AppendEntries being stepped */
	/* Sizes of the entries submitted (ZooKeeper's "proposal sizes"); -1
	 * until the first. */
	int64_t proposal_last_bytes, proposal_min_bytes, proposal_max_bytes;

	void (*on_committed)(void *ctx, struct txn *t);
	/* A txn that will never be applied: the log failed (err an errno), or
	 * a new leader's log replaced it (err ECONNRESET). Answer its client. */
	void (*on_abandoned)(void *ctx, struct txn *t, int err);
	/* A leader's snapshot replaces the state: close what refers to it and
	 * make c->state fresh (state_init) for it to load into. */
	int (*reset_state)(void *ctx);
	/* A configuration entry was committed (raft's committed one changed). */
	void (*on_configuration)(void *ctx);
	/* The catch-up commit_catch_up() started is over (finished, given up,
	 * or this server no longer leads): commit_catch_up_status() says how. */
	void (*on_catch_up_ended)(void *ctx);
	void *ctx;
};

struct commit_options {
	const char *data_dir;
	struct state *state;		/* loaded from a snapshot, written to new ones */
	uint64_t snapshot_entries;
	uint64_t snapshot_log_bytes;
	unsigned keep_snapshots;
	const char *archive_dir;	/* NULL: purged files are deleted */
	unsigned archive_keep_snapshots;
	uint64_t server_id;
	uint64_t segment_bytes;
	struct loop *loop;
	/* The ensemble (NULL: a standalone server, a one-voter raft), and
	 * this server's client address (its member address is PEER;CLIENT). */
	const struct ensemble_config *ensemble;
	const struct listen_address *client_listen;
	void (*on_committed)(void *ctx, struct txn *t);
	void (*on_abandoned)(void *ctx, struct txn *t, int err);
	int (*reset_state)(void *ctx);
	void (*on_configuration)(void *ctx);
	void (*on_catch_up_ended)(void *ctx);
	/* During a long recovery, about once a second. */
	void (*progress)(void *ctx, uint64_t entries, uint64_t index);
	void *ctx;
#ifdef CORRAL_FAULT_INJECTION
	uint64_t fault_fsync_countdown;
#endif
};

/* Locks the data directory, bootstraps it when new, replays the log (every
 * txn goes through on_committed) and starts raft, as a standalone server
 * (commit_alone's peers) until an ensemble attaches (commit_attach_peers).
 * Returns 0 or a negative errno with why (naming file and offset for a
 * damaged log). */
int commit_open(struct commit *c, const struct commit_options *o, char *why, size_t why_size);
/* The seed of raft's randomized election timeouts: random (getrandom), not
 * derived from the pid and id. It was getpid() ^ id, and members started one
 * after the other get consecutive pids: servers 1 and 2 as pids 4k+1 and
 * 4k+2 (a quarter of the time) got equal seeds, drew the same timeouts, stood
 * in the same millisecond, split the vote, and did so again every round
 * until timer jitter parted them (30 s without a leader, seen in CI). */
unsigned commit_election_seed(uint32_t server_id);
/* For `corrald restore`: the identity of a new cluster (an ensemble's
 * derived from ensemble->cluster_name, as a bootstrap derives it; a
 * standalone server's at random, ensemble NULL) with server_id, and the
 * configuration of that one server as the only voter (encoded, *ret_conf
 * malloc'd): a restored server starts alone, and the others join it.
 * Returns 0 or a negative errno. */
int commit_restore_identity(const struct ensemble_config *ensemble, uint32_t server_id,
			    const struct listen_address *client_listen, struct wal_identity *ret_id,
			    uint8_t **ret_conf, uint32_t *ret_conf_len);
/* The servers around this one from now on (ensemble_open installs its own). */
void commit_attach_peers(struct commit *c, const struct commit_peers *peers);

/* The entry at index for an AppendEntries: from the cache, else read back
 * from the log (ret->data is then the caller's to free: *ret_owned). Its
 * term must be the one raft knows for it. When the log cannot give it,
 * the next snapshot leaves raft without it, so the follower gets that
 * snapshot (one log line). Returns 0 or a negative errno. */
int commit_entry(struct commit *c, uint64_t index, raft_id to, struct wal_entry *ret,
		 bool *ret_owned);

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
/* How long a follower may take to receive and install a snapshot (libraft's
 * install_snapshot_timeout), and a catch-up round to the server being caught
 * up while its connection is up: a new voter's first round is the whole tree
 * (10,000,000 znodes: a 2.1 GB snapshot, 13-25 s to load on a 2-core machine). */
#define COMMIT_SNAPSHOT_INSTALL_MS 30000
/* A round's limit while that server is not connected: one that is down
 * ends the catch-up this soon. ZooKeeper refuses at once a reconfig whose
 * new servers are not connected to the leader; here the leader only starts
 * connecting once the change names the server (again after 50, 100, 200,
 * 400 and 800 ms while it is refused), so a server that is up connects
 * well within this, and one that is not is refused before a client's
 * default wait runs out (corralctl's 5 s; kazoo drops a connection silent
 * for 2/3 of its 10 s session). libraft's own default is 5 s. */
#define COMMIT_CATCH_UP_UNREACHABLE_MS 2000

/* The leader: starts catching server id (a spare or standby of the
 * configuration) up with the log, as raft does before a server becomes a
 * voter: rounds of replication until one takes less than an election
 * timeout, given up when a round takes over COMMIT_SNAPSHOT_INSTALL_MS
 * while this server's connection to it is up (peers->peer_up), over
 * COMMIT_CATCH_UP_UNREACHABLE_MS while it is not. Which limit holds is
 * decided before every raft step (raft looks at it on its steps), so a
 * connection made or lost counts from then. Its end is told through
 * on_catch_up_ended, right after the raft step that ended it. Returns 0,
 * -EAGAIN (not the leader), or another negative errno. */
int commit_catch_up(struct commit *c, raft_id id);
/* Where that stands: RAFT_CATCH_UP_RUNNING, _FINISHED or _ABORTED
 * (_NONE when none was started), or -EAGAIN when this server no longer
 * leads. */
int commit_catch_up_status(struct commit *c, raft_id id);
/* The leader: hands leadership to id (0: the most up to date). */
int commit_transfer(struct commit *c, raft_id id);
/* Whether this server stands for election because its leader handed
 * leadership to it (a transfer), not because it lost the leader. */
bool commit_candidate_by_transfer(struct commit *c);
/* Starts the write of what gathered (once per loop turn). */
void commit_flush(struct commit *c);
/* Raft's timers (unless the peers have their own), snapshots, the spare
 * segment; from the server's timer. */
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

/* The metadata of a snapshot of the state as it is now (the applied
 * index, its term, the configuration committed then); m->conf malloc'd.
 * For an online backup too. Returns 0 or -ENOMEM. */
int commit_snapshot_meta(struct commit *c, struct snapshot_meta *m);

/* For the peers (ensemble.c, snapshot_transfer.c): */
/* One raft_step() with what it asks carried out. */
int commit_step(struct commit *c, struct raft_event *e);
/* A commit index the leader announced, ahead of raft: applied at once. */
void commit_learn_commit(struct commit *c, uint64_t term, uint64_t index);
/* Stops the log (an I/O error): no more writes; in-flight txns abandoned. */
void commit_fail(struct commit *c, int err);
/* The leader's snapshot, received whole at path, becomes this server's
 * newest snapshot and its state; raft is told with the next step. Returns
 * 0 or a negative errno (the snapshot did not load). */
int commit_install_snapshot(struct commit *c, const struct raft_snapshot_metadata *meta,
			    const char *path);

/* Asks for a snapshot of an index of at least min_index as soon as the
 * state has it (whether or not enough was logged). */
void commit_snapshot_request(struct commit *c, uint64_t min_index);
/* A stop's first step: when the log since the last snapshot is long
 * enough that replaying it would slow the next start, asks for a snapshot
 * of everything applied. Returns true while it, or one started before, is
 * being written (the server serves on and stops once
 * commit_snapshot_busy() is false). */
bool commit_snapshot_before_stop(struct commit *c);
/* A snapshot is being written (or one asked for has just been started). */
bool commit_snapshot_busy(struct commit *c);
/* The state diverged from the leader's: committed txns wait from now on,
 * until commit_rebuild(). */
void commit_pause_apply(struct commit *c);
/* The leader's snapshot at path (of index, at or past the applied one)
 * replaces the diverged state; the raft log stays as it is. Txns up to
 * index are dropped, later ones applied; a snapshot of the new state is
 * asked for (so a restart does not load one of the diverged state).
 * Returns 0, or a negative errno with the state unchanged but for what
 * reset_state did (the caller asks again). */
int commit_rebuild(struct commit *c, const char *path, uint64_t index);
/* Applies what is committed (after a rebuild let the queue go on). */
void commit_apply_committed(struct commit *c);

/* Shared by the commit step's own files (commit.c, commit_open.c,
 * commit_snapshot.c) only: */
/* The address raft records for a standalone server. */
#define SINGLE_SERVER_ADDRESS "127.0.0.1:0"
/* Entries from index on have term (kept as runs: terms change rarely). */
int commit_note_term(struct commit *c, uint64_t index, uint64_t term);
uint64_t commit_term_of(const struct commit *c, uint64_t index);
/* The latest configuration entry, kept encoded. */
int commit_note_configuration(struct commit *c, uint64_t index, const void *data, uint32_t len);
void commit_queue_push(struct commit *c, struct txn *t);
/* Carries out what raft_step() asked for. */
int commit_handle_update(struct commit *c, struct raft_update *u);
void commit_on_durable(void *ctx, uint64_t index);
void commit_on_wal_failed(void *ctx, int err);
/* Snapshots (commit_snapshot.c): one is started when enough was logged
 * (after every applied batch and on the timer); its child's exit is
 * polled on the ring. */
void commit_snapshot_if_due(struct commit *c, uint64_t now_ms);
void commit_snapshot_check(struct commit *c, uint64_t now_ms);
void commit_on_snapshot_exit(struct loop_op *op, int res, uint32_t flags);
