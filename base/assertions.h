/* assertions: what must hold, stated where it must hold.
 *
 * ASSERT(cond) stays on in every build, release included: corrald's state
 * is replicated and logged, and a server that goes on after an invariant
 * broke (a txn applied twice, a request on two lists, a log position going
 * back) would write its mistake to disk and to its peers. Stopping is the
 * safe failure: the service restarts, recovers from its log, and the
 * journal has the line that says which invariant broke. The checks are
 * O(1) comparisons on paths that already touch the same memory; they cost
 * nothing measurable (tests/bench, see the README). */
#pragma once

#define ASSERT(cond)								\
	do {									\
		if (__builtin_expect(!(cond), 0))				\
			assertion_failed(#cond, __FILE__, __LINE__, __func__);	\
	} while (0)

/* Logs "assertion failed" with the condition and where (LOG_CRIT), then
 * aborts (a core dump for the post-mortem). */
_Noreturn void assertion_failed(const char *cond, const char *file, int line, const char *func);
