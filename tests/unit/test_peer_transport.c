/* Tests of the servers' transport (daemon/peer_transport.c): two transports
 * in one process, on one real io_uring loop, over real loopback TCP. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "loop.h"
#include "peer_message.h"
#include "peer_transport.h"

#define MAX_GOT 4096

struct endpoint {
	struct peer_transport t;
	raft_id id;
	raft_term got_terms[MAX_GOT];	/* term of each message received, in order */
	size_t got_bytes[MAX_GOT];	/* AppendEntries: bytes of entry data */
	int got;
	bool bad_content;
};

static struct loop L;

/* A 5 ms timer that ticks the transports and stops the loop when asked. */
struct ticker {
	struct loop_op op;
	struct __kernel_timespec ts;
	bool armed;
	struct endpoint *eps[3];
	bool (*done)(void *arg);
	void *arg;
	uint64_t deadline;
	bool timed_out;
};
static struct ticker T;

static void on_tick(struct loop_op *op, int res, uint32_t flags)
{
	(void)op;
	(void)res;
	(void)flags;
	T.armed = false;
	uint64_t now = loop_now_ms();
	for (int i = 0; i < 3; i++)
		if (T.eps[i] && !T.eps[i]->t.closing)
			peer_transport_tick(&T.eps[i]->t, now);
	if (T.done && T.done(T.arg)) {
		loop_stop(&L);
		return;
	}
	if (now >= T.deadline) {
		T.timed_out = true;
		loop_stop(&L);
		return;
	}
	T.ts.tv_sec = 0;
	T.ts.tv_nsec = 5000000;
	struct io_uring_sqe *sqe = loop_sqe(&L, &T.op);
	io_uring_prep_timeout(sqe, &T.ts, 0, 0);
	T.armed = true;
}

/* Runs the loop until done(arg) or timeout_ms; returns whether done. */
static bool run_until(bool (*done)(void *), void *arg, uint64_t timeout_ms)
{
	T.done = done;
	T.arg = arg;
	T.deadline = loop_now_ms() + timeout_ms;
	T.timed_out = false;
	L.stop = false;
	if (!T.armed)
		on_tick(&T.op, 0, 0);
	if (!L.stop)
		loop_run(&L);
	return !T.timed_out && (!done || done(arg));
}

static void on_message(void *ctx, struct raft_message *m)
{
	struct endpoint *e = ctx;
	if (e->got < MAX_GOT) {
		raft_term term = 0;
		size_t bytes = 0;
		if (m->type == RAFT_APPEND_ENTRIES) {
			term = m->append_entries.term;
			for (unsigned k = 0; k < m->append_entries.n_entries; k++) {
				const struct raft_entry *en = &m->append_entries.entries[k];
				bytes += en->buf.len;
				for (size_t b = 0; b < en->buf.len; b++)
					if (((uint8_t *)en->buf.base)[b] != (uint8_t)(term + b))
						e->bad_content = true;
			}
		} else if (m->type == RAFT_APPEND_ENTRIES_RESULT) {
			term = m->append_entries_result.term;
		}
		e->got_terms[e->got] = term;
		e->got_bytes[e->got] = bytes;
		e->got++;
	}
	peer_message_release(m);
}

static void endpoint_init_tagged(struct endpoint *e, raft_id id, const char *listen,
				 size_t max_queue, uint32_t tag)
{
	memset(e, 0, sizeof(*e));
	e->id = id;
	struct peer_transport_options o = {
		.self = id, .cluster_tag = tag, .listen = listen, .max_queue_bytes = max_queue,
		.max_frame_bytes = 4u << 20, .backoff_min_ms = 10, .backoff_max_ms = 80,
		.max_inbound = 4,
		.on_message = on_message, .ctx = e,
	};
	char why[256];
	int r = peer_transport_init(&e->t, &L, &o, why, sizeof(why));
	if (r < 0)
		fail_msg("peer_transport_init: %s", why);
}

static void endpoint_init(struct endpoint *e, raft_id id, const char *listen, size_t max_queue)
{
	endpoint_init_tagged(e, id, listen, max_queue, 0x636f7272);
}

static bool closed(void *arg)
{
	return peer_transport_close(&((struct endpoint *)arg)->t);
}

static void endpoint_close(struct endpoint *e)
{
	assert_true(run_until(closed, e, 5000));
}

/* An AppendEntries of term `term` with one entry of n bytes (term + i). */
static int send_append(struct endpoint *from, raft_id to, raft_term term, size_t n)
{
	uint8_t *data = malloc(n ? n : 1);
	for (size_t b = 0; b < n; b++)
		data[b] = (uint8_t)(term + b);
	struct raft_entry entry = { .term = term, .type = RAFT_COMMAND, .buf = { data, n } };
	struct raft_message m = { .type = RAFT_APPEND_ENTRIES, .server_id = to };
	m.append_entries = (struct raft_append_entries){ .term = term, .entries = &entry,
							 .n_entries = 1 };
	int r = peer_transport_send(&from->t, &m);
	free(data);
	return r;
}

struct want {
	struct endpoint *e;
	int n;
};

static bool got_n(void *arg)
{
	struct want *w = arg;
	return w->e->got >= w->n;
}

static int setup(void **state)
{
	char why[256];
	memset(&T, 0, sizeof(T));
	T.op.complete = on_tick;
	if (loop_init(&L, 256, why, sizeof(why)) < 0) {
		print_message("io_uring unavailable: %s\n", why);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	/* let the last timer fire so nothing points into the test's memory */
	T.done = NULL;
	T.deadline = 0;
	if (T.armed) {
		L.stop = false;
		loop_run(&L);
	}
	loop_free(&L);
	return 0;
}

static void test_messages_flow_both_ways_in_order_whatever_their_size(void **state)
{
	static struct endpoint a, b;
	endpoint_init(&a, 1, "127.0.0.1:0", 64u << 20);
	endpoint_init(&b, 2, "127.0.0.1:0", 64u << 20);
	T.eps[0] = &a;
	T.eps[1] = &b;
	/* a reaches b by name ("localhost" may give ::1 first: the next
	 * address is tried after a refused connection) */
	char by_name[64];
	snprintf(by_name, sizeof(by_name), "localhost:%s", strrchr(b.t.listen_name, ':') + 1);
	assert_int_equal(peer_transport_add(&a.t, 2, by_name), 0);
	assert_int_equal(peer_transport_add(&b.t, 1, a.t.listen_name), 0);
	assert_int_equal(peer_transport_add(&a.t, 2, b.t.listen_name), -EEXIST);
	assert_int_equal(peer_transport_add(&a.t, 3, "no..such:1"), -EINVAL);	/* not a host name */
	assert_int_equal(peer_transport_add(&a.t, 3, "-bad:1"), -EINVAL);
	assert_int_equal(peer_transport_add(&a.t, 3, "127.0.0.1:0"), -EINVAL);	/* a real port */
	assert_int_equal(peer_transport_add(&a.t, 3, "::1:2888"), -EINVAL);	/* v6 in brackets */
	assert_int_equal(peer_transport_add(&a.t, 3, "[127.0.0.1]:2888"), -EINVAL);
	assert_int_equal(peer_transport_add(&a.t, 3, "127.0.0.1:65536"), -EINVAL);
	assert_int_equal(peer_transport_add(&a.t, 3, "[::1]:2888"), 0);

	/* sizes from empty to 1 MiB: frames cross send and recv boundaries */
	size_t sizes[] = { 0, 1, 100, 65535, 65536, 300000, 1 << 20 };
	int n = 200;
	for (int i = 0; i < n; i++)
		assert_int_equal(send_append(&a, 2, (raft_term)(i + 1), sizes[i % 7]), 0);
	struct want w = { &b, n };
	assert_true(run_until(got_n, &w, 20000));
	assert_int_equal(b.got, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(b.got_terms[i], i + 1);
		assert_int_equal(b.got_bytes[i], sizes[i % 7]);
	}
	assert_false(b.bad_content);

	for (int i = 0; i < n; i++) {
		struct raft_message m = { .type = RAFT_APPEND_ENTRIES_RESULT, .server_id = 1 };
		m.append_entries_result.term = (raft_term)(1000 + i);
		assert_int_equal(peer_transport_send(&b.t, &m), 0);
	}
	struct want wa = { &a, n };
	assert_true(run_until(got_n, &wa, 20000));
	for (int i = 0; i < n; i++)
		assert_int_equal(a.got_terms[i], 1000 + i);
	struct raft_message m = { .type = RAFT_TIMEOUT_NOW, .server_id = 9 };
	assert_int_equal(peer_transport_send(&a.t, &m), -ENOENT);

	endpoint_close(&a);
	endpoint_close(&b);
	T.eps[0] = T.eps[1] = NULL;
}

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

static bool peer_down(void *arg)
{
	return !((struct peer *)arg)->up;
}

static void test_messages_wait_for_a_peer_that_is_down_and_arrive_when_it_is_up(void **state)
{
	static struct endpoint a, b;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", free_port());
	endpoint_init(&a, 1, "127.0.0.1:0", 1u << 20);
	T.eps[0] = &a;
	assert_int_equal(peer_transport_add(&a.t, 2, addr), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(send_append(&a, 2, (raft_term)(i + 1), 10), 0);
	/* nobody listens: attempts fail and back off; nothing is lost */
	assert_false(run_until(NULL, NULL, 150));
	assert_true(a.t.peers[0]->connect_failures >= 2);
	assert_int_equal(a.t.peers[0]->frames_sent, 0);

	endpoint_init(&b, 2, addr, 1u << 20);
	T.eps[1] = &b;
	struct want w = { &b, 5 };
	assert_true(run_until(got_n, &w, 5000));
	for (int i = 0; i < 5; i++)
		assert_int_equal(b.got_terms[i], i + 1);
	assert_int_equal(a.t.peers[0]->connects, 1);

	/* the peer restarts: the dropped connection is noticed and made again */
	endpoint_close(&b);
	assert_true(run_until(peer_down, a.t.peers[0], 5000));
	endpoint_init(&b, 2, addr, 1u << 20);
	T.eps[1] = &b;
	assert_int_equal(send_append(&a, 2, 77, 10), 0);
	struct want w1 = { &b, 1 };
	assert_true(run_until(got_n, &w1, 5000));
	assert_int_equal(b.got_terms[0], 77);
	assert_int_equal(a.t.peers[0]->connects, 2);

	endpoint_close(&a);
	endpoint_close(&b);
	T.eps[0] = T.eps[1] = NULL;
}

static void test_what_waits_for_a_peer_is_bounded(void **state)
{
	static struct endpoint a;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", free_port());
	endpoint_init(&a, 1, "127.0.0.1:0", 4096);
	T.eps[0] = &a;
	assert_int_equal(peer_transport_add(&a.t, 2, addr), 0);
	int queued = 0, dropped = 0;
	for (int i = 0; i < 100; i++) {
		int r = send_append(&a, 2, 1, 200);
		if (r == 0)
			queued++;
		else if (r == -ENOBUFS)
			dropped++;
		else
			fail_msg("send: %d", r);
	}
	assert_true(queued > 0 && dropped > 0);
	assert_int_equal(queued + dropped, 100);
	assert_true(a.t.peers[0]->queue.len <= 4096);
	assert_int_equal(a.t.peers[0]->frames_dropped, dropped);
	endpoint_close(&a);
	T.eps[0] = NULL;
}

struct raw {
	int fd;
	struct endpoint *b;
};

static bool refused(void *arg)
{
	return ((struct raw *)arg)->b->t.frames_refused >= 1;
}

static void test_a_frame_that_does_not_decode_closes_that_connection_only(void **state)
{
	static struct endpoint a, b;
	endpoint_init(&a, 1, "127.0.0.1:0", 1u << 20);
	endpoint_init(&b, 2, "127.0.0.1:0", 1u << 20);
	T.eps[0] = &a;
	T.eps[1] = &b;
	assert_int_equal(peer_transport_add(&a.t, 2, b.t.listen_name), 0);

	/* a stranger sends a frame whose checksum is wrong */
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(b.t.listen_fd, (struct sockaddr *)&ss, &len);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	uint8_t junk[40] = { 0, 0, 0, 36, 0xde, 0xad, 0xbe, 0xef };
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	struct raw r = { fd, &b };
	assert_true(run_until(refused, &r, 5000));
	char c;
	assert_int_equal(read(fd, &c, 1), 0);	/* closed by the transport */
	close(fd);

	/* the real peer is unaffected */
	assert_int_equal(send_append(&a, 2, 5, 10), 0);
	struct want w = { &b, 1 };
	assert_true(run_until(got_n, &w, 5000));
	assert_int_equal(b.got_terms[0], 5);
	endpoint_close(&a);
	endpoint_close(&b);
	T.eps[0] = T.eps[1] = NULL;
}

static bool refused_one(void *arg)
{
	return ((struct endpoint *)arg)->t.frames_refused >= 1;
}

/* A server of another ensemble (another cluster tag) that reaches this one
 * (say it took over an old member's address) is refused, not heard: its
 * RequestVotes would upset elections here. */
static void test_a_server_of_another_ensemble_is_refused(void **state)
{
	static struct endpoint a, b, stranger;
	endpoint_init(&a, 1, "127.0.0.1:0", 1u << 20);
	endpoint_init(&b, 2, "127.0.0.1:0", 1u << 20);
	endpoint_init_tagged(&stranger, 1, "127.0.0.1:0", 1u << 20, 0x0bad0bad);
	T.eps[0] = &a;
	T.eps[1] = &b;
	T.eps[2] = &stranger;
	assert_int_equal(peer_transport_add(&stranger.t, 2, b.t.listen_name), 0);
	assert_int_equal(send_append(&stranger, 2, 9, 10), 0);
	assert_true(run_until(refused_one, &b, 5000));
	assert_int_equal(b.got, 0);
	/* a member of b's own ensemble gets through */
	assert_int_equal(peer_transport_add(&a.t, 2, b.t.listen_name), 0);
	assert_int_equal(send_append(&a, 2, 5, 10), 0);
	struct want w = { &b, 1 };
	assert_true(run_until(got_n, &w, 5000));
	assert_int_equal(b.got_terms[0], 5);
	assert_int_equal(b.got, 1);
	endpoint_close(&stranger);
	endpoint_close(&a);
	endpoint_close(&b);
	T.eps[0] = T.eps[1] = T.eps[2] = NULL;
}

static bool refused_two(void *arg)
{
	return ((struct endpoint *)arg)->t.inbound_refused >= 2;
}

static void test_accepted_connections_are_bounded_and_the_peers_still_get_through(void **state)
{
	static struct endpoint a, b;
	endpoint_init(&a, 1, "127.0.0.1:0", 1u << 20);
	endpoint_init(&b, 2, "127.0.0.1:0", 1u << 20);
	T.eps[0] = &a;
	T.eps[1] = &b;
	assert_int_equal(peer_transport_add(&a.t, 2, b.t.listen_name), 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(b.t.listen_fd, (struct sockaddr *)&ss, &len);
	/* three strangers and the real peer fill the four places; the two
	 * strangers after them are refused */
	int fds[5];
	for (int i = 0; i < 5; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&ss, len), 0);
		if (i == 2) {
			/* the real peer connects while there is room */
			assert_int_equal(send_append(&a, 2, 9, 10), 0);
			struct want w = { &b, 1 };
			assert_true(run_until(got_n, &w, 5000));
		}
	}
	assert_true(run_until(refused_two, &b, 5000));
	assert_int_equal(b.t.inbound_count, 4);
	assert_int_equal(b.t.inbound_refused, 2);
	char c;
	assert_int_equal(read(fds[3], &c, 1), 0);	/* the refused ones are closed */
	assert_int_equal(read(fds[4], &c, 1), 0);
	/* the real peer's connection was kept */
	assert_int_equal(send_append(&a, 2, 10, 10), 0);
	struct want w2 = { &b, 2 };
	assert_true(run_until(got_n, &w2, 5000));
	assert_int_equal(b.got_terms[1], 10);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	endpoint_close(&a);
	endpoint_close(&b);
	T.eps[0] = T.eps[1] = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_messages_flow_both_ways_in_order_whatever_their_size,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_messages_wait_for_a_peer_that_is_down_and_arrive_when_it_is_up, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_what_waits_for_a_peer_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_server_of_another_ensemble_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_a_frame_that_does_not_decode_closes_that_connection_only, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_accepted_connections_are_bounded_and_the_peers_still_get_through, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
