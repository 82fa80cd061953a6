/* handover: client connections that outlive the process, through
 * systemd's file descriptor store (issue 17). This file is the server's
 * half: what a connection is, as bytes, and a connection again from them;
 * app/fdstore.c is the service's half (what systemd is told and gives
 * back).
 *
 * On SIGTERM with the store on, the hub freezes (handover_begin()): no
 * connection reads or parses more, so what a client sends from then on
 * stays in its socket or, when a receive was already under way, in the
 * receive buffer, unparsed. Requests already parsed finish: writes commit
 * and are answered, reads are answered, events of the writes are queued;
 * the replies go out while the process waits. Connections that cannot be
 * handed over close after their replies, as on a plain stop: TLS ones
 * (the kernel here has no kTLS, so OpenSSL's state would have to move),
 * read-only sessions (this server's alone) and those with a SASL exchange
 * object. A session being created is waited for, as a write in flight.
 * When every connection is quiescent (handover_ready(): nothing
 * queued, nothing on the ring) or the stop's grace period is over, the
 * loop ends and handover_save() writes the image; a connection still
 * busy then is closed for real.
 *
 * The image (a sealed memfd, FDNAME=state; each socket FDNAME=conn-<id>;
 * the listening sockets, FDNAME=listen, are the listeners' and app's:
 * listeners_keep(), fdstore.h):
 *
 *   "CORRALHO"  magic (8 bytes)
 *   int  version (HANDOVER_VERSION)
 *   int  records
 *   long the last zxid applied when it was written
 *   int  CRC-32 of the body
 *   long body length
 *   body: records, each a jute buffer (int length, bytes), so a reader
 *   skips what it does not know at the end of one:
 *     long id (the conn-<id> name), int state (0 before its
 *     ConnectRequest, 1 established), long session id, int negotiated
 *     timeout, long last zxid and last xid answered, bool readOnly byte
 *     sent, buffer bytes received not yet parsed, buffer replies not yet
 *     sent, int watches, each {int kinds (watch.h), string path}, bool
 *     super, int identities beyond ip:<peer>, each {string scheme,
 *     string id}.
 *   Integers are big-endian (jute's). Of the ZooKeeper protocol itself
 *   nothing is expected next: xids are the client's, checked by nobody.
 *
 * At start (handover_restore()) the data directory is recovered first, as
 * always (an ensemble member's connections wait until it has caught up with
 * its leader: handover_hold.h); then each socket is taken back with its record. A socket whose
 * record is missing (kill -9: no image was written), unreadable, of
 * another version, whose session is gone, or when the image's zxid is
 * above the recovered one, is shut down (its client sees the close and
 * reconnects, as today) and leaves the store. The sockets that are taken
 * back stay stored while they live: a kill -9 gives them back without an
 * image, and they are closed then; one that closes for real is removed
 * (the server's conn_unstored hook). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "jute.h"

struct clients;
struct request_path;

#define HANDOVER_VERSION 1

/* A connection's socket, by the id in its store name (conn-<id>). */
struct handover_fd {
	uint64_t id;
	int fd;
};

struct handover_image {
	struct jute_buf bytes;		/* the image, header and records */
	struct handover_fd *conns;	/* the sockets to store, count of them */
	size_t count;
};

/* What handover_restore() did. */
struct handover_result {
	size_t adopted;			/* served again */
	size_t closed;			/* shut down: no usable record */
	const char *why;		/* why the image as a whole was refused, or NULL */
};

/* SIGTERM: the hub freezes; what cannot be handed over closes after its
 * replies. */
void handover_begin(struct clients *cl);
/* Whether every connection left is quiescent (and the closing ones gone). */
bool handover_ready(const struct clients *cl);
/* Writes the image of the quiescent connections, at most max of them
 * (they are handed over: closing them here leaves their sockets alone);
 * every other connection is closed. Returns 0 or -ENOMEM (then none is
 * handed over). */
int handover_save(struct request_path *p, struct handover_image *img, size_t max);
void handover_image_free(struct handover_image *img);

/* Takes the n sockets back with the image (NULL, len 0: none was found).
 * unstored(ctx, id) is called for each socket shut down here. fds are
 * the callee's, whatever happens. */
void handover_restore(struct request_path *p, const uint8_t *image, size_t len,
		      const struct handover_fd *fds, size_t n,
		      void (*unstored)(void *ctx, uint64_t id), void *ctx,
		      struct handover_result *res);
