/* fdstore: see fdstore.h. */
#include "fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"

/* The largest image read back: 4096 connections each with a full receive
 * buffer and a burst of replies stay far below it. */
#define IMAGE_MAX_BYTES (1ull << 31)

static size_t store_size(void)
{
	const char *names[] = { "FDSTORE", "CORRAL_FDSTORE_MAX" };
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	for (size_t i = 0; i < 2; i++) {
		const char *v = getenv(names[i]);
		char *end;
		unsigned long long n = v ? strtoull(v, &end, 10) : 0;
		if (v && *v && !*end && n > 0)
			return (size_t)n;
	}
	return 0;
}

/* The image, read whole; the memfd is closed. */
static void read_image(struct fdstore *st, int fd)
{
	struct stat sb;
	if (st->image || fstat(fd, &sb) < 0 || sb.st_size <= 0 ||
	    (unsigned long long)sb.st_size > IMAGE_MAX_BYTES) {
		log_warning("ignoring the hand-over state systemd passed: %s",
			    st->image ? "a second one" : "empty or too large");
		close(fd);
		return;
	}
	st->image = malloc((size_t)sb.st_size);
	size_t got = 0;
	while (st->image && got < (size_t)sb.st_size) {
		ssize_t n = pread(fd, st->image + got, (size_t)sb.st_size - got, (off_t)got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)sb.st_size) {
		log_warning("cannot read the hand-over state systemd passed");
		free(st->image);
		st->image = NULL;
	}
	st->image_len = st->image ? got : 0;
	close(fd);
	/* Out of the store before it is used: if this process dies now, the
	 * next one finds the connections without a state (and closes them),
	 * never this state again, which would be stale by then. */
	sd_notify(0, "FDSTOREREMOVE=1\nFDNAME=state");
}

/* One descriptor, by its name: 0 or a negative errno with why. */
static int take_one(struct fdstore *st, int fd, const char *name, char *why, size_t why_size)
{
	uint64_t id;
	char tail;
	if (strcmp(name, "state") == 0) {
		read_image(st, fd);
		return 0;
	}
	if (strcmp(name, "listen") == 0) {
		st->kept[st->kept_count++] = fd;
		return 0;
	}
	if (sscanf(name, "conn-%" SCNu64 "%c", &id, &tail) == 1) {
		st->conns[st->conn_count++] = (struct handover_fd){ .id = id, .fd = fd };
		return 0;
	}
	/* Our socket unit names it "client"; an unnamed one ("unknown")
	 * from a hand-written unit is taken as the client port too. */
	if (strcmp(name, "client") != 0 && strcmp(name, "unknown") != 0) {
		log_warning("ignoring descriptor %d named \"%s\" passed by systemd", fd, name);
		close(fd);
		return 0;
	}
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		snprintf(why, why_size, "socket %d (\"%s\") passed by systemd is not a listening "
			 "stream socket", fd, name);
		return -EINVAL;
	}
	st->sockets[st->socket_count++] = fd;
	return 0;
}

int fdstore_take(struct fdstore *st, char *why, size_t why_size)
{
	char **names = NULL;
	memset(st, 0, sizeof(*st));
	st->max = store_size();
	int n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		snprintf(why, why_size, "cannot take the sockets systemd passed: %s", strerror(-n));
		return n;
	}
	int r = 0;
	if (n > 0) {
		st->sockets = calloc((size_t)n, sizeof(int));
		st->conns = calloc((size_t)n, sizeof(*st->conns));
		st->kept = calloc((size_t)n, sizeof(int));
		if (!st->sockets || !st->conns || !st->kept) {
			snprintf(why, why_size, "out of memory");
			r = -ENOMEM;
		}
	}
	for (int i = 0; i < n && r == 0; i++)
		r = take_one(st, SD_LISTEN_FDS_START + i, names ? names[i] : "unknown", why, why_size);
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

void fdstore_image_done(struct fdstore *st)
{
	free(st->image);
	st->image = NULL;
	st->image_len = 0;
}

void fdstore_listeners_done(struct fdstore *st)
{
	if (st->kept_count > 0)
		sd_notify(0, "FDSTOREREMOVE=1\nFDNAME=listen");
}

void fdstore_free(struct fdstore *st)
{
	fdstore_image_done(st);
	for (size_t i = 0; i < st->kept_count; i++)
		if (st->kept[i] >= 0)
			close(st->kept[i]);
	free(st->kept);
	free(st->sockets);
	free(st->conns);
	memset(st, 0, sizeof(*st));
}

void fdstore_unstore(void *ctx, uint64_t conn_id)
{
	sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=conn-%" PRIu64, conn_id);
}

/* The image as a sealed memfd, or -1 (logged). */
static int image_memfd(const struct handover_image *img)
{
	int fd = memfd_create("corral-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t done = 0;
	while (fd >= 0 && done < img->bytes.len) {
		ssize_t n = write(fd, img->bytes.data + done, img->bytes.len - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (fd < 0 || done != img->bytes.len ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		log_error("cannot write the hand-over state: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

size_t fdstore_push(const struct handover_image *img, const int *listeners,
		    size_t listener_count)
{
	size_t stored = 0;
	char msg[64];
	if (listener_count > 0 &&
	    sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=listen", listeners,
				   (unsigned)listener_count) <= 0)
		log_warning("cannot store the listening sockets in systemd: the next corrald "
			    "listens again");
	for (size_t i = 0; i < img->count; i++) {
		snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=conn-%" PRIu64, img->conns[i].id);
		int r = sd_pid_notify_with_fds(0, 0, msg, &img->conns[i].fd, 1);
		if (r > 0)
			stored++;
		else
			log_warning("cannot store connection %" PRIu64 " in systemd: %s",
				    img->conns[i].id, r < 0 ? strerror(-r) : "no notification socket");
	}
	int fd = image_memfd(img);
	if (fd >= 0) {
		int r = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=state", &fd, 1);
		if (r <= 0)
			log_error("cannot store the hand-over state in systemd: %s",
				  r < 0 ? strerror(-r) : "no notification socket");
		close(fd);
	}
	/* systemd has read them before corrald exits. */
	int r = sd_notify_barrier(0, 5 * 1000000ull);
	if (r < 0)
		log_warning("systemd did not confirm the fd store: %s", strerror(-r));
	return stored;
}
