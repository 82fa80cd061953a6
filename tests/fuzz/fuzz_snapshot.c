/* Fuzz target: snapshot files as startup finds them in DATA_DIR/snap.
 *
 * Input: one flags byte, then the file. It is written to a scratch data
 * directory as snap/0000000000000001.snap and read back as corrald does:
 * snapshot_verify() (--verify), snapshot_read_header() (a snapshot sent to
 * a follower), snapshot_load_newest() into a fresh state (startup).
 *
 * Flags: bit 0, the harness appends the trailer (end magic and the crc32 of
 * the file), so the fuzzer reaches the contents past the checksum; bit 1,
 * it writes this server's cluster id at its place in the header.
 *
 * Properties checked besides memory safety: a load either succeeds with the
 * header's index or fails saying why; nothing leaks on either path. */
#include <zlib.h>

#include "fuzz_util.h"

#include "state.h"
#include "snapshot.h"

static const struct wal_identity ID = { .cluster_id = { 0xc0, 0xff, 0xee }, .server_id = 1 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char data_dir[128], snap_dir[160], path[200], why[512] = "";
	if (size < 1)
		return 0;
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	FUZZ_CHECK(devnull);
	snprintf(data_dir, sizeof(data_dir), "%s/data", fuzz_scratch());
	snprintf(snap_dir, sizeof(snap_dir), "%s/snap", data_dir);
	snprintf(path, sizeof(path), "%s/0000000000000001.snap", snap_dir);
	fuzz_mkdir(data_dir);
	fuzz_mkdir(snap_dir);

	uint8_t flags = data[0];
	size_t len = size - 1;
	uint8_t *file = malloc(len + 16);
	FUZZ_CHECK(file);
	memcpy(file, data + 1, len);
	if ((flags & 2u) && len >= 32)
		memcpy(file + 16, ID.cluster_id, WAL_CLUSTER_ID_BYTES);
	if (flags & 1u) {
		uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), file, (uInt)len);
		memcpy(file + len, "CORRALSE", 8);
		fuzz_put32(file + len + 8, crc);
		fuzz_put32(file + len + 12, 0);
		len += 16;
	}
	fuzz_write_file(path, file, len);
	free(file);

	(void)snapshot_verify(data_dir, &ID, devnull);
	struct snapshot_meta header;
	if (snapshot_read_header(path, &header) == 0)
		free(header.conf);

	struct state st;
	struct snapshot_meta m;
	FUZZ_CHECK(state_init(&st, 1, 0) == 0);
	int r = snapshot_load_newest(data_dir, &ID, &st, &m, why, sizeof(why), NULL);
	if (r == 0)
		FUZZ_CHECK(st.last_zxid == (int64_t)m.index);
	else
		FUZZ_CHECK(r == -ENOENT || why[0]);
	free(m.conf);
	state_free(&st);
	return 0;
}
