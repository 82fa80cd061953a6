/* listener: the listening sockets of the client port and multishot accept
 * on the ring. Each accepted socket goes to the accepted callback (the
 * clients, who decide whether it may stay). The sockets are opened for the
 * configured addresses, or adopted when systemd passed them (socket
 * activation). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "loop.h"
#include "sockaddr.h"

struct listeners;

struct listener {
	struct listeners *set;
	int fd;
	struct loop_op accept_op;
	bool armed;
	bool adopted;		/* passed by systemd: never shut down */
	char name[80];
};

struct listeners {
	struct loop *loop;
	struct listener *list;
	size_t count;
	bool closed;
	void (*accepted)(void *ctx, int fd, const struct sockaddr_storage *peer);
	void *ctx;
};

/* Listens on the adopted sockets (listening stream sockets someone else
 * opened, systemd) or, when there are none, on addrs; then accepts. Returns
 * 0 or a negative errno with the cause written to why (nothing is left
 * open then). */
int listeners_open(struct listeners *ls, struct loop *loop, const struct listen_address *addrs,
		   size_t addr_count, const int *adopted, size_t adopted_count, char *why,
		   size_t why_size);
/* Stops accepting and closes the sockets (an adopted one stays systemd's). */
void listeners_close(struct listeners *ls);
/* Re-arms accepts that stopped (after EMFILE and the like); from the timer. */
void listeners_rearm(struct listeners *ls);
void listeners_free(struct listeners *ls);
