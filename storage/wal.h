/* wal: the write-ahead log, which is the Raft log. Only this file (and the
 * snapshot code beside it) touches data files.
 *
 * Layout: DATA_DIR/wal/<first index, 16 hex digits>.seg. A segment starts
 * with a header (magic, format version, cluster id, server id, first index,
 * checksum) and holds records, each 8-byte aligned:
 *   u32 length (header + payload, before padding)  u32 crc32 of what follows
 *   u64 index  u64 term  u64 first index of its write batch
 *   u8 type  3 bytes zero  u32 payload length  payload  zero padding
 * Segments are preallocated with fallocate, so an append never runs out of
 * space mid-record; the zeros after the last record end the log.
 *
 * Appends gather in a batch; one write and one fdatasync, linked on the
 * ring, make a batch durable, and while they are in flight the next batch
 * gathers (group commit). Up to WAL_FLIGHTS batches are in flight at once,
 * in one segment; they are reported durable in order, each once its own
 * fdatasync and every earlier batch's have completed. A failed fsync is
 * final: the log stops taking writes (the kernel may have dropped the dirty
 * pages; retrying could report success for data that is not on disk).
 *
 * Recovery reads every segment in order. A record that does not check out at
 * the end of the last segment (or zeroes), with intact records of no more
 * than WAL_FLIGHTS - 1 later batches after it, is a torn write from a crash:
 * the log is cut there (and the rest of the segment zeroed). Anything else
 * that does not check out stops startup, naming the file and offset. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "reclaim.h"
#include "summary.h"
#include "wal_format.h"
#include "wal_reader.h"

/* What recovery hands over, entry by entry, in index order. data points into
 * a mapping valid during the call only. */
typedef int (*wal_visit_fn)(void *ctx, uint64_t index, uint64_t term, uint8_t type,
			    const uint8_t *data, uint32_t len);

struct wal_recovery {
	uint64_t first_index;	/* of the first record found; 0 when the log is empty */
	uint64_t last_index;
	uint64_t last_term;
	uint64_t records;
	uint32_t segments;
	bool torn_tail_cut;
	char torn_file[512];
	uint64_t torn_offset;
	/* Where appends continue: the last segment and the end of its records. */
	bool have_last_segment;
	uint64_t last_segment_first_index;
	uint64_t last_segment_end;
};

/* Batches written and synced at most this many at a time. While one
 * flight's fdatasync runs, the next can be written and synced beside it:
 * two fdatasyncs of one file overlap in the kernel (the second's data goes
 * to the disk while the first's flush or journal commit runs), so the log
 * keeps up with more batches a second than one at a time allows. */
#define WAL_FLIGHTS 2

/* A batch being written and synced. */
struct wal_flight {
	struct wal *wal;
	uint8_t *buf;
	size_t len, cap, written;
	uint64_t first_index, last_index;
	uint64_t offset;		/* in the segment */
	int fd;
	int pending_cqes;		/* write and fsync CQEs still to come */
	bool synced;			/* written in full and synced; waits for older flights */
	uint64_t started_us;		/* when it was submitted */
	struct loop_op write_op, sync_op;
};

struct wal {
	int dir_fd;
	char *dir;			/* DATA_DIR/wal */
	struct wal_identity identity;
	uint64_t segment_bytes;
	struct loop *loop;

	int seg_fd;
	uint64_t seg_first_index;
	uint64_t seg_offset;		/* where the next record goes */
	uint64_t seg_size;

	uint64_t last_index;		/* appended (maybe not durable yet) */
	uint64_t last_term;
	uint64_t durable_index;

	uint8_t *gather;		/* records of the next batch */
	size_t gather_len, gather_cap;
	uint64_t gather_last_index;
	uint64_t gather_first_index;

	struct wal_flight flights[WAL_FLIGHTS];	/* a ring: the oldest at flight_head */
	unsigned flight_head, flight_count;
	uint64_t truncate_pending;	/* cut the log here once the flights settle, or 0 */

	int failed;			/* 0, or the errno that stopped the log */
	int spare_fd;			/* a preallocated next segment, or -1 */
	const char *archive_dir;	/* purged segments go there first (not owned), or NULL */
	bool no_space;			/* the spare could not be made: ENOSPC */
	struct loop_op failed_op;	/* tells on_failed from the ring */
	void (*on_durable)(void *ctx, uint64_t index);
	void (*on_failed)(void *ctx, int err);
	void *ctx;

	uint64_t batches;
	struct summary fsync_us;	/* write + fdatasync of each batch, microseconds */
	uint64_t records_written;
	uint64_t bytes_written;
	uint64_t fault_fsync_countdown;	/* fault injection: fail the Nth fsync */

	/* Reading entries back (wal_read_entry): layout counts the changes
	 * of the segments (new, cut, purged) the reader must see; indexes
	 * before read_from are not this log's any more (a snapshot from the
	 * leader replaced them). */
	uint64_t layout;
	uint64_t read_from;
	struct wal_reader reader;
};

/* Reads DATA_DIR/wal, checks identity, cuts a torn tail, calls visit for
 * every record. Segments wholly at or below covered_index (in a snapshot
 * already) are skipped; 0 reads all. Creates the directory when missing. On
 * damage returns -EBADMSG with a sentence in why naming file and offset; on
 * an identity mismatch -EXDEV with why. */
int wal_recover(const char *data_dir, const struct wal_identity *id, uint64_t covered_index,
		wal_visit_fn visit, void *ctx, struct wal_recovery *ret, char *why, size_t why_size);

/* Opens the log for appends after recovery: last index/term and where the
 * records end come from rec, so the log is not read a second time. */
int wal_open(struct wal *w, const char *data_dir, const struct wal_identity *id,
	     const struct wal_recovery *rec, uint64_t segment_bytes, struct loop *loop,
	     char *why, size_t why_size);
void wal_close(struct wal *w);

/* Adds a record to the gathering batch (copied). index must be last_index + 1.
 * Returns 0, -ENOMEM, or the errno the log failed with. */
int wal_append(struct wal *w, uint64_t index, uint64_t term, uint8_t type,
	       const void *data, uint32_t len);
/* Removes the records from index on, durably (a follower's log that
 * conflicts with its leader's): afterwards last_index is index - 1, whose
 * term the caller gives (prev_term), and appends go on from index. Records
 * only gathered are dropped at once; when the batches in flight hold some, the
 * log is cut as soon as they settle (before anything after it is written, and
 * on_durable never reports a removed index). On disk: later segments are
 * deleted first, then the segment holding index is cut (ftruncate) there, so a
 * crash at any point leaves a prefix of the log. Returns 0, -EINVAL (index
 * before the log's first segment), -EBADMSG (index not found where the log
 * says it is), or the errno the log failed with. */
int wal_truncate(struct wal *w, uint64_t index, uint64_t prev_term);

/* The log goes on at next_index, prev_term being the term before it (a
 * snapshot from the leader now holds everything up to next_index - 1):
 * records only gathered are dropped, and the next batch starts a new
 * segment named for next_index. Older segments stay until the next purge;
 * recovery skips them, as the snapshot covers them. */
void wal_skip_to(struct wal *w, uint64_t next_index, uint64_t prev_term);

/* The durable entry at index, read back from the segments (ret->data is
 * the caller's). Returns 0, -ENOENT when the log does not hold it (not
 * durable yet, purged, before a snapshot that replaced the log), -EBADMSG
 * when its record does not check out, or another negative errno. */
int wal_read_entry(struct wal *w, uint64_t index, struct wal_entry *ret);

/* Starts writing the gathered batch when a flight is free (once per loop turn). */
void wal_flush(struct wal *w);

/* Whether a record of len payload bytes has room: in the current segment,
 * or in the spare (made here when needed). -ENOSPC when not (the caller
 * refuses the write; nothing is written). */
int wal_reserve(struct wal *w, uint32_t len);
/* Preallocates the spare segment once the current one is half full (or a
 * write was refused for lack of it). From the loop's timer; cheap otherwise.
 * Returns 0, or -ENOSPC (and the like) while there is no room. */
int wal_prepare_spare(struct wal *w);

/* Deletes the segments whose every record has index <= index (never the
 * one being written), each archived first when w->archive_dir is set.
 * Returns 0, or the negative errno of the first segment that could not be
 * archived (it and the later ones stay). The unlinks and the directory's
 * fsync are handed to rc (reclaim.h: on the ring; NULL: at once). */
int wal_purge(struct wal *w, uint64_t index, struct reclaim *rc);
/* The same for a directory no log is writing (an archive): deletes the
 * segments of DIR/wal whose every record has index <= index, never the
 * last, handed to rc as wal_purge()'s. Returns 0 or a negative errno. */
int wal_purge_dir(const char *dir, uint64_t index, struct reclaim *rc);

/* Reads the log spread over several directories laid out as data
 * directories (an archive, then the data directory), read-only: segments
 * merged by first index (one name in two places is one segment), checked
 * as recovery checks them (identity: the first header's), every record
 * after covered_index visited in order. visit may return -ECANCELED to stop
 * early: then -ECANCELED is returned, with ret filled so far. */
int wal_read(const char *const *dirs, size_t dir_count, uint64_t covered_index, wal_visit_fn visit,
	     void *ctx, struct wal_recovery *ret, char *why, size_t why_size);

/* Read-only checks for `corrald --verify`: prints what it finds to out.
 * id (from raft.meta; NULL when there is none) must match every segment.
 * Returns 0 when sound. */
int wal_verify(const char *data_dir, const struct wal_identity *id, void *out_file);

/* Writes the first record of a new log (Raft's bootstrap configuration)
 * synchronously, before the ring exists. Returns 0 or a negative errno. */
int wal_bootstrap(const char *data_dir, const struct wal_identity *id, uint64_t segment_bytes,
		  uint64_t term, uint8_t type, const void *data, uint32_t len);

/* Shared by the log's own files only (wal.c, wal_recover.c, wal_truncate.c): */
/* The log stops for good with err (wal.c): at once it takes nothing more;
 * on_failed is told once, from the ring (the next loop turn). */
void wal_fail(struct wal *w, int err);
/* Cuts the log on disk at index (wal_truncate.c); nothing may be in flight. */
int wal_cut(struct wal *w, uint64_t index);
