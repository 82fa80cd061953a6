/* Fuzz target: Apache ZooKeeper's files as `corrald import-zookeeper` reads
 * them: a snapshot.<zxid> and a log.<zxid> in a scratch version-2/.
 *
 * Input: one flags byte, a 4-byte big-endian length L, then L bytes of
 * snapshot (fewer when the input is shorter) and the rest as the log file.
 * Flags: bit 0, the harness seals the snapshot (appends the Adler-32 of it
 * and "/", as ZooKeeper's SnapStream does), so the fuzzer reaches the
 * contents past the checksum; bit 1, it sets each log record's Adler-32 to
 * match its bytes, so the fuzzer reaches the txn decoders.
 *
 * Properties checked besides memory safety: an import either succeeds or
 * fails saying why; nothing leaks on either path. */
#include <zlib.h>

#include "fuzz_util.h"

#include "state.h"
#include "zookeeper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sets every whole record's checksum to match (records from offset 16). */
static void fix_log_checksums(uint8_t *p, size_t len)
{
	size_t pos = 16;
	while (pos + 12 <= len) {
		uint32_t n = (uint32_t)p[pos + 8] << 24 | (uint32_t)p[pos + 9] << 16 |
			     (uint32_t)p[pos + 10] << 8 | p[pos + 11];
		if (n == 0 || n > len - pos - 12)
			return;
		uint32_t sum = (uint32_t)adler32(1, p + pos + 12, n);
		memset(p + pos, 0, 4);
		fuzz_put32(p + pos + 4, sum);
		pos += 12 + (size_t)n + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[160], files[200], path[260], why[1024] = "";
	if (size < 5)
		return 0;
	snprintf(dir, sizeof(dir), "%s/zk", fuzz_scratch());
	snprintf(files, sizeof(files), "%s/version-2", dir);
	fuzz_mkdir(dir);
	fuzz_mkdir(files);

	uint8_t flags = data[0];
	size_t snap_len = (size_t)data[1] << 24 | (size_t)data[2] << 16 | (size_t)data[3] << 8 | data[4];
	data += 5;
	size -= 5;
	if (snap_len > size)
		snap_len = size;
	uint8_t *snap = malloc(snap_len + 13);
	FUZZ_CHECK(snap);
	memcpy(snap, data, snap_len);
	size_t n = snap_len;
	if (flags & 1u) {
		uint32_t sum = (uint32_t)adler32(1, snap, (uInt)n);
		memset(snap + n, 0, 4);
		fuzz_put32(snap + n + 4, sum);
		fuzz_put32(snap + n + 8, 1);
		snap[n + 12] = '/';
		n += 13;
	}
	snprintf(path, sizeof(path), "%s/snapshot.1", files);
	fuzz_write_file(path, snap, n);
	free(snap);

	size_t log_len = size - snap_len;
	uint8_t *log = malloc(log_len ? log_len : 1);
	FUZZ_CHECK(log);
	memcpy(log, data + snap_len, log_len);
	if (flags & 2u)
		fix_log_checksums(log, log_len);
	snprintf(path, sizeof(path), "%s/log.1", files);
	fuzz_write_file(path, log, log_len);
	free(log);

	struct state st;
	struct zookeeper_import res;
	struct zookeeper_import_options opt = { .accept_torn_tail = (flags & 4u) != 0 };
	int r = zookeeper_import(dir, &opt, &st, &res, why, sizeof(why));
	if (r == 0)
		state_free(&st);
	else
		FUZZ_CHECK(why[0]);
	return 0;
}
