/* admin_http: the HTTP endpoint (admin.listen): /metrics in the Prometheus
 * text format and ZooKeeper's AdminServer commands under /commands/ as
 * JSON (admin_commands.c), served by libmicrohttpd inside the server's own
 * loop: MHD runs without a thread of its own (MHD_USE_EPOLL, external
 * polling), its epoll descriptor is polled on the ring and MHD_run() is
 * called when it is readable and when MHD's own timeout comes. So every
 * answer is made on the loop's thread, between two turns, reading the
 * state as the four-letter words do; no other thread ever touches it.
 *
 * A client of it is bounded by MHD: admin.max_connections in all and
 * admin.max_connections_per_address from one address (past them a
 * connection is closed at accept), 16 KiB of memory each for the request
 * line, headers and body (a larger request is refused with 431 or 413),
 * and admin.timeout_ms of silence before it is closed (a slow client holds
 * one slot for that long at most; it never blocks the loop, as every
 * socket is non-blocking). Only GET and HEAD are served. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <linux/time_types.h>

#include "log.h"
#include "loop.h"
#include "server_config.h"
#include "status.h"

struct MHD_Daemon;

struct admin_http {
	struct MHD_Daemon *daemon;
	struct loop *loop;
	const struct server_status *status;
	int epoll_fd;
	struct loop_op poll_op, timer_op, again_op;
	struct __kernel_timespec timer_ts;
	bool poll_armed, timer_armed, again_armed;
	bool stopped;
	struct http_stats stats;
	struct log_limit log_limit;	/* MHD's lines on bad requests */
};

/* Listens on cfg->admin_listen (nothing when it is not set). Returns 0, or
 * a negative errno with a sentence in why. */
int admin_http_start(struct admin_http *a, struct loop *loop, const struct server_config *cfg,
		     const struct server_status *status, char *why, size_t why_size);
/* Closes the listener and every connection (the loop may be gone). */
void admin_http_stop(struct admin_http *a);
