/* read: requests answered from the applied tree or the connection alone. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "request_path.h"

struct conn;

/* True for the ops read.c answers. */
bool read_op(int32_t op);
/* Runs one and queues its reply. Returns 0, -EBADMSG (malformed: close),
 * -ENOMEM, or -ECONNABORTED (the connection was closed, e.g. a limit). */
int read_execute(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		 const uint8_t *body, uint32_t len);
