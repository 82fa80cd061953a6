/* Tests of the write-ahead log's truncation (storage/wal.c): a follower's
 * log cut where it conflicts with its leader's, on real files through a real
 * io_uring loop, then read back by recovery as a restart would; and entries
 * read back by index (storage/wal_reader.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "wal.h"

#define SEGMENT_BYTES (1u << 20)	/* the smallest allowed: several segments soon */

static struct loop L;
static struct wal W;
static char dir[256];
static const struct wal_identity ID = { .cluster_id = { 1, 2, 3 }, .server_id = 7 };
static uint64_t reported;		/* the last on_durable index */
static int reports_beyond;		/* reports of an index the log no longer has */

static void on_durable(void *ctx, uint64_t index)
{
	(void)ctx;
	if (index > W.last_index)
		reports_beyond++;
	reported = index;
}

static int failures_expected, failures;	/* on_failed calls allowed, made */
static int failed_with;

static void on_failed(void *ctx, int err)
{
	(void)ctx;
	if (++failures > failures_expected)
		fail_msg("the log failed: %s", strerror(err));
	failed_with = err;
}

/* What recovery found: term and first data byte of each index. */
struct seen {
	uint64_t first, last;
	uint64_t term[4096];
	uint8_t data[4096];
	uint32_t len[4096];
};
static struct seen S;

static int visit(void *ctx, uint64_t index, uint64_t term, uint8_t type, const uint8_t *data,
		 uint32_t len)
{
	(void)ctx;
	(void)type;
	if (!S.first)
		S.first = index;
	S.last = index;
	if (index < 4096) {
		S.term[index] = term;
		S.data[index] = len ? data[0] : 0;
		S.len[index] = len;
	}
	return 0;
}

static void open_log(void)
{
	char why[512];
	struct wal_recovery rec;
	memset(&S, 0, sizeof(S));
	assert_int_equal(wal_recover(dir, &ID, 0, visit, NULL, &rec, why, sizeof(why)), 0);
	assert_int_equal(wal_open(&W, dir, &ID, &rec, SEGMENT_BYTES, &L, why, sizeof(why)), 0);
	W.on_durable = on_durable;
	W.on_failed = on_failed;
	reported = W.durable_index;
	reports_beyond = 0;
	failures_expected = failures = failed_with = 0;
}

/* Reopens the log as a restart would, and returns what recovery saw. */
static void restart(void)
{
	wal_close(&W);
	open_log();
}

static int setup(void **state)
{
	char why[256];
	snprintf(dir, sizeof(dir), "/tmp/corral-test-wal-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (loop_init(&L, 64, why, sizeof(why)) < 0) {
		print_message("io_uring unavailable: %s\n", why);
		return -1;
	}
	uint8_t first = 0;
	assert_int_equal(wal_bootstrap(dir, &ID, SEGMENT_BYTES, 1, 3, &first, 1), 0);
	open_log();
	assert_int_equal(S.last, 1);
	return 0;
}

static int teardown(void **state)
{
	wal_close(&W);
	loop_free(&L);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Appends indexes from..to with the given term; entry i's data starts with
 * (uint8_t)(i * 3 + term) and is len bytes. */
static void append(uint64_t from, uint64_t to, uint64_t term, uint32_t len)
{
	uint8_t *data = malloc(len ? len : 1);
	for (uint64_t i = from; i <= to; i++) {
		memset(data, (uint8_t)(i * 3 + term), len);
		assert_int_equal(wal_reserve(&W, len), 0);
		assert_int_equal(wal_append(&W, i, term, 1, data, len), 0);
	}
	free(data);
}

static bool durable_to(uint64_t index)
{
	return W.durable_index >= index && W.flight_count == 0;
}

/* Runs the loop (flushing as corrald does once per turn) until index is durable. */
static void settle(uint64_t index)
{
	W.loop = &L;
	for (int turns = 0; turns < 100000 && !durable_to(index); turns++) {
		wal_flush(&W);
		L.stop = false;
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait(&L.ring, 1);
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&L.ring, head, cqe) {
			struct loop_op *op = io_uring_cqe_get_data(cqe);
			seen++;
			if (op)
				op->complete(op, cqe->res, cqe->flags);
		}
		io_uring_cq_advance(&L.ring, seen);
	}
	assert_true(durable_to(index));
}

static int segment_count(void)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/wal", dir);
	DIR *d = opendir(path);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strstr(e->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

static void check_recovered(uint64_t last, uint64_t new_from, uint64_t new_term, uint32_t len)
{
	assert_int_equal(S.first, 1);
	assert_int_equal(S.last, last);
	for (uint64_t i = 2; i <= last; i++) {
		uint64_t term = i >= new_from ? new_term : 1;
		assert_int_equal(S.term[i], term);
		assert_int_equal(S.data[i], (uint8_t)(i * 3 + term));
		assert_int_equal(S.len[i], len);
	}
}

/* A small batch is written on the loop's thread and only its sync goes
 * through the ring; a batch over 256 KiB goes to the ring whole (write, then
 * the linked sync). Both are durable and read back after a restart. */
static void test_small_and_large_batches_are_durable_by_either_path(void **state)
{
	append(2, 40, 1, 100);		/* about 5 KiB */
	wal_flush(&W);
	assert_int_equal(W.flight_count, 1);
	assert_int_equal(W.flights[W.flight_head].pending_cqes, 1);	/* the sync alone */
	settle(40);
	restart();
	check_recovered(40, 41, 1, 100);
	append(41, 60, 1, 100);
	append(61, 80, 2, 20000);	/* about 400 KiB */
	wal_flush(&W);
	assert_int_equal(W.flights[W.flight_head].pending_cqes, 2);	/* the write and its sync */
	settle(80);
	assert_int_equal(reports_beyond, 0);
	restart();
	assert_int_equal(S.last, 80);
	for (uint64_t i = 2; i <= 80; i++) {
		uint64_t term = i > 60 ? 2 : 1;
		assert_int_equal(S.term[i], term);
		assert_int_equal(S.data[i], (uint8_t)(i * 3 + term));
		assert_int_equal(S.len[i], i > 60 ? 20000 : 100);
	}
}

/* Waits until the syncs of both flights in flight have completed, and keeps
 * their results: the test runs the completions in the order it wants. */
struct two_syncs {
	struct loop_op *older, *newer;
	int older_res, newer_res;
};

static struct two_syncs reap_both(void)
{
	struct two_syncs t = { .older = &W.flights[W.flight_head].sync_op,
			       .newer = &W.flights[(W.flight_head + 1) % WAL_FLIGHTS].sync_op,
			       .older_res = 1, .newer_res = 1 };
	assert_int_equal(W.flight_count, 2);
	while (t.older_res > 0 || t.newer_res > 0) {
		struct io_uring_cqe *cqe;
		assert_true(io_uring_submit_and_wait(&L.ring, 1) >= 0);
		while (io_uring_peek_cqe(&L.ring, &cqe) == 0) {
			struct loop_op *op = io_uring_cqe_get_data(cqe);
			assert_true(op == t.older || op == t.newer);
			*(op == t.older ? &t.older_res : &t.newer_res) = cqe->res;
			io_uring_cqe_seen(&L.ring, cqe);
		}
	}
	return t;
}

/* 2..10 durable, then 11..20 and 21..40 in flight together; both their
 * syncs completed, their completions not yet run. */
static struct two_syncs two_flights_synced(void)
{
	append(2, 10, 1, 10);
	settle(10);
	append(11, 20, 1, 10);
	wal_flush(&W);
	append(21, 40, 1, 10);
	wal_flush(&W);
	return reap_both();
}

/* A second batch is written and synced beside the first once it has grown
 * as large; at most two are in flight; the newer is reported durable only
 * with the older, however their syncs complete. */
static void test_a_second_batch_goes_out_beside_the_first_and_is_reported_after_it(void **state)
{
	append(2, 10, 1, 100);
	settle(10);
	append(11, 20, 1, 100);
	wal_flush(&W);
	assert_int_equal(W.flight_count, 1);
	append(21, 25, 1, 100);
	wal_flush(&W);		/* smaller than the flight: it waits */
	assert_int_equal(W.flight_count, 1);
	append(26, 40, 1, 100);
	wal_flush(&W);		/* 21..40 goes out beside 11..20 */
	assert_int_equal(W.flight_count, 2);
	append(41, 80, 1, 100);
	wal_flush(&W);		/* no third */
	assert_int_equal(W.flight_count, 2);
	struct two_syncs t = reap_both();
	t.newer->complete(t.newer, t.newer_res, 0);
	assert_int_equal(W.durable_index, 10);	/* 21..40 waits for 11..20 */
	assert_int_equal(reported, 10);
	assert_int_equal(W.flight_count, 2);
	t.older->complete(t.older, t.older_res, 0);
	assert_int_equal(W.durable_index, 40);
	assert_int_equal(reported, 40);		/* one report for both */
	assert_int_equal(W.flight_count, 1);	/* 41..80 went out as they settled */
	settle(80);
	assert_int_equal(reports_beyond, 0);
	restart();
	check_recovered(80, 81, 1, 100);
}

/* A cut into the older of two flights waits for both: nothing is written
 * meanwhile, and no removed index is reported. */
static void test_a_cut_into_the_older_of_two_flights_waits_for_both(void **state)
{
	struct two_syncs t = two_flights_synced();
	assert_int_equal(wal_truncate(&W, 15, 1), 0);
	append(15, 60, 4, 10);	/* the leader's, larger than a flight: still they wait */
	wal_flush(&W);
	t.older->complete(t.older, t.older_res, 0);
	assert_int_equal(W.flight_count, 1);	/* nothing went out before the cut */
	assert_int_equal(W.durable_index, 14);	/* 15.. are removed: not reported */
	assert_int_equal(reported, 14);
	t.newer->complete(t.newer, t.newer_res, 0);
	assert_int_equal(W.last_index, 60);
	settle(60);
	assert_int_equal(reports_beyond, 0);
	restart();
	check_recovered(60, 15, 4, 10);
}

/* The newer flight's sync fails in the turn the older one's settled in:
 * the log takes nothing more at once, but on_failed (which closes the
 * connections with writes in flight) is told in the next turn, so the
 * replies of what settled go out before. */
static void test_a_failed_sync_is_told_a_turn_after_what_settled_before_it(void **state)
{
	struct two_syncs t = two_flights_synced();
	failures_expected = 1;
	t.older->complete(t.older, t.older_res, 0);
	assert_int_equal(reported, 20);
	t.newer->complete(t.newer, -EIO, 0);
	assert_int_equal(failures, 0);		/* not in this turn */
	assert_int_equal(wal_append(&W, 41, 1, 1, "x", 1), -EIO);
	assert_int_equal(reported, 20);
	struct io_uring_cqe *cqe;
	assert_int_equal(io_uring_submit_and_wait(&L.ring, 1), 1);
	assert_int_equal(io_uring_peek_cqe(&L.ring, &cqe), 0);
	struct loop_op *op = io_uring_cqe_get_data(cqe);
	io_uring_cqe_seen(&L.ring, cqe);
	op->complete(op, 0, 0);			/* the next turn */
	assert_int_equal(failures, 1);
	assert_int_equal(failed_with, EIO);
	assert_int_equal(W.durable_index, 20);
}

static void test_a_durable_suffix_is_replaced_by_the_leaders_entries(void **state)
{
	append(2, 100, 1, 50);
	settle(100);
	assert_int_equal(wal_truncate(&W, 60, 1), 0);
	assert_int_equal(W.last_index, 59);
	assert_int_equal(W.durable_index, 59);
	append(60, 80, 2, 50);
	settle(80);
	assert_int_equal(reports_beyond, 0);
	restart();
	check_recovered(80, 60, 2, 50);
	/* and it goes on from there */
	append(81, 90, 2, 50);
	settle(90);
	restart();
	check_recovered(90, 60, 2, 50);
}

static void test_records_only_gathered_are_dropped_from_the_batch(void **state)
{
	append(2, 20, 1, 10);
	settle(20);
	append(21, 40, 1, 10);	/* gathered, not flushed */
	assert_int_equal(wal_truncate(&W, 30, 1), 0);
	assert_int_equal(W.last_index, 29);
	append(30, 35, 3, 10);
	settle(35);
	restart();
	check_recovered(35, 30, 3, 10);
}

static void test_a_cut_into_the_batch_in_flight_waits_for_it_and_reports_no_removed_index(void **state)
{
	append(2, 10, 1, 10);
	settle(10);
	append(11, 40, 1, 10);
	wal_flush(&W);		/* 11..40 in flight */
	assert_int_equal(W.flight_count, 1);
	assert_int_equal(wal_truncate(&W, 25, 1), 0);
	append(25, 30, 4, 10);	/* the leader's */
	settle(30);
	assert_int_equal(reports_beyond, 0);
	assert_true(reported <= 30);
	restart();
	check_recovered(30, 25, 4, 10);
}

static void test_a_cut_into_an_earlier_segment_deletes_the_later_ones(void **state)
{
	/* ~10 KB records: about 100 per 1 MiB segment, flushed as they come */
	for (uint64_t i = 2; i <= 450; i += 25) {
		append(i, i + 24 > 450 ? 450 : i + 24, 1, 10000);
		settle(i + 24 > 450 ? 450 : i + 24);
	}
	int before = segment_count();
	assert_true(before >= 4);
	assert_int_equal(wal_truncate(&W, 150, 1), 0);
	assert_true(segment_count() < before);
	for (uint64_t i = 150; i <= 200; i += 25) {
		append(i, i + 24 > 200 ? 200 : i + 24, 5, 10000);
		settle(i + 24 > 200 ? 200 : i + 24);
	}
	restart();
	check_recovered(200, 150, 5, 10000);
}

static void test_a_cut_at_or_past_the_end_changes_nothing(void **state)
{
	append(2, 10, 1, 10);
	settle(10);
	assert_int_equal(wal_truncate(&W, 11, 1), 0);
	assert_int_equal(W.last_index, 10);
	restart();
	check_recovered(10, 11, 1, 10);
}

/* The entry at index read back from disk is the one appended: term, type,
 * length and every byte. */
static void assert_read(uint64_t index, uint64_t term, uint32_t len)
{
	struct wal_entry e;
	assert_int_equal(wal_read_entry(&W, index, &e), 0);
	assert_int_equal(e.term, term);
	assert_int_equal(e.type, 1);
	assert_int_equal(e.len, len);
	for (uint32_t k = 0; k < len; k++)
		assert_int_equal(e.data[k], (uint8_t)(index * 3 + term));
	free(e.data);
}

/* Entries come back by index across segments, forwards (the cursor), then
 * backwards and jumping (from a segment's start); not one that is not
 * durable, nor one past the end. */
static void test_entries_are_read_back_by_index_across_segments(void **state)
{
	for (uint64_t i = 2; i <= 450; i += 25) {
		append(i, i + 24 > 450 ? 450 : i + 24, 1, 10000);
		settle(i + 24 > 450 ? 450 : i + 24);
	}
	assert_true(segment_count() >= 4);
	for (uint64_t i = 2; i <= 450; i++)
		assert_read(i, 1, 10000);
	struct wal_entry e;
	assert_int_equal(wal_read_entry(&W, 1, &e), 0);	/* the bootstrap's */
	assert_int_equal(e.type, 3);
	assert_int_equal(e.len, 1);
	free(e.data);
	assert_read(449, 1, 10000);
	assert_read(120, 1, 10000);
	assert_read(7, 1, 10000);
	append(451, 460, 1, 100);	/* gathered only */
	assert_int_equal(wal_read_entry(&W, 455, &e), -ENOENT);
	settle(460);
	assert_read(455, 1, 100);
	assert_int_equal(wal_read_entry(&W, 461, &e), -ENOENT);
	assert_int_equal(W.reader.entries_read, 449 + 5);
}

/* Two followers catching up from different places each read on from their
 * own cursor: no record is read twice on the way. */
static void test_two_readers_far_apart_each_read_on_from_their_place(void **state)
{
	append(2, 400, 1, 100);
	settle(400);
	assert_read(10, 1, 100);
	assert_read(300, 1, 100);
	uint64_t passed = W.reader.records_passed;
	for (uint64_t i = 0; i < 90; i++) {
		assert_read(11 + i, 1, 100);
		assert_read(301 + i, 1, 100);
	}
	assert_int_equal(W.reader.records_passed, passed);
}

/* An index before every cursor is read from the nearest mark before it,
 * not from its segment's first record: at most WAL_READER_MARK_EVERY
 * records are passed on the way, wherever it is in the segment. */
static void test_an_index_behind_every_cursor_is_read_from_the_mark_before_it(void **state)
{
	uint64_t last = 3 * WAL_READER_MARK_EVERY + 50;
	append(2, last, 1, 100);
	settle(last);
	assert_read(last, 1, 100);	/* one cursor reads the segment through */
	for (uint64_t i = last - 1; i > last - 40; i -= 13) {
		uint64_t passed = W.reader.records_passed;
		assert_read(i, 1, 100);	/* behind it: from a mark */
		assert_true(W.reader.records_passed - passed < WAL_READER_MARK_EVERY);
	}
}

/* After a cut, the index cut reads as the leader's entry that replaced it,
 * even with the reader's cursor past it in a segment since deleted; after
 * a purge, an index of a purged segment is gone. */
static void test_reads_follow_a_cut_and_a_purge(void **state)
{
	for (uint64_t i = 2; i <= 450; i += 25) {
		append(i, i + 24 > 450 ? 450 : i + 24, 1, 10000);
		settle(i + 24 > 450 ? 450 : i + 24);
	}
	assert_read(400, 1, 10000);
	assert_int_equal(wal_truncate(&W, 150, 1), 0);
	struct wal_entry e;
	assert_int_equal(wal_read_entry(&W, 150, &e), -ENOENT);
	append(150, 160, 5, 100);
	settle(160);
	assert_read(150, 5, 100);
	assert_read(160, 5, 100);
	assert_int_equal(wal_read_entry(&W, 161, &e), -ENOENT);
	assert_read(149, 1, 10000);
	assert_int_equal(wal_purge(&W, 140, NULL), 0);
	assert_int_equal(wal_read_entry(&W, 2, &e), -ENOENT);
	assert_read(155, 5, 100);
}

/* A record damaged on disk is reported as such, not returned. */
static void test_a_damaged_record_reads_as_damaged(void **state)
{
	append(2, 10, 1, 100);
	settle(10);
	char path[300];
	snprintf(path, sizeof(path), "%s/wal/%016llx.seg", dir, 1ULL);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	/* record 1 is 48 bytes after the header; records 2.. are 144 each */
	assert_int_equal(fseek(f, 64 + 48 + 144 * 3 + 60, SEEK_SET), 0);
	fputc(0xEE, f);
	fclose(f);
	struct wal_entry e;
	assert_read(4, 1, 100);
	assert_int_equal(wal_read_entry(&W, 5, &e), -EBADMSG);
	assert_int_equal(wal_read_entry(&W, 6, &e), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_and_large_batches_are_durable_by_either_path,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_second_batch_goes_out_beside_the_first_and_is_reported_after_it, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_a_cut_into_the_older_of_two_flights_waits_for_both,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_failed_sync_is_told_a_turn_after_what_settled_before_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_durable_suffix_is_replaced_by_the_leaders_entries,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_only_gathered_are_dropped_from_the_batch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_cut_into_the_batch_in_flight_waits_for_it_and_reports_no_removed_index,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_cut_into_an_earlier_segment_deletes_the_later_ones,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_cut_at_or_past_the_end_changes_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_entries_are_read_back_by_index_across_segments,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_readers_far_apart_each_read_on_from_their_place,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_index_behind_every_cursor_is_read_from_the_mark_before_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_follow_a_cut_and_a_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_damaged_record_reads_as_damaged, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
