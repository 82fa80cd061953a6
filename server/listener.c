/* listener: see listener.h. */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "hash.h"
#include "log.h"
#include "sockaddr.h"
#include "server.h"
#include "service.h"

#define LISTEN_BACKLOG 1024

/* Open-addressing table: client address -> live connections from it. */
struct address_count {
	uint8_t addr[16];	/* IPv4 as v4-mapped IPv6 */
	uint32_t count;		/* 0 = free slot */
};

static void address_key(const struct sockaddr_storage *ss, uint8_t out[16])
{
	memset(out, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &in->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		memcpy(out, &in6->sin6_addr, 16);
	}
}

/* Returns the slot of addr, or a free slot where it would go. The table is
 * sized to twice max_connections, so there is always a free slot. */
static struct address_count *address_slot(struct server *srv, const uint8_t addr[16])
{
	size_t mask = srv->per_address_cap - 1;
	size_t i = hash_bytes_unkeyed(addr, 16) & mask;
	for (;;) {
		struct address_count *a = &srv->per_address[i];
		if (a->count == 0 || memcmp(a->addr, addr, 16) == 0)
			return a;
		i = (i + 1) & mask;
	}
}

/* Deletion in linear probing: shift later entries back into the hole. */
static void address_delete(struct server *srv, struct address_count *hole)
{
	size_t mask = srv->per_address_cap - 1;
	size_t i = (size_t)(hole - srv->per_address);
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		struct address_count *e = &srv->per_address[j];
		if (e->count == 0)
			break;
		size_t home = hash_bytes_unkeyed(e->addr, 16) & mask;
		/* Move e into the hole unless its home lies cyclically in (i, j]. */
		bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
		if (!stays) {
			srv->per_address[i] = *e;
			i = j;
		}
	}
	srv->per_address[i].count = 0;
}

void listener_conn_closed(struct server *srv, struct conn *c)
{
	uint8_t key[16];
	address_key(&c->peer, key);
	struct address_count *a = address_slot(srv, key);
	if (a->count == 0)
		return;
	if (--a->count == 0)
		address_delete(srv, a);
}

static void arm_accept(struct listener *l)
{
	struct io_uring_sqe *sqe = loop_sqe(&l->srv->loop, &l->accept_op);
	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	l->armed = true;
}

static void on_accept(struct loop_op *op, int res, uint32_t flags)
{
	struct listener *l = (struct listener *)((char *)op - offsetof(struct listener, accept_op));
	struct server *srv = l->srv;

	if (!(flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (res < 0) {
		if (res != -ECANCELED && !srv->stopping)
			log_warning("accept on %s: %s; retrying on the next tick", l->name, strerror(-res));
		return;	/* re-armed by listeners_rearm() from the timer */
	}
	if (!l->armed && !srv->stopping)
		arm_accept(l);

	int fd = res;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	if (srv->stopping || getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
		close(fd);
		return;
	}
	char text[64] = "";
	if (srv->conn_count >= srv->cfg->max_connections) {
		srv->stats.connections_refused++;
		inet_ntop(peer.ss_family, peer.ss_family == AF_INET
				  ? (void *)&((struct sockaddr_in *)&peer)->sin_addr
				  : (void *)&((struct sockaddr_in6 *)&peer)->sin6_addr, text, sizeof(text));
		log_event(LOG_WARNING, { .message_id = LOG_MSGID_CONNECTION_REFUSED },
			  "connection from %s refused: %u connections open (client.max_connections)",
			  text, srv->conn_count);
		close(fd);
		return;
	}
	uint8_t key[16];
	address_key(&peer, key);
	struct address_count *a = address_slot(srv, key);
	if (a->count >= srv->cfg->max_connections_per_address) {
		srv->stats.connections_refused++;
		inet_ntop(peer.ss_family, peer.ss_family == AF_INET
				  ? (void *)&((struct sockaddr_in *)&peer)->sin_addr
				  : (void *)&((struct sockaddr_in6 *)&peer)->sin6_addr, text, sizeof(text));
		log_event(LOG_WARNING, { .message_id = LOG_MSGID_CONNECTION_REFUSED },
			  "connection from %s refused: %u connections open from that address "
			  "(client.max_connections_per_address)", text, a->count);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (conn_start(srv, fd, &peer) < 0) {
		log_warning("connection refused: out of memory");
		close(fd);
		return;
	}
	if (a->count == 0)
		memcpy(a->addr, key, 16);
	a->count++;
	srv->stats.connections_accepted++;
}

static struct listener *listener_new(struct server *srv)
{
	struct listener *l = realloc(srv->listeners, (srv->listener_count + 1) * sizeof(*l));
	if (!l)
		return NULL;
	srv->listeners = l;
	l = &srv->listeners[srv->listener_count];
	memset(l, 0, sizeof(*l));
	l->srv = srv;
	l->fd = -1;
	l->accept_op.complete = on_accept;
	return l;
}

static int open_one(struct server *srv, const struct listen_address *addr, char *why, size_t why_size)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int family, fd, one = 1;
	char name[80];

	if (sockaddr_from_host(addr->host, addr->port, &ss, &slen) < 0) {
		snprintf(why, why_size, "listen address %s is not a numeric IP address", addr->host);
		return -EINVAL;
	}
	family = ss.ss_family;
	sockaddr_text(&ss, name, sizeof(name));
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
	struct listener *l = listener_new(srv);
	if (!l) {
		close(fd);
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	l->fd = fd;
	snprintf(l->name, sizeof(l->name), "%s", name);
	srv->listener_count++;
	return 0;
}

int listener_adopt(struct server *srv, int fd, char *why, size_t why_size)
{
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	struct listener *l = listener_new(srv);
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
	srv->listener_count++;
	return 0;
}

static int address_table_alloc(struct server *srv, uint32_t max_connections)
{
	size_t cap = 16;
	while (cap < (size_t)max_connections * 2)
		cap *= 2;
	if (cap <= srv->per_address_cap)
		return 0;
	struct address_count *old = srv->per_address;
	size_t old_cap = srv->per_address_cap;
	struct address_count *t = calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	srv->per_address = t;
	srv->per_address_cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].count == 0)
			continue;
		*address_slot(srv, old[i].addr) = old[i];
	}
	free(old);
	return 0;
}

int listeners_resize_limits(struct server *srv, uint32_t max_connections)
{
	return address_table_alloc(srv, max_connections);
}

int listeners_open(struct server *srv, char *why, size_t why_size)
{
	const struct server_config *cfg = srv->cfg;
	int r;

	if (address_table_alloc(srv, cfg->max_connections) < 0) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	r = service_adopt_sockets(srv, why, why_size);
	if (r < 0)
		goto fail;
	if (r > 0) {
		log_info("listening on %d socket%s passed by systemd; client.listen is not used", r,
			 r == 1 ? "" : "s");
	} else {
		for (size_t i = 0; i < cfg->listen_count; i++) {
			r = open_one(srv, &cfg->listen[i], why, why_size);
			if (r < 0)
				goto fail;
		}
	}
	for (size_t i = 0; i < srv->listener_count; i++)
		arm_accept(&srv->listeners[i]);
	return 0;
fail:
	listeners_close(srv);
	return r;
}

void listeners_close(struct server *srv)
{
	for (size_t i = 0; i < srv->listener_count; i++) {
		struct listener *l = &srv->listeners[i];
		if (l->fd >= 0) {
			if (l->adopted) {
				/* systemd's socket: shutdown() would break it for systemd
				 * too; cancel our accept and close our copy only. */
				struct io_uring_sqe *sqe = loop_sqe(&srv->loop, NULL);
				io_uring_prep_cancel(sqe, &l->accept_op, 0);
			} else {
				/* shutdown() ends the multishot accept with an error CQE. */
				shutdown(l->fd, SHUT_RDWR);
			}
			close(l->fd);
			l->fd = -1;
		}
	}
}

void listeners_rearm(struct server *srv)
{
	for (size_t i = 0; i < srv->listener_count; i++) {
		struct listener *l = &srv->listeners[i];
		if (!l->armed && l->fd >= 0 && !srv->stopping)
			arm_accept(l);
	}
}
