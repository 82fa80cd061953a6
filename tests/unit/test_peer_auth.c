/* Unit tests of the peers' shared-secret handshake (replication/peer_auth.c):
 * both sides with one secret accept each other; a wrong secret is caught on
 * either side; a recorded handshake cannot be replayed, one side's proof
 * cannot be reflected as the other's, and a HELLO for another server or
 * another ensemble is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "peer_auth.h"

#define TAG 0x12345678u

static const uint8_t secret[] = "the ensemble's secret, 32 bytes.";
static const uint8_t wrong[] = "another ensemble's secret, wrong";

struct run {
	struct peer_auth connector, acceptor;
	uint8_t hello[PEER_AUTH_HELLO_BYTES];
	uint8_t challenge[PEER_AUTH_CHALLENGE_BYTES];
	uint8_t response[PEER_AUTH_RESPONSE_BYTES];
	char why[256];
};

/* Server 2 connects to server 1: HELLO and CHALLENGE. */
static void hello_and_challenge(struct run *r, const uint8_t *acceptor_secret)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(peer_auth_hello(&r->connector, TAG, 2, 1, r->hello), 0);
	assert_true(peer_auth_is_hello(r->hello, sizeof(r->hello)));
	assert_int_equal(peer_auth_answer_hello(&r->acceptor, TAG, 1, acceptor_secret, 32, r->hello,
						r->challenge, r->why, sizeof(r->why)), 0);
}

static void test_both_sides_with_one_secret_accept_each_other(void **state)
{
	struct run r;
	(void)state;
	hello_and_challenge(&r, secret);
	assert_int_equal(peer_auth_answer_challenge(&r.connector, secret, 32, r.challenge, r.response,
						    r.why, sizeof(r.why)), 0);
	assert_int_equal(peer_auth_check_response(&r.acceptor, secret, 32, r.response, r.why,
						  sizeof(r.why)), 0);
	assert_int_equal(r.acceptor.connector, 2);
	assert_int_equal(r.acceptor.acceptor, 1);
}

static void test_an_acceptor_with_another_secret_is_refused_by_the_connector(void **state)
{
	struct run r;
	(void)state;
	hello_and_challenge(&r, wrong);
	assert_int_equal(peer_auth_answer_challenge(&r.connector, secret, 32, r.challenge, r.response,
						    r.why, sizeof(r.why)), -EACCES);
	assert_non_null(strstr(r.why, "does not prove the ensemble's secret"));
}

static void test_a_connector_with_another_secret_is_refused_by_the_acceptor(void **state)
{
	struct run r;
	(void)state;
	hello_and_challenge(&r, secret);
	/* it cannot check the acceptor's proof; what it answers is of its secret */
	struct run w = r;
	assert_int_equal(peer_auth_answer_challenge(&w.connector, wrong, 32, r.challenge, w.response,
						    w.why, sizeof(w.why)), -EACCES);
	memcpy(w.response, "CRPR\0\0\0\0", 8);	/* a forged answer of zeros */
	assert_int_equal(peer_auth_check_response(&r.acceptor, secret, 32, w.response, r.why,
						  sizeof(r.why)), -EACCES);
	assert_non_null(strstr(r.why, "server 2 does not prove"));
}

static void test_a_recorded_response_does_not_pass_a_new_challenge(void **state)
{
	struct run first, again;
	(void)state;
	hello_and_challenge(&first, secret);
	assert_int_equal(peer_auth_answer_challenge(&first.connector, secret, 32, first.challenge,
						    first.response, first.why, sizeof(first.why)), 0);
	/* the same HELLO played again gets a new nonce; the old RESPONSE fails */
	assert_int_equal(peer_auth_answer_hello(&again.acceptor, TAG, 1, secret, 32, first.hello,
						again.challenge, again.why, sizeof(again.why)), 0);
	assert_memory_not_equal(again.challenge + 8, first.challenge + 8, PEER_AUTH_NONCE_BYTES);
	assert_int_equal(peer_auth_check_response(&again.acceptor, secret, 32, first.response,
						  again.why, sizeof(again.why)), -EACCES);
}

static void test_the_acceptors_proof_reflected_as_a_response_is_refused(void **state)
{
	struct run r;
	(void)state;
	hello_and_challenge(&r, secret);
	uint8_t reflected[PEER_AUTH_RESPONSE_BYTES] = "CRPR";
	memcpy(reflected + 8, r.challenge + 8 + PEER_AUTH_NONCE_BYTES, PEER_AUTH_MAC_BYTES);
	assert_int_equal(peer_auth_check_response(&r.acceptor, secret, 32, reflected, r.why,
						  sizeof(r.why)), -EACCES);
}

static void test_a_hello_for_another_server_or_ensemble_is_refused(void **state)
{
	struct run r;
	(void)state;
	assert_int_equal(peer_auth_hello(&r.connector, TAG, 2, 3, r.hello), 0);
	assert_int_equal(peer_auth_answer_hello(&r.acceptor, TAG, 1, secret, 32, r.hello, r.challenge,
						r.why, sizeof(r.why)), -EBADMSG);
	assert_non_null(strstr(r.why, "meant to reach server 3"));
	assert_int_equal(peer_auth_hello(&r.connector, TAG + 1, 2, 1, r.hello), 0);
	assert_int_equal(peer_auth_answer_hello(&r.acceptor, TAG, 1, secret, 32, r.hello, r.challenge,
						r.why, sizeof(r.why)), -EBADMSG);
	assert_non_null(strstr(r.why, "another ensemble"));
}

static void test_a_frame_is_not_taken_for_a_hello(void **state)
{
	/* a frame starts with its length: far below the magic's value */
	const uint8_t frame[8] = { 0, 0, 0, 40, 1, 2, 3, 4 };
	uint8_t hello[PEER_AUTH_HELLO_BYTES];
	struct peer_auth a;
	(void)state;
	assert_false(peer_auth_is_hello(frame, sizeof(frame)));
	assert_false(peer_auth_is_hello(frame, 3));
	assert_int_equal(peer_auth_hello(&a, TAG, 2, 1, hello), 0);
	assert_false(peer_auth_is_hello(hello, 3));
	assert_true((uint32_t)hello[0] << 24 > (80u << 20));	/* above any frame's length */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_sides_with_one_secret_accept_each_other),
		cmocka_unit_test(test_an_acceptor_with_another_secret_is_refused_by_the_connector),
		cmocka_unit_test(test_a_connector_with_another_secret_is_refused_by_the_acceptor),
		cmocka_unit_test(test_a_recorded_response_does_not_pass_a_new_challenge),
		cmocka_unit_test(test_the_acceptors_proof_reflected_as_a_response_is_refused),
		cmocka_unit_test(test_a_hello_for_another_server_or_ensemble_is_refused),
		cmocka_unit_test(test_a_frame_is_not_taken_for_a_hello),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
