/* snapshot_format: what the three parts of the snapshot share, private to
 * storage/: the file's framing (magics, version, trailer), and the few
 * functions that cross between snapshot.c (the snap/ directory: listing,
 * choosing, purging), snapshot_write.c (the encoder and the writers: the
 * forked child, a file, a stream) and snapshot_read.c (the decoder). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snapshot_meta;
struct state;
struct wal_identity;

#define SNAP_MAGIC "CORRALSN"
#define SNAP_END_MAGIC "CORRALSE"
#define SNAP_VERSION 1
#define SNAP_TRAILER_BYTES 16
/* A node's fields with a one-byte path, no data: path length and byte,
 * data length, ACL number, czxid, mzxid, pzxid, ctime, mtime, version,
 * cversion, aversion, owner. */
#define SNAP_NODE_MIN_BYTES (4 + 1 + 4 + 8 + 5 * 8 + 3 * 4 + 8)

/* DATA_DIR/snap into out, made when create is set. Returns 0 or -errno. */
int snapshot_dir(const char *data_dir, bool create, char *out, size_t size);
/* Maps a whole file read-only (nothing when it is empty: *ret_len 0).
 * Returns 0 or -errno. */
int snapshot_map(const char *path, uint8_t **ret, size_t *ret_len);
/* Checks a mapped file's framing and checksum and, when id is not NULL,
 * whose it is. Returns 0, -EBADMSG or -EXDEV (another cluster's), with
 * why. */
int snapshot_check(const uint8_t *p, size_t len, const struct wal_identity *id, char *why,
		   size_t why_size);
/* Loads a checked file's body into st (fresh from state_init()). Returns 0
 * with *ret filled, -EBADMSG or -ENOMEM. */
int snapshot_load_body(const uint8_t *p, size_t len, struct state *st, struct snapshot_meta *ret);
