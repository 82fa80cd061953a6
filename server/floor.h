/* floor: the benchmark's floor, in a build configured with
 * -Dbench_floor=true (never a package's). Such a corrald answers every
 * request of an open session at once with a reply of the shape the real one
 * has, made from nothing: no tree, no prep, no log, no commit. What is left
 * is what every request costs anyway: the connection, the ring, framing,
 * decoding, the reply and the watch table (a setData still fires the watches
 * of its path, so the watch fan-out has its notifications). The handshake,
 * pings, auth, setWatches and closing a session take the real path.
 *
 * The replies: create* its path (create2 and the others also a Stat), delete
 * nothing, setData and exists a Stat, getData the length of the last value
 * written (100 bytes before any) and a Stat, getChildren as many names
 * ("k0", "k1", ...) as creates were made under the last parent created
 * into, sync its path, multi a result per op. tests/bench/compare.py runs
 * it as a column of its own: how close corral is to what the machine's
 * network path and corral's loop allow. */
#ifndef CORRAL_FLOOR_H
#define CORRAL_FLOOR_H

#include <stdint.h>

struct conn;
struct request_path;

/* 1 when the request was answered, 0 when it takes the real path, or
 * -EBADMSG (a malformed request) / -ENOMEM. */
int floor_answer(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		 const uint8_t *body, uint32_t len);

#endif
