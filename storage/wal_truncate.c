/* wal_truncate: cutting the log where a follower's conflicts with its
 * leader's (see wal_truncate() in wal.h). */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"

/* Unlinks the segments after segs[k] (closing the one appended to, if it is
 * among them), newest first, so that a crash part way leaves the log a
 * prefix of itself (a gap would make recovery refuse it); then makes that
 * durable. */
static int unlink_after(struct wal *w, const struct wal_segment_file *segs, size_t k, size_t n)
{
	bool unlinked = false;
	for (size_t j = n - 1; j > k; j--) {
		if (segs[j].first_index == w->seg_first_index && w->seg_fd >= 0) {
			close(w->seg_fd);
			w->seg_fd = -1;
		}
		if (unlinkat(w->dir_fd, segs[j].name, 0) < 0 && errno != ENOENT)
			return -errno;
		unlinked = true;
	}
	if (unlinked && fsync(w->dir_fd) < 0)
		return -errno;
	return 0;
}

/* Looks for the record of index in a segment of size bytes. Returns true
 * with *ret_off where it starts; false with *ret_off where the search
 * stopped (after the header when the segment cannot be mapped). */
static bool find_record(int fd, size_t size, uint64_t index, size_t *ret_off)
{
	size_t off = WAL_SEGMENT_HEADER_BYTES;
	uint8_t *base = size > off ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	bool found = false;
	if (base != MAP_FAILED) {
		while (off + WAL_RECORD_HEADER_BYTES <= size) {
			uint32_t total = load_be32(base + off);
			if (load_be64(base + off + 8) == index) {
				found = true;
				break;
			}
			if (total < WAL_RECORD_HEADER_BYTES || off + align8(total) > size)
				break;
			off += align8(total);
		}
		munmap(base, size);
	}
	*ret_off = off;
	return found;
}

/* Cuts the log on disk at index (see wal_truncate). Nothing is in flight. */
int wal_cut(struct wal *w, uint64_t index)
{
	struct wal_segment_file *segs = NULL;
	size_t n = 0, k;
	w->layout++;	/* the reader lists the segments again */
	int r = wal_list_segments(w->dir_fd, &segs, &n);
	if (r < 0)
		return r;
	for (k = n; k > 0 && segs[k - 1].first_index > index; k--)
		;
	if (k == 0) {
		free(segs);
		return -EINVAL;
	}
	k--;	/* segs[k] holds index */
	/* Later segments first: a crash from here on leaves a prefix. */
	r = unlink_after(w, segs, k, n);
	if (r < 0)
		goto out;
	int fd = segs[k].first_index == w->seg_first_index && w->seg_fd >= 0
			 ? w->seg_fd
			 : openat(w->dir_fd, segs[k].name, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		if (fd >= 0 && fd != w->seg_fd)
			close(fd);
		goto out;
	}
	size_t size = (size_t)st.st_size, off;
	bool found = find_record(fd, size, index, &off);
	if (!found && !(index == segs[k].first_index && off == WAL_SEGMENT_HEADER_BYTES)) {
		if (fd != w->seg_fd)
			close(fd);
		r = -EBADMSG;
		goto out;
	}
	/* The cut is one metadata change (made durable by fdatasync); the room
	 * after it is preallocated again, best effort (a short segment is
	 * simply followed by a new one sooner). */
	if (ftruncate(fd, (off_t)off) < 0 || fdatasync(fd) < 0) {
		r = -errno;
		if (fd != w->seg_fd)
			close(fd);
		goto out;
	}
	uint64_t seg_size = off;
	if (size > off && fallocate(fd, 0, (off_t)off, (off_t)(size - off)) == 0)
		seg_size = size;
	if (fd != w->seg_fd) {
		if (w->seg_fd >= 0)
			close(w->seg_fd);
		w->seg_fd = fd;
	}
	w->seg_first_index = segs[k].first_index;
	w->seg_offset = off;
	w->seg_size = seg_size;
	if (w->durable_index >= index)
		w->durable_index = index - 1;
out:
	free(segs);
	return r;
}

int wal_truncate(struct wal *w, uint64_t index, uint64_t prev_term)
{
	if (w->failed)
		return -w->failed;
	if (index == 0)
		return -EINVAL;
	if (index > w->last_index)
		return 0;
	w->last_index = index - 1;
	w->last_term = prev_term;
	if (w->gather_len && index >= w->gather_first_index) {
		/* only gathered: drop those records from the buffer */
		size_t off = 0;
		while (off < w->gather_len && load_be64(w->gather + off + 8) != index)
			off += align8(load_be32(w->gather + off));
		w->gather_len = off;
		w->gather_last_index = index - 1;
		return 0;
	}
	w->gather_len = 0;	/* every gathered record comes after index */
	if (w->flight_count > 0) {
		if (!w->truncate_pending || index < w->truncate_pending)
			w->truncate_pending = index;
		return 0;
	}
	int r = wal_cut(w, index);
	if (r < 0)
		wal_fail(w, -r);
	return r;
}

void wal_skip_to(struct wal *w, uint64_t next_index, uint64_t prev_term)
{
	w->gather_len = 0;
	w->truncate_pending = 0;
	w->last_index = next_index - 1;
	w->last_term = prev_term;
	w->seg_offset = w->seg_size;	/* the next batch makes a new segment */
	w->read_from = next_index;	/* what the log held before is not read back */
	w->layout++;
	if (w->flight_count == 0)
		w->durable_index = next_index - 1;
}
