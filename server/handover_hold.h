/* handover_hold: an ensemble member's connections from the previous
 * process, held until the member may serve them (issue 17, item 3).
 *
 * A member's recovered state can be behind what it applied and answered
 * before the restart: the commit index comes from the leader. The image
 * carries the zxid at save (handover.h), and each record its client's
 * last zxid seen, which is not above it. So the stored sockets are not
 * taken back at start: they stay as they are (not read from: what a
 * client sends waits in its socket) until the member knows a reachable
 * leader and has applied up to the image's zxid; then handover_restore()
 * takes them back, each adopted session is touched (locally, and sent to
 * the leader at the next half tick, so the leader's expiry does not end
 * it), and they are served. When that has not happened by the deadline
 * (session.max_timeout_ms after start: by then the leader has expired
 * every session they held), each socket is shut down and leaves the store:
 * its client sees the close and reconnects, as after any restart. A
 * standalone server has no leader to wait for: its state is whole at
 * start, and its connections are taken back at once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handover.h"

struct handover_hold {
	uint8_t *image;			/* a copy of the image, image_len bytes, or NULL */
	size_t image_len;
	struct handover_fd *fds;	/* the sockets held, count of them */
	size_t count;
	int64_t zxid;			/* the image's: applied up to it before serving */
	uint64_t deadline_ms;		/* on the hub's clock */
	bool active;
	void (*unstored)(void *ctx, uint64_t id);
	void *ctx;
};

/* Holds the n sockets with the image (copied; fds are the hold's, whatever
 * happens). Returns 0, or -ENOMEM (then the sockets are shut down and
 * unstored, as a refused image's). */
int handover_hold_begin(struct handover_hold *h, const uint8_t *image, size_t len,
			const struct handover_fd *fds, size_t n,
			void (*unstored)(void *ctx, uint64_t id), void *ctx,
			uint64_t deadline_ms);
/* Once per loop turn: when the member has a reachable leader and has
 * applied up to the image's zxid, the sockets are taken back (res says
 * how); past the deadline they are closed (res->why says so). Returns
 * whether the hold ended (res is filled then). */
bool handover_hold_check(struct handover_hold *h, struct request_path *p, bool leader_reachable,
			 uint64_t now_ms, struct handover_result *res);
/* Stopping while holding: the held sockets are left alone (they stay in
 * the store for the next process); the hold's memory is freed. */
void handover_hold_free(struct handover_hold *h);
/* Logs what handover_restore() or the hold did with n stored sockets. */
void handover_log_result(const struct handover_result *res, size_t n);
