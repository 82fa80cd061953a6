/* snapshot_transfer: a snapshot streamed from the leader to a follower that
 * is too far behind for the log (the entries it needs are no longer kept).
 *
 * libraft's InstallSnapshot carries the whole snapshot in one message; a
 * snapshot of a big tree is hundreds of megabytes, so corral streams the
 * file instead: CHUNK frames of 1 MiB (index, offset, size, bytes), read
 * from the snapshot file as the peer's queue drains (never more than a few
 * MiB queued), and then the InstallSnapshot message itself with the
 * configuration and, as its data, just the index and the size. The
 * follower writes the chunks to snap/incoming.tmp; when the message comes
 * and the file is whole it hands the message to raft, which asks for the
 * snapshot to be persisted (RAFT_UPDATE_SNAPSHOT): the file becomes the
 * follower's newest snapshot, its state is loaded from it (client
 * connections are closed: their view jumps), its log goes on after the
 * snapshot's index, and raft is told. A transfer cut by a dropped
 * connection starts again from the beginning. */
#pragma once

#include <stdbool.h>

#include <raft.h>

#include "peer_message.h"


#include "peer_transport.h"

struct commit;
struct snapshot_transfers;

/* The transfers of an ensemble member: snapshots of c sent over peers,
 * and received into c's data directory. NULL when out of memory. */
struct snapshot_transfers *snapshot_transfers_new(struct commit *c, struct peer_transport *peers);
void snapshot_transfers_free(struct snapshot_transfers *x);

/* The leader: raft wants m (RAFT_INSTALL_SNAPSHOT) sent. */
void snapshot_transfer_start(struct snapshot_transfers *x, const struct raft_message *m);
/* The leader: sends its snapshot at index to a follower whose state
 * diverged, which rebuilds its state from it (not through raft: its log
 * is sound). */
void snapshot_transfer_rebuild(struct snapshot_transfers *x, raft_id to, uint64_t index,
			       uint64_t term);
/* Sends what the peers' queues have room for (from the raft timer). */
void snapshot_transfer_pump(struct snapshot_transfers *x);
/* The connection to id dropped: its transfer starts over. */
void snapshot_transfer_peer_down(struct snapshot_transfers *x, raft_id id);

/* The follower: a CHUNK frame. */
void snapshot_transfer_chunk(struct snapshot_transfers *x, const struct peer_frame *f);
/* The InstallSnapshot message arrived: true when the file it announces is
 * here whole (m may go to raft), false when not (drop it; the leader sends
 * again). */
bool snapshot_transfer_received(struct snapshot_transfers *x, struct raft_message *m);
/* Whether a received InstallSnapshot message carries a snapshot sent by
 * snapshot_transfer_rebuild() (for commit_rebuild(), not for raft). */
bool snapshot_transfer_is_rebuild(const struct raft_message *m);
/* Such a snapshot, received whole: the state is rebuilt from it. */
int snapshot_transfer_rebuild_install(struct snapshot_transfers *x, const struct raft_message *m);
/* RAFT_UPDATE_SNAPSHOT: the whole file becomes this server's snapshot and
 * state. Returns 0 or a negative errno. */
int snapshot_transfer_install(struct snapshot_transfers *x, struct raft_snapshot_metadata *meta,
			      struct raft_buffer *chunk);
