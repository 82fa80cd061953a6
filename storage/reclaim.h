/* reclaim: files deleted off the loop. A purge (old snapshots, old log
 * segments) hands over what it would unlink and the directories it would
 * fsync after; each file is unlinked by an IORING_OP_UNLINKAT on the ring
 * (io_uring runs it on one of its worker threads), each directory synced
 * by an IORING_OP_FSYNC, one at a time, in the order given. Like every
 * storage file it does not log: the caller reads the counters. Unlinking a big file frees its blocks,
 * and on a file system mounted with -o discard (ext4 without a journal
 * discards before unlink() returns) the unlink of a 200 MB snapshot held
 * the loop 70-105 ms: every reply waited that long. Off the loop, the one
 * discard still held the disk as long, and the log's fdatasync (its cache
 * flush) waited behind it: so a file's blocks are freed first, from its
 * end, RECLAIM_PUNCH_BYTES at a time (fallocate PUNCH_HOLE on the ring,
 * about 2 ms of discard each, between which the log's flushes pass), and
 * the unlink then frees nothing. Meanwhile the file is NAME.purged (a
 * rename on the loop costs nothing): no reader of the directory (the log's
 * segments, the snapshots) finds it half freed, and one a crash left is
 * removed at the next start (reclaim_remove_leftovers). Knows base (the
 * loop). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

/* More than a purge hands over at once (snapshots beyond the kept count,
 * a few segments); beyond it the work is done at once, on the caller. */
#define RECLAIM_QUEUE_MAX 64
#define RECLAIM_PUNCH_BYTES (4 << 20)
#define RECLAIM_SUFFIX ".purged"

struct reclaim_item {
	int dir_fd;		/* owned (a dup) */
	char *name;		/* unlinkat(dir_fd, name), or NULL: fsync(dir_fd) */
	int file_fd;		/* the file, while its blocks are freed; or -1 */
	uint64_t punch_end;	/* bytes [0, punch_end) still allocated */
};

struct reclaim {
	struct loop *loop;	/* NULL: everything is done at once */
	struct loop_op op;
	struct reclaim_item queue[RECLAIM_QUEUE_MAX];
	size_t head, count;	/* queue[head] is on the ring when in_flight */
	bool in_flight;
	uint64_t unlinked, failed;
	int last_error;		/* of the last that failed (a negative errno) */
};

void reclaim_init(struct reclaim *r, struct loop *loop);
/* Does what is still queued, at once (on shutdown a stall costs nothing),
 * and frees it. */
void reclaim_free(struct reclaim *r);

/* Unlinks dir_fd/name on the ring; with r NULL, no loop, a full queue or
 * no descriptor to spare, at once. dir_fd stays the caller's. Returns 0
 * (a failure on the ring is counted), or the negative errno of an unlink
 * done at once. */
int reclaim_unlink(struct reclaim *r, int dir_fd, const char *name);
/* The same for fsync(dir_fd), after what was handed over before it. */
int reclaim_sync_dir(struct reclaim *r, int dir_fd);
/* Unlinks every NAME.purged in dir (a crash came before their unlink).
 * Returns how many, or a negative errno (a missing dir: 0). */
int reclaim_remove_leftovers(const char *dir);
/* Whether nothing is queued or on the ring. */
static inline bool reclaim_idle(const struct reclaim *r)
{
	return r->count == 0;
}
