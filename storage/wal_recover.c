/* wal_recover: reading the log back (see wal_recover() and wal_verify() in
 * wal.h): every segment in order, identity and continuity checked, a torn
 * tail cut, damage reported with file and offset. */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"

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

/* A segment being scanned, mapped whole. */
struct mapped {
	const struct wal_segment_file *seg;
	int fd;
	uint8_t *base;
	size_t size;
	bool copied;		/* base is a malloc'd copy, not a mapping */
};

/* A read-only scan (--verify, dump, restore) may run beside a corrald
 * that writes the log, and a follower's log can be cut (ftruncate) under a
 * mapping, which would kill the reader (SIGBUS): it reads a copy. */
static int copy_segment(struct scan *s, struct mapped *m, int fd, size_t size)
{
	uint8_t *copy = malloc(size);
	size_t got = 0;
	while (copy && got < size) {
		ssize_t n = pread(fd, copy + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* cut meanwhile: what was read is what there is */
		got += (size_t)n;
	}
	if (!copy) {
		snprintf(s->why, s->why_size, "%s/%s: out of memory", s->dir, m->seg->name);
		close(fd);
		return -ENOMEM;
	}
	memset(copy + got, 0, size - got);
	m->fd = fd;
	m->base = copy;
	m->size = size;
	m->copied = true;
	return 0;
}

/* Opens m->seg (for writing too unless read only, to cut a torn tail) and
 * maps it (read only: copies it). Returns 0, or -errno with s->why set and nothing left open. */
static int map_segment(struct scan *s, struct mapped *m)
{
	const struct wal_segment_file *seg = m->seg;
	int fd = openat(s->dir_fd, seg->name, (s->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	struct stat st;

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
	if (s->read_only)
		return copy_segment(s, m, fd, size);
	uint8_t *base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		snprintf(s->why, s->why_size, "%s/%s: mmap: %s", s->dir, seg->name, strerror(errno));
		close(fd);
		return -errno;
	}
	m->fd = fd;
	m->base = base;
	m->size = size;
	return 0;
}

/* Checks a segment's header: intact, of this cluster and server (or of the
 * first segment's, when no identity was given), and starting where the log
 * before it ended (expected_index, 0 for the first segment read). */
static int check_header(struct scan *s, const struct mapped *m, uint64_t expected_index)
{
	const struct wal_segment_file *seg = m->seg;
	const uint8_t *base = m->base;

	if (memcmp(base, WAL_MAGIC, 8) != 0 || load_be32(base + 60) != wal_checksum(base, 60) ||
	    load_be32(base + 8) != WAL_FORMAT_VERSION || load_be64(base + 40) != seg->first_index) {
		snprintf(s->why, s->why_size, "%s/%s: damaged segment header at offset 0", s->dir,
			 seg->name);
		return -EBADMSG;
	}
	if (!s->id) {
		/* No identity given (verify without raft.meta): all segments must
		 * at least agree with the first one. */
		memcpy(s->seen.cluster_id, base + 16, WAL_CLUSTER_ID_BYTES);
		s->seen.server_id = load_be64(base + 32);
		s->id = &s->seen;
	}
	if (memcmp(base + 16, s->id->cluster_id, WAL_CLUSTER_ID_BYTES) != 0 ||
	    load_be64(base + 32) != s->id->server_id) {
		snprintf(s->why, s->why_size, "%s/%s belongs to another cluster or server (server id "
			 "%llu in the file, %llu here)", s->dir, seg->name,
			 (unsigned long long)load_be64(base + 32), (unsigned long long)s->id->server_id);
		return -EXDEV;
	}
	if (expected_index && seg->first_index != expected_index) {
		snprintf(s->why, s->why_size, "%s/%s starts at index %llu, the log before it ends at %llu",
			 s->dir, seg->name, (unsigned long long)seg->first_index,
			 (unsigned long long)(expected_index - 1));
		return -EBADMSG;
	}
	return 0;
}

/* How many batches after expected_index's have an intact record in the
 * segment from off on (stopping at max + 1). Only the file's data regions
 * are read: the unwritten rest of a preallocated segment is a hole to
 * SEEK_DATA, so a look past the end of the records costs a system call or
 * two, not a read of the whole segment. */
static unsigned later_batches(const struct mapped *m, size_t off, uint64_t expected_index,
			      unsigned max)
{
	unsigned n = 0;
	uint64_t batch = expected_index;
	size_t at = off;
	while (at < m->size && n <= max) {
		off_t d = lseek(m->fd, (off_t)(at & ~(size_t)7), SEEK_DATA);
		if (d < 0 || (size_t)d >= m->size)
			break;
		off_t h = lseek(m->fd, d, SEEK_HOLE);
		size_t end = h <= d || (size_t)h > m->size ? m->size : (size_t)h;
		for (size_t k = (size_t)d > at ? (size_t)d : at; k + WAL_RECORD_HEADER_BYTES <= end &&
		     n <= max; k += 8) {
			if (!wal_record_intact(m->base, m->size, k) || load_be64(m->base + k + 24) <= batch)
				continue;
			batch = load_be64(m->base + k + 24);
			n++;
		}
		at = end;
	}
	return n;
}

/* At off, where the record with expected_index should be, is not an intact
 * one (or zeroes with intact records after them). Torn tail or damage? A
 * crash can leave garbage, or zeroes, only in the batches whose sync had not
 * completed: the last one and the WAL_FLIGHTS - 1 written beside it (wal.h),
 * never reported durable, as each is only after the ones before it. So
 * intact records of that many later batches may follow a torn tail; one
 * batch more, and the damage is in synced data. A torn tail (of the last
 * segment only) is cut there: recorded in s->rec and, unless read only,
 * zeroed on disk with everything after it. Returns 0 once cut, else -errno
 * with s->why set. */
static int cut_torn_tail(struct scan *s, const struct mapped *m, size_t off, bool last_segment,
			 uint64_t expected_index)
{
	const struct wal_segment_file *seg = m->seg;
	struct wal_recovery *rec = s->rec;
	unsigned later = later_batches(m, off + 8, expected_index, WAL_FLIGHTS - 1);

	if (!last_segment || later > WAL_FLIGHTS - 1) {
		snprintf(s->why, s->why_size, "%s/%s: damaged record at offset %zu "
			 "(expected index %llu); the log after it cannot be trusted",
			 s->dir, seg->name, off, (unsigned long long)expected_index);
		return -EBADMSG;
	}
	rec->torn_tail_cut = true;
	snprintf(rec->torn_file, sizeof(rec->torn_file), "%s/%s", s->dir, seg->name);
	rec->torn_offset = off;
	if (s->out)
		fprintf(s->out, "%s/%s: torn tail at offset %zu (a crash mid-write); "
			"recovery cuts the log there\n", s->dir, seg->name, off);
	if (!s->read_only &&
	    (fallocate(m->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)(m->size - off)) < 0 ||
	     fdatasync(m->fd) < 0)) {
		snprintf(s->why, s->why_size, "%s/%s: cannot cut the torn tail at %zu: %s",
			 s->dir, seg->name, off, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Reads a segment's records in order, each visited and counted in s->rec,
 * up to the zeroes after the last (or a torn tail, cut). Returns 0 with
 * *ret_end, where the records end, and *ret_records, how many there were;
 * else -errno with s->why set. */
static int scan_records(struct scan *s, const struct mapped *m, bool last_segment,
			uint64_t *expected_index, size_t *ret_end, uint64_t *ret_records)
{
	const struct wal_segment_file *seg = m->seg;
	const uint8_t *base = m->base;
	size_t size = m->size;
	struct wal_recovery *rec = s->rec;
	size_t off = WAL_SEGMENT_HEADER_BYTES;
	uint64_t seg_records = 0;
	bool cut = false;
	int r;

	while (off < size && !wal_all_zero(base + off, size - off < 8 ? size - off : 8)) {
		bool ok = off + WAL_RECORD_HEADER_BYTES <= size && wal_record_intact(base, size, off) &&
			  load_be64(base + off + 8) == *expected_index &&
			  load_be64(base + off + 16) >= rec->last_term;
		if (!ok) {
			r = cut_torn_tail(s, m, off, last_segment, *expected_index);
			if (r < 0)
				return r;
			cut = true;
			break;
		}
		uint32_t total = load_be32(base + off);
		uint64_t index = load_be64(base + off + 8);
		uint64_t term = load_be64(base + off + 16);
		uint32_t len = total - WAL_RECORD_HEADER_BYTES;
		if (s->visit) {
			r = s->visit(s->ctx, index, term, base[off + 32], base + off + WAL_RECORD_HEADER_BYTES,
				     len);
			if (r < 0) {
				if (!s->why[0])
					snprintf(s->why, s->why_size, "%s/%s: record at offset %zu (index %llu) "
						 "cannot be applied: %s", s->dir, seg->name, off,
						 (unsigned long long)index, strerror(-r));
				return r;
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
	/* Zeroes end the records. In the last segment, intact records of a
	 * later batch after them mean a batch written beside the one whose
	 * blocks never reached the disk: a torn tail too. */
	if (!cut && last_segment && off < size && later_batches(m, off, *expected_index, 0) > 0) {
		r = cut_torn_tail(s, m, off, last_segment, *expected_index);
		if (r < 0)
			return r;
	}
	*ret_end = off;
	*ret_records = seg_records;
	return 0;
}

static int scan_segment(struct scan *s, const struct wal_segment_file *seg, bool last_segment,
			uint64_t *expected_index)
{
	struct wal_recovery *rec = s->rec;
	struct mapped m = { .seg = seg };
	size_t end;
	uint64_t seg_records;

	int r = map_segment(s, &m);
	if (r < 0)
		return r;
	r = check_header(s, &m, *expected_index);
	if (r == 0) {
		*expected_index = seg->first_index;
		r = scan_records(s, &m, last_segment, expected_index, &end, &seg_records);
	}
	if (r == 0) {
		rec->segments++;
		if (s->out)
			fprintf(s->out, "%s/%s: %llu records, index %llu..%llu\n", s->dir,
				seg->name, (unsigned long long)seg_records,
				(unsigned long long)seg->first_index,
				(unsigned long long)(*expected_index - 1));
		s->have_last_seg = true;
		s->last_seg_first_index = seg->first_index;
		s->last_seg_end = end;
	}
	if (m.copied)
		free(m.base);
	else
		munmap(m.base, m.size);
	close(m.fd);
	return r;
}

static int scan_all(struct scan *s)
{
	struct wal_segment_file *segs = NULL;
	size_t n = 0;
	uint64_t expected = 0;
	int r = wal_list_segments(s->dir_fd, &segs, &n);
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

int wal_recover(const char *data_dir, const struct wal_identity *id, uint64_t covered_index,
		wal_visit_fn visit, void *ctx, struct wal_recovery *ret, char *why, size_t why_size)
{
	struct scan s = { .id = id, .visit = visit, .ctx = ctx, .rec = ret, .why = why,
			  .why_size = why_size, .covered_index = covered_index };
	memset(ret, 0, sizeof(*ret));
	why[0] = 0;
	char *dir;
	int r = wal_open_dir(data_dir, true, &dir, &s.dir_fd);
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

int wal_verify(const char *data_dir, const struct wal_identity *id, void *out_file)
{
	char why[512] = "";
	struct wal_recovery rec;
	struct scan s = { .id = id, .read_only = true, .rec = &rec, .out = out_file, .why = why,
			  .why_size = sizeof(why) };
	memset(&rec, 0, sizeof(rec));
	char *dir;
	int r = wal_open_dir(data_dir, false, &dir, &s.dir_fd);
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

/* A segment of wal_read(): in which of the directories it is. */
struct placed_segment {
	struct wal_segment_file seg;
	size_t dir;
};

static int placed_cmp(const void *a, const void *b)
{
	const struct placed_segment *x = a, *y = b;
	if (x->seg.first_index != y->seg.first_index)
		return x->seg.first_index < y->seg.first_index ? -1 : 1;
	return x->dir < y->dir ? -1 : x->dir > y->dir;
}

/* Lists the segments of every directory that has a wal/ (dir_fds[i] -1
 * for those that do not), merged in index order, one per first index. */
static int list_placed(const int *dir_fds, size_t dir_count, struct placed_segment **ret,
		       size_t *ret_count)
{
	struct placed_segment *all = NULL;
	size_t n = 0;
	for (size_t d = 0; d < dir_count; d++) {
		struct wal_segment_file *segs = NULL;
		size_t k = 0;
		if (dir_fds[d] < 0)
			continue;
		int r = wal_list_segments(dir_fds[d], &segs, &k);
		struct placed_segment *more = r == 0 ? realloc(all, (n + k + 1) * sizeof(*all)) : NULL;
		if (!more) {
			free(segs);
			free(all);
			return r < 0 ? r : -ENOMEM;
		}
		all = more;
		for (size_t i = 0; i < k; i++)
			all[n++] = (struct placed_segment){ .seg = segs[i], .dir = d };
		free(segs);
	}
	if (n > 1)
		qsort(all, n, sizeof(*all), placed_cmp);
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (kept == 0 || all[kept - 1].seg.first_index != all[i].seg.first_index)
			all[kept++] = all[i];
	*ret = all;
	*ret_count = kept;
	return 0;
}

static int read_placed(struct scan *s, const int *dir_fds, char **dir_names,
		       const struct placed_segment *segs, size_t n)
{
	uint64_t expected = 0;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (i + 1 < n && s->covered_index && segs[i + 1].seg.first_index - 1 <= s->covered_index) {
			expected = segs[i + 1].seg.first_index;
			continue;
		}
		s->dir_fd = dir_fds[segs[i].dir];
		s->dir = dir_names[segs[i].dir];
		r = scan_segment(s, &segs[i].seg, i + 1 == n, &expected);
	}
	return r;
}

int wal_read(const char *const *dirs, size_t dir_count, uint64_t covered_index, wal_visit_fn visit,
	     void *ctx, struct wal_recovery *ret, char *why, size_t why_size)
{
	struct scan s = { .read_only = true, .visit = visit, .ctx = ctx, .rec = ret, .why = why,
			  .why_size = why_size, .covered_index = covered_index };
	int fds[8];
	char *names[8] = { 0 };
	struct placed_segment *segs = NULL;
	size_t n = 0;
	int r = 0;
	memset(ret, 0, sizeof(*ret));
	why[0] = 0;
	if (dir_count > 8)
		return -E2BIG;
	for (size_t d = 0; d < dir_count; d++) {
		fds[d] = -1;
		int e = r == 0 ? wal_open_dir(dirs[d], false, &names[d], &fds[d]) : 0;
		if (e < 0 && e != -ENOENT) {
			snprintf(why, why_size, "%s/wal: %s", dirs[d], strerror(-e));
			r = e;
		}
	}
	if (r == 0) {
		r = list_placed(fds, dir_count, &segs, &n);
		if (r < 0)
			snprintf(why, why_size, "cannot list the log's segments: %s", strerror(-r));
	}
	if (r == 0)
		r = read_placed(&s, fds, names, segs, n);
	free(segs);
	for (size_t d = 0; d < dir_count; d++) {
		if (fds[d] >= 0)
			close(fds[d]);
		free(names[d]);
	}
	return r;
}
