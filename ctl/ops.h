/* ops: corralctl's operator commands: getacl and setacl (in a session),
 * sessions and watches (from the four-letter words cons, dump, wchp and
 * wchc, which the server must have enabled). See ops.c and corralctl(8). */
#pragma once

#include "command.h"

int cmd_getacl(struct ctx *x, char **args, int nargs);
int cmd_setacl(struct ctx *x, char **args, int nargs);
int cmd_sessions(struct ctx *x, char **args, int nargs);
int cmd_watches(struct ctx *x, char **args, int nargs);
