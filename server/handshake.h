/* handshake: a connection's ConnectRequest and what it comes to: a new
 * session (a createSession txn, or forwarded to the leader), a resumed
 * one, the expired answer, a refusal (the client has seen a newer state,
 * this server knows no leader, too many sessions), or on a member cut off
 * from the quorum ZooKeeper's read-only server's sessions. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "request_path.h"

struct session;

/* The ConnectRequest of c (the connection's connect handler). */
void handshake_connect(struct request_path *p, struct conn *c, const uint8_t *frame,
		       uint32_t len);
/* The createSession txn of c was applied (s its session) or failed (err). */
void handshake_session_created(struct request_path *p, struct conn *c, struct session *s,
			       int32_t err);
