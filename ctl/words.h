/* words: corralctl's commands that use the four-letter words, each on a
 * connection of its own: ruok (a health check) and status (srvr and mntr
 * as one table). See words.c and corralctl(8). */
#pragma once

#include "command.h"

int cmd_ruok(struct ctx *x, char **args, int nargs);
int cmd_status(struct ctx *x, char **args, int nargs);
