/* offline: the state as it was at a point, read from files without a
 * server: a backup file (`corralctl backup`), or directories laid out as a
 * data directory (the data directory itself, read-only, and the archive of
 * storage.archive_dir). For `corrald dump`, `corrald restore` and
 * `corrald --verify FILE`.
 *
 * From directories: the newest snapshot at or before the point (from any
 * of them), then the log after it (segments from all of them, merged),
 * applied txn by txn up to the point, as recovery applies it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "state.h"
#include "wal_format.h"

struct offline_point {
	uint64_t zxid;		/* the last txn to apply; UINT64_MAX: all there is */
	int64_t time_ms;	/* no txn later than this (wall clock); INT64_MAX: none */
};

struct offline_state {
	struct state st;
	uint64_t index, term;		/* it holds everything up to index (of term) */
	uint64_t snapshot_index;	/* the snapshot it started from (0: none) */
	uint64_t txns_applied;		/* from the log, after the snapshot */
	int64_t last_time_ms;		/* of the last txn applied, 0 when none */
	struct wal_identity id;		/* whose files they were */
	bool have_id;
};

#define OFFLINE_POINT_ALL ((struct offline_point){ .zxid = UINT64_MAX, .time_ms = INT64_MAX })

/* Loads the state at pt from sources (one backup file, or up to 8
 * directories). Returns 0, or a negative errno with a sentence in why
 * (damage naming file and offset, a point the files do not reach). On
 * success ret is the caller's to offline_free(). */
int offline_load(char *const *sources, size_t count, const struct offline_point *pt,
		 struct offline_state *ret, char *why, size_t why_size);
void offline_free(struct offline_state *s);
