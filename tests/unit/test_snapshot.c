/* Unit tests of snapshots (storage/snapshot.c) on real files: one written by
 * the forked child and loaded back, an empty snap/ directory (what a failed
 * snapshot leaves), the temp files a crash leaves, and a child whose parent
 * died while it wrote; a file written by a tool and loaded back, a backup
 * streamed to a socket, and the archive a purge fills. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prep.h"
#include "state.h"
#include "txn.h"
#include "snapshot.h"

static const struct wal_identity ID = { .cluster_id = { 9, 8, 7 }, .server_id = 1 };
static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/corral-test-snapshot-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void snap_file(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/snap/%s", dir, name);
}

static bool exists(const char *name)
{
	char path[400];
	snap_file(name, path, sizeof(path));
	return access(path, F_OK) == 0;
}

static void make_file(const char *name, const char *contents)
{
	char path[400];
	snap_file(name, path, sizeof(path));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(contents, f);
	assert_int_equal(fclose(f), 0);
}

static void make_snap_dir(void)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/snap", dir);
	assert_int_equal(mkdir(path, 0750), 0);
}

/* Applies a create of path with data at zxid, as a txn would. */
static void create(struct state *st, const char *path, const char *data, int64_t zxid)
{
	static struct acl_entry open_acl[] = { { .perms = 31, .scheme = "world", .id = "anyone" } };
	struct txn_result res[1];
	struct txn *t = txn_new(1);
	assert_non_null(t);
	t->zxid = zxid;
	t->ops[0].type = TXN_OP_CREATE;
	t->ops[0].path = strdup(path);
	t->ops[0].path_len = strlen(path);
	t->ops[0].data = (uint8_t *)strdup(data);
	t->ops[0].data_len = (int32_t)strlen(data);
	t->ops[0].acl = open_acl;
	t->ops[0].acl_count = 1;
	assert_int_equal(txn_apply(st, t, res), 0);
	assert_int_equal(res[0].err, 0);
	t->ops[0].acl = NULL;
	t->ops[0].acl_count = 0;
	txn_free(t);
}

/* A state with /a (data "x") and a session, as a txn would leave it. */
static void make_state(struct state *st)
{
	assert_int_equal(state_init(st, 1, 0), 0);
	create(st, "/a", "x", 5);
	static const uint8_t password[16] = "0123456789abcdef";
	assert_non_null(session_add(&st->sessions, 0x1234, 4000, password, 0));
}

static int wait_exit(pid_t pid, int *ret_status, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		pid_t p = waitpid(pid, ret_status, WNOHANG);
		if (p != 0)
			return p == pid ? 0 : -errno;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static void test_a_snapshot_written_by_the_child_loads_back(void **state)
{
	struct state st, loaded;
	struct snapshot_meta m = { .index = 5, .term = 2, .conf_index = 1,
				   .conf = (uint8_t *)"conf", .conf_len = 4 }, got;
	char why[256] = "";
	int status;
	make_state(&st);
	pid_t pid = snapshot_start(dir, &ID, &st, &m);
	assert_true(pid > 0);
	assert_int_equal(wait_exit(pid, &status, 30000), 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(exists("0000000000000005.snap"));
	assert_false(exists("0000000000000005.snap.tmp"));

	assert_int_equal(state_init(&loaded, 1, 0), 0);
	assert_int_equal(snapshot_load_newest(dir, &ID, &loaded, &got, why, sizeof(why), NULL), 0);
	assert_int_equal(got.index, 5);
	assert_int_equal(got.term, 2);
	assert_int_equal(got.conf_len, 4);
	assert_memory_equal(got.conf, "conf", 4);
	struct znode *a = tree_lookup(&loaded.tree, "/a", 2);
	assert_non_null(a);
	assert_int_equal(a->data_len, 1);
	assert_memory_equal(znode_data(a), "x", 1);
	assert_non_null(session_lookup(&loaded.sessions, 0x1234));
	free(got.conf);
	state_free(&loaded);
	state_free(&st);
}

/* The loader takes each node's digest as it loads it: the tree's digest
 * after a load is the one the state had, and the one a walk of every
 * node gives (nodes at several depths, data changed, the built-in ones). */
static void test_a_loaded_snapshot_has_the_digest_of_the_state_it_was_taken_of(void **state)
{
	struct state st, loaded;
	struct snapshot_meta m = { .index = 40, .term = 2, .conf_index = 1,
				   .conf = (uint8_t *)"conf", .conf_len = 4 }, got;
	char why[256] = "", path[64];
	int status;
	make_state(&st);
	int64_t zxid = 6;
	for (int x = 0; x < 8; x++) {
		snprintf(path, sizeof(path), "/a/%d", x);
		create(&st, path, path, zxid++);
		for (int y = 0; y < 3; y++) {
			snprintf(path, sizeof(path), "/a/%d/%d", x, y);
			create(&st, path, "", zxid++);
		}
	}
	uint64_t digest = st.tree.digest;
	assert_int_not_equal(digest, 0);
	pid_t pid = snapshot_start(dir, &ID, &st, &m);
	assert_true(pid > 0);
	assert_int_equal(wait_exit(pid, &status, 30000), 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(state_init(&loaded, 1, 0), 0);
	assert_int_equal(snapshot_load_newest(dir, &ID, &loaded, &got, why, sizeof(why), NULL), 0);
	assert_int_equal(loaded.tree.nodes.count, st.tree.nodes.count);
	assert_false(loaded.tree.digest_deferred);
	assert_int_equal(loaded.tree.digest, digest);
	tree_digest_recompute(&loaded.tree);
	assert_int_equal(loaded.tree.digest, digest);
	free(got.conf);
	state_free(&loaded);
	state_free(&st);
}

/* What a snapshot that failed (ENOSPC) leaves: snap/ with nothing in it.
 * Startup must take it as "no snapshot", and purge and --verify too. */
static void test_an_empty_snap_directory_is_no_snapshot(void **state)
{
	struct state st;
	struct snapshot_meta got;
	char why[256] = "";
	make_snap_dir();
	assert_int_equal(state_init(&st, 1, 0), 0);
	assert_int_equal(snapshot_load_newest(dir, &ID, &st, &got, why, sizeof(why), NULL), -ENOENT);
	int archive_err = -1;
	assert_int_equal(snapshot_purge(dir, 2, NULL, &archive_err, NULL), 0);
	assert_int_equal(archive_err, 0);
	FILE *out = fopen("/dev/null", "w");
	assert_non_null(out);
	assert_int_equal(snapshot_verify(dir, &ID, out), 0);
	fclose(out);
	state_free(&st);
}

static void test_a_snap_directory_of_temp_files_only_is_no_snapshot(void **state)
{
	struct state st;
	struct snapshot_meta got;
	char why[256] = "";
	make_snap_dir();
	make_file("0000000000000007.snap.tmp", "partial");
	assert_int_equal(state_init(&st, 1, 0), 0);
	assert_int_equal(snapshot_load_newest(dir, &ID, &st, &got, why, sizeof(why), NULL), -ENOENT);
	state_free(&st);
}

static void test_temp_files_of_unfinished_snapshots_are_removed_and_snapshots_kept(void **state)
{
	unsigned removed = 99;
	/* No snap/ at all (a new data directory): nothing to do. */
	assert_int_equal(snapshot_remove_temp_files(dir, &removed), 0);
	assert_int_equal(removed, 0);
	make_snap_dir();
	make_file("0000000000000007.snap.tmp", "a child killed while it wrote");
	make_file("incoming.tmp", "a leader's snapshot half received");
	make_file("0000000000000003.snap", "kept as it is (loading decides)");
	assert_int_equal(snapshot_remove_temp_files(dir, &removed), 0);
	assert_int_equal(removed, 2);
	assert_false(exists("0000000000000007.snap.tmp"));
	assert_false(exists("incoming.tmp"));
	assert_true(exists("0000000000000003.snap"));
	assert_int_equal(snapshot_remove_temp_files(dir, &removed), 0);
	assert_int_equal(removed, 0);
}

#ifdef CORRAL_FAULT_INJECTION
/* The state letter of /proc/PID/stat (R, S, T, ...), or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');	/* after the command name */
	return p && p[1] == ' ' ? p[2] : 0;
}
#endif

/* A kill -9 of the server while its child writes a snapshot: the child dies
 * with it (else it would publish under the next server, or hold on to a
 * half-written file), leaving only a temp file that the next start removes.
 * The child is stopped (fault injection) once its temp file is whole, just
 * before it would publish: the worst moment. */
static void test_the_snapshot_child_dies_with_the_server(void **state)
{
#ifndef CORRAL_FAULT_INJECTION
	skip();
#else
	int fds[2];
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);	/* the orphan comes to us */
	assert_int_equal(pipe(fds), 0);
	pid_t server = fork();
	assert_true(server >= 0);
	if (server == 0) {
		struct state st;
		struct snapshot_meta m = { .index = 9, .term = 1, .conf = (uint8_t *)"c", .conf_len = 1 };
		close(fds[0]);
		make_state(&st);
		setenv("CORRAL_FAULT_SNAPSHOT_STOP", "1", 1);
		pid_t child = snapshot_start(dir, &ID, &st, &m);
		if (write(fds[1], &child, sizeof(child)) != sizeof(child))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	pid_t child = 0;
	assert_int_equal(read(fds[0], &child, sizeof(child)), sizeof(child));
	close(fds[0]);
	assert_true(child > 0);
	for (int i = 0; i < 3000 && proc_state(child) != 'T'; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(proc_state(child), 'T');
	assert_true(exists("0000000000000009.snap.tmp"));

	int status;
	assert_int_equal(kill(server, SIGKILL), 0);
	assert_int_equal(waitpid(server, &status, 0), server);
	int r = wait_exit(child, &status, 10000);
	if (r == -ETIMEDOUT) {
		kill(child, SIGKILL);	/* not left behind by a failing test */
		waitpid(child, &status, 0);
		fail_msg("the snapshot child outlived its server by 10 s");
	}
	assert_int_equal(r, 0);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_false(exists("0000000000000009.snap"));

	unsigned removed;
	assert_int_equal(snapshot_remove_temp_files(dir, &removed), 0);
	assert_int_equal(removed, 1);
	assert_false(exists("0000000000000009.snap.tmp"));
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
#endif
}

/* corrald restore's writer: the file loads back, and the state it was
 * written from stays usable (its ACL table is keyed by the field the
 * writer numbers the lists in). */
static void test_a_snapshot_file_written_by_a_tool_loads_back(void **state)
{
	struct state st, loaded;
	struct snapshot_meta m = { .index = 7, .term = 3, .conf_index = 7,
				   .conf = (uint8_t *)"c", .conf_len = 1 }, got;
	struct wal_identity id;
	char path[400], why[256] = "";
	make_state(&st);
	make_snap_dir();
	snap_file("0000000000000007.snap", path, sizeof(path));
	assert_int_equal(snapshot_write_file(path, &ID, &st, &m), 0);
	assert_false(exists("0000000000000007.snap.tmp"));
	assert_int_equal(state_init(&loaded, 1, 0), 0);
	assert_int_equal(snapshot_load_file(path, &ID, &loaded, &got, why, sizeof(why)), 0);
	assert_int_equal(got.index, 7);
	assert_int_equal(got.term, 3);
	free(got.conf);
	assert_non_null(tree_lookup(&loaded.tree, "/a", 2));
	assert_int_equal(snapshot_file_identity(path, &id, why, sizeof(why)), 0);
	assert_memory_equal(id.cluster_id, ID.cluster_id, WAL_CLUSTER_ID_BYTES);
	assert_int_equal(id.server_id, 1);
	/* another cluster's id is refused */
	struct wal_identity other = ID;
	other.cluster_id[0] ^= 1;
	struct state again;
	assert_int_equal(state_init(&again, 1, 0), 0);
	assert_int_equal(snapshot_load_file(path, &other, &again, &got, why, sizeof(why)), -EXDEV);
	state_free(&again);
	state_free(&loaded);
	state_free(&st);	/* the ACL table still finds its lists */
}

/* A backup: the prefix, then the snapshot, then the end of the stream. */
static void test_a_streamed_backup_is_the_prefix_and_a_snapshot(void **state)
{
	struct state st, loaded;
	struct snapshot_meta m = { .index = 5, .term = 2, .conf_index = 1,
				   .conf = (uint8_t *)"conf", .conf_len = 4 }, got;
	int sv[2], status;
	char path[400], why[256] = "";
	make_state(&st);
	make_snap_dir();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = snapshot_stream_start(sv[0], "HEAD", 4, &ID, &st, &m);
	assert_true(pid > 0);
	close(sv[0]);
	snap_file("0000000000000005.snap", path, sizeof(path));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	uint8_t buf[4096], head[4];
	size_t got_head = 0;
	ssize_t n;
	while ((n = read(sv[1], buf, sizeof(buf))) > 0) {
		size_t skip = 0;
		while (got_head < 4 && skip < (size_t)n)
			head[got_head++] = buf[skip++];
		assert_int_equal(fwrite(buf + skip, 1, (size_t)n - skip, f), (size_t)n - skip);
	}
	assert_int_equal(n, 0);	/* the child ended the stream */
	assert_int_equal(fclose(f), 0);
	close(sv[1]);
	assert_int_equal(wait_exit(pid, &status, 30000), 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_memory_equal(head, "HEAD", 4);
	assert_int_equal(state_init(&loaded, 1, 0), 0);
	assert_int_equal(snapshot_load_file(path, NULL, &loaded, &got, why, sizeof(why)), 0);
	assert_int_equal(got.index, 5);
	assert_non_null(tree_lookup(&loaded.tree, "/a", 2));
	free(got.conf);
	state_free(&loaded);
	state_free(&st);
}

/* A purge with an archive: what it deletes is in the archive first; the
 * archive is purged by the same call; snapshot_find looks at or before. */
static void test_a_purge_archives_what_it_deletes(void **state)
{
	char archive[400], path[500];
	int err = -1;
	uint64_t index;
	make_snap_dir();
	make_file("0000000000000010.snap", "ten");
	make_file("0000000000000020.snap", "twenty");
	make_file("0000000000000030.snap", "thirty");
	snprintf(archive, sizeof(archive), "%s/archive", dir);
	assert_int_equal(snapshot_purge(dir, 1, archive, &err, NULL), 0x30);
	assert_int_equal(err, 0);
	assert_false(exists("0000000000000010.snap"));
	assert_false(exists("0000000000000020.snap"));
	assert_true(exists("0000000000000030.snap"));
	snprintf(path, sizeof(path), "%s/snap/0000000000000010.snap", archive);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(snapshot_find(archive, 0x1f, path, sizeof(path), &index), 0);
	assert_int_equal(index, 0x10);
	assert_int_equal(snapshot_find(archive, 0xf, path, sizeof(path), &index), -ENOENT);
	assert_int_equal(snapshot_purge(archive, 1, NULL, &err, NULL), 0x20);
	assert_int_equal(snapshot_find(archive, 0x1f, path, sizeof(path), &index), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_snapshot_written_by_the_child_loads_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_loaded_snapshot_has_the_digest_of_the_state_it_was_taken_of, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_an_empty_snap_directory_is_no_snapshot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_snap_directory_of_temp_files_only_is_no_snapshot,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_temp_files_of_unfinished_snapshots_are_removed_and_snapshots_kept, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_the_snapshot_child_dies_with_the_server, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_snapshot_file_written_by_a_tool_loads_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_streamed_backup_is_the_prefix_and_a_snapshot,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_purge_archives_what_it_deletes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
