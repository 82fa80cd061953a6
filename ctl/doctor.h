/* doctor: corralctl's preflight, run on the server's machine against its
 * corral.yaml (see doctor.c and corralctl(8)). */
#pragma once

#include "command.h"

#define DOCTOR_DEFAULT_CONFIG "/etc/corral/corral.yaml"

/* doctor [CONFIG]: exit 0 when every check passed, 1 when one warned or
 * failed. */
int cmd_doctor(struct ctx *x, char **args, int nargs);
