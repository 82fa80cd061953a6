/* wal: see wal.h. */
#include "wal.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#define WAL_MAGIC "CORRALWL"
#define WAL_FORMAT_VERSION 1
#define WAL_SPARE_NAME "spare.tmp"

static uint32_t checksum(const void *p, size_t len)
{
	return (uint32_t)crc32(0L, p, (uInt)len);
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

static void segment_header(uint8_t h[WAL_SEGMENT_HEADER_BYTES], const struct wal_identity *id,
			   uint64_t first_index)
{
	memset(h, 0, WAL_SEGMENT_HEADER_BYTES);
	memcpy(h, WAL_MAGIC, 8);
	put32(h + 8, WAL_FORMAT_VERSION);
	put32(h + 12, WAL_SEGMENT_HEADER_BYTES);
	memcpy(h + 16, id->cluster_id, WAL_CLUSTER_ID_BYTES);
	put64(h + 32, id->server_id);
	put64(h + 40, first_index);
	put32(h + 60, checksum(h, 60));
}

/* Encodes one record at p (room for align8(40 + len)); returns its size. */
static size_t record_encode(uint8_t *p, uint64_t index, uint64_t term, uint64_t batch,
			    uint8_t type, const void *data, uint32_t len)
{
	size_t total = WAL_RECORD_HEADER_BYTES + len;
	size_t padded = align8(total);
	put32(p, (uint32_t)total);
	put64(p + 8, index);
	put64(p + 16, term);
	put64(p + 24, batch);
	p[32] = type;
	p[33] = p[34] = p[35] = 0;
	put32(p + 36, len);
	if (len)
		memcpy(p + WAL_RECORD_HEADER_BYTES, data, len);
	memset(p + total, 0, padded - total);
	put32(p + 4, checksum(p + 8, total - 8));
	return padded;
}

/* A record at off that checks out by itself (length, checksum). */
static bool record_intact(const uint8_t *base, size_t size, size_t off)
{
	if (off + WAL_RECORD_HEADER_BYTES > size)
		return false;
	uint32_t total = get32(base + off);
	if (total < WAL_RECORD_HEADER_BYTES || off + total > size)
		return false;
	if (get32(base + off + 36) != total - WAL_RECORD_HEADER_BYTES)
		return false;
	return get32(base + off + 4) == checksum(base + off + 8, total - 8);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

struct segment_file {
	char name[32];
	uint64_t first_index;
};

static int segment_cmp(const void *a, const void *b)
{
	const struct segment_file *x = a, *y = b;
	return x->first_index < y->first_index ? -1 : x->first_index > y->first_index;
}

/* Lists the segments of dir_fd in index order. */
static int list_segments(int dir_fd, struct segment_file **ret, size_t *ret_count)
{
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct segment_file *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		unsigned long long first;
		char tail[8];
		if (strlen(e->d_name) != 20 || sscanf(e->d_name, "%16llx.%7s", &first, tail) != 2 ||
		    strcmp(tail, "seg") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct segment_file *l = realloc(list, cap * sizeof(*l));
			if (!l) {
				free(list);
				closedir(d);
				return -ENOMEM;
			}
			list = l;
		}
		memcpy(list[n].name, e->d_name, 21);
		list[n].first_index = first;
		n++;
	}
	closedir(d);
	qsort(list, n, sizeof(*list), segment_cmp);
	*ret = list;
	*ret_count = n;
	return 0;
}

struct scan {
	struct wal_identity seen;
	uint64_t covered_index;		/* segments wholly at or below it are skipped */
	int dir_fd;
	const char *dir;
	const struct wal_identity *id;	/* NULL: take whatever the first header says */
	bool read_only;			/* verify: report, change nothing */
	wal_visit_fn visit;
	void *ctx;
	FILE *out;
	struct wal_recovery *rec;
	uint64_t last_seg_first_index;
	uint64_t last_seg_end;
	bool have_last_seg;
	char *why;
	size_t why_size;
};

static int scan_segment(struct scan *s, const struct segment_file *seg, bool last_segment,
			uint64_t *expected_index)
{
	struct wal_recovery *rec = s->rec;
	int fd = openat(s->dir_fd, seg->name, (s->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	struct stat st;
	uint8_t *base = NULL;
	int r = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(s->why, s->why_size, "%s/%s: %s", s->dir, seg->name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	size_t size = (size_t)st.st_size;
	if (size < WAL_SEGMENT_HEADER_BYTES) {
		snprintf(s->why, s->why_size, "%s/%s: %zu bytes, shorter than a segment header",
			 s->dir, seg->name, size);
		close(fd);
		return -EBADMSG;
	}
	base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		snprintf(s->why, s->why_size, "%s/%s: mmap: %s", s->dir, seg->name, strerror(errno));
		close(fd);
		return -errno;
	}
	if (memcmp(base, WAL_MAGIC, 8) != 0 || get32(base + 60) != checksum(base, 60) ||
	    get32(base + 8) != WAL_FORMAT_VERSION || get64(base + 40) != seg->first_index) {
		snprintf(s->why, s->why_size, "%s/%s: damaged segment header at offset 0", s->dir,
			 seg->name);
		r = -EBADMSG;
		goto out;
	}
	if (!s->id) {
		/* No identity given (verify without raft.meta): all segments must
		 * at least agree with the first one. */
		memcpy(s->seen.cluster_id, base + 16, WAL_CLUSTER_ID_BYTES);
		s->seen.server_id = get64(base + 32);
		s->id = &s->seen;
	}
	if (memcmp(base + 16, s->id->cluster_id, WAL_CLUSTER_ID_BYTES) != 0 ||
	    get64(base + 32) != s->id->server_id) {
		snprintf(s->why, s->why_size, "%s/%s belongs to another cluster or server (server id "
			 "%llu in the file, %llu here)", s->dir, seg->name,
			 (unsigned long long)get64(base + 32), (unsigned long long)s->id->server_id);
		r = -EXDEV;
		goto out;
	}
	if (*expected_index && seg->first_index != *expected_index) {
		snprintf(s->why, s->why_size, "%s/%s starts at index %llu, the log before it ends at %llu",
			 s->dir, seg->name, (unsigned long long)seg->first_index,
			 (unsigned long long)(*expected_index - 1));
		r = -EBADMSG;
		goto out;
	}
	*expected_index = seg->first_index;

	size_t off = WAL_SEGMENT_HEADER_BYTES;
	uint64_t seg_records = 0;
	while (off < size && !all_zero(base + off, size - off < 8 ? size - off : 8)) {
		bool ok = off + WAL_RECORD_HEADER_BYTES <= size && record_intact(base, size, off) &&
			  get64(base + off + 8) == *expected_index &&
			  get64(base + off + 16) >= rec->last_term;
		if (!ok) {
			/* Torn tail or damage? A torn write can leave garbage only in the
			 * last, never-synced batch: if an intact record of a later batch
			 * follows, the damage is in synced data. */
			bool later_batch = false;
			for (size_t k = off + 8; k + WAL_RECORD_HEADER_BYTES <= size && !later_batch; k += 8)
				later_batch = record_intact(base, size, k) &&
					      get64(base + k + 24) > *expected_index;
			if (!last_segment || later_batch) {
				snprintf(s->why, s->why_size, "%s/%s: damaged record at offset %zu "
					 "(expected index %llu); the log after it cannot be trusted",
					 s->dir, seg->name, off, (unsigned long long)*expected_index);
				r = -EBADMSG;
				goto out;
			}
			rec->torn_tail_cut = true;
			snprintf(rec->torn_file, sizeof(rec->torn_file), "%s/%s", s->dir, seg->name);
			rec->torn_offset = off;
			if (s->out)
				fprintf(s->out, "%s/%s: torn tail at offset %zu (a crash mid-write); "
					"recovery cuts the log there\n", s->dir, seg->name, off);
			if (!s->read_only &&
			    (fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)(size - off)) < 0 ||
			     fdatasync(fd) < 0)) {
				snprintf(s->why, s->why_size, "%s/%s: cannot cut the torn tail at %zu: %s",
					 s->dir, seg->name, off, strerror(errno));
				r = -errno;
				goto out;
			}
			break;
		}
		uint32_t total = get32(base + off);
		uint64_t index = get64(base + off + 8);
		uint64_t term = get64(base + off + 16);
		uint32_t len = total - WAL_RECORD_HEADER_BYTES;
		if (s->visit) {
			r = s->visit(s->ctx, index, term, base[off + 32], base + off + WAL_RECORD_HEADER_BYTES,
				     len);
			if (r < 0) {
				if (!s->why[0])
					snprintf(s->why, s->why_size, "%s/%s: record at offset %zu (index %llu) "
						 "cannot be applied: %s", s->dir, seg->name, off,
						 (unsigned long long)index, strerror(-r));
				goto out;
			}
		}
		if (!rec->first_index)
			rec->first_index = index;
		rec->last_index = index;
		rec->last_term = term;
		rec->records++;
		seg_records++;
		(*expected_index)++;
		off += align8(total);
	}
	rec->segments++;
	if (s->out)
		fprintf(s->out, "%s/%s: %llu records, index %llu..%llu\n", s->dir, seg->name,
			(unsigned long long)seg_records, (unsigned long long)seg->first_index,
			(unsigned long long)(*expected_index - 1));
	s->have_last_seg = true;
	s->last_seg_first_index = seg->first_index;
	s->last_seg_end = off;
out:
	munmap(base, size);
	close(fd);
	return r;
}

static int scan_all(struct scan *s)
{
	struct segment_file *segs = NULL;
	size_t n = 0;
	uint64_t expected = 0;
	int r = list_segments(s->dir_fd, &segs, &n);
	if (r < 0) {
		snprintf(s->why, s->why_size, "%s: cannot list: %s", s->dir, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		/* Wholly covered by the snapshot recovery starts from: skip its
		 * records (the next segment's header tells where it ended). */
		if (i + 1 < n && s->covered_index && segs[i + 1].first_index - 1 <= s->covered_index) {
			expected = segs[i + 1].first_index;
			continue;
		}
		r = scan_segment(s, &segs[i], i + 1 == n, &expected);
	}
	free(segs);
	return r;
}

static int open_wal_dir(const char *data_dir, bool create, char **ret_dir, int *ret_fd)
{
	char *dir = NULL;
	if (asprintf(&dir, "%s/wal", data_dir) < 0)
		return -ENOMEM;
	if (create && mkdir(dir, 0750) < 0 && errno != EEXIST) {
		int e = errno;
		free(dir);
		return -e;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(dir);
		return -e;
	}
	*ret_dir = dir;
	*ret_fd = fd;
	return 0;
}

int wal_recover(const char *data_dir, const struct wal_identity *id, uint64_t covered_index,
		wal_visit_fn visit, void *ctx, struct wal_recovery *ret, char *why, size_t why_size)
{
	struct scan s = { .id = id, .visit = visit, .ctx = ctx, .rec = ret, .why = why,
			  .why_size = why_size, .covered_index = covered_index };
	memset(ret, 0, sizeof(*ret));
	why[0] = 0;
	char *dir;
	int r = open_wal_dir(data_dir, true, &dir, &s.dir_fd);
	if (r < 0) {
		snprintf(why, why_size, "%s/wal: %s", data_dir, strerror(-r));
		return r;
	}
	s.dir = dir;
	unlinkat(s.dir_fd, WAL_SPARE_NAME, 0);	/* a spare never holds records */
	r = scan_all(&s);
	ret->have_last_segment = s.have_last_seg;
	ret->last_segment_first_index = s.last_seg_first_index;
	ret->last_segment_end = s.last_seg_end;
	close(s.dir_fd);
	free(dir);
	return r;
}

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
	segment_header(h, &w->identity, first_index);
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
	w->identity = *id;
	w->segment_bytes = segment_bytes;
	w->loop = loop;
	w->last_index = rec->last_index;
	w->last_term = rec->last_term;
	w->durable_index = rec->last_index;
	w->write_op.complete = wal_on_write;
	w->sync_op.complete = wal_on_sync;
	r = open_wal_dir(data_dir, true, &w->dir, &w->dir_fd);
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
	free(w->flight);
	memset(w, 0, sizeof(*w));
	w->seg_fd = -1;
	w->spare_fd = -1;
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
	w->gather_len += record_encode(w->gather + w->gather_len, index, term,
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

static void fail(struct wal *w, int err)
{
	if (w->failed)
		return;
	w->failed = err;
	w->on_failed(w->ctx, err);
}

static void submit_flight(struct wal *w)
{
	struct io_uring_sqe *sqe = loop_sqe(w->loop, &w->write_op);
	io_uring_prep_write(sqe, w->flight_fd, w->flight + w->flight_written,
			    (unsigned)(w->flight_len - w->flight_written),
			    w->flight_offset + w->flight_written);
	/* The sync is linked: it starts only once the write completed in full. */
	sqe->flags |= IOSQE_IO_LINK;
	sqe = loop_sqe(w->loop, &w->sync_op);
	io_uring_prep_fsync(sqe, w->flight_fd, IORING_FSYNC_DATASYNC);
	w->pending_cqes = 2;
}

void wal_flush(struct wal *w)
{
	if (w->in_flight || w->gather_len == 0 || w->failed)
		return;
	/* The gathered batch becomes the flight; the buffers swap. */
	uint8_t *p = w->flight;
	size_t cap = w->flight_cap;
	w->flight = w->gather;
	w->flight_cap = w->gather_cap;
	w->flight_len = w->gather_len;
	w->flight_last_index = w->gather_last_index;
	w->gather = p;
	w->gather_cap = cap;
	w->gather_len = 0;
	if (w->seg_offset + w->flight_len > w->seg_size) {
		uint64_t bytes = w->segment_bytes;
		if (bytes < w->flight_len + WAL_SEGMENT_HEADER_BYTES)
			bytes = w->flight_len + WAL_SEGMENT_HEADER_BYTES;
		int r = segment_create(w, get64(w->flight + 8), bytes);
		if (r < 0) {
			fail(w, -r);
			return;
		}
	}
	w->flight_fd = w->seg_fd;
	w->flight_offset = w->seg_offset;
	w->flight_written = 0;
	w->seg_offset += w->flight_len;
	w->in_flight = true;
	w->batches++;
	submit_flight(w);
}

static int truncate_disk(struct wal *w, uint64_t index);

static void flight_settled(struct wal *w)
{
	if (w->pending_cqes > 0)
		return;
	if (w->failed)
		return;
	if (w->flight_written < w->flight_len) {
		submit_flight(w);	/* a short write: the rest, then the sync again */
		return;
	}
	w->in_flight = false;
	w->records_written += w->flight_last_index - w->durable_index;
	w->bytes_written += w->flight_len;
	uint64_t reported = w->durable_index;
	w->durable_index = w->flight_last_index;
	if (w->truncate_pending) {
		/* Records of this flight were removed meanwhile: cut them before
		 * anything else is written, and report only what remains. */
		uint64_t index = w->truncate_pending;
		w->truncate_pending = 0;
		int r = truncate_disk(w, index);
		if (r < 0) {
			fail(w, -r);
			return;
		}
	}
	if (w->durable_index > reported)
		w->on_durable(w->ctx, w->durable_index);
	wal_flush(w);
}

/* Cuts the log on disk at index (see wal_truncate). Nothing is in flight. */
static int truncate_disk(struct wal *w, uint64_t index)
{
	struct segment_file *segs = NULL;
	size_t n = 0, k;
	int r = list_segments(w->dir_fd, &segs, &n);
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
	bool unlinked = false;
	for (size_t j = k + 1; j < n; j++) {
		if (segs[j].first_index == w->seg_first_index && w->seg_fd >= 0) {
			close(w->seg_fd);
			w->seg_fd = -1;
		}
		if (unlinkat(w->dir_fd, segs[j].name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			goto out;
		}
		unlinked = true;
	}
	if (unlinked && fsync(w->dir_fd) < 0) {
		r = -errno;
		goto out;
	}
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
	size_t size = (size_t)st.st_size, off = WAL_SEGMENT_HEADER_BYTES;
	uint8_t *base = size > off ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	bool found = false;
	if (base != MAP_FAILED) {
		while (off + WAL_RECORD_HEADER_BYTES <= size) {
			uint32_t total = get32(base + off);
			if (get64(base + off + 8) == index) {
				found = true;
				break;
			}
			if (total < WAL_RECORD_HEADER_BYTES || off + align8(total) > size)
				break;
			off += align8(total);
		}
		munmap(base, size);
	}
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
		while (off < w->gather_len && get64(w->gather + off + 8) != index)
			off += align8(get32(w->gather + off));
		w->gather_len = off;
		w->gather_last_index = index - 1;
		return 0;
	}
	w->gather_len = 0;	/* every gathered record comes after index */
	if (w->in_flight) {
		if (!w->truncate_pending || index < w->truncate_pending)
			w->truncate_pending = index;
		return 0;
	}
	int r = truncate_disk(w, index);
	if (r < 0)
		fail(w, -r);
	return r;
}

static void wal_on_write(struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct wal *w = (struct wal *)((char *)op - offsetof(struct wal, write_op));
	w->pending_cqes--;
	if (res < 0)
		fail(w, -res);
	else
		w->flight_written += (size_t)res;
	flight_settled(w);
}

static void wal_on_sync(struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct wal *w = (struct wal *)((char *)op - offsetof(struct wal, sync_op));
	w->pending_cqes--;
#ifdef CORRAL_FAULT_INJECTION
	if (res == 0 && w->fault_fsync_countdown && --w->fault_fsync_countdown == 0)
		res = -EIO;
#endif
	/* -ECANCELED: the linked write was short; flight_settled() resubmits.
	 * Any other error is final: never retry an fsync. */
	if (res < 0 && res != -ECANCELED)
		fail(w, -res);
	flight_settled(w);
}

void wal_purge(struct wal *w, uint64_t index)
{
	struct segment_file *segs = NULL;
	size_t n = 0;
	if (list_segments(w->dir_fd, &segs, &n) < 0)
		return;
	/* Segment k holds first_k .. first_(k+1) - 1. */
	for (size_t k = 0; k + 1 < n; k++) {
		if (segs[k].first_index == w->seg_first_index || segs[k + 1].first_index - 1 > index)
			break;
		unlinkat(w->dir_fd, segs[k].name, 0);
	}
	fsync(w->dir_fd);
	free(segs);
}

int wal_verify(const char *data_dir, const struct wal_identity *id, void *out_file)
{
	char why[512] = "";
	struct wal_recovery rec;
	struct scan s = { .id = id, .read_only = true, .rec = &rec, .out = out_file, .why = why,
			  .why_size = sizeof(why) };
	memset(&rec, 0, sizeof(rec));
	char *dir;
	int r = open_wal_dir(data_dir, false, &dir, &s.dir_fd);
	if (r < 0) {
		fprintf(out_file, "%s/wal: %s\n", data_dir, strerror(-r));
		return r;
	}
	s.dir = dir;
	r = scan_all(&s);
	if (r < 0)
		fprintf(out_file, "DAMAGED: %s\n", why);
	else
		fprintf(out_file, "log: %u segments, %llu records, index %llu..%llu%s\n", rec.segments,
			(unsigned long long)rec.records, (unsigned long long)rec.first_index,
			(unsigned long long)rec.last_index, rec.torn_tail_cut ? ", torn tail" : "");
	close(s.dir_fd);
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
	w.identity = *id;
	int r = open_wal_dir(data_dir, true, &w.dir, &w.dir_fd);
	if (r < 0)
		return r;
	size_t need = align8(WAL_RECORD_HEADER_BYTES + (size_t)len);
	uint8_t *rec = calloc(1, need);
	r = rec ? segment_create(&w, 1, segment_bytes) : -ENOMEM;
	if (r == 0) {
		record_encode(rec, 1, term, 1, type, data, len);
		if (pwrite(w.seg_fd, rec, need, WAL_SEGMENT_HEADER_BYTES) != (ssize_t)need ||
		    fdatasync(w.seg_fd) < 0)
			r = -(errno ? errno : EIO);
	}
	free(rec);
	wal_close(&w);
	return r;
}
