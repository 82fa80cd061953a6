/* wal: appending to the log (see wal.h): the gathered batch, the flight
 * (write linked to fdatasync on the ring), segments and the spare, purge.
 * The format is in wal_format.c, reading back in wal_recover.c, cutting in
 * wal_truncate.c. */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "assertions.h"
#include "bytes.h"
#include "common.h"

static int spare_allocate(struct wal *w, uint64_t bytes)
{
	int fd = openat(w->dir_fd, WAL_SPARE_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	int r = fallocate(fd, 0, 0, (off_t)bytes);
	if (r < 0 && errno == EOPNOTSUPP)
		r = ftruncate(fd, (off_t)bytes);
	if (r < 0) {
		int e = errno;
		close(fd);
		unlinkat(w->dir_fd, WAL_SPARE_NAME, 0);
		return -e;
	}
	w->spare_fd = fd;
	return 0;
}

/* Makes the segment whose first record will be first_index from the spare
 * (preallocated earlier) or, when there is none, a new file. */
static int segment_create(struct wal *w, uint64_t first_index, uint64_t bytes)
{
	char name[64];
	uint8_t h[WAL_SEGMENT_HEADER_BYTES];
	struct stat st;
	int r = 0;
	snprintf(name, sizeof(name), "%016llx.seg", (unsigned long long)first_index);
	if (w->spare_fd < 0 || fstat(w->spare_fd, &st) < 0 || (uint64_t)st.st_size < bytes) {
		if (w->spare_fd >= 0)
			close(w->spare_fd);
		w->spare_fd = -1;
		r = spare_allocate(w, bytes);
		if (r < 0)
			return r;
	}
	int fd = w->spare_fd;
	w->spare_fd = -1;
	bytes = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : bytes;
	wal_segment_header(h, &w->identity, first_index);
	errno = 0;
	if (pwrite(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || fdatasync(fd) < 0 ||
	    renameat(w->dir_fd, WAL_SPARE_NAME, w->dir_fd, name) < 0 || fsync(w->dir_fd) < 0) {
		int e = errno ? errno : EIO;
		close(fd);
		unlinkat(w->dir_fd, WAL_SPARE_NAME, 0);
		return -e;
	}
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	w->seg_fd = fd;
	w->seg_first_index = first_index;
	w->seg_offset = WAL_SEGMENT_HEADER_BYTES;
	w->seg_size = bytes;
	w->layout++;
	return 0;
}

static void wal_on_write(struct loop_op *op, int res, uint32_t flags);
static void wal_on_sync(struct loop_op *op, int res, uint32_t flags);

int wal_open(struct wal *w, const char *data_dir, const struct wal_identity *id,
	     const struct wal_recovery *rec, uint64_t segment_bytes, struct loop *loop,
	     char *why, size_t why_size)
{
	int r;

	memset(w, 0, sizeof(*w));
	w->seg_fd = -1;
	w->spare_fd = -1;
	wal_reader_init(&w->reader);
	w->identity = *id;
	w->segment_bytes = segment_bytes;
	w->loop = loop;
	w->last_index = rec->last_index;
	w->last_term = rec->last_term;
	w->durable_index = rec->last_index;
	r = wal_open_dir(data_dir, true, &w->dir, &w->dir_fd);
	if (r < 0) {
		snprintf(why, why_size, "%s/wal: %s", data_dir, strerror(-r));
		return r;
	}
	/* Appends continue where recovery found the records end (it already cut
	 * any torn tail): the log is not read a second time. */
	if (rec->have_last_segment) {
		char name[64];
		snprintf(name, sizeof(name), "%016llx.seg",
			 (unsigned long long)rec->last_segment_first_index);
		w->seg_fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
		struct stat st;
		if (w->seg_fd < 0 || fstat(w->seg_fd, &st) < 0) {
			snprintf(why, why_size, "%s/%s: %s", w->dir, name, strerror(errno));
			return -errno;
		}
		w->seg_first_index = rec->last_segment_first_index;
		w->seg_offset = rec->last_segment_end;
		w->seg_size = (uint64_t)st.st_size;
	} else {
		r = segment_create(w, rec->last_index + 1, segment_bytes);
		if (r < 0) {
			snprintf(why, why_size, "%s: cannot create the first log segment: %s", w->dir,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

void wal_close(struct wal *w)
{
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	if (w->spare_fd >= 0) {
		close(w->spare_fd);
		unlinkat(w->dir_fd, WAL_SPARE_NAME, 0);
	}
	if (w->dir_fd > 0)
		close(w->dir_fd);
	free(w->dir);
	free(w->gather);
	for (int k = 0; k < WAL_FLIGHTS; k++)
		free(w->flights[k].buf);
	wal_reader_free(&w->reader);
	memset(w, 0, sizeof(*w));
	w->seg_fd = -1;
	w->spare_fd = -1;
	w->reader.fd = -1;
}

int wal_read_entry(struct wal *w, uint64_t index, struct wal_entry *ret)
{
	if (index > w->durable_index || index < w->read_from || w->dir_fd <= 0)
		return -ENOENT;
	return wal_reader_get(&w->reader, w->dir_fd, w->layout, index, ret);
}

int wal_append(struct wal *w, uint64_t index, uint64_t term, uint8_t type,
	       const void *data, uint32_t len)
{
	if (w->failed)
		return -w->failed;
	if (index != w->last_index + 1)
		return -EINVAL;
	size_t need = align8(WAL_RECORD_HEADER_BYTES + (size_t)len);
	if (w->gather_cap - w->gather_len < need) {
		size_t cap = w->gather_cap ? w->gather_cap : 65536;
		while (cap - w->gather_len < need)
			cap *= 2;
		uint8_t *p = realloc(w->gather, cap);
		if (!p)
			return -ENOMEM;
		w->gather = p;
		w->gather_cap = cap;
	}
	if (w->gather_len == 0)
		w->gather_first_index = index;
	ASSERT(w->gather_len % 8 == 0 && w->gather_first_index <= index);
	w->gather_len += wal_record_encode(w->gather + w->gather_len, index, term,
					   w->gather_first_index, type, data, len);
	w->gather_last_index = index;
	w->last_index = index;
	w->last_term = term;
	return 0;
}

int wal_reserve(struct wal *w, uint32_t len)
{
	uint64_t need = align8(WAL_RECORD_HEADER_BYTES + (size_t)len);
	if (w->failed)
		return -w->failed;
	if (w->seg_offset + w->gather_len + need <= w->seg_size)
		return 0;
	/* Time for the next segment. Make the spare now, unless the disk was
	 * full a moment ago (then only the timer tries again, not every write). */
	if (w->spare_fd < 0 && !w->no_space)
		w->no_space = spare_allocate(w, w->segment_bytes) < 0;
	/* The gathered batch moves to the spare whole: it must fit there. */
	if (w->spare_fd >= 0 && WAL_SEGMENT_HEADER_BYTES + w->gather_len + need <= w->segment_bytes)
		return 0;
	return -ENOSPC;
}

int wal_prepare_spare(struct wal *w)
{
	if (w->spare_fd >= 0 || w->failed)
		return 0;
	if (!w->no_space && w->seg_offset + w->gather_len < w->seg_size / 2)
		return 0;
	int r = spare_allocate(w, w->segment_bytes);
	w->no_space = r < 0;
	return r;
}

static void wal_on_failed_reported(struct loop_op *op, int res, uint32_t flags)
{
	(void)res;
	(void)flags;
	struct wal *w = container_of(op, struct wal, failed_op);
	w->on_failed(w->ctx, w->failed);
}

void wal_fail(struct wal *w, int err)
{
	if (w->failed)
		return;
	w->failed = err;
	if (!w->loop) {
		w->on_failed(w->ctx, err);
		return;
	}
	/* Told from the ring, in the next turn: the replies of what settled in
	 * this one (an older flight, say, whose sync completed just before
	 * this one's failed) go out first, before on_failed closes the
	 * connections with writes in flight. Meanwhile the log takes nothing. */
	w->failed_op.complete = wal_on_failed_reported;
	io_uring_prep_nop(loop_sqe(w->loop, &w->failed_op));
}

/* A flight this small is written on the loop's thread, into the page cache,
 * and only its sync goes through the ring. ext4 has no non-blocking buffered
 * write, so the ring hands every write to a worker thread and the linked sync
 * follows it there: a wakeup more per flight, about 11 µs of one synchronous
 * client's setData on this project's machines (io_uring tracepoints), and
 * under a multi load the worker's write of a 100 KB flight took 146 µs (p50)
 * where the loop copies it in a fraction of that: 64 KB here gave 208-223k
 * multis/s, 256 KB 237-242k (with the log's completions run ahead of the
 * loop's turn, since reverted; without that, 256 KB: 221-245k). Larger
 * flights (values near 1 MB) go to the worker, whose copy on the other core
 * pays. */
#define WAL_INLINE_WRITE_BYTES (256 * 1024)

static void submit_sync(struct wal_flight *f)
{
	struct io_uring_sqe *sqe = loop_sqe(f->wal->loop, &f->sync_op);
	io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
}

static void submit_flight(struct wal_flight *f)
{
	size_t left = f->len - f->written;
	if (left <= WAL_INLINE_WRITE_BYTES) {
		ssize_t n = pwrite(f->fd, f->buf + f->written, left, (off_t)(f->offset + f->written));
		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			wal_fail(f->wal, errno);
			return;
		}
		if (n > 0)
			f->written += (size_t)n;
		if (f->written == f->len) {
			submit_sync(f);
			f->pending_cqes = 1;
			return;
		}
	}
	struct io_uring_sqe *sqe = loop_sqe(f->wal->loop, &f->write_op);
	io_uring_prep_write(sqe, f->fd, f->buf + f->written, (unsigned)(f->len - f->written),
			    f->offset + f->written);
	/* The sync is linked: it starts only once the write completed in full. */
	sqe->flags |= IOSQE_IO_LINK;
	submit_sync(f);
	f->pending_cqes = 2;
}

void wal_flush(struct wal *w)
{
	if (w->flight_count == WAL_FLIGHTS || w->gather_len == 0 || w->failed ||
	    w->truncate_pending)
		return;
	/* A second flight starts once the gathered batch is as large as the
	 * one in flight: smaller flights would cost more per entry (the loop's
	 * turns and sends are per flight) than the earlier start saves. */
	if (w->flight_count > 0 &&
	    w->gather_len < w->flights[(w->flight_head + w->flight_count - 1) % WAL_FLIGHTS].len)
		return;
	bool new_segment = w->seg_offset + w->gather_len > w->seg_size;
	/* A flight's sync covers its own segment only: the next segment waits
	 * for the flights in this one to settle (the last one flushes again). */
	if (new_segment && w->flight_count > 0)
		return;
	/* The gathered batch becomes a flight; the buffers swap. */
	struct wal_flight *f = &w->flights[(w->flight_head + w->flight_count) % WAL_FLIGHTS];
	uint8_t *p = f->buf;
	size_t cap = f->cap;
	f->wal = w;
	f->buf = w->gather;
	f->cap = w->gather_cap;
	f->len = w->gather_len;
	f->first_index = w->gather_first_index;
	f->last_index = w->gather_last_index;
	w->gather = p;
	w->gather_cap = cap;
	w->gather_len = 0;
	if (new_segment) {
		uint64_t bytes = w->segment_bytes;
		if (bytes < f->len + WAL_SEGMENT_HEADER_BYTES)
			bytes = f->len + WAL_SEGMENT_HEADER_BYTES;
		int r = segment_create(w, f->first_index, bytes);
		if (r < 0) {
			wal_fail(w, -r);
			return;
		}
	}
	/* The batch goes where the segment ends, and fits in it. */
	ASSERT(w->seg_offset >= WAL_SEGMENT_HEADER_BYTES && w->seg_offset % 8 == 0);
	ASSERT(w->seg_offset + f->len <= w->seg_size);
	ASSERT(f->last_index > w->durable_index && f->first_index <= f->last_index);
	f->fd = w->seg_fd;
	f->offset = w->seg_offset;
	f->written = 0;
	f->synced = false;
	w->seg_offset += f->len;
	w->flight_count++;
	w->batches++;
	f->started_us = loop_now_us();
	f->write_op.complete = wal_on_write;
	f->sync_op.complete = wal_on_sync;
	submit_flight(f);
}

/* Settles the synced flights at the head of the ring, oldest first: what a
 * flight holds is durable once its own sync and every older flight's have
 * completed. */
static void settle_flights(struct wal *w)
{
	uint64_t reported = w->durable_index;
	/* Records removed meanwhile (truncate_pending) are never reported. */
	uint64_t limit = w->truncate_pending ? w->truncate_pending - 1 : UINT64_MAX;
	uint64_t now_us = loop_now_us();
	while (w->flight_count > 0 && w->flights[w->flight_head].synced) {
		struct wal_flight *f = &w->flights[w->flight_head];
		ASSERT(f->written == f->len && f->pending_cqes == 0);
		ASSERT(f->last_index <= w->last_index || w->truncate_pending);
		summary_add(&w->fsync_us, now_us - f->started_us, now_us / 1000);
		w->records_written += f->last_index - f->first_index + 1;
		w->bytes_written += f->len;
		/* Durability only moves forward. */
		uint64_t durable = f->last_index < limit ? f->last_index : limit;
		if (durable > w->durable_index)
			w->durable_index = durable;
		w->flight_head = (w->flight_head + 1) % WAL_FLIGHTS;
		w->flight_count--;
	}
	if (w->truncate_pending && w->flight_count == 0) {
		/* Records of the flights were removed meanwhile: cut them before
		 * anything else is written. */
		uint64_t index = w->truncate_pending;
		w->truncate_pending = 0;
		int r = wal_cut(w, index);
		if (r < 0) {
			wal_fail(w, -r);
			return;
		}
	}
	if (w->durable_index > reported)
		w->on_durable(w->ctx, w->durable_index);
	wal_flush(w);
}

static void flight_completed(struct wal_flight *f)
{
	struct wal *w = f->wal;
	if (f->pending_cqes > 0 || w->failed)
		return;
	if (f->written < f->len) {
		submit_flight(f);	/* a short write: the rest, then the sync again */
		return;
	}
	f->synced = true;
	settle_flights(w);
}

static void wal_on_write(struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct wal_flight *f = container_of(op, struct wal_flight, write_op);
	ASSERT(f->pending_cqes > 0 && f->wal->flight_count > 0);
	f->pending_cqes--;
	if (res < 0)
		wal_fail(f->wal, -res);
	else
		f->written += (size_t)res;
	flight_completed(f);
}

static void wal_on_sync(struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct wal_flight *f = container_of(op, struct wal_flight, sync_op);
	struct wal *w = f->wal;
	ASSERT(f->pending_cqes > 0 && w->flight_count > 0);
	f->pending_cqes--;
#ifdef CORRAL_FAULT_INJECTION
	if (res == 0 && w->fault_fsync_countdown && --w->fault_fsync_countdown == 0)
		res = -EIO;
#endif
	/* -ECANCELED: the linked write was short; flight_completed() resubmits.
	 * Any other error is final: never retry an fsync. */
	if (res < 0 && res != -ECANCELED)
		wal_fail(w, -res);
	flight_completed(f);
}

int wal_purge(struct wal *w, uint64_t index, struct reclaim *rc)
{
	struct wal_segment_file *segs = NULL;
	size_t n = 0;
	int r = 0;
	if (wal_list_segments(w->dir_fd, &segs, &n) < 0)
		return 0;
	/* Segment k holds first_k .. first_(k+1) - 1. */
	for (size_t k = 0; k + 1 < n; k++) {
		if (segs[k].first_index == w->seg_first_index || segs[k + 1].first_index - 1 > index)
			break;
		/* Archived first; one that cannot be stays, and the later ones
		 * with it (the archive must not have a gap). */
		if (w->archive_dir && (r = archive_file(w->dir_fd, segs[k].name, w->archive_dir,
							"wal")) < 0)
			break;
		reclaim_unlink(rc, w->dir_fd, segs[k].name);
		w->layout++;
	}
	reclaim_sync_dir(rc, w->dir_fd);
	free(segs);
	return r;
}

int wal_purge_dir(const char *data_dir, uint64_t index, struct reclaim *rc)
{
	char *dir;
	int dir_fd, r2;
	struct wal_segment_file *segs = NULL;
	size_t n = 0;
	int r = wal_open_dir(data_dir, false, &dir, &dir_fd);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = wal_list_segments(dir_fd, &segs, &n);
	for (size_t k = 0; r == 0 && k + 1 < n && segs[k + 1].first_index - 1 <= index; k++)
		if ((r = reclaim_unlink(rc, dir_fd, segs[k].name)) == -ENOENT)
			r = 0;
	if (n > 0 && (r2 = reclaim_sync_dir(rc, dir_fd)) < 0 && r == 0)
		r = r2;
	free(segs);
	close(dir_fd);
	free(dir);
	return r;
}

int wal_bootstrap(const char *data_dir, const struct wal_identity *id, uint64_t segment_bytes,
		  uint64_t term, uint8_t type, const void *data, uint32_t len)
{
	struct wal w;
	memset(&w, 0, sizeof(w));
	w.seg_fd = -1;
	w.spare_fd = -1;
	wal_reader_init(&w.reader);
	w.identity = *id;
	int r = wal_open_dir(data_dir, true, &w.dir, &w.dir_fd);
	if (r < 0)
		return r;
	size_t need = align8(WAL_RECORD_HEADER_BYTES + (size_t)len);
	uint8_t *rec = calloc(1, need);
	r = rec ? segment_create(&w, 1, segment_bytes) : -ENOMEM;
	if (r == 0) {
		wal_record_encode(rec, 1, term, 1, type, data, len);
		if (pwrite(w.seg_fd, rec, need, WAL_SEGMENT_HEADER_BYTES) != (ssize_t)need ||
		    fdatasync(w.seg_fd) < 0)
			r = -(errno ? errno : EIO);
	}
	free(rec);
	wal_close(&w);
	return r;
}
