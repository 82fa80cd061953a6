/* Fuzz target: log segments as recovery finds them on disk.
 *
 * Input: one flags byte, then one or two segment files (wal_format.h: a
 * 64-byte header, then records). They are written to a scratch data
 * directory's wal/, named for the first index their header holds, and read
 * back as corrald does: wal_verify() (--verify, read-only), then
 * wal_recover() (startup: identity and continuity checked, a torn tail cut
 * in the file, every record handed to the visitor).
 *
 * Flags: bit 0, the harness sets the header's crc32; bit 1, it writes this
 * server's identity into the header; bit 2, it sets the crc32 of every
 * record it can walk to; bit 3, the input holds two segments, the first
 * one's length in the two bytes after the flags. (The fixes let the fuzzer
 * past the checksums to what follows them.)
 *
 * Properties checked besides memory safety: every record handed over lies
 * inside its file, in index order, and a recovery that succeeds reports the
 * range it handed over. */
#include <dirent.h>

#include "bytes.h"
#include "fuzz_util.h"

#include "wal.h"

static const struct wal_identity ID = { .cluster_id = { 0xc0, 0xff, 0xee }, .server_id = 1 };

volatile uint8_t fuzz_sink;	/* reads of the records land here */

struct seen {
	uint64_t records, first, last;
	int bad;
};

static int visit(void *ctx, uint64_t index, uint64_t term, uint8_t type, const uint8_t *data,
		 uint32_t len)
{
	struct seen *s = ctx;
	for (uint32_t i = 0; i < len; i++)	/* ASan checks every byte is in the mapping */
		fuzz_sink ^= data[i];
	(void)term;
	(void)type;
	if (s->records && index != s->last + 1)
		s->bad = 1;
	if (!s->records)
		s->first = index;
	s->last = index;
	s->records++;
	return 0;
}

static void fix_segment(uint8_t *p, size_t len, uint8_t flags)
{
	if (len < WAL_SEGMENT_HEADER_BYTES)
		return;
	if (flags & 2u) {
		memcpy(p + 16, ID.cluster_id, WAL_CLUSTER_ID_BYTES);
		store_be64(p + 32, ID.server_id);
	}
	if (flags & 1u)
		store_be32(p + 60, wal_checksum(p, 60));
	if (!(flags & 4u))
		return;
	for (size_t off = WAL_SEGMENT_HEADER_BYTES; len - off >= WAL_RECORD_HEADER_BYTES;) {
		uint32_t total = load_be32(p + off);
		if (total < WAL_RECORD_HEADER_BYTES || total > len - off)
			return;
		store_be32(p + off + 36, total - WAL_RECORD_HEADER_BYTES);
		store_be32(p + off + 4, wal_checksum(p + off + 8, total - 8));
		off += align8(total);
		if (off > len)
			return;
	}
}

static void write_segment(const char *wal_dir, const uint8_t *p, size_t len, uint8_t flags)
{
	char path[256];
	uint8_t *copy = malloc(len ? len : 1);
	FUZZ_CHECK(copy);
	memcpy(copy, p, len);
	fix_segment(copy, len, flags);
	uint64_t first = len >= 48 ? load_be64(copy + 40) : 1;
	snprintf(path, sizeof(path), "%s/%016llx.seg", wal_dir, (unsigned long long)first);
	fuzz_write_file(path, copy, len);
	free(copy);
}

static void clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char data_dir[128], wal_dir[160], why[512];
	if (size < 1)
		return 0;
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	FUZZ_CHECK(devnull);
	snprintf(data_dir, sizeof(data_dir), "%s/data", fuzz_scratch());
	snprintf(wal_dir, sizeof(wal_dir), "%s/wal", data_dir);
	fuzz_mkdir(data_dir);
	fuzz_mkdir(wal_dir);
	clear_dir(wal_dir);

	uint8_t flags = data[0];
	const uint8_t *p = data + 1;
	size_t len = size - 1;
	if ((flags & 8u) && len >= 2) {
		size_t first_len = (size_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
		if (first_len > len)
			first_len = len;
		write_segment(wal_dir, p, first_len, flags);
		p += first_len;
		len -= first_len;
	}
	write_segment(wal_dir, p, len, flags);

	(void)wal_verify(data_dir, &ID, devnull);
	struct seen s = { 0 };
	struct wal_recovery rec;
	int r = wal_recover(data_dir, &ID, 0, visit, &s, &rec, why, sizeof(why));
	FUZZ_CHECK(!s.bad);
	if (r == 0) {
		FUZZ_CHECK(rec.records == s.records);
		/* (Index 0 is never written; recovery takes 0 for "none yet".) */
		FUZZ_CHECK(!s.records || s.first == 0 ||
			   (rec.first_index == s.first && rec.last_index == s.last));
	} else {
		FUZZ_CHECK(why[0]);	/* a refusal says where */
	}
	return 0;
}
