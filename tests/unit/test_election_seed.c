/* test_election_seed: the seed of raft's randomized election timeouts is
 * drawn at random for each server, not derived from its pid and id: two
 * members of an ensemble started one after the other (consecutive pids)
 * share a seed only by chance (2^-32), not a quarter of the time, and do
 * not stand for election in the same instant round after round. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "commit.h"

#define DRAWS 8

/* One process, one id, DRAWS seeds: a seed from the pid and id is the same
 * each time (and so equal for servers 1 and 2 as pids 4k+1 and 4k+2); random
 * ones repeat each other rarely. */
static void test_the_same_server_in_the_same_process_gets_a_new_seed_each_time(void **state)
{
	(void)state;
	unsigned seeds[DRAWS];
	unsigned distinct = 0;
	for (unsigned i = 0; i < DRAWS; i++) {
		seeds[i] = commit_election_seed(1);
		bool seen = false;
		for (unsigned j = 0; j < i; j++)
			seen = seen || seeds[j] == seeds[i];
		distinct += !seen;
	}
	assert_true(distinct >= DRAWS / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_same_server_in_the_same_process_gets_a_new_seed_each_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
