/* snapshot: the state (tree, sessions, ACLs) at one log index, in a file.
 *
 * DATA_DIR/snap/<index, 16 hex digits>.snap: a header (magic, format version,
 * cluster id, server id, index, term, the Raft configuration and the index
 * it was committed at), the sessions, the nodes in parent-before-child
 * order, and a trailer with a crc32 of everything before it. A snapshot is
 * written by a fork()ed child on copy-on-write memory, so the server never
 * waits for it; it goes to a temp file that is fsynced, renamed and its
 * directory fsynced, so a snapshot either exists whole or not at all. The
 * child dies with the server (PR_SET_PDEATHSIG) and publishes only for the
 * server that forked it; the temp files a crash leaves are removed at the
 * next start (snapshot_remove_temp_files()).
 *
 * Recovery loads the newest snapshot that checks out (an older one when the
 * newest is damaged) and replays the log after its index. */
#pragma once

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "reclaim.h"
#include "state.h"
#include "wal.h"

struct snapshot_meta {
	uint64_t index;
	uint64_t term;
	uint64_t conf_index;
	uint8_t *conf;		/* the encoded raft configuration (malloc'd when loaded) */
	uint32_t conf_len;
	/* Writing: leave the file in the page cache (a stop's snapshot, which
	 * the next start reads at once), where a snapshot's pages are otherwise
	 * dropped as they reach the disk. */
	bool keep_cached;
};

/* Forks a child that writes the snapshot of st at m->index and exits.
 * Returns the child's pid or a negative errno. */
pid_t snapshot_start(const char *data_dir, const struct wal_identity *id, const struct state *st,
		     const struct snapshot_meta *m);

/* Removes the temp files of snapshots that never finished (a crash while a
 * child wrote one, or while a leader's snapshot was being received): every
 * snap/<name>.tmp. Only for the owner of the data directory's lock, before any
 * snapshot starts. Returns 0 with *ret_removed (0 when there is no snap/),
 * or a negative errno. */
int snapshot_remove_temp_files(const char *data_dir, unsigned *ret_removed);

/* Loads the newest sound snapshot into st (fresh from state_init()). Returns
 * 0 with *ret filled, -ENOENT when there is none, or a negative errno with
 * why. Damaged snapshots are skipped with a warning in skipped (may be NULL). */
int snapshot_load_newest(const char *data_dir, const struct wal_identity *id, struct state *st,
			 struct snapshot_meta *ret, char *why, size_t why_size,
			 void (*skipped)(const char *file, const char *reason));

/* Deletes all but the newest keep snapshots, each archived first when
 * archive_dir is not NULL (archive.h; one that cannot be is kept, and the
 * first such errno is in *ret_archive_err, else 0). Returns the index of
 * the oldest one kept by the count (0 when none). An archive, laid out as a
 * data directory, is purged by the same call. The unlinks are handed to
 * rc (reclaim.h: on the ring; NULL: at once). */
uint64_t snapshot_purge(const char *data_dir, unsigned keep, const char *archive_dir,
			int *ret_archive_err, struct reclaim *rc);

/* DATA_DIR/snap/<index>.snap. */
void snapshot_path(const char *data_dir, uint64_t index, char *out, size_t size);
/* Reads the header of a snapshot file (index, term, configuration) without
 * loading it; ret->conf is malloc'd. Returns 0 or a negative errno. */
int snapshot_read_header(const char *path, struct snapshot_meta *ret);

/* Writes the snapshot of st to path synchronously (temp file, fsync,
 * rename, directory fsync): for tools, not the server, whose loop it would
 * stop. Returns 0 or a negative errno. */
int snapshot_write_file(const char *path, const struct wal_identity *id, const struct state *st,
			const struct snapshot_meta *m);

/* An online backup: forks a child that writes prefix (the caller's framing)
 * and then the snapshot of st, in the snapshot file's format, to fd (a
 * connected socket, kept open in the child only as long as it writes),
 * then shuts fd down. The child works on copy-on-write memory, so the
 * server goes on; it dies with the server. Returns its pid or a negative
 * errno. */
pid_t snapshot_stream_start(int fd, const void *prefix, size_t prefix_len,
			    const struct wal_identity *id, const struct state *st,
			    const struct snapshot_meta *m);

/* Loads one snapshot file (a backup) into st (fresh from state_init()),
 * checking its checksum and, when id is not NULL, its cluster. Returns 0
 * with *ret filled (ret->conf malloc'd), or a negative errno with a
 * sentence in why naming the file. */
int snapshot_load_file(const char *path, const struct wal_identity *id, struct state *st,
		       struct snapshot_meta *ret, char *why, size_t why_size);
/* Checks a snapshot file's framing and checksum and reads whose it is.
 * Returns 0, or a negative errno with why. */
int snapshot_file_identity(const char *path, struct wal_identity *ret, char *why, size_t why_size);
/* The newest snapshot of DATA_DIR/snap (or of an archive) at or below
 * max_index, by name: its path and index. Returns 0, -ENOENT, or a
 * negative errno. */
int snapshot_find(const char *data_dir, uint64_t max_index, char *ret_path, size_t size,
		  uint64_t *ret_index);

/* For --verify: checks every snapshot, prints what it finds. Returns 0 when sound. */
int snapshot_verify(const char *data_dir, const struct wal_identity *id, void *out_file);
