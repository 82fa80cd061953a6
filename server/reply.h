/* reply: what goes back to a client: a reply's header and body in the
 * connection's output buffer, a watch event, the ConnectResponse; the
 * limit on unread output (client.max_output_bytes: a client that does not
 * read is closed); and what each answered request counts (latency, the
 * connection's last operation, reply sizes). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* Writes a reply header {xid, zxid, err} and returns the frame's start,
 * for reply_end() once the body is written after it. */
size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, int32_t err);
/* Finishes the frame begun at start: it goes out this loop turn. Closes
 * the connection (logged) when out of memory or past its output limit. */
void reply_end(struct conn *c, size_t start);
/* A header-only reply carrying err. */
void reply_error(struct conn *c, int32_t xid, int64_t zxid, int32_t err);
/* A watch event (xid -1) at zxid. */
void reply_event(struct conn *c, int64_t zxid, int event_type, const char *path, size_t len);
/* The ConnectResponse: a session (timeout_ms, session_id, password), or
 * the expired answer (all zero, password NULL). */
void reply_connect(struct conn *c, int32_t timeout_ms, int64_t session_id, const uint8_t *password);
/* A request of op (sent as xid, received at received_ms) was answered:
 * the server's and the connection's latency and last-operation figures.
 * zxid: the state's, when it was answered; update: it was a txn (its
 * latency counts with the updates, else with the reads). */
void reply_account(struct conn *c, int32_t op, int32_t xid, uint64_t received_ms, int64_t zxid,
		   bool update);
