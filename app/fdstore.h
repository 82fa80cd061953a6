/* fdstore: what corrald gives systemd to keep across a restart, and takes
 * back at start (issue 17; the server's half is server/handover.h).
 *
 * At start every descriptor systemd passes comes through here
 * (sd_listen_fds_with_names): "client" (or "unknown") are corral.socket's
 * listening sockets, adopted as before; "listen" a listening socket a
 * previous process stored (used for the address of client.listen it
 * listens on, else closed); "conn-<id>" a client connection
 * stored by a previous process; "state" the image of their state (a
 * sealed memfd), read whole and closed. Anything else is closed with a
 * warning.
 *
 * The store is on when systemd's notification socket is there
 * ($NOTIFY_SOCKET) and the unit sized a store: $FDSTORE (which systemd 254
 * and later set to FileDescriptorStoreMax=) or, for systemd 252 (Debian
 * 12) which does not, $CORRAL_FDSTORE_MAX set beside it in the unit. An
 * ensemble member's connections are held at start until it has caught up
 * (server/handover_hold.h). On
 * SIGTERM with the store on, the listening sockets it opened are stored
 * (FDNAME=listen: what connects during the restart waits in their backlog;
 * corral.socket's stay systemd's anyway), each connection handed over
 * with FDSTORE=1 and FDNAME=conn-<id>, then the image with FDNAME=state,
 * then a barrier (the messages are in systemd before corrald exits).
 * Stored connections that close for real leave the store
 * (FDSTOREREMOVE=1); the image leaves it as soon as it has been read,
 * before it is used, and the listening sockets once they are listened on
 * again (they are stored again on the next SIGTERM). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handover.h"

struct fdstore {
	size_t max;			/* FileDescriptorStoreMax; 0: the store is off */
	int *sockets;			/* corral.socket's, socket_count of them */
	size_t socket_count;
	int *kept;			/* listening sockets a previous process stored */
	size_t kept_count;
	struct handover_fd *conns;	/* stored connections given back */
	size_t conn_count;
	uint8_t *image;			/* the state stored with them, or NULL */
	size_t image_len;
};

/* Reads whether the store is on and takes every descriptor systemd
 * passed. Returns 0, or a negative errno with why filled (a socket of
 * corral.socket that is not a listening stream socket, out of memory). */
int fdstore_take(struct fdstore *st, char *why, size_t why_size);
/* The image was used: its memory is freed (it left the store when read). */
void fdstore_image_done(struct fdstore *st);
/* The kept listening sockets were taken (listeners_open()): out of the store. */
void fdstore_listeners_done(struct fdstore *st);
void fdstore_free(struct fdstore *st);

/* A stored connection closed for real (the server's conn_unstored hook). */
void fdstore_unstore(void *ctx, uint64_t conn_id);
/* Stores the listening sockets, the connections and the image; returns
 * how many connections systemd holds now (the others are lost: closed
 * when corrald exits). */
size_t fdstore_push(const struct handover_image *img, const int *listeners,
		    size_t listener_count);
