/* listener: the listening sockets, multishot accept on the ring, and the
 * admission limits: connections in total (client.max_connections) and per
 * client address (client.max_connections_per_address). */
#pragma once

#include <stdint.h>

#include "server_config.h"
#include "loop.h"

struct server;
struct conn;

struct listener {
	struct server *srv;
	int fd;
	struct loop_op accept_op;
	bool armed;
	bool adopted;		/* passed by systemd: never shut down */
	char name[80];
};

/* Takes the sockets systemd passed (socket activation) or, when there are
 * none, opens one per configured address; then starts accepting. Returns 0
 * or a negative errno, with the cause written to why. */
int listeners_open(struct server *srv, char *why, size_t why_size);
/* Uses fd, a listening socket opened by someone else (systemd). */
int listener_adopt(struct server *srv, int fd, char *why, size_t why_size);
/* Makes the per-address table fit a new client.max_connections. */
int listeners_resize_limits(struct server *srv, uint32_t max_connections);
void listeners_close(struct server *srv);
/* Re-arms accepts that stopped (after EMFILE and the like); from the timer. */
void listeners_rearm(struct server *srv);
/* Forgets a connection's place in the per-address count. */
void listener_conn_closed(struct server *srv, struct conn *c);
