/* wal_reader: see wal_reader.h. */
#include "wal_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"

/* No record is larger (client.max_frame_bytes is at most 64 MiB). */
#define WAL_READER_RECORD_MAX (UINT32_C(1) << 28)

void wal_reader_init(struct wal_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
#ifdef CORRAL_FAULT_INJECTION
	/* Test builds: CORRAL_FAULT_WAL_READ_FAIL=N fails the Nth read and
	 * every one after it (EIO). */
	const char *v = getenv("CORRAL_FAULT_WAL_READ_FAIL");
	r->fault_fail_countdown = v ? strtoull(v, NULL, 10) : 0;
#endif
}

static void close_segment(struct wal_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->buf_len = 0;
}

static void free_marks(struct wal_reader *r)
{
	for (size_t k = 0; r->marks && k < r->seg_count; k++)
		free(r->marks[k].v);
	free(r->marks);
	r->marks = NULL;
}

/* The segments changed: every cursor and mark is forgotten. */
static void forget(struct wal_reader *r)
{
	close_segment(r);
	memset(r->cursors, 0, sizeof(r->cursors));
	free_marks(r);
}

void wal_reader_free(struct wal_reader *r)
{
	close_segment(r);
	free_marks(r);
	free(r->segs);
	free(r->buf);
	r->segs = NULL;
	r->buf = NULL;
}

/* The segment that holds index (the last whose first index is not after
 * it), or -ENOENT. */
static int find_segment(struct wal_reader *r, int dir_fd, uint64_t layout, uint64_t index,
			size_t *ret)
{
	if (!r->segs || r->layout != layout) {
		forget(r);
		free(r->segs);
		r->segs = NULL;
		int e = wal_list_segments(dir_fd, &r->segs, &r->seg_count);
		if (e < 0)
			return e;
		if (!r->segs && !(r->segs = malloc(sizeof(*r->segs))))
			return -ENOMEM;
		r->layout = layout;
		/* Marks only save reading: without them, reads start further back. */
		r->marks = calloc(r->seg_count ? r->seg_count : 1, sizeof(*r->marks));
	}
	size_t lo = 0, hi = r->seg_count;	/* the answer is before hi */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->segs[mid].first_index <= index)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	*ret = lo - 1;
	return 0;
}

/* Makes buf hold the file from off for at least need bytes (fewer at the
 * end of the file). */
static int window(struct wal_reader *r, uint64_t off, size_t need)
{
	if (off >= r->buf_off && off + need <= r->buf_off + r->buf_len)
		return 0;
	size_t cap = need > WAL_READER_WINDOW ? align8(need) : WAL_READER_WINDOW;
	if (cap > r->buf_cap) {
		uint8_t *b = realloc(r->buf, cap);
		if (!b)
			return -ENOMEM;
		r->buf = b;
		r->buf_cap = cap;
	}
	r->buf_len = 0;
	ssize_t n = pread(r->fd, r->buf, r->buf_cap, (off_t)off);
	if (n < 0)
		return -errno;
	r->buf_off = off;
	r->buf_len = (size_t)n;
	return 0;
}

/* Cursor c is at the start of a record: noted when it is a mark's place
 * past the segment's last mark. */
static void note_mark(struct wal_reader *r, const struct wal_cursor *c)
{
	if (!r->marks || (c->next_index - r->segs[c->seg].first_index) % WAL_READER_MARK_EVERY)
		return;
	struct wal_marks *m = &r->marks[c->seg];
	if (m->n && m->v[m->n - 1].index >= c->next_index)
		return;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct wal_mark *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return;
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n++] = (struct wal_mark){ .index = c->next_index, .off = c->next_off };
}

/* The last mark of segment k at or before index, or NULL. */
static const struct wal_mark *mark_before(const struct wal_reader *r, size_t k, uint64_t index)
{
	if (!r->marks)
		return NULL;
	const struct wal_marks *m = &r->marks[k];
	size_t lo = 0, hi = m->n;	/* the answer is before hi */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->v[mid].index <= index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &m->v[lo - 1] : NULL;
}

/* Reads the record at cursor c (in the open segment); fills ret when it is
 * index's. */
static int read_record(struct wal_reader *r, struct wal_cursor *c, uint64_t index,
		       struct wal_entry *ret)
{
	int e = window(r, c->next_off, WAL_RECORD_HEADER_BYTES);
	if (e < 0)
		return e;
	size_t at = (size_t)(c->next_off - r->buf_off);
	if (at + WAL_RECORD_HEADER_BYTES > r->buf_len ||
	    load_be32(r->buf + at) < WAL_RECORD_HEADER_BYTES)
		return -ENOENT;		/* the end of the records */
	size_t total = load_be32(r->buf + at);
	if (total > WAL_READER_RECORD_MAX)
		return -EBADMSG;
	if ((e = window(r, c->next_off, total)) < 0)
		return e;
	at = (size_t)(c->next_off - r->buf_off);
	if (!wal_record_intact(r->buf, r->buf_len, at) ||
	    load_be64(r->buf + at + 8) != c->next_index)
		return -EBADMSG;
	note_mark(r, c);
	if (c->next_index == index) {
		uint32_t len = load_be32(r->buf + at + 36);
		ret->term = load_be64(r->buf + at + 16);
		ret->type = r->buf[at + 32];
		ret->len = len;
		ret->data = NULL;
		if (len && !(ret->data = malloc(len)))
			return -ENOMEM;
		if (len)
			memcpy(ret->data, r->buf + at + WAL_RECORD_HEADER_BYTES, len);
	}
	c->next_off += align8(total);
	c->next_index++;
	return 0;
}

/* The cursor to read index with: the furthest one in segment k not past
 * it, else (or when a mark is further) one at the last mark before it, or
 * at k's first record. One that must read on to get there stays where it
 * is (another follower's place): a copy, in the cursor used least
 * recently, reads on instead. */
static struct wal_cursor *cursor_for(struct wal_reader *r, size_t k, uint64_t index)
{
	struct wal_cursor *best = NULL, *oldest = NULL;
	for (size_t i = 0; i < WAL_READER_CURSORS; i++) {
		struct wal_cursor *c = &r->cursors[i];
		if (c->next_off && c->seg == k && c->next_index <= index &&
		    (!best || c->next_index > best->next_index))
			best = c;
	}
	for (size_t i = 0; i < WAL_READER_CURSORS; i++)
		if (&r->cursors[i] != best && (!oldest || r->cursors[i].used < oldest->used))
			oldest = &r->cursors[i];
	const struct wal_mark *m = mark_before(r, k, index);
	if (!best || (m && m->index > best->next_index)) {
		best = oldest;
		best->seg = k;
		best->next_index = m ? m->index : r->segs[k].first_index;
		best->next_off = m ? m->off : WAL_SEGMENT_HEADER_BYTES;
	} else if (best->next_index < index) {
		*oldest = *best;
		best = oldest;
	}
	best->used = ++r->reads;
	return best;
}

int wal_reader_get(struct wal_reader *r, int dir_fd, uint64_t layout, uint64_t index,
		   struct wal_entry *ret)
{
	size_t k;
#ifdef CORRAL_FAULT_INJECTION
	if (r->fault_fail_countdown > 1)
		r->fault_fail_countdown--;
	else if (r->fault_fail_countdown == 1)
		return -EIO;
#endif
	int e = find_segment(r, dir_fd, layout, index, &k);
	if (e < 0)
		return e;
	if (r->fd < 0 || r->seg != k) {
		close_segment(r);
		r->fd = openat(dir_fd, r->segs[k].name, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0)
			return errno == ENOENT ? -ENOENT : -errno;
		r->seg = k;
	}
	struct wal_cursor *c = cursor_for(r, k, index);
	while (c->next_index <= index) {
		uint64_t at = c->next_index;
		e = read_record(r, c, index, ret);
		if (e < 0) {
			c->next_off = 0;
			return e;
		}
		if (at == index) {
			r->entries_read++;
			return 0;
		}
		r->records_passed++;
	}
	return -ENOENT;
}
