/* reclaim: see reclaim.h. A bounded queue of unlinks (each after its
 * file's blocks are freed in steps) and directory fsyncs, one step on the
 * ring at a time. */
#include "reclaim.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assertions.h"
#include "common.h"

static void reclaim_submit(struct reclaim *r);

/* Does one item on the caller (no loop, a full queue, shutdown). */
static int item_do_now(int dir_fd, const char *name)
{
	int res = name ? unlinkat(dir_fd, name, 0) : fsync(dir_fd);
	return res < 0 ? -errno : 0;
}

static void item_release(struct reclaim_item *it)
{
	if (it->file_fd >= 0)
		close(it->file_fd);
	it->file_fd = -1;
	close(it->dir_fd);
	free(it->name);
	it->dir_fd = -1;
	it->name = NULL;
}

static void on_complete(struct loop_op *op, int res, uint32_t flags)
{
	struct reclaim *r = container_of(op, struct reclaim, op);
	struct reclaim_item *it = &r->queue[r->head];
	(void)flags;
	ASSERT(r->in_flight && r->count > 0);
	r->in_flight = false;
	if (it->file_fd >= 0) {
		/* A step of freeing the blocks: on to the next, or (done, or
		 * a file system that cannot punch holes) to the unlink. */
		if (res < 0 || it->punch_end == 0) {
			close(it->file_fd);
			it->file_fd = -1;
		}
		reclaim_submit(r);
		return;
	}
	if (it->name && res == 0)
		r->unlinked++;
	else if (res < 0 && res != -ENOENT) {
		r->failed++;
		r->last_error = res;
	}
	item_release(it);
	r->head = (r->head + 1) % RECLAIM_QUEUE_MAX;
	r->count--;
	reclaim_submit(r);
}

static void reclaim_submit(struct reclaim *r)
{
	if (r->in_flight || r->count == 0)
		return;
	struct reclaim_item *it = &r->queue[r->head];
	struct io_uring_sqe *sqe = loop_sqe(r->loop, &r->op);
	if (it->file_fd >= 0) {
		uint64_t step = it->punch_end < RECLAIM_PUNCH_BYTES ? it->punch_end : RECLAIM_PUNCH_BYTES;
		it->punch_end -= step;
		io_uring_prep_fallocate(sqe, it->file_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					it->punch_end, step);
	} else if (it->name)
		io_uring_prep_unlinkat(sqe, it->dir_fd, it->name, 0);
	else
		io_uring_prep_fsync(sqe, it->dir_fd, 0);
	r->in_flight = true;
}

void reclaim_init(struct reclaim *r, struct loop *loop)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->op.complete = on_complete;
}

void reclaim_free(struct reclaim *r)
{
	for (; r->count > 0; r->count--) {
		struct reclaim_item *it = &r->queue[r->head];
		/* The one on the ring may be done already: ENOENT is fine. */
		(void)item_do_now(it->dir_fd, it->name);
		item_release(it);
		r->head = (r->head + 1) % RECLAIM_QUEUE_MAX;
	}
	r->in_flight = false;
}

/* Opens dir_fd/name to free its blocks in steps: opening a file that is
 * there costs the loop little, freeing its blocks is what costs. A file
 * not opened is simply unlinked; so is one with another link (the archive
 * links purged files on the same file system: its blocks are the
 * archive's, and the unlink frees none). */
static void open_for_punch(struct reclaim_item *it, int dir_fd, const char *name)
{
	struct stat st;
	it->file_fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	it->punch_end = 0;
	if (it->file_fd >= 0 && fstat(it->file_fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_nlink == 1)
		it->punch_end = (uint64_t)st.st_blocks * 512 > (uint64_t)st.st_size
					? (uint64_t)st.st_blocks * 512 : (uint64_t)st.st_size;
	if (it->file_fd >= 0 && it->punch_end == 0) {
		close(it->file_fd);
		it->file_fd = -1;
	}
}

/* Queues dir_fd/name, renamed NAME.purged (name NULL: the directory's
 * fsync). */
static int reclaim_queue(struct reclaim *r, int dir_fd, const char *name)
{
	char purged[512];
	if (!r || !r->loop || r->count == RECLAIM_QUEUE_MAX)
		return -ENOSPC;
	if (name && (size_t)snprintf(purged, sizeof(purged), "%s" RECLAIM_SUFFIX, name) >= sizeof(purged))
		return -ENAMETOOLONG;
	struct reclaim_item *it = &r->queue[(r->head + r->count) % RECLAIM_QUEUE_MAX];
	it->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
	if (it->dir_fd < 0)
		return -errno;
	it->name = NULL;
	it->file_fd = -1;
	if (name) {
		open_for_punch(it, dir_fd, name);
		int res = renameat(dir_fd, name, dir_fd, purged) < 0 ? -errno : 0;
		if (res == 0 && !(it->name = strdup(purged)))
			res = -ENOMEM;
		if (res < 0) {
			item_release(it);
			return res;
		}
	}
	r->count++;
	reclaim_submit(r);
	return 0;
}

int reclaim_unlink(struct reclaim *r, int dir_fd, const char *name)
{
	int res = reclaim_queue(r, dir_fd, name);
	return res == 0 || res == -ENOENT ? res : item_do_now(dir_fd, name);
}

int reclaim_sync_dir(struct reclaim *r, int dir_fd)
{
	return reclaim_queue(r, dir_fd, NULL) == 0 ? 0 : item_do_now(dir_fd, NULL);
}

int reclaim_remove_leftovers(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = -errno;
		close(dfd);
		return e;
	}
	int removed = 0, r = 0;
	size_t suffix = strlen(RECLAIM_SUFFIX);
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len <= suffix || strcmp(e->d_name + len - suffix, RECLAIM_SUFFIX) != 0)
			continue;
		if (unlinkat(dfd, e->d_name, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			r = -errno;
	}
	if (removed > 0 && fsync(dfd) < 0 && r == 0)
		r = -errno;
	closedir(d);
	return r < 0 ? r : removed;
}
