/* listener: see listener.h. */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "resolve.h"

#define LISTEN_BACKLOG 1024

static void arm_accept(struct listener *l)
{
	struct io_uring_sqe *sqe = loop_sqe(l->set->loop, &l->accept_op);
	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	l->armed = true;
}

static void on_accept(struct loop_op *op, int res, uint32_t flags)
{
	struct listener *l = container_of(op, struct listener, accept_op);
	struct listeners *ls = l->set;

	if (!(flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (res < 0) {
		if (res != -ECANCELED && !ls->closed)
			log_warning("accept on %s: %s; retrying on the next tick", l->name, strerror(-res));
		return;	/* re-armed by listeners_rearm() from the timer */
	}
	if (!l->armed && !ls->closed)
		arm_accept(l);

	int fd = res;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	if (ls->closed || getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
		close(fd);
		return;
	}
	ls->accepted(ls->ctx, fd, &peer);
}

static struct listener *listener_new(struct listeners *ls)
{
	struct listener *l = realloc(ls->list, (ls->count + 1) * sizeof(*l));
	if (!l)
		return NULL;
	ls->list = l;
	l = &ls->list[ls->count];
	memset(l, 0, sizeof(*l));
	l->set = ls;
	l->fd = -1;
	l->accept_op.complete = on_accept;
	return l;
}

/* A kept socket (one the previous process stored) listening on name, taken
 * from kept (its slot set to -1); or -1. */
static int take_kept(int *kept, size_t kept_count, const char *name)
{
	for (size_t i = 0; i < kept_count; i++) {
		struct sockaddr_storage ss;
		socklen_t slen = sizeof(ss);
		char text[80];
		if (kept[i] < 0 || getsockname(kept[i], (struct sockaddr *)&ss, &slen) < 0)
			continue;
		sockaddr_text(&ss, text, sizeof(text));
		if (strcmp(text, name) == 0) {
			int fd = kept[i];
			kept[i] = -1;
			return fd;
		}
	}
	return -1;
}

static int open_one(struct listeners *ls, const struct listen_address *addr, int *kept,
		    size_t kept_count, char *why, size_t why_size)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int family, fd, one = 1;
	char name[80];

	/* at start-up, before anyone is served: a name may be looked up here */
	int r = resolve_now(addr->host, addr->port, true, &ss, &slen);
	if (r < 0) {
		snprintf(why, why_size, "listen address %s: %s", addr->host,
			 r == -ENOENT ? "no such host name (or no IPv4/IPv6 address for it)"
				      : "the name could not be looked up now");
		return r;
	}
	family = ss.ss_family;
	sockaddr_text(&ss, name, sizeof(name));
	fd = take_kept(kept, kept_count, name);
	if (fd >= 0)
		goto listening;
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_size, "socket() for %s: %s", name, strerror(errno));
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		int e = errno;
		snprintf(why, why_size, "cannot listen on %s: %s", name, strerror(e));
		close(fd);
		return -e;
	}
listening:;
	struct listener *l = listener_new(ls);
	if (!l) {
		close(fd);
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	l->fd = fd;
	snprintf(l->name, sizeof(l->name), "%s", name);
	ls->count++;
	return 0;
}

static int adopt_one(struct listeners *ls, int fd, char *why, size_t why_size)
{
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	struct listener *l = listener_new(ls);
	if (!l) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	l->fd = fd;
	l->adopted = true;
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
		sockaddr_text(&ss, l->name, sizeof(l->name));
	else
		snprintf(l->name, sizeof(l->name), "fd %d", fd);
	ls->count++;
	return 0;
}

int listeners_open(struct listeners *ls, struct loop *loop, const struct listen_address *addrs,
		   size_t addr_count, const int *adopted, size_t adopted_count, int *kept,
		   size_t kept_count, char *why, size_t why_size)
{
	int r = 0;
	ls->loop = loop;
	ls->closed = false;
	for (size_t i = 0; i < adopted_count && r == 0; i++)
		r = adopt_one(ls, adopted[i], why, why_size);
	for (size_t i = 0; adopted_count == 0 && i < addr_count && r == 0; i++)
		r = open_one(ls, &addrs[i], kept, kept_count, why, why_size);
	/* Kept sockets of addresses no longer configured: closed. */
	for (size_t i = 0; i < kept_count; i++)
		if (kept[i] >= 0) {
			close(kept[i]);
			kept[i] = -1;
		}
	if (r < 0) {
		listeners_close(ls);
		return r;
	}
	/* Armed only now: the array moved while it grew. */
	for (size_t i = 0; i < ls->count; i++)
		arm_accept(&ls->list[i]);
	return 0;
}

void listeners_close(struct listeners *ls)
{
	ls->closed = true;
	for (size_t i = 0; i < ls->count; i++) {
		struct listener *l = &ls->list[i];
		if (l->fd < 0)
			continue;
		if (l->adopted) {
			/* systemd's socket: shutdown() would break it for systemd
			 * too; cancel our accept and close our copy only. */
			if (l->armed) {
				struct io_uring_sqe *sqe = loop_sqe(ls->loop, NULL);
				io_uring_prep_cancel(sqe, &l->accept_op, 0);
			}
		} else {
			/* shutdown() ends the multishot accept with an error CQE. */
			shutdown(l->fd, SHUT_RDWR);
		}
		close(l->fd);
		l->fd = -1;
	}
}

int listeners_keep(struct listeners *ls, int **fds)
{
	size_t n = 0;
	*fds = calloc(ls->count + 1, sizeof(int));
	for (size_t i = 0; *fds && i < ls->count; i++) {
		struct listener *l = &ls->list[i];
		if (l->fd < 0 || l->adopted)
			continue;
		int fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			continue;	/* not kept: the next process listens again */
		(*fds)[n++] = fd;
		l->adopted = true;	/* its socket lives on: not shut down */
	}
	return *fds ? (int)n : -ENOMEM;
}

void listeners_rearm(struct listeners *ls)
{
	for (size_t i = 0; i < ls->count; i++) {
		struct listener *l = &ls->list[i];
		if (!l->armed && l->fd >= 0 && !ls->closed)
			arm_accept(l);
	}
}

void listeners_free(struct listeners *ls)
{
	free(ls->list);
	ls->list = NULL;
	ls->count = 0;
}
