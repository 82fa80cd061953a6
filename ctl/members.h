/* members: corralctl's commands for an ensemble's membership (see
 * members.c and corralctl(8)). */
#pragma once

#include "command.h"

/* "members list|add|remove|transfer-leader ..." (args: what follows
 * "members"). Checks its own usage; returns an exit status. */
int cmd_members(struct ctx *x, char **args, int nargs);
/* health: every member's role, zxid lag and alarms, and the quorum; exit
 * 0 healthy, 1 degraded, 2 unreachable (see corralctl(8)). */
int cmd_health(struct ctx *x, char **args, int nargs);
