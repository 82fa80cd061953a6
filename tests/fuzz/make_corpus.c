/* make_corpus: writes the seed corpus of the fuzz targets, real inputs made
 * by corrald's own encoders: client requests of every opcode (jute), txns
 * prepped from them (prep.c, txn_codec.c), Raft's messages as peers frame
 * them (peer_message.c), log segments (wal_format.c), a snapshot written by
 * the snapshot child (snapshot.c), and configuration files.
 *
 *     build/tests/fuzz/make_corpus SOURCE_ROOT OUT_DIR
 *
 * writes OUT_DIR/<target>/seed-*; the corpus in the tree is its output
 * (tests/fuzz/corpus), next to the inputs of bugs the fuzzers found (named
 * for what they found, kept whatever this program writes). Each input's
 * layout is the one its target's first comment describes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <raft.h>

#include "bytes.h"
#include "jute.h"
#include "peer_auth.h"
#include "peer_message.h"
#include "prep.h"
#include "proto.h"
#include "state.h"
#include "txn.h"
#include "txn_codec.h"
#include "snapshot.h"
#include "wal.h"

/* The identity the targets that read files check against. */
static const struct wal_identity ID = { .cluster_id = { 0xc0, 0xff, 0xee }, .server_id = 1 };

static const char *out_dir;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void put_file(const char *target, const char *name, const void *p, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/seed-%s", out_dir, target, name);
	FILE *f = fopen(path, "w");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0)
		die(path);
}

static void put_buf(const char *target, const char *name, const struct jute_buf *b)
{
	if (b->error)
		die("out of memory");
	put_file(target, name, b->data, b->len);
}

/* ---- client requests ---- */

static size_t frame_begin(struct jute_buf *b, int32_t xid, int32_t op)
{
	size_t start = b->len;
	jute_write_int(b, 0);
	jute_write_int(b, xid);
	jute_write_int(b, op);
	return start;
}

static void frame_end(struct jute_buf *b, size_t start)
{
	jute_patch_int(b, start, (int32_t)(b->len - start - 4));
}

static void str(struct jute_buf *b, const char *s)
{
	jute_write_string(b, s, (int32_t)strlen(s));
}

static void open_acl(struct jute_buf *b)
{
	jute_write_int(b, 1);
	jute_write_int(b, ZK_PERM_ALL);
	str(b, "world");
	str(b, "anyone");
}

static void create_body(struct jute_buf *b, const char *path, const char *data, int32_t flags)
{
	str(b, path);
	jute_write_buffer(b, data, (int32_t)strlen(data));
	open_acl(b);
	jute_write_int(b, flags);
}

static void req_create(struct jute_buf *b, int32_t op, const char *path, const char *data,
		       int32_t flags)
{
	size_t f = frame_begin(b, 1, op);
	create_body(b, path, data, flags);
	if (op == ZK_OP_CREATE_TTL)
		jute_write_long(b, 60000);
	frame_end(b, f);
}

static void req_path_watch(struct jute_buf *b, int32_t op, const char *path, bool watch)
{
	size_t f = frame_begin(b, 2, op);
	str(b, path);
	jute_write_bool(b, watch);
	frame_end(b, f);
}

static void req_path(struct jute_buf *b, int32_t op, const char *path)
{
	size_t f = frame_begin(b, 3, op);
	str(b, path);
	frame_end(b, f);
}

static void req_set_data(struct jute_buf *b, const char *path, const char *data, int32_t version)
{
	size_t f = frame_begin(b, 4, ZK_OP_SET_DATA);
	str(b, path);
	jute_write_buffer(b, data, (int32_t)strlen(data));
	jute_write_int(b, version);
	frame_end(b, f);
}

static void req_delete(struct jute_buf *b, const char *path, int32_t version)
{
	size_t f = frame_begin(b, 5, ZK_OP_DELETE);
	str(b, path);
	jute_write_int(b, version);
	frame_end(b, f);
}

static void req_set_acl(struct jute_buf *b, const char *path)
{
	size_t f = frame_begin(b, 6, ZK_OP_SET_ACL);
	str(b, path);
	jute_write_int(b, 2);
	jute_write_int(b, ZK_PERM_READ);
	str(b, "digest");
	str(b, "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	jute_write_int(b, ZK_PERM_ALL);
	str(b, "auth");
	str(b, "");
	jute_write_int(b, -1);
	frame_end(b, f);
}

static void req_auth(struct jute_buf *b, const char *scheme, const char *credentials)
{
	size_t f = frame_begin(b, ZK_XID_AUTH, ZK_OP_AUTH);
	jute_write_int(b, 0);
	str(b, scheme);
	jute_write_buffer(b, credentials, (int32_t)strlen(credentials));
	frame_end(b, f);
}

static void req_empty(struct jute_buf *b, int32_t xid, int32_t op)
{
	frame_end(b, frame_begin(b, xid, op));
}

static void multi_header(struct jute_buf *b, int32_t type, bool done)
{
	jute_write_int(b, type);
	jute_write_bool(b, done);
	jute_write_int(b, -1);
}

static void req_multi(struct jute_buf *b, bool failing)
{
	size_t f = frame_begin(b, 7, ZK_OP_MULTI);
	multi_header(b, ZK_OP_CREATE, false);
	create_body(b, "/m", "m", 0);
	multi_header(b, ZK_OP_CREATE, false);
	create_body(b, "/m/seq-", "", ZK_CREATE_PERSISTENT_SEQUENTIAL);
	multi_header(b, ZK_OP_SET_DATA, false);
	str(b, "/m");
	jute_write_buffer(b, "m2", 2);
	jute_write_int(b, 0);
	multi_header(b, ZK_OP_CHECK, false);
	str(b, "/m");
	jute_write_int(b, failing ? 7 : 1);
	multi_header(b, ZK_OP_DELETE, false);
	str(b, "/m/seq-0000000000");
	jute_write_int(b, -1);
	multi_header(b, -1, true);
	frame_end(b, f);
}

static void req_multi_read(struct jute_buf *b)
{
	size_t f = frame_begin(b, 8, ZK_OP_MULTI_READ);
	multi_header(b, ZK_OP_GET_DATA, false);
	str(b, "/a");
	jute_write_bool(b, false);
	multi_header(b, ZK_OP_GET_CHILDREN, false);
	str(b, "/");
	jute_write_bool(b, false);
	multi_header(b, -1, true);
	frame_end(b, f);
}

static void req_set_watches(struct jute_buf *b)
{
	size_t f = frame_begin(b, ZK_XID_SET_WATCHES, ZK_OP_SET_WATCHES2);
	jute_write_long(b, 1);
	static const char *const lists[5][2] = { { "/a", NULL }, { "/gone", NULL }, { "/", "/a" },
						  { "/p", NULL }, { "/r", NULL } };
	for (int l = 0; l < 5; l++) {
		int n = lists[l][1] ? 2 : 1;
		jute_write_int(b, n);
		for (int i = 0; i < n; i++)
			str(b, lists[l][i]);
	}
	frame_end(b, f);
}

static void req_watch(struct jute_buf *b, int32_t op, const char *path, int32_t type)
{
	size_t f = frame_begin(b, 9, op);
	str(b, path);
	jute_write_int(b, type);
	frame_end(b, f);
}

static void req_delete_container(struct jute_buf *b, const char *path)
{
	size_t f = frame_begin(b, 10, ZK_OP_DELETE_CONTAINER);
	jute_write_raw(b, path, strlen(path));	/* the whole body is the path */
	frame_end(b, f);
}

static void req_reconfig(struct jute_buf *b)
{
	size_t f = frame_begin(b, 11, ZK_OP_RECONFIG);
	str(b, "server.4=10.0.0.4:2888:3888:participant;10.0.0.4:2181");
	jute_write_string(b, NULL, -1);
	jute_write_string(b, NULL, -1);
	jute_write_long(b, -1);
	frame_end(b, f);
}

/* A session's worth of requests, every opcode corrald knows. */
static void client_session(struct jute_buf *b)
{
	req_create(b, ZK_OP_CREATE, "/a", "data", 0);
	req_create(b, ZK_OP_CREATE2, "/a/e", "", ZK_CREATE_EPHEMERAL);
	req_create(b, ZK_OP_CREATE, "/a/s-", "", ZK_CREATE_EPHEMERAL_SEQUENTIAL);
	req_create(b, ZK_OP_CREATE_CONTAINER, "/c", "", ZK_CREATE_CONTAINER);
	req_create(b, ZK_OP_CREATE_TTL, "/t", "", ZK_CREATE_PERSISTENT_WITH_TTL);
	req_path_watch(b, ZK_OP_EXISTS, "/a", true);
	req_path_watch(b, ZK_OP_GET_DATA, "/a", true);
	req_path_watch(b, ZK_OP_GET_CHILDREN, "/a", false);
	req_path_watch(b, ZK_OP_GET_CHILDREN2, "/", true);
	req_set_data(b, "/a", "data2", 0);
	req_path(b, ZK_OP_GET_ACL, "/a");
	req_set_acl(b, "/c");
	req_path(b, ZK_OP_SYNC, "/a");
	req_path(b, ZK_OP_GET_EPHEMERALS, "/a");
	req_path(b, ZK_OP_GET_ALL_CHILDREN_NUMBER, "/");
	req_multi_read(b);
	req_set_watches(b);
	req_watch(b, ZK_OP_ADD_WATCH, "/p", 1);
	req_watch(b, ZK_OP_CHECK_WATCHES, "/p", 3);
	req_watch(b, ZK_OP_REMOVE_WATCHES, "/p", 3);
	req_empty(b, ZK_XID_PING, ZK_OP_PING);
	req_empty(b, 12, ZK_OP_WHO_AM_I);
	req_delete(b, "/a/e", -1);
	req_delete_container(b, "/c");
	req_reconfig(b);
	req_empty(b, 13, ZK_OP_CLOSE_SESSION);
	req_create(b, ZK_OP_CREATE, "/after-close", "", 0);
}

static void client_seeds(void)
{
	struct jute_buf b = { 0 };
	jute_write_raw(&b, "\x00", 1);		/* one write at a time */
	client_session(&b);
	put_buf("fuzz_client_request", "every-opcode", &b);

	b.len = 0;
	jute_write_raw(&b, "\x03", 1);		/* four writes in flight */
	req_multi(&b, false);
	req_multi(&b, true);
	req_create(&b, ZK_OP_CREATE, "/p", "", 0);
	req_create(&b, ZK_OP_CREATE, "/p/q", "", 0);	/* sees /p pending */
	req_delete(&b, "/p/q", 0);
	req_delete(&b, "/p", 0);
	put_buf("fuzz_client_request", "multi-and-pipelined", &b);

	b.len = 0;
	jute_write_raw(&b, "\x05", 1);		/* super, two in flight */
	req_auth(&b, "digest", "user:password");
	req_auth(&b, "digest", "user:password");
	req_auth(&b, "ip", "127.0.0.1");
	req_create(&b, ZK_OP_CREATE, "/x", "", 0);
	req_set_acl(&b, "/x");
	req_set_data(&b, "/x", "by user", -1);
	req_auth(&b, "sasl", "nobody");		/* AUTHFAILED: closes */
	put_buf("fuzz_client_request", "auth", &b);
	jute_buf_free(&b);
}

static void connect_request(struct jute_buf *b, int64_t session_id, bool read_only_byte)
{
	size_t start = b->len;
	jute_write_int(b, 0);
	jute_write_int(b, 0);			/* protocol version */
	jute_write_long(b, 0);			/* last zxid seen */
	jute_write_int(b, 30000);
	jute_write_long(b, session_id);
	jute_write_buffer(b, "corral-password", 16);
	if (read_only_byte)
		jute_write_bool(b, true);
	frame_end(b, start);
}

static void connect_seeds(void)
{
	struct jute_buf b = { 0 };
	connect_request(&b, 0, true);
	put_buf("fuzz_connect", "new-session", &b);
	b.len = 0;
	connect_request(&b, 0x100000000000001, false);
	put_buf("fuzz_connect", "resume-without-read-only-byte", &b);
	b.len = 0;
	connect_request(&b, 0, false);
	req_empty(&b, ZK_XID_PING, ZK_OP_PING);
	req_path_watch(&b, ZK_OP_EXISTS, "/", false);
	put_buf("fuzz_connect", "pipelined-after-handshake", &b);
	jute_buf_free(&b);
}

/* ---- txns: prepped from requests, as the leader makes them ---- */

struct world {
	struct state st;
	struct prep p;
	struct session *s;
	struct auth_identities ids;
	int64_t zxid;
	struct jute_buf txns;		/* [length][txn]... for fuzz_txn */
	struct jute_buf records;	/* log records for fuzz_wal_segment */
	size_t txn_count;
};

static void world_apply(struct world *w, struct txn *t)
{
	struct txn_result res[16];
	struct jute_buf b = { 0 };
	txn_encode(&b, t);
	if (b.error || t->op_count > 16)
		die("txn");
	size_t at = w->txns.len;
	jute_write_int(&w->txns, 0);
	jute_write_raw(&w->txns, b.data, b.len);
	jute_patch_int(&w->txns, at, (int32_t)b.len);
	t->zxid = ++w->zxid;
	uint8_t *rec = jute_buf_extend(&w->records, align8(WAL_RECORD_HEADER_BYTES + b.len));
	if (!rec)
		die("records");
	wal_record_encode(rec, (uint64_t)t->zxid, 1, (uint64_t)t->zxid, RAFT_COMMAND, b.data,
			  (uint32_t)b.len);
	if (txn_apply(&w->st, t, res) != 0)
		die("txn_apply");
	prep_retire(&w->p, t->prep_seq);
	txn_free(t);
	jute_buf_free(&b);
	w->txn_count++;
}

static void world_request(struct world *w, const struct jute_buf *frame)
{
	struct jute_reader r;
	jute_reader_init(&r, frame->data + 4, frame->len - 4);
	(void)jute_read_int(&r);
	int32_t op = jute_read_int(&r);
	struct txn *t = NULL;
	struct prep_refusal no = { 0 };
	int err = op == ZK_OP_CLOSE_SESSION ? prep_close_session(&w->p, w->s->id, 1000, &t)
		: prep_request(&w->p, w->s, &w->ids, op, frame->data + 4 + r.pos,
			       (uint32_t)(frame->len - 4 - r.pos), 1000, &t, &no);
	free(no.multi.op_types);
	if (err == 0 && t)
		world_apply(w, t);
}

static void world_init(struct world *w)
{
	struct sockaddr_storage ss = { .ss_family = AF_INET };
	memset(w, 0, sizeof(*w));
	if (state_init(&w->st, 1, 0) < 0 || prep_init(&w->p, &w->st, 1) < 0)
		die("state");
	auth_identities_init(&w->ids, &ss);
	struct txn *t = NULL;
	if (prep_create_session(&w->p, 30000, 1000, &t) != 0)
		die("session");
	int64_t id = t->session_id;
	world_apply(w, t);
	w->s = session_lookup(&w->st.sessions, id);
}

/* Runs each request of a client session through prep and apply. */
static void world_fill(struct world *w)
{
	struct jute_buf one = { 0 };
#define ONE(call) do { one.len = 0; call; world_request(w, &one); } while (0)
	ONE(req_create(&one, ZK_OP_CREATE, "/a", "data", 0));
	ONE(req_create(&one, ZK_OP_CREATE2, "/a/e", "", ZK_CREATE_EPHEMERAL));
	ONE(req_create(&one, ZK_OP_CREATE, "/a/s-", "", ZK_CREATE_PERSISTENT_SEQUENTIAL));
	ONE(req_create(&one, ZK_OP_CREATE_CONTAINER, "/c", "", ZK_CREATE_CONTAINER));
	ONE(req_create(&one, ZK_OP_CREATE_TTL, "/t", "", ZK_CREATE_PERSISTENT_WITH_TTL));
	ONE(req_set_data(&one, "/a", "data2", 0));
	ONE(req_set_acl(&one, "/t"));
	ONE(req_multi(&one, false));
	ONE(req_multi(&one, true));
	ONE(req_delete(&one, "/a/s-0000000001", -1));
#undef ONE
	jute_buf_free(&one);
}

static void txn_seeds(struct world *w)
{
	put_buf("fuzz_txn", "session-writes-multi", &w->txns);
	/* A session's close, alone. */
	struct jute_buf one = { 0 }, framed = { 0 };
	struct txn *t = NULL;
	if (prep_close_session(&w->p, w->s->id, 2000, &t) != 0)
		die("close");
	txn_encode(&one, t);
	jute_write_int(&framed, (int32_t)one.len);
	jute_write_raw(&framed, one.data, one.len);
	put_buf("fuzz_txn", "close-session", &framed);
	txn_free(t);
	jute_buf_free(&one);
	jute_buf_free(&framed);
}

/* ---- log segments ---- */

static void wal_seeds(struct world *w)
{
	struct jute_buf b = { 0 };
	uint8_t h[WAL_SEGMENT_HEADER_BYTES];
	static const uint8_t zeros[256];

	wal_segment_header(h, &ID, 1);
	jute_write_raw(&b, "\x00", 1);
	jute_write_raw(&b, h, sizeof(h));
	jute_write_raw(&b, w->records.data, w->records.len);
	jute_write_raw(&b, zeros, sizeof(zeros));	/* preallocated, not yet written */
	put_buf("fuzz_wal_segment", "one-segment", &b);

	/* A torn tail: the last record cut after its header (the rest of the
	 * segment still zero, as preallocated). */
	size_t last = 0;
	for (size_t off = 0; off < w->records.len; off += align8(load_be32(w->records.data + off)))
		last = off;
	b.len = 1 + sizeof(h) + last + WAL_RECORD_HEADER_BYTES + 8;
	jute_write_raw(&b, zeros, 64);
	put_buf("fuzz_wal_segment", "torn-tail", &b);

	/* Two segments, the second going on where the first ends; checksums
	 * left for the harness to set (flags 1|4|8). */
	size_t half = 0, count = 0;
	while (half < w->records.len && count < w->txn_count / 2) {
		half += align8(load_be32(w->records.data + half));
		count++;
	}
	b.len = 0;
	jute_write_raw(&b, "\x0d", 1);
	size_t first_len = sizeof(h) + half;
	uint8_t len16[2] = { (uint8_t)(first_len >> 8), (uint8_t)first_len };
	jute_write_raw(&b, len16, 2);
	jute_write_raw(&b, h, sizeof(h));
	jute_write_raw(&b, w->records.data, half);
	wal_segment_header(h, &ID, 1 + count);
	jute_write_raw(&b, h, sizeof(h));
	jute_write_raw(&b, w->records.data + half, w->records.len - half);
	put_buf("fuzz_wal_segment", "two-segments", &b);
	jute_buf_free(&b);
}

/* ---- a snapshot, written by the snapshot child ---- */

static void snapshot_seeds(struct world *w)
{
	char dir[] = "/tmp/corral-make-corpus-XXXXXX", path[256];
	struct raft_configuration conf;
	struct raft_buffer cb;
	if (!mkdtemp(dir))
		die("mkdtemp");
	raft_configuration_init(&conf);
	if (raft_configuration_add(&conf, 1, "127.0.0.1:2888", RAFT_VOTER) != 0 ||
	    raft_configuration_encode(&conf, &cb) != 0)
		die("raft configuration");
	struct snapshot_meta m = { .index = (uint64_t)w->zxid, .term = 1, .conf_index = 1,
				   .conf = cb.base, .conf_len = (uint32_t)cb.len };
	int status;
	pid_t pid = snapshot_start(dir, &ID, &w->st, &m);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		die("snapshot");
	snapshot_path(dir, m.index, path, sizeof(path));
	FILE *f = fopen(path, "r");
	static uint8_t file[1 << 16];
	size_t n = f ? fread(file + 1, 1, sizeof(file) - 1, f) : 0;
	if (!f || n == 0 || n == sizeof(file) - 1)
		die(path);
	fclose(f);
	file[0] = 0;
	put_file("fuzz_snapshot", "whole", file, n + 1);
	file[0] = 1;	/* the harness appends the trailer */
	put_file("fuzz_snapshot", "without-trailer", file, n + 1 - 16);
	unlink(path);
	snprintf(path, sizeof(path), "%s/snap", dir);
	rmdir(path);
	rmdir(dir);
	raft_free(cb.base);
	raft_configuration_close(&conf);
}

/* ---- Raft's messages between servers ---- */

static void peer_seeds(const struct world *w)
{
	struct jute_buf b = { 0 };
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	if (raft_configuration_add(&conf, 1, "10.0.0.1:2888", RAFT_VOTER) != 0 ||
	    raft_configuration_add(&conf, 2, "10.0.0.2:2888", RAFT_VOTER) != 0 ||
	    raft_configuration_add(&conf, 3, "10.0.0.3:2888", RAFT_STANDBY) != 0)
		die("raft configuration");
	struct raft_buffer cb;
	if (raft_configuration_encode(&conf, &cb) != 0)
		die("raft configuration");

	jute_write_raw(&b, "\x00", 1);		/* checksums as encoded */
	struct raft_message m = { .type = RAFT_REQUEST_VOTE };
	m.request_vote = (struct raft_request_vote){ .version = 2, .term = 3, .candidate_id = 2,
						     .last_log_index = 10, .last_log_term = 2,
						     .pre_vote = true };
	peer_message_encode(&m, 2, &b);
	m = (struct raft_message){ .type = RAFT_REQUEST_VOTE_RESULT };
	m.request_vote_result = (struct raft_request_vote_result){ .version = 2, .term = 3,
								   .vote_granted = true };
	peer_message_encode(&m, 1, &b);
	struct raft_entry entries[2] = {
		{ .term = 3, .type = RAFT_COMMAND, .buf = { .base = w->txns.data + 4,
							    .len = (size_t)load_be32(w->txns.data) } },
		{ .term = 3, .type = RAFT_CHANGE, .buf = cb },
	};
	m = (struct raft_message){ .type = RAFT_APPEND_ENTRIES };
	m.append_entries = (struct raft_append_entries){ .version = 0, .term = 3,
							 .prev_log_index = 9, .prev_log_term = 2,
							 .leader_commit = 9, .entries = entries,
							 .n_entries = 2 };
	peer_message_encode(&m, 1, &b);
	m = (struct raft_message){ .type = RAFT_APPEND_ENTRIES_RESULT };
	m.append_entries_result = (struct raft_append_entries_result){ .version = 0, .term = 3,
									.last_log_index = 11 };
	peer_message_encode(&m, 2, &b);
	put_buf("fuzz_peer_message", "vote-and-append", &b);

	b.len = 0;
	jute_write_raw(&b, "\x01", 1);		/* the harness sets the checksums */
	uint64_t announce[2] = { htobe64(12), htobe64(4096) };
	m = (struct raft_message){ .type = RAFT_INSTALL_SNAPSHOT };
	m.install_snapshot = (struct raft_install_snapshot){ .version = 0, .term = 3,
							     .last_index = 12, .last_term = 3,
							     .conf = conf, .conf_index = 1,
							     .data = { announce, sizeof(announce) } };
	peer_message_encode(&m, 1, &b);
	m = (struct raft_message){ .type = RAFT_TIMEOUT_NOW };
	m.timeout_now = (struct raft_timeout_now){ .version = 0, .term = 3, .last_log_index = 12,
						   .last_log_term = 3 };
	peer_message_encode(&m, 1, &b);
	peer_frame_encode(PEER_FRAME_CORRAL + 1, 1, "corral's own", 12, &b);
	put_buf("fuzz_peer_message", "snapshot-timeout-corral", &b);

	/* the handshake an acceptor reads (fuzz_peer_message.c's tag, server 1) */
	b.len = 0;
	jute_write_raw(&b, "\x02", 1);
	struct peer_auth a;
	uint8_t hello[PEER_AUTH_HELLO_BYTES];
	if (peer_auth_hello(&a, 0x01020304, 2, 1, hello) < 0)
		die("peer_auth_hello");
	memset(hello + PEER_AUTH_HELLO_BYTES - PEER_AUTH_NONCE_BYTES, 7, PEER_AUTH_NONCE_BYTES);
	jute_write_raw(&b, hello, sizeof(hello));
	jute_write_raw(&b, "CRPR\0\0\0\0", 8);
	jute_write_raw(&b, "a proof made without the secret", PEER_AUTH_MAC_BYTES);
	put_buf("fuzz_peer_message", "handshake", &b);
	jute_buf_free(&b);
	raft_free(cb.base);
	raft_configuration_close(&conf);
}

/* ---- corral.yaml ---- */

static void config_seeds(const char *source_root)
{
	char path[512];
	static char text[1 << 16];
	snprintf(path, sizeof(path), "%s/etc/corral.yaml", source_root);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, sizeof(text), f) : 0;
	if (!f || n == sizeof(text))
		die(path);
	fclose(f);
	put_file("fuzz_config", "shipped", text, n);

	static const char ensemble[] =
		"data_dir: /var/lib/corral\n"
		"log_level: debug\n"
		"client:\n  listen: [\"127.0.0.1:2181\", \"[::1]:2181\"]\n"
		"  four_letter_words: [ruok, mntr]\n"
		"session: { tick_time_ms: 500, min_timeout_ms: 1000, max_timeout_ms: 20000 }\n"
		"auth:\n  super_digest: \"super:D/InIHSb7yEEbrWz8b9l71RjZJU=\"\n"
		"ensemble:\n  id: 2\n  cluster: test\n  reconfig: true\n  read_only: true\n"
		"  members:\n"
		"    - { id: 1, client: \"10.0.0.1:2181\", peer: \"10.0.0.1:2888\" }\n"
		"    - { id: 2, client: \"10.0.0.2:2181\", peer: \"10.0.0.2:2888\" }\n"
		"    - { id: 4, client: \"10.0.0.4:2181\", peer: \"10.0.0.4:2888\", role: observer }\n";
	put_file("fuzz_config", "ensemble", ensemble, sizeof(ensemble) - 1);
	static const char bad[] = "storage:\n  segment_bytes: 12\n  unknown: [1, {a: b}]\n---\n&x y: *x\n";
	put_file("fuzz_config", "errors", bad, sizeof(bad) - 1);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SOURCE_ROOT OUT_DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[2];
	if (mkdir(out_dir, 0755) < 0 && errno != EEXIST)
		die(out_dir);
	struct world w;
	world_init(&w);
	world_fill(&w);
	client_seeds();
	connect_seeds();
	peer_seeds(&w);
	wal_seeds(&w);
	snapshot_seeds(&w);
	txn_seeds(&w);
	config_seeds(argv[1]);
	jute_buf_free(&w.txns);
	jute_buf_free(&w.records);
	auth_identities_free(&w.ids);
	prep_free(&w.p);
	state_free(&w.st);
	return 0;
}
