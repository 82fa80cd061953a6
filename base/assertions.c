/* assertions: see assertions.h. */
#include "assertions.h"

#include <stdlib.h>

#include "log.h"

_Noreturn void assertion_failed(const char *cond, const char *file, int line, const char *func)
{
	log_full(LOG_CRIT, NULL, "assertion failed: %s (%s:%d, %s); stopping", cond, file, line,
		 func);
	abort();
}
