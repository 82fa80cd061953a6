/* wal_reader: entries read back from the log's segments by index, for an
 * ensemble's leader to send a follower what its entry cache no longer holds.
 *
 * The reader keeps the log's small index (the segments' first indexes,
 * listed again whenever the log's layout changed: a new segment, a cut, a
 * purge) and a few cursors (where the record of a next index starts in a
 * segment), so each follower catching up reads on from where its last entry
 * ended: one pread of a window (WAL_READER_WINDOW bytes from page cache)
 * every few hundred entries. An index no cursor reaches (before them, or in
 * another segment) is found by reading on from the nearest mark before it,
 * into the cursor used least recently: the place of every
 * WAL_READER_MARK_EVERY-th record of a segment is noted as cursors pass it
 * (about 14 KB for a 64 MiB segment of 300-byte records), so such a read
 * passes at most that many records, not a whole segment. Each record is
 * checked (length, checksum, its index the one expected). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wal_format.h"

#define WAL_READER_WINDOW (256u * 1024)
#define WAL_READER_CURSORS 4		/* a leader has at most a few followers catching up */
#define WAL_READER_MARK_EVERY 256

/* Where the record of an index starts in its segment. */
struct wal_mark {
	uint64_t index, off;
};

/* A segment's marks: every WAL_READER_MARK_EVERY-th record from its first,
 * up to the furthest one a cursor has read. */
struct wal_marks {
	struct wal_mark *v;
	size_t n, cap;
};

struct wal_cursor {
	size_t seg;			/* in segs */
	uint64_t next_index;		/* its record starts at next_off (0: unused) */
	uint64_t next_off;
	uint64_t used;			/* when last used (the reader's reads) */
};

struct wal_reader {
	uint64_t layout;		/* the log's layout when segs was listed */
	struct wal_segment_file *segs;	/* NULL: not listed yet */
	size_t seg_count;
	struct wal_marks *marks;	/* one per segment in segs, or NULL */
	int fd;				/* segs[seg], or -1 */
	size_t seg;
	struct wal_cursor cursors[WAL_READER_CURSORS];
	uint64_t reads;
	uint8_t *buf;			/* a window of the file: buf_off .. + buf_len */
	size_t buf_cap, buf_len;
	uint64_t buf_off;
	uint64_t entries_read;
	uint64_t records_passed;	/* read on the way to another index */
	uint64_t fault_fail_countdown;	/* fault injection: reads fail (EIO) from the Nth */
};

/* An entry read: data malloc'd (NULL when len is 0), the caller's. */
struct wal_entry {
	uint64_t term;
	uint8_t type;
	uint32_t len;
	uint8_t *data;
};

void wal_reader_init(struct wal_reader *r);
void wal_reader_free(struct wal_reader *r);

/* The entry at index from the segments of dir_fd; layout is the log's
 * layout counter (struct wal): a new value lists the segments again.
 * Returns 0, -ENOENT (no segment holds it: purged, or past the records),
 * -EBADMSG (a record there does not check out), -ENOMEM, or the errno of
 * a read. The caller reads only durable indexes. */
int wal_reader_get(struct wal_reader *r, int dir_fd, uint64_t layout, uint64_t index,
		   struct wal_entry *ret);
