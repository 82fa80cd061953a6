/* archive: see archive.h. */
#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes archive_dir and archive_dir/sub; returns the latter's fd or -errno. */
static int open_archive_sub(const char *archive_dir, const char *sub)
{
	char path[4200];
	if (mkdir(archive_dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", archive_dir, sub);
	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Copies len bytes from src to out with read and write, when the kernel
 * cannot copy between these file systems itself. */
static int copy_by_hand(int src, int out, off_t len)
{
	static __thread uint8_t buf[1 << 16];
	off_t off = 0;
	while (off < len) {
		ssize_t n = pread(src, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		for (ssize_t w = 0; w < n;) {
			ssize_t k = pwrite(out, buf + w, (size_t)(n - w), off + w);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return k < 0 ? -errno : -EIO;
			w += k;
		}
		off += n;
	}
	return 0;
}

/* Copies src (open) to out: in the kernel (copy_file_range), or by hand
 * where it cannot (between file systems of different kinds: EXDEV). */
static int copy_data(int src, int out, off_t len)
{
	off_t left = len;
	while (left > 0) {
		ssize_t n = copy_file_range(src, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && left == len && (errno == EXDEV || errno == EOPNOTSUPP ||
					     errno == ENOSYS || errno == EINVAL))
			return copy_by_hand(src, out, len);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		left -= n;
	}
	return 0;
}

/* Copies src (open) to dst_dir_fd/name through a temp file. */
static int copy_into(int src, int dst_dir_fd, const char *name)
{
	char tmp[300];
	struct stat st;
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	if (fstat(src, &st) < 0)
		return -errno;
	int out = openat(dst_dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0)
		return -errno;
	int r = copy_data(src, out, st.st_size);
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (close(out) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dst_dir_fd, tmp, dst_dir_fd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dst_dir_fd, tmp, 0);
	return r;
}

int archive_file(int src_dir_fd, const char *name, const char *archive_dir, const char *sub)
{
	int dfd = open_archive_sub(archive_dir, sub);
	if (dfd < 0)
		return dfd;
	int r = 0;
	if (linkat(src_dir_fd, name, dfd, name, 0) < 0) {
		if (errno == EEXIST) {
			r = 0;
		} else if (errno == EXDEV || errno == EPERM || errno == EMLINK) {
			int src = openat(src_dir_fd, name, O_RDONLY | O_CLOEXEC);
			r = src < 0 ? -errno : copy_into(src, dfd, name);
			if (src >= 0)
				close(src);
		} else {
			r = -errno;
		}
	}
	if (r == 0 && fsync(dfd) < 0)
		r = -errno;
	close(dfd);
	return r;
}
