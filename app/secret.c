/* secret: see secret.h. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define CREDENTIAL_PREFIX "credential:"

/* The file a value names: a credential's in $CREDENTIALS_DIRECTORY, or the
 * absolute path given. */
static int secret_path(const char *value, char *path, size_t size, char *why, size_t why_size)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *name = value;

	if (value[0] == '/') {
		snprintf(path, size, "%s", value);
		return 0;
	}
	if (strncmp(value, CREDENTIAL_PREFIX, strlen(CREDENTIAL_PREFIX)) == 0)
		name = value + strlen(CREDENTIAL_PREFIX);
	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		snprintf(why, why_size, "'%.64s' is not a credential's name (an absolute path, or "
			 "credential:NAME with no '/' in NAME)", value);
		return -EINVAL;
	}
	if (!dir || !*dir) {
		snprintf(why, why_size, "'%.64s' names a systemd credential, and "
			 "$CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit, or give "
			 "an absolute path)", value);
		return -ENOENT;
	}
	if ((size_t)snprintf(path, size, "%s/%s", dir, name) >= size) {
		snprintf(why, why_size, "'%.64s': the path is too long", value);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Whether path lies in $CREDENTIALS_DIRECTORY (both resolved). */
static bool in_credentials_directory(const char *path)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char real_dir[PATH_MAX], real_path[PATH_MAX];

	if (!dir || !*dir || !realpath(dir, real_dir) || !realpath(path, real_path))
		return false;
	size_t n = strlen(real_dir);
	return strncmp(real_path, real_dir, n) == 0 && real_path[n] == '/';
}

/* Opens the secret's file at path and checks it is one: a regular file
 * that neither its group nor others may read (unless in the credentials
 * directory). Returns the descriptor or a negative errno, why filled. */
static int secret_open(const char *path, char *why, size_t why_size)
{
	struct stat st;
	int r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		snprintf(why, why_size, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(why, why_size, "%s: cannot stat: %s", path, strerror(-r));
	} else if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		snprintf(why, why_size, "%s: not a regular file", path);
	} else if ((st.st_mode & 077) && !in_credentials_directory(path)) {
		snprintf(why, why_size, "%s holds a secret and its group or others may read it "
			 "(mode %04o): chmod 600 it, or pass it as a systemd credential", path,
			 (unsigned)(st.st_mode & 07777));
		r = -EPERM;
	} else {
		return fd;
	}
	close(fd);
	return r;
}

int secret_locate(const char *value, char **ret_path, char *why, size_t why_size)
{
	char path[PATH_MAX];
	int r = secret_path(value, path, sizeof(path), why, why_size);
	if (r < 0)
		return r;
	int fd = secret_open(path, why, why_size);
	if (fd < 0)
		return fd;
	close(fd);
	*ret_path = strdup(path);
	if (!*ret_path) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int secret_read(const char *value, size_t max_bytes, uint8_t **ret, size_t *ret_len, char *why,
		size_t why_size)
{
	char path[PATH_MAX];
	int r = secret_path(value, path, sizeof(path), why, why_size);
	if (r < 0)
		return r;
	int fd = secret_open(path, why, why_size);
	if (fd < 0)
		return fd;
	uint8_t *buf = malloc(max_bytes + 2);
	if (!buf) {
		r = -ENOMEM;
		snprintf(why, why_size, "out of memory");
		goto out;
	}
	size_t len = 0;
	for (ssize_t n; len <= max_bytes; len += (size_t)n) {
		n = read(fd, buf + len, max_bytes + 1 - len);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
	}
	while (r == 0 && len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (r == 0 && len > max_bytes) {
		r = -EFBIG;
		snprintf(why, why_size, "%s: longer than %zu bytes", path, max_bytes);
	} else if (r == 0 && len == 0) {
		r = -EINVAL;
		snprintf(why, why_size, "%s: empty", path);
	} else if (r < 0) {
		snprintf(why, why_size, "%s: cannot read: %s", path, strerror(-r));
	}
	if (r < 0) {
		secret_free(buf, max_bytes + 2);
		goto out;
	}
	buf[len] = 0;
	*ret = buf;
	*ret_len = len;
out:
	close(fd);
	return r;
}

void secret_free(uint8_t *secret, size_t len)
{
	if (!secret)
		return;
	OPENSSL_cleanse(secret, len);
	free(secret);
}
