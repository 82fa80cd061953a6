/* datadir: see datadir.h. */
#include "datadir.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <zlib.h>

#include "bytes.h"
#include "wal_format.h"

/* Makes what was created or renamed in dir durable. 0 or a negative errno. */
static int fsync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int r = fsync(dfd) < 0 ? -errno : 0;
	close(dfd);
	return r;
}

#define META_MAGIC "CORRALMD"
#define META_VERSION 1
#define META_BYTES 64

int datadir_lock(const char *data_dir, char *why, size_t why_size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/lock", data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(why, why_size, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK) {
			snprintf(why, why_size, "data directory %s is in use by another corrald "
				 "(%s is locked)", data_dir, path);
			return -EBUSY;
		}
		snprintf(why, why_size, "%s: flock: %s", path, strerror(e));
		return -e;
	}
	/* The pid, for whoever looks: the lock is the flock, not the content. */
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
		(void)0;
	return fd;
}


int datadir_meta_read(const char *data_dir, struct datadir_meta *ret, char *why, size_t why_size)
{
	char path[4096];
	uint8_t b[META_BYTES];
	snprintf(path, sizeof(path), "%s/raft.meta", data_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			snprintf(why, why_size, "%s: %s", path, strerror(errno));
		return -errno;
	}
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	uint32_t crc;
	memcpy(&crc, b + 60, 4);
	if (n != META_BYTES || memcmp(b, META_MAGIC, 8) != 0 || load_be64(b + 8) != META_VERSION ||
	    be32toh(crc) != (uint32_t)crc32(0L, b, 60)) {
		snprintf(why, why_size, "%s: damaged (bad size, magic, version or checksum)", path);
		return -EBADMSG;
	}
	memcpy(ret->identity.cluster_id, b + 16, WAL_CLUSTER_ID_BYTES);
	ret->identity.server_id = load_be64(b + 32);
	ret->term = load_be64(b + 40);
	ret->voted_for = load_be64(b + 48);
	return 0;
}

int datadir_meta_write(const char *data_dir, const struct datadir_meta *m)
{
	char path[4096], tmp[4200];
	uint8_t b[META_BYTES];
	memset(b, 0, sizeof(b));
	memcpy(b, META_MAGIC, 8);
	store_be64(b + 8, META_VERSION);
	memcpy(b + 16, m->identity.cluster_id, WAL_CLUSTER_ID_BYTES);
	store_be64(b + 32, m->identity.server_id);
	store_be64(b + 40, m->term);
	store_be64(b + 48, m->voted_for);
	uint32_t crc = htobe32((uint32_t)crc32(0L, b, 60));
	memcpy(b + 60, &crc, 4);

	snprintf(path, sizeof(path), "%s/raft.meta", data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b) || fsync(fd) < 0) {
		int e = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return -e;
	}
	close(fd);
	if (rename(tmp, path) < 0)
		return -errno;
	return fsync_dir(data_dir);
}

/* The marker's name in the data directory. */
#define LOG_STARTED "log.started"

int datadir_log_check(const char *data_dir, char *why, size_t why_size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/" LOG_STARTED, data_dir);
	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	char *dir = NULL;
	int dir_fd, r = wal_open_dir(data_dir, false, &dir, &dir_fd);
	size_t n = 0;
	if (r == 0) {
		struct wal_segment_file *segs = NULL;
		r = wal_list_segments(dir_fd, &segs, &n);
		free(segs);
		close(dir_fd);
		free(dir);
	}
	if (r < 0 && r != -ENOENT) {
		snprintf(why, why_size, "%s/wal: %s", data_dir, strerror(-r));
		return r;
	}
	if (n > 0)
		return 0;
	snprintf(why, why_size, "%s/wal holds no log segment, but this data directory's log has "
		 "started (%s exists): is the log's device mounted? A new log here would drop "
		 "every write after the last snapshot. Mount it, or remove %s to start from the "
		 "snapshots alone", data_dir, path, path);
	return -EBADMSG;
}

int datadir_mark_log_started(const char *data_dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/" LOG_STARTED, data_dir);
	if (access(path, F_OK) == 0)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	close(fd);
	return fsync_dir(data_dir);
}
