/* clients: every client connection of this server, and who may connect.
 * It owns the connections (and the hub they share), admits new ones within
 * client.max_connections and client.max_connections_per_address, sends
 * what each turn gathered, and frees the closed ones once the ring is done
 * with them. */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"
#include "hash_table.h"
#include "list.h"

struct clients {
	struct conn_hub hub;
	struct list all;		/* struct conn, through node */
	struct hash_table per_address;	/* struct address_count: live connections per address */
};

/* No connections yet; handlers receive their input. Returns 0 or -ENOMEM. */
int clients_init(struct clients *cl, struct loop *loop, const struct server_config *cfg,
		 const struct conn_handlers *handlers);
/* Frees every connection at once (the ring is going away with them). */
void clients_free(struct clients *cl);

/* An accepted socket (the listener's callback, ctx the struct clients):
 * a connection, or refused with a log line when past the limits. */
void clients_accept(void *ctx, int fd, const struct sockaddr_storage *peer);
/* Once per loop turn: sends what gathered, frees connections that are done. */
void clients_flush(struct clients *cl);
/* crst: every connection's statistics zeroed. */
void clients_reset_stats(struct clients *cl);

/* Every connection, closing ones too; the body may close c. */
#define clients_for_each(cl, c)							\
	list_for_each(&(cl)->all, c##_node)					\
		for (struct conn *c = list_entry(c##_node, struct conn, node); c; c = NULL)
