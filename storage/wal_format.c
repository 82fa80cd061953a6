/* wal_format: see wal_format.h. */
#include "wal_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "crc32.h"

uint32_t wal_checksum(const void *p, size_t len)
{
	return corral_crc32(0, p, len);
}

void wal_segment_header(uint8_t h[WAL_SEGMENT_HEADER_BYTES], const struct wal_identity *id,
			uint64_t first_index)
{
	memset(h, 0, WAL_SEGMENT_HEADER_BYTES);
	memcpy(h, WAL_MAGIC, 8);
	store_be32(h + 8, WAL_FORMAT_VERSION);
	store_be32(h + 12, WAL_SEGMENT_HEADER_BYTES);
	memcpy(h + 16, id->cluster_id, WAL_CLUSTER_ID_BYTES);
	store_be64(h + 32, id->server_id);
	store_be64(h + 40, first_index);
	store_be32(h + 60, wal_checksum(h, 60));
}

/* Encodes one record at p (room for align8(40 + len)); returns its size. */
size_t wal_record_encode(uint8_t *p, uint64_t index, uint64_t term, uint64_t batch,
			 uint8_t type, const void *data, uint32_t len)
{
	size_t total = WAL_RECORD_HEADER_BYTES + len;
	size_t padded = align8(total);
	store_be32(p, (uint32_t)total);
	store_be64(p + 8, index);
	store_be64(p + 16, term);
	store_be64(p + 24, batch);
	p[32] = type;
	p[33] = p[34] = p[35] = 0;
	store_be32(p + 36, len);
	if (len)
		memcpy(p + WAL_RECORD_HEADER_BYTES, data, len);
	memset(p + total, 0, padded - total);
	store_be32(p + 4, wal_checksum(p + 8, total - 8));
	return padded;
}

/* A record at off that checks out by itself (length, checksum). */
bool wal_record_intact(const uint8_t *base, size_t size, size_t off)
{
	if (off + WAL_RECORD_HEADER_BYTES > size)
		return false;
	uint32_t total = load_be32(base + off);
	if (total < WAL_RECORD_HEADER_BYTES || off + total > size)
		return false;
	if (load_be32(base + off + 36) != total - WAL_RECORD_HEADER_BYTES)
		return false;
	return load_be32(base + off + 4) == wal_checksum(base + off + 8, total - 8);
}

bool wal_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int segment_cmp(const void *a, const void *b)
{
	const struct wal_segment_file *x = a, *y = b;
	return x->first_index < y->first_index ? -1 : x->first_index > y->first_index;
}

/* Lists the segments of dir_fd in index order. */
int wal_list_segments(int dir_fd, struct wal_segment_file **ret, size_t *ret_count)
{
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct wal_segment_file *list = NULL;
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
			struct wal_segment_file *l = realloc(list, cap * sizeof(*l));
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
	if (n)
		qsort(list, n, sizeof(*list), segment_cmp);
	*ret = list;
	*ret_count = n;
	return 0;
}

int wal_open_dir(const char *data_dir, bool create, char **ret_dir, int *ret_fd)
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
