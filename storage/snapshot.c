/* snapshot: see snapshot.h. The snap/ directory: its files listed, the
 * newest sound one loaded, old ones purged (archived first), checked,
 * found; the format is snapshot_read.c's and snapshot_write.c's. */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "snapshot_format.h"

int snapshot_dir(const char *data_dir, bool create, char *out, size_t size)
{
	snprintf(out, size, "%s/snap", data_dir);
	if (create && mkdir(out, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int snapshot_remove_temp_files(const char *data_dir, unsigned *ret_removed)
{
	char dir[4096];
	unsigned removed = 0;
	int r = 0;
	snapshot_dir(data_dir, false, dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno != ENOENT)
			return -errno;
		*ret_removed = 0;
		return 0;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".tmp") != 0)
			continue;
		if (unlinkat(dfd, e->d_name, 0) < 0) {
			if (errno != ENOENT) {
				r = -errno;
				break;
			}
			continue;
		}
		removed++;
	}
	if (r == 0 && removed > 0 && fsync(dfd) < 0)
		r = -errno;
	closedir(d);
	if (r == 0)
		*ret_removed = removed;
	return r;
}

struct snap_file {
	char name[32];
	uint64_t index;
};

static int snap_cmp_desc(const void *a, const void *b)
{
	const struct snap_file *x = a, *y = b;
	return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

static int list_snapshots(const char *dir, struct snap_file **ret, size_t *ret_count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct snap_file *list = NULL;
	size_t n = 0, cap = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		unsigned long long index;
		if (strlen(e->d_name) != 21 || sscanf(e->d_name, "%16llx.snap", &index) != 1 ||
		    strcmp(e->d_name + 16, ".snap") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			struct snap_file *l = realloc(list, cap * sizeof(*l));
			if (!l) {
				free(list);
				closedir(d);
				return -ENOMEM;
			}
			list = l;
		}
		memcpy(list[n].name, e->d_name, 22);
		list[n].index = index;
		n++;
	}
	closedir(d);
	/* An empty snap/ (a snapshot that failed on ENOSPC leaves one) has no
	 * list at all: qsort() must not be handed its NULL. */
	if (n > 1)
		qsort(list, n, sizeof(*list), snap_cmp_desc);
	*ret = list;
	*ret_count = n;
	return 0;
}

int snapshot_load_newest(const char *data_dir, const struct wal_identity *id, struct state *st,
			 struct snapshot_meta *ret, char *why, size_t why_size,
			 void (*skipped)(const char *file, const char *reason))
{
	char dir[4096], path[4200], reason[256];
	struct snap_file *list = NULL;
	size_t n = 0;
	memset(ret, 0, sizeof(*ret));
	snapshot_dir(data_dir, false, dir, sizeof(dir));
	int r = list_snapshots(dir, &list, &n);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", dir, strerror(-r));
		return r;
	}
	r = -ENOENT;
	for (size_t k = 0; k < n; k++) {
		uint8_t *p;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, list[k].name);
		if (snapshot_map(path, &p, &len) < 0)
			continue;
		int c = snapshot_check(p, len, id, reason, sizeof(reason));
		if (c == -EXDEV) {
			snprintf(why, why_size, "%s %s", path, reason);
			munmap(p, len);
			r = c;
			break;
		}
		if (c < 0) {
			if (skipped)
				skipped(path, reason);
			munmap(p, len);
			continue;
		}
		r = snapshot_load_body(p, len, st, ret);
		munmap(p, len);
		if (r < 0)
			snprintf(why, why_size, "%s: cannot load: %s", path,
				 r == -ENOMEM ? "out of memory" : "malformed contents");
		break;
	}
	free(list);
	return r;
}

uint64_t snapshot_purge(const char *data_dir, unsigned keep, const char *archive_dir,
			int *ret_archive_err, struct reclaim *rc)
{
	char dir[4096], path[4200];
	struct snap_file *list = NULL;
	size_t n = 0;
	*ret_archive_err = 0;
	snapshot_dir(data_dir, false, dir, sizeof(dir));
	if (list_snapshots(dir, &list, &n) < 0)
		return 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t oldest = 0;
	for (size_t k = 0; k < n; k++) {
		if (k < keep) {
			oldest = list[k].index;
			continue;
		}
		if (archive_dir) {
			int r = dfd < 0 ? -errno : archive_file(dfd, list[k].name, archive_dir, "snap");
			if (r < 0) {
				if (!*ret_archive_err)
					*ret_archive_err = r;
				continue;	/* kept until it is archived */
			}
		}
		snprintf(path, sizeof(path), "%s/%s", dir, list[k].name);
		if (dfd >= 0)
			reclaim_unlink(rc, dfd, list[k].name);
		else
			unlink(path);
	}
	if (dfd >= 0)
		close(dfd);
	free(list);
	return oldest;
}

int snapshot_verify(const char *data_dir, const struct wal_identity *id, void *out_file)
{
	FILE *out = out_file;
	char dir[4096], path[4200], reason[256];
	struct snap_file *list = NULL;
	size_t n = 0;
	int bad = 0;
	snapshot_dir(data_dir, false, dir, sizeof(dir));
	if (list_snapshots(dir, &list, &n) < 0) {
		fprintf(out, "%s: no snapshots\n", dir);
		return 0;
	}
	for (size_t k = 0; k < n; k++) {
		uint8_t *p;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, list[k].name);
		if (snapshot_map(path, &p, &len) < 0) {
			fprintf(out, "DAMAGED: %s: cannot read: %s\n", path, strerror(errno));
			bad = -EIO;
			continue;
		}
		if (snapshot_check(p, len, id, reason, sizeof(reason)) < 0) {
			fprintf(out, "DAMAGED: %s: %s\n", path, reason);
			bad = -EBADMSG;
		} else {
			fprintf(out, "%s: index %llu, %zu bytes\n", path, (unsigned long long)list[k].index, len);
		}
		munmap(p, len);
	}
	free(list);
	return bad;
}

void snapshot_path(const char *data_dir, uint64_t index, char *out, size_t size)
{
	snprintf(out, size, "%s/snap/%016llx.snap", data_dir, (unsigned long long)index);
}

int snapshot_find(const char *data_dir, uint64_t max_index, char *ret_path, size_t size,
		  uint64_t *ret_index)
{
	char dir[4096];
	struct snap_file *list = NULL;
	size_t n = 0;
	snapshot_dir(data_dir, false, dir, sizeof(dir));
	int r = list_snapshots(dir, &list, &n);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t k = 0; k < n; k++) {
		if (list[k].index > max_index)
			continue;
		snprintf(ret_path, size, "%s/%s", dir, list[k].name);
		*ret_index = list[k].index;
		r = 0;
		break;
	}
	free(list);
	return r;
}
