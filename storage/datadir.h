/* datadir: the data directory's lock and identity.
 *
 * DATA_DIR/lock is held with flock() while corrald runs: a second corrald on
 * the same directory is refused at startup. DATA_DIR/raft.meta records which
 * cluster and server the directory belongs to, and Raft's current term and
 * vote (which must be durable before any message goes out); it is replaced
 * atomically (temp file, fsync, rename, directory fsync). DATA_DIR/log.started
 * says the log has had its first segment: a server makes it once it opened
 * its log, restore and migrate (which write a snapshot and raft.meta only)
 * never do, and no purge removes a log's last segment. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal.h"

struct datadir_meta {
	struct wal_identity identity;
	uint64_t term;
	uint64_t voted_for;
};

/* Locks the directory. Returns the lock fd, or a negative errno with why
 * (-EBUSY: another corrald holds it). */
int datadir_lock(const char *data_dir, char *why, size_t why_size);

/* Reads raft.meta: 0, -ENOENT (a new directory), or -EBADMSG with why. */
int datadir_meta_read(const char *data_dir, struct datadir_meta *ret, char *why, size_t why_size);
/* Writes raft.meta durably. Returns 0 or a negative errno. */
int datadir_meta_write(const char *data_dir, const struct datadir_meta *m);

/* Whether the data directory's log is where it was: 0, or -EBADMSG with why
 * when log.started is there but DATA_DIR/wal holds no segment (a log on a
 * device of its own, not mounted: starting would begin a new log after the
 * last snapshot and lose the writes after it). */
int datadir_log_check(const char *data_dir, char *why, size_t why_size);
/* Makes log.started (durably) if it is not there. 0 or a negative errno. */
int datadir_mark_log_started(const char *data_dir);
