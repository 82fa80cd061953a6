/* handover_hold: see handover_hold.h. */
#include "handover_hold.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bytes.h"
#include "log.h"
#include "request_path.h"
#include "state.h"

/* Every held socket shut down and unstored: its client reconnects. */
static void close_all(struct handover_hold *h, const struct handover_fd *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		shutdown(fds[i].fd, SHUT_RDWR);
		close(fds[i].fd);
		if (h->unstored)
			h->unstored(h->ctx, fds[i].id);
	}
}

int handover_hold_begin(struct handover_hold *h, const uint8_t *image, size_t len,
			const struct handover_fd *fds, size_t n,
			void (*unstored)(void *ctx, uint64_t id), void *ctx,
			uint64_t deadline_ms)
{
	memset(h, 0, sizeof(*h));
	h->unstored = unstored;
	h->ctx = ctx;
	h->fds = malloc((n ? n : 1) * sizeof(*fds));
	h->image = image && len ? malloc(len) : NULL;
	if (!h->fds || (image && len && !h->image)) {
		close_all(h, fds, n);
		handover_hold_free(h);
		return -ENOMEM;
	}
	memcpy(h->fds, fds, n * sizeof(*fds));
	h->count = n;
	if (h->image) {
		memcpy(h->image, image, len);
		h->image_len = len;
	}
	/* The zxid at save (handover.h's header); an image too short for it
	 * is refused by handover_restore() without waiting. */
	h->zxid = len >= 24 ? (int64_t)load_be64(image + 16) : 0;
	h->deadline_ms = deadline_ms;
	h->active = true;
	return 0;
}

bool handover_hold_check(struct handover_hold *h, struct request_path *p, bool leader_reachable,
			 uint64_t now_ms, struct handover_result *res)
{
	if (!h->active)
		return false;
	memset(res, 0, sizeof(*res));
	if (leader_reachable && p->state->last_zxid >= h->zxid) {
		handover_restore(p, h->image, h->image_len, h->fds, h->count, h->unstored, h->ctx,
				 res);
	} else if (now_ms >= h->deadline_ms) {
		close_all(h, h->fds, h->count);
		res->closed = h->count;
		res->why = leader_reachable
			   ? "this member did not catch up with its leader in time (session.max_timeout_ms)"
			   : "this member found no leader in time (session.max_timeout_ms)";
	} else {
		return false;
	}
	h->count = 0;
	handover_hold_free(h);
	return true;
}

void handover_hold_free(struct handover_hold *h)
{
	/* Sockets still held stay open until the process exits: they are
	 * still in the store, for the next process. */
	free(h->image);
	free(h->fds);
	memset(h, 0, sizeof(*h));
}

void handover_log_result(const struct handover_result *res, size_t n)
{
	if (res->why && n > 0)
		log_notice("%zu client connections from systemd's fd store closed: %s",
			   res->closed, res->why);
	else
		log_notice("%zu client connections taken over from the previous process "
			   "(%zu closed)", res->adopted, res->closed);
}
