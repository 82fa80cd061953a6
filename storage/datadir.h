/* datadir: the data directory's lock and identity.
 *
 * DATA_DIR/lock is held with flock() while corrald runs: a second corrald on
 * the same directory is refused at startup. DATA_DIR/raft.meta records which
 * cluster and server the directory belongs to, and Raft's current term and
 * vote (which must be durable before any message goes out); it is replaced
 * atomically (temp file, fsync, rename, directory fsync). */
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
