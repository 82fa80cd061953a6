/* members: corralctl's commands for an ensemble's membership (see
 * members.c and corralctl(8)). */
#pragma once

#include <stdint.h>

#include "command.h"

/* "members list|add|remove|transfer-leader ..." (args: what follows
 * "members"). Checks its own usage; returns an exit status. */
int cmd_members(struct ctx *x, char **args, int nargs);
/* health: every member's role, zxid lag and alarms, and the quorum; exit
 * 0 healthy, 1 degraded, 2 unreachable (see corralctl(8)). */
int cmd_health(struct ctx *x, char **args, int nargs);
/* sessions close ID: corral's opcode 5003 as the super user, at the -s
 * server, or at the leader when that one is not it. */
int members_close_session(struct ctx *x, int64_t id);
