/* clients: every client connection of this server, and who may connect.
 * It owns the connections (and the hub they share), admits new ones within
 * client.max_connections and client.max_connections_per_address, sends
 * what each turn gathered, and frees the closed ones once the ring is done
 * with them.
 *
 * The states a client controls have deadlines: a connection must send its
 * ConnectRequest within client.handshake_timeout_ms of being accepted
 * (ZooKeeper's sessionless connection timeout, 10 s), and finish a frame
 * it began within client.frame_timeout_ms; past it, it is closed. When
 * client.max_connections are open, a new connection displaces the oldest
 * one still before its ConnectRequest, so idle sockets cannot lock clients
 * out. The lines these write are rate limited (log.h's log_limit). */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"
#include "hash_table.h"
#include "list.h"
#include "log.h"
#include "namespace_stats.h"

struct clients {
	struct conn_hub hub;
	struct list all;		/* struct conn, through node */
	struct hash_table per_address;	/* struct address_count: live connections per address */
	uint64_t timed_out;		/* closed past a deadline (mntr) */
	uint64_t displaced;		/* closed to make room (mntr) */
	struct log_limit refused_log, deadline_log;
	/* ZooKeeper's read_per_namespace and write_per_namespace: per
	 * namespace, the bytes of each read answered (path, what it returned,
	 * 68 for the rest) and of each change applied (path and data). */
	struct namespace_stats reads, writes;
};

/* No connections yet; handlers receive their input. Returns 0 or -ENOMEM. */
int clients_init(struct clients *cl, struct loop *loop, const struct server_config *cfg,
		 const struct conn_handlers *handlers);
/* Frees every connection at once (the ring is going away with them). */
void clients_free(struct clients *cl);

/* An accepted socket (the listener's callback, ctx the struct clients):
 * a connection, or refused with a log line when past the limits. */
void clients_accept(void *ctx, int fd, const struct sockaddr_storage *peer);
/* The same for the TLS port's sockets: the connection speaks TLS with
 * the hub's current SSL_CTX. */
void clients_accept_tls(void *ctx, int fd, const struct sockaddr_storage *peer);
/* A connection taken over from the previous process (handover.c), on fd
 * with its id there: counted, not yet receiving (conn_start()). NULL when
 * out of memory (fd is then still the caller's). */
struct conn *clients_adopt(struct clients *cl, int fd, const struct sockaddr_storage *peer,
			   uint64_t id);
/* Connections of the TLS port still in their handshake (mntr's
 * zk_outstanding_tls_handshake). */
size_t clients_tls_handshakes(const struct clients *cl);
/* Once per loop turn: sends what gathered, frees connections that are done. */
void clients_flush(struct clients *cl);
/* From the timer: closes the connections past their deadlines. */
void clients_tick(struct clients *cl, uint64_t now_ms);
/* crst: every connection's statistics zeroed. */
void clients_reset_stats(struct clients *cl);

/* Every connection, closing ones too; the body may close c. */
#define clients_for_each(cl, c)							\
	list_for_each(&(cl)->all, c##_node)					\
		for (struct conn *c = list_entry(c##_node, struct conn, node); c; c = NULL)
