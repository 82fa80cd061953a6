/* wal_format: the log's bytes on disk, shared by the files of the log
 * (wal.c appends, wal_recover.c reads, wal_truncate.c cuts) and by the
 * tools that read a log without running it. The log's interface is wal.h.
 *
 * A segment file, DATA_DIR/wal/<first index, 16 hex digits>.seg, starts with
 * a 64-byte header (magic, format version, header size, cluster id, server
 * id, first index, crc32 of the 60 bytes before it). Records follow, each
 * padded to 8 bytes: total length (u32), crc32 of the rest (u32), index,
 * term, the index of the first record of its batch (u64 each), type (u8, 3
 * zero bytes), payload length (u32), payload. Zeros after the last record:
 * the end of the log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_MAGIC "CORRALWL"
#define WAL_FORMAT_VERSION 1
#define WAL_SPARE_NAME "spare.tmp"

static inline size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

#define WAL_CLUSTER_ID_BYTES 16
#define WAL_RECORD_HEADER_BYTES 40
#define WAL_SEGMENT_HEADER_BYTES 64

/* Whose log it is: in every segment's header (and raft.meta). */
struct wal_identity {
	uint8_t cluster_id[WAL_CLUSTER_ID_BYTES];
	uint64_t server_id;
};

uint32_t wal_checksum(const void *p, size_t len);
void wal_segment_header(uint8_t h[WAL_SEGMENT_HEADER_BYTES], const struct wal_identity *id,
			uint64_t first_index);
/* Encodes one record at p (room for align8(40 + len)); returns its size. */
size_t wal_record_encode(uint8_t *p, uint64_t index, uint64_t term, uint64_t batch,
			 uint8_t type, const void *data, uint32_t len);
/* A record at off that checks out by itself (length, checksum). */
bool wal_record_intact(const uint8_t *base, size_t size, size_t off);
bool wal_all_zero(const uint8_t *p, size_t n);

struct wal_segment_file {
	char name[32];
	uint64_t first_index;
};

/* Lists the segments of dir_fd in index order (*ret malloc'd). */
int wal_list_segments(int dir_fd, struct wal_segment_file **ret, size_t *ret_count);
/* Opens DATA_DIR/wal (made when create), as a path and a directory fd. */
int wal_open_dir(const char *data_dir, bool create, char **ret_dir, int *ret_fd);

