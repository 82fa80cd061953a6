/* backup: corralctl's backup command (backup.c). */
#pragma once

#include "command.h"

/* backup FILE: streams an online backup of the server into FILE. */
int cmd_backup(struct ctx *x, char **args, int nargs);
