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
 * opened, systemd) or, when there are none, on addrs; then accepts. An
 * address that one of the kept sockets (a previous process's, stored in
 * systemd: handover.h) listens on takes that socket instead of a new one;
 * the kept sockets are the callee's (those not taken are closed, their
 * slots set to -1). Returns 0 or a negative errno with the cause written
 * to why (nothing is left open then). */
int listeners_open(struct listeners *ls, struct loop *loop, const struct listen_address *addrs,
		   size_t addr_count, const int *adopted, size_t adopted_count, int *kept,
		   size_t kept_count, char *why, size_t why_size);
/* For the hand-over: a copy of each socket this process opened (not the
 * adopted ones, which systemd keeps already) into *fds (malloc'd), which
 * then outlives listeners_close() (they are not shut down). Returns how
 * many, or -ENOMEM. */
int listeners_keep(struct listeners *ls, int **fds);
/* Stops accepting and closes the sockets (an adopted one stays systemd's). */
void listeners_close(struct listeners *ls);
/* Re-arms accepts that stopped (after EMFILE and the like); from the timer. */
void listeners_rearm(struct listeners *ls);
void listeners_free(struct listeners *ls);
