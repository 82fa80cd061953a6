/* Unit tests of the servers' Raft message encoding (daemon/peer_message.c)
 * and of the configurations in it (daemon/raft_conf.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <zlib.h>

#include "peer_message.h"
#include "raft_conf.h"

#define MAX_FRAME (1u << 20)

static size_t encode(const struct raft_message *m, raft_id from, struct jute_buf *b)
{
	b->len = 0;
	assert_int_equal(peer_message_encode(m, from, b), 0);
	return b->len;
}

static struct raft_message decode_ok(const struct jute_buf *b)
{
	struct raft_message out;
	char why[256];
	ssize_t n = peer_message_decode(b->data, b->len, MAX_FRAME, &out, why, sizeof(why));
	if (n < 0)
		fail_msg("decode failed: %s", why);
	assert_int_equal(n, (ssize_t)b->len);
	return out;
}

static void encode_conf(struct raft_configuration *conf, struct raft_buffer *ret)
{
	raft_configuration_init(conf);
	assert_int_equal(raft_configuration_add(conf, 1, "127.0.0.1:2888", RAFT_VOTER), 0);
	assert_int_equal(raft_configuration_add(conf, 2, "127.0.0.2:2888", RAFT_STANDBY), 0);
	assert_int_equal(raft_configuration_encode(conf, ret), 0);
}

static void test_every_fixed_size_message_comes_back_as_sent(void **state)
{
	struct jute_buf b = { 0 };
	struct raft_message m = { .type = RAFT_REQUEST_VOTE };
	m.request_vote = (struct raft_request_vote){ .version = 2, .term = 7, .candidate_id = 3,
						    .last_log_index = 1ull << 40, .last_log_term = 6,
						    .disrupt_leader = true, .pre_vote = false };
	encode(&m, 3, &b);
	struct raft_message d = decode_ok(&b);
	assert_int_equal(d.type, RAFT_REQUEST_VOTE);
	assert_int_equal(d.server_id, 3);
	assert_null(d.server_address);
	assert_int_equal(d.request_vote.version, 2);
	assert_int_equal(d.request_vote.term, 7);
	assert_int_equal(d.request_vote.candidate_id, 3);
	assert_true(d.request_vote.last_log_index == 1ull << 40);
	assert_int_equal(d.request_vote.last_log_term, 6);
	assert_true(d.request_vote.disrupt_leader);
	assert_false(d.request_vote.pre_vote);

	m = (struct raft_message){ .type = RAFT_REQUEST_VOTE_RESULT };
	m.request_vote_result = (struct raft_request_vote_result){
		.version = 2, .term = 9, .vote_granted = true, .pre_vote = true, .features = 0x8001,
		.capacity = 65535 };
	encode(&m, 5, &b);
	d = decode_ok(&b);
	assert_int_equal(d.server_id, 5);
	assert_int_equal(d.request_vote_result.version, 2);
	assert_int_equal(d.request_vote_result.term, 9);
	assert_true(d.request_vote_result.vote_granted);
	assert_true(d.request_vote_result.pre_vote);
	assert_int_equal(d.request_vote_result.features, 0x8001);
	assert_int_equal(d.request_vote_result.capacity, 65535);

	m = (struct raft_message){ .type = RAFT_APPEND_ENTRIES_RESULT };
	m.append_entries_result = (struct raft_append_entries_result){
		.version = 1, .term = 4, .rejected = 12, .last_log_index = 11, .features = 1,
		.capacity = 2 };
	encode(&m, UINT64_MAX, &b);
	d = decode_ok(&b);
	assert_true(d.server_id == UINT64_MAX);
	assert_int_equal(d.append_entries_result.version, 1);
	assert_int_equal(d.append_entries_result.term, 4);
	assert_int_equal(d.append_entries_result.rejected, 12);
	assert_int_equal(d.append_entries_result.last_log_index, 11);
	assert_int_equal(d.append_entries_result.features, 1);
	assert_int_equal(d.append_entries_result.capacity, 2);

	m = (struct raft_message){ .type = RAFT_TIMEOUT_NOW };
	m.timeout_now = (struct raft_timeout_now){ .version = 1, .term = 8, .last_log_index = 99,
						   .last_log_term = 8 };
	encode(&m, 2, &b);
	d = decode_ok(&b);
	assert_int_equal(d.timeout_now.version, 1);
	assert_int_equal(d.timeout_now.term, 8);
	assert_int_equal(d.timeout_now.last_log_index, 99);
	assert_int_equal(d.timeout_now.last_log_term, 8);
	jute_buf_free(&b);
}

static void test_append_entries_carries_every_entry_in_one_raft_allocated_batch(void **state)
{
	char a[] = "first command";
	struct raft_configuration conf;
	struct raft_buffer c;
	encode_conf(&conf, &c);
	struct raft_entry entries[3] = {
		{ .term = 3, .type = RAFT_COMMAND, .buf = { a, sizeof(a) } },
		{ .term = 3, .type = RAFT_BARRIER, .buf = { NULL, 0 } },
		{ .term = 4, .type = RAFT_CHANGE, .buf = c },
	};
	struct raft_message m = { .type = RAFT_APPEND_ENTRIES };
	m.append_entries = (struct raft_append_entries){ .version = 0, .term = 4,
							 .prev_log_index = 10, .prev_log_term = 3,
							 .leader_commit = 9, .entries = entries,
							 .n_entries = 3 };
	struct jute_buf b = { 0 };
	encode(&m, 1, &b);
	struct raft_message d = decode_ok(&b);
	struct raft_append_entries *p = &d.append_entries;
	assert_int_equal(p->term, 4);
	assert_int_equal(p->prev_log_index, 10);
	assert_int_equal(p->prev_log_term, 3);
	assert_int_equal(p->leader_commit, 9);
	assert_int_equal(p->n_entries, 3);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(p->entries[k].term, entries[k].term);
		assert_int_equal(p->entries[k].type, entries[k].type);
		assert_int_equal(p->entries[k].buf.len, entries[k].buf.len);
		if (entries[k].buf.len)
			assert_memory_equal(p->entries[k].buf.base, entries[k].buf.base,
					    entries[k].buf.len);
		assert_ptr_equal(p->entries[k].batch, p->entries[0].batch);
	}
	/* the entries live in the batch, not in the frame */
	assert_true((uint8_t *)p->entries[0].buf.base < b.data ||
		    (uint8_t *)p->entries[0].buf.base >= b.data + b.len);
	peer_message_release(&d);

	/* only empty entries (barriers): no data, no batch */
	m.append_entries.entries = &entries[1];
	m.append_entries.n_entries = 1;
	encode(&m, 1, &b);
	d = decode_ok(&b);
	assert_int_equal(d.append_entries.n_entries, 1);
	assert_int_equal(d.append_entries.entries[0].type, RAFT_BARRIER);
	assert_int_equal(d.append_entries.entries[0].buf.len, 0);
	assert_null(d.append_entries.entries[0].batch);
	peer_message_release(&d);

	/* a heartbeat: no entries, nothing allocated */
	m.append_entries.n_entries = 0;
	m.append_entries.entries = NULL;
	encode(&m, 1, &b);
	d = decode_ok(&b);
	assert_int_equal(d.append_entries.n_entries, 0);
	assert_null(d.append_entries.entries);
	peer_message_release(&d);
	jute_buf_free(&b);
	raft_free(c.base);
	raft_configuration_close(&conf);
}

static void test_install_snapshot_carries_configuration_and_data(void **state)
{
	struct raft_message m = { .type = RAFT_INSTALL_SNAPSHOT };
	struct raft_install_snapshot *s = &m.install_snapshot;
	raft_configuration_init(&s->conf);
	assert_int_equal(raft_configuration_add(&s->conf, 1, "127.0.0.1:2888", RAFT_VOTER), 0);
	assert_int_equal(raft_configuration_add(&s->conf, 2, "127.0.0.2:2888", RAFT_STANDBY), 0);
	uint8_t data[5000];
	for (size_t k = 0; k < sizeof(data); k++)
		data[k] = (uint8_t)(k * 7);
	s->version = 0;
	s->term = 5;
	s->last_index = 1000;
	s->last_term = 5;
	s->conf_index = 900;
	s->data = (struct raft_buffer){ data, sizeof(data) };
	struct jute_buf b = { 0 };
	encode(&m, 1, &b);
	struct raft_message d = decode_ok(&b);
	struct raft_install_snapshot *p = &d.install_snapshot;
	assert_int_equal(p->term, 5);
	assert_int_equal(p->last_index, 1000);
	assert_int_equal(p->conf_index, 900);
	assert_int_equal(p->conf.n, 2);
	assert_int_equal(p->conf.servers[1].id, 2);
	assert_string_equal(p->conf.servers[1].address, "127.0.0.2:2888");
	assert_int_equal(p->conf.servers[1].role, RAFT_STANDBY);
	assert_int_equal(p->data.len, sizeof(data));
	assert_memory_equal(p->data.base, data, sizeof(data));
	peer_message_release(&d);
	raft_configuration_close(&s->conf);
	jute_buf_free(&b);
}

static void test_only_whole_configurations_reach_libraft(void **state)
{
	struct raft_configuration conf, out;
	struct raft_buffer cb;
	encode_conf(&conf, &cb);
	uint8_t *p = cb.base;
	assert_true(raft_conf_valid(p, cb.len));
	assert_int_equal(raft_conf_decode(p, cb.len, &out), 0);
	assert_int_equal(out.n, 2);
	raft_configuration_close(&out);
	/* libraft pads to 8 bytes; the servers end before: any cut into them is refused. */
	size_t end = 1 + 8 + (8 + 15 + 1) * 2;
	for (size_t len = 0; len < end; len++)
		assert_false(raft_conf_valid(p, len));
	uint8_t copy[128];
	assert_true(cb.len <= sizeof(copy));
	static const struct { size_t at; uint8_t byte; } bad[] = {
		{ 0, 2 },			/* format */
		{ 1, 0 },			/* no servers */
		{ 1, 9 },			/* more servers than bytes */
		{ 9 + 8 + 15, 7 },		/* an unknown role */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		memcpy(copy, p, cb.len);
		copy[bad[k].at] = bad[k].byte;
		assert_false(raft_conf_valid(copy, cb.len));
		assert_int_equal(raft_conf_decode(copy, cb.len, &out), -EBADMSG);
		assert_int_equal(out.n, 0);
	}
	memcpy(copy, p, cb.len);
	memset(copy + 9 + 24 + 8 + 14, 'x', cb.len - (9 + 24 + 8 + 14));
	assert_false(raft_conf_valid(copy, cb.len));	/* the last address never ends */
	memcpy(copy, p, cb.len);
	memset(copy + 9, 0, 8);			/* server id 0 */
	assert_false(raft_conf_valid(copy, cb.len));
	/* Well formed, refused by libraft halfway (a duplicate id): nothing to
	 * close afterwards (libraft freed it; closing it again was a double free). */
	memcpy(copy, p, cb.len);
	memcpy(copy + 9 + 24, copy + 9, 8);
	assert_true(raft_conf_valid(copy, cb.len));
	assert_int_equal(raft_conf_decode(copy, cb.len, &out), -EBADMSG);
	assert_int_equal(out.n, 0);
	raft_configuration_close(&out);
	raft_free(cb.base);
	raft_configuration_close(&conf);
}

static void test_a_snapshot_whose_configuration_fails_halfway_is_refused(void **state)
{
	struct raft_message m = { .type = RAFT_INSTALL_SNAPSHOT };
	struct raft_install_snapshot *s = &m.install_snapshot;
	struct raft_buffer cb;
	encode_conf(&s->conf, &cb);
	s->term = 5;
	s->last_index = 10;
	s->data = (struct raft_buffer){ "data", 4 };
	struct jute_buf b = { 0 };
	encode(&m, 1, &b);
	/* The second server takes the first one's id; the frame still checks out. */
	size_t conf = PEER_HEADER_BYTES + 1 + 4 * 8 + 4;
	memcpy(b.data + conf + 9 + 24, b.data + conf + 9, 8);
	jute_patch_int(&b, 4, (int32_t)crc32_z(0L, b.data + 8, b.len - 8));
	struct raft_message d;
	char why[256];
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "configuration"));
	raft_free(cb.base);
	raft_configuration_close(&s->conf);
	jute_buf_free(&b);
}

static void test_a_configuration_entry_that_does_not_decode_is_refused(void **state)
{
	char a[] = "not a configuration";
	struct raft_entry entries[1] = { { .term = 2, .type = RAFT_CHANGE, .buf = { a, sizeof(a) } } };
	struct raft_message m = { .type = RAFT_APPEND_ENTRIES }, d;
	m.append_entries = (struct raft_append_entries){ .term = 2, .entries = entries,
							 .n_entries = 1 };
	struct jute_buf b = { 0 };
	char why[256];
	encode(&m, 7, &b);
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "entry 0 holds no valid configuration"));
	jute_buf_free(&b);
}

static void make_append(struct jute_buf *b)
{
	char a[] = "payload", c[] = "another";
	struct raft_entry entries[2] = {
		{ .term = 2, .type = RAFT_COMMAND, .buf = { a, sizeof(a) } },
		{ .term = 2, .type = RAFT_COMMAND, .buf = { c, sizeof(c) } },
	};
	struct raft_message m = { .type = RAFT_APPEND_ENTRIES };
	m.append_entries = (struct raft_append_entries){ .term = 2, .prev_log_index = 1,
							 .prev_log_term = 1, .leader_commit = 1,
							 .entries = entries, .n_entries = 2 };
	encode(&m, 7, b);
}

static void test_a_partial_frame_asks_for_more_and_two_frames_decode_in_turn(void **state)
{
	struct jute_buf b = { 0 };
	make_append(&b);
	size_t one = b.len;
	struct raft_message d;
	char why[256];
	for (size_t k = 0; k < one; k++)
		assert_int_equal(peer_message_decode(b.data, k, MAX_FRAME, &d, why, sizeof(why)), 0);
	/* a second frame behind the first: each decodes by itself */
	struct jute_buf two = { 0 };
	jute_write_raw(&two, b.data, one);
	struct raft_message m = { .type = RAFT_TIMEOUT_NOW };
	m.timeout_now.term = 3;
	assert_int_equal(peer_message_encode(&m, 7, &two), 0);
	ssize_t n = peer_message_decode(two.data, two.len, MAX_FRAME, &d, why, sizeof(why));
	assert_int_equal(n, (ssize_t)one);
	peer_message_release(&d);
	n = peer_message_decode(two.data + one, two.len - one, MAX_FRAME, &d, why, sizeof(why));
	assert_int_equal(n, (ssize_t)(two.len - one));
	assert_int_equal(d.type, RAFT_TIMEOUT_NOW);
	assert_int_equal(d.timeout_now.term, 3);
	jute_buf_free(&b);
	jute_buf_free(&two);
}

static void test_any_damaged_byte_is_refused_never_decoded(void **state)
{
	struct jute_buf b = { 0 };
	make_append(&b);
	struct raft_message d;
	char why[256];
	for (size_t k = 0; k < b.len; k++) {
		for (int bit = 0; bit < 8; bit++) {
			b.data[k] ^= (uint8_t)(1u << bit);
			ssize_t n = peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why));
			/* a damaged length may read as "more to come" or too long;
			 * nothing damaged decodes */
			if (n > 0)
				fail_msg("byte %zu bit %d flipped, still decoded", k, bit);
			if (n < 0)
				assert_true(why[0] != 0);
			b.data[k] ^= (uint8_t)(1u << bit);
		}
	}
	jute_buf_free(&b);
}

/* Rewrites a frame's checksum after a deliberate change. */
static void reseal(struct jute_buf *b)
{
	jute_patch_int(b, 4, (int32_t)crc32_z(0L, b->data + 8, b->len - 8));
}

static void test_bad_frames_get_the_error_that_names_them(void **state)
{
	struct jute_buf b = { 0 };
	struct raft_message d;
	char why[256];

	make_append(&b);
	assert_int_equal(peer_message_decode(b.data, b.len, b.len - 1, &d, why, sizeof(why)),
			 -EMSGSIZE);
	assert_non_null(strstr(why, "more than"));

	make_append(&b);
	b.data[9] = 2;	/* version 2 */
	reseal(&b);
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EPROTONOSUPPORT);
	assert_non_null(strstr(why, "protocol version 2"));

	make_append(&b);
	b.data[11] = 42;	/* type */
	reseal(&b);
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "unknown message type 42"));

	/* an entry count far beyond the frame: refused before any allocation */
	make_append(&b);
	size_t count_at = PEER_HEADER_BYTES + 1 + 4 * 8;
	jute_patch_int(&b, count_at, 0x7fffffff);
	reseal(&b);
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "do not fit"));

	/* a frame shorter than its header */
	struct jute_buf tiny = { 0 };
	jute_write_int(&tiny, 8);
	jute_write_long(&tiny, 0);
	assert_int_equal(peer_message_decode(tiny.data, tiny.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EBADMSG);

	/* a fixed-size message with bytes left over */
	struct raft_message m = { .type = RAFT_TIMEOUT_NOW };
	b.len = 0;
	assert_int_equal(peer_message_encode(&m, 1, &b), 0);
	jute_write_int(&b, 0);
	jute_patch_int(&b, 0, (int32_t)(b.len - 4));
	reseal(&b);
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "bytes left"));

	/* a bool that is neither 0 nor 1 */
	m = (struct raft_message){ .type = RAFT_REQUEST_VOTE };
	b.len = 0;
	assert_int_equal(peer_message_encode(&m, 1, &b), 0);
	b.data[b.len - 1] = 2;
	reseal(&b);
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &d, why, sizeof(why)),
			 -EBADMSG);
	jute_buf_free(&b);
	jute_buf_free(&tiny);
}

/* corral's own frames (forwarded requests, commits, snapshot chunks) share
 * the framing: they come back with their type, sender and body, and are
 * never taken for one of Raft's messages. */
static void test_corral_frames_come_back_with_type_sender_and_body(void **state)
{
	struct jute_buf b = { 0 };
	struct peer_frame f;
	struct raft_message m;
	char why[256];
	(void)state;
	assert_int_equal(peer_frame_encode(PEER_FRAME_CORRAL + 2, 7, "hello", 5, &b), 0);
	ssize_t n = peer_frame_decode(b.data, b.len, MAX_FRAME, &f, why, sizeof(why));
	assert_int_equal(n, (ssize_t)b.len);
	assert_int_equal(f.type, PEER_FRAME_CORRAL + 2);
	assert_int_equal(f.from, 7);
	assert_int_equal(f.body_len, 5);
	assert_memory_equal(f.body, "hello", 5);
	assert_int_equal(peer_message_decode(b.data, b.len, MAX_FRAME, &m, why, sizeof(why)),
			 -EBADMSG);
	/* A raft message type cannot be sent as a corral frame and back. */
	struct raft_message rm = { .type = (enum raft_message_type)(PEER_FRAME_CORRAL + 1) };
	assert_int_equal(peer_message_encode(&rm, 1, &b), -EINVAL);
	jute_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fixed_size_message_comes_back_as_sent),
		cmocka_unit_test(test_append_entries_carries_every_entry_in_one_raft_allocated_batch),
		cmocka_unit_test(test_install_snapshot_carries_configuration_and_data),
		cmocka_unit_test(test_only_whole_configurations_reach_libraft),
		cmocka_unit_test(test_a_snapshot_whose_configuration_fails_halfway_is_refused),
		cmocka_unit_test(test_a_configuration_entry_that_does_not_decode_is_refused),
		cmocka_unit_test(test_a_partial_frame_asks_for_more_and_two_frames_decode_in_turn),
		cmocka_unit_test(test_any_damaged_byte_is_refused_never_decoded),
		cmocka_unit_test(test_bad_frames_get_the_error_that_names_them),
		cmocka_unit_test(test_corral_frames_come_back_with_type_sender_and_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
