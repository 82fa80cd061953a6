/* members: corralctl's commands for an ensemble's membership (see
 * members.c and corralctl(8)). */
#pragma once

#include "command.h"

/* "members list|add|remove|transfer-leader ..." (args: what follows
 * "members"). Checks its own usage; returns an exit status. */
int cmd_members(struct ctx *x, char **args, int nargs);
