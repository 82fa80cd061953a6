/* Unit tests of prep (daemon/prep.c), txn_apply (txn.c) and the txn codec:
 * the write path without the ring and the log. A fake commit gives each txn
 * the next zxid and applies it in order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "prep.h"
#include "state.h"
#include "txn.h"
#include "txn_codec.h"

static struct acl_entry open_acl[] = { { .perms = 31, .scheme = "world", .id = "anyone" } };

struct world {
	struct state st;
	struct prep p;
	int64_t next_zxid;
};

static void world_init(struct world *w)
{
	assert_int_equal(state_init(&w->st, 1, 0), 0);
	assert_int_equal(prep_init(&w->p, &w->st, 1), 0);
	w->next_zxid = 1;
}

static void world_free(struct world *w)
{
	prep_free(&w->p);
	state_free(&w->st);
}

static void apply(struct world *w, struct txn *t)
{
	struct txn_result res[64];
	assert_true(t->op_count <= 64);
	t->zxid = w->next_zxid++;
	assert_int_equal(txn_apply(&w->st, t, res), 0);
	prep_retire(&w->p, t->prep_seq);
	txn_free(t);
}

/* The verdict of a prep call: it must not fail (0), and its ZooKeeper
 * error (ZOK for a txn) is what the test checks. */
static int32_t zk_err;
#define VERDICT(call) (assert_int_equal((call), 0), zk_err)

static struct create_request creq(const char *path, int32_t flags)
{
	return (struct create_request){ .path = path, .path_len = (int32_t)strlen(path), .data = NULL,
					.data_len = -1, .acl = open_acl, .acl_count = 1, .flags = flags };
}

static int create(struct world *w, const struct session *s, const char *path, int32_t flags,
		  struct txn **ret)
{
	struct create_request r = creq(path, flags);
	return VERDICT(prep_create(&w->p, s, NULL, ZK_OP_CREATE, &r, 1000, ret, &zk_err));
}

static void create_now(struct world *w, const struct session *s, const char *path, int32_t flags)
{
	struct txn *t;
	assert_int_equal(create(w, s, path, flags, &t), 0);
	apply(w, t);
}

static struct session *new_session(struct world *w)
{
	struct txn *t;
	assert_int_equal(prep_create_session(&w->p, 10000, 1000, &t), 0);
	int64_t id = t->ops[0].session_id;
	apply(w, t);
	return session_lookup(&w->st.sessions, id);
}

static void test_create_sets_every_stat_field_and_the_parents(void **state)
{
	struct world w;
	world_init(&w);
	create_now(&w, NULL, "/a", 0);
	struct znode *a = tree_lookup(&w.st.tree, "/a", 2);
	assert_non_null(a);
	assert_true(a->czxid == 1 && znode_mzxid(a) == 1 && znode_pzxid(a) == 1 && a->ctime == 1000 && znode_mtime(a) == 1000);
	assert_int_equal(znode_pzxid(w.st.tree.root), 1);
	assert_int_equal(znode_child_creates(w.st.tree.root), 1);
	assert_int_equal(w.st.last_zxid, 1);
	world_free(&w);
}

static void test_sequential_suffix_counts_creates_not_deletes(void **state)
{
	struct world w;
	struct txn *t;
	world_init(&w);
	create_now(&w, NULL, "/p", 0);
	assert_int_equal(create(&w, NULL, "/p/s", ZK_CREATE_PERSISTENT_SEQUENTIAL, &t), 0);
	assert_string_equal(t->ops[0].path, "/p/s0000000000");
	apply(&w, t);
	struct delete_request d = { .path = "/p/s0000000000", .path_len = 14, .version = -1 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1000, &t, &zk_err)), 0);
	apply(&w, t);
	assert_int_equal(create(&w, NULL, "/p/s", ZK_CREATE_PERSISTENT_SEQUENTIAL, &t), 0);
	assert_string_equal(t->ops[0].path, "/p/s0000000001");
	apply(&w, t);
	world_free(&w);
}

static void test_sequential_counter_wraps_like_a_java_int(void **state)
{
	struct world w;
	struct txn *t;
	world_init(&w);
	create_now(&w, NULL, "/p", 0);
	tree_kids(&w.st.tree, tree_lookup(&w.st.tree, "/p", 2))->creates = INT32_MAX;
	assert_int_equal(create(&w, NULL, "/p/s", ZK_CREATE_PERSISTENT_SEQUENTIAL, &t), 0);
	assert_string_equal(t->ops[0].path, "/p/s2147483647");
	apply(&w, t);
	assert_int_equal(create(&w, NULL, "/p/s", ZK_CREATE_PERSISTENT_SEQUENTIAL, &t), 0);
	assert_string_equal(t->ops[0].path, "/p/s-2147483648");
	apply(&w, t);
	world_free(&w);
}

static void test_create_error_precedence(void **state)
{
	struct world w;
	struct txn *t = NULL;
	world_init(&w);
	struct session *s = new_session(&w);
	create_now(&w, s, "/e", ZK_CREATE_EPHEMERAL);
	create_now(&w, NULL, "/x", 0);
	/* bad flags beat a missing parent */
	assert_int_equal(create(&w, NULL, "/missing/a", 7, &t), ZBADARGUMENTS);
	/* an invalid ACL beats a missing parent (ZooKeeper fixes the ACL up first) */
	struct create_request r = creq("/missing/a", 0);
	r.acl_count = 0;
	assert_int_equal(VERDICT(prep_create(&w.p, NULL, NULL, ZK_OP_CREATE, &r, 1, &t, &zk_err)), ZINVALIDACL);
	assert_int_equal(create(&w, NULL, "/missing/a", 0, &t), ZNONODE);
	assert_int_equal(create(&w, NULL, "/x/", 0, &t), ZBADARGUMENTS);
	assert_int_equal(create(&w, NULL, "/x", 0, &t), ZNODEEXISTS);
	assert_int_equal(create(&w, NULL, "/e/child", 0, &t), ZNOCHILDRENFOREPHEMERALS);
	assert_int_equal(w.p.pending.nodes.count, 0);	/* failures leave nothing pending */
	world_free(&w);
}

static void test_delete_and_set_data_errors(void **state)
{
	struct world w;
	struct txn *t;
	world_init(&w);
	create_now(&w, NULL, "/a", 0);
	create_now(&w, NULL, "/a/b", 0);
	struct delete_request d = { .path = "/zookeeper", .path_len = 10, .version = -1 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1, &t, &zk_err)), ZBADARGUMENTS);
	d = (struct delete_request){ .path = "/nope", .path_len = 5, .version = -1 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1, &t, &zk_err)), ZNONODE);
	d = (struct delete_request){ .path = "/a", .path_len = 2, .version = 3 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1, &t, &zk_err)), ZBADVERSION);
	d.version = -1;
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1, &t, &zk_err)), ZNOTEMPTY);

	struct set_data_request sd = { .path = "/a", .path_len = 2, .data = (const uint8_t *)"v",
				       .data_len = 1, .version = 0 };
	assert_int_equal(VERDICT(prep_set_data(&w.p, NULL, NULL, &sd, 5000, &t, &zk_err)), 0);
	apply(&w, t);
	struct znode *a = tree_lookup(&w.st.tree, "/a", 2);
	assert_int_equal(znode_version(a), 1);
	assert_int_equal(znode_mtime(a), 5000);
	assert_true(znode_mzxid(a) > a->czxid);
	assert_int_equal(VERDICT(prep_set_data(&w.p, NULL, NULL, &sd, 5000, &t, &zk_err)), ZBADVERSION);
	sd.version = -1;
	assert_int_equal(VERDICT(prep_set_data(&w.p, NULL, NULL, &sd, 5000, &t, &zk_err)), 0);
	apply(&w, t);
	assert_int_equal(znode_version(a), 2);
	world_free(&w);
}

static void test_pipelined_writes_see_each_other_before_they_apply(void **state)
{
	struct world w;
	struct txn *t1, *t2, *t3, *t4;
	world_init(&w);
	assert_int_equal(create(&w, NULL, "/a", 0, &t1), 0);
	assert_int_equal(create(&w, NULL, "/a/b", 0, &t2), 0);	/* parent only pending */
	assert_int_equal(create(&w, NULL, "/a", 0, &t3), ZNODEEXISTS);
	struct delete_request d = { .path = "/a/b", .path_len = 4, .version = -1 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1, &t3, &zk_err)), 0);	/* create pending */
	d = (struct delete_request){ .path = "/a", .path_len = 2, .version = -1 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1, &t4, &zk_err)), 0);	/* its child's delete pending */
	assert_true(w.p.pending.nodes.count > 0);
	apply(&w, t1);
	apply(&w, t2);
	apply(&w, t3);
	apply(&w, t4);
	assert_int_equal(w.p.pending.nodes.count, 0);
	assert_null(tree_lookup(&w.st.tree, "/a", 2));
	world_free(&w);
}

static void test_closing_a_session_deletes_its_ephemerals(void **state)
{
	struct world w;
	struct txn *t;
	world_init(&w);
	struct session *s = new_session(&w);
	int64_t id = s->id;
	create_now(&w, NULL, "/d", 0);
	create_now(&w, s, "/d/e1", ZK_CREATE_EPHEMERAL);
	create_now(&w, s, "/d/e2", ZK_CREATE_EPHEMERAL_SEQUENTIAL);
	assert_int_equal(s->ephemerals.length, 2);
	assert_int_equal(znode_owner(tree_lookup(&w.st.tree, "/d/e1", 5)), id);
	assert_int_equal(prep_close_session(&w.p, id, 1, &t), 0);
	int64_t zxid = w.next_zxid;
	apply(&w, t);
	assert_null(session_lookup(&w.st.sessions, id));
	assert_int_equal(znode_num_children(tree_lookup(&w.st.tree, "/d", 2)), 0);
	assert_int_equal(znode_pzxid(tree_lookup(&w.st.tree, "/d", 2)), zxid);
	world_free(&w);
}

static void test_multi_is_all_or_nothing(void **state)
{
	struct world w;
	struct txn *t = NULL;
	struct multi_failure f = { 0 };
	struct jute_buf b = { 0 };
	world_init(&w);
	/* create /m, create /m/c, check /m/c version 5 (fails) */
	jute_write_int(&b, ZK_OP_CREATE); jute_write_bool(&b, false); jute_write_int(&b, -1);
	jute_write_string(&b, "/m", 2); jute_write_buffer(&b, NULL, -1);
	jute_write_int(&b, 1); jute_write_int(&b, 31); jute_write_string(&b, "world", 5);
	jute_write_string(&b, "anyone", 6); jute_write_int(&b, 0);
	jute_write_int(&b, ZK_OP_CREATE); jute_write_bool(&b, false); jute_write_int(&b, -1);
	jute_write_string(&b, "/m/c", 4); jute_write_buffer(&b, NULL, -1);
	jute_write_int(&b, 1); jute_write_int(&b, 31); jute_write_string(&b, "world", 5);
	jute_write_string(&b, "anyone", 6); jute_write_int(&b, 0);
	size_t before_check = b.len;
	jute_write_int(&b, ZK_OP_CHECK); jute_write_bool(&b, false); jute_write_int(&b, -1);
	jute_write_string(&b, "/m/c", 4); jute_write_int(&b, 5);
	jute_write_int(&b, -1); jute_write_bool(&b, true); jute_write_int(&b, -1);
	struct jute_reader r;
	jute_reader_init(&r, b.data, b.len);
	t = NULL;
	assert_int_equal(VERDICT(prep_multi(&w.p, NULL, NULL, &r, 1, &t, &f, &zk_err)), ZOK);
	assert_null(t);
	assert_int_equal(f.op_count, 3);
	assert_int_equal(f.failed_index, 2);
	assert_int_equal(f.err, ZBADVERSION);
	free(f.op_types);
	assert_int_equal(w.p.pending.nodes.count, 0);
	assert_null(tree_lookup(&w.st.tree, "/m", 2));
	/* the same with a check that passes: one txn, both nodes, one zxid */
	b.len = before_check;
	jute_write_int(&b, ZK_OP_CHECK); jute_write_bool(&b, false); jute_write_int(&b, -1);
	jute_write_string(&b, "/m/c", 4); jute_write_int(&b, 0);
	jute_write_int(&b, -1); jute_write_bool(&b, true); jute_write_int(&b, -1);
	jute_reader_init(&r, b.data, b.len);
	assert_int_equal(VERDICT(prep_multi(&w.p, NULL, NULL, &r, 1, &t, &f, &zk_err)), ZOK);
	assert_non_null(t);
	assert_int_equal(t->op_count, 3);
	/* What the log holds of it reads back (a check op carries no path). */
	struct jute_buf enc = { 0 };
	struct txn *back = NULL;
	txn_encode(&enc, t);
	assert_int_equal(txn_decode(enc.data, enc.len, &back), 0);
	assert_int_equal(back->op_count, 3);
	assert_int_equal(back->ops[2].type, TXN_OP_CHECK);
	txn_free(back);
	jute_buf_free(&enc);
	apply(&w, t);
	struct znode *m = tree_lookup(&w.st.tree, "/m", 2), *c = tree_lookup(&w.st.tree, "/m/c", 4);
	assert_non_null(m);
	assert_non_null(c);
	assert_int_equal(m->czxid, c->czxid);
	jute_buf_free(&b);
	world_free(&w);
}

static void compare_trees(const struct tree *a, const struct tree *b)
{
	assert_int_equal(a->nodes.count, b->nodes.count);
	tree_for_each_node(a, n) {
		size_t len;
		const char *path = tree_path(a, n, &len);
		const struct znode *m = tree_lookup(b, path, len);
		struct zk_stat x, y;
		assert_non_null(m);
		znode_stat(n, &x);
		znode_stat(m, &y);
		assert_true(x.czxid == y.czxid && x.mzxid == y.mzxid && x.pzxid == y.pzxid);
		assert_true(x.ctime == y.ctime && x.mtime == y.mtime);
		assert_true(x.version == y.version && x.cversion == y.cversion &&
			    x.aversion == y.aversion);
		assert_true(x.ephemeral_owner == y.ephemeral_owner &&
			    x.data_length == y.data_length && x.num_children == y.num_children);
		assert_int_equal(n->data_len, m->data_len);
		if (n->data_len > 0)
			assert_memory_equal(znode_data(n), znode_data(m), (size_t)n->data_len);
	}
}

static void test_the_same_txns_give_the_same_tree_after_a_trip_through_the_codec(void **state)
{
	/* What the leader applies and what a replay of its log applies (each txn
	 * encoded and decoded) must give identical trees, stat for stat. */
	struct world w, copy;
	world_init(&w);
	world_init(&copy);
	const char *paths[] = { "/a", "/a/b", "/a/c", "/d" };
	for (int i = 0; i < 4; i++) {
		struct txn *t, *back;
		struct jute_buf b = { 0 };
		assert_int_equal(create(&w, NULL, paths[i], i == 3 ? ZK_CREATE_PERSISTENT_SEQUENTIAL : 0, &t), 0);
		txn_encode(&b, t);
		assert_int_equal(b.error, 0);
		assert_int_equal(txn_decode(b.data, b.len, &back), 0);
		jute_buf_free(&b);
		back->prep_seq = 0;
		apply(&copy, back);
		apply(&w, t);
	}
	assert_non_null(tree_lookup(&copy.st.tree, "/d0000000001", 12));
	compare_trees(&w.st.tree, &copy.st.tree);
	world_free(&w);
	world_free(&copy);
}

/* A multi's txn starts with room for eight ops and grows past it (twice
 * here). Twenty creates with data, a sequential one among them, and a
 * setData: applied, and applied again after a trip through the codec, they
 * give the same tree, data byte for byte. */
static void test_a_multi_of_twenty_ops_with_data_grows_and_reads_back(void **state)
{
	struct world w, copy;
	struct txn *t = NULL, *back = NULL;
	struct multi_failure f = { 0 };
	struct jute_buf b = { 0 }, enc = { 0 };
	char path[32], data[32];
	world_init(&w);
	world_init(&copy);
	for (int i = 0; i < 20; i++) {
		int plen = snprintf(path, sizeof(path), "/n%d%s", i, i == 7 ? "-" : "");
		int dlen = snprintf(data, sizeof(data), "value of node %d", i);
		jute_write_int(&b, ZK_OP_CREATE); jute_write_bool(&b, false); jute_write_int(&b, -1);
		jute_write_string(&b, path, plen);
		jute_write_buffer(&b, (const uint8_t *)data, i == 3 ? 0 : dlen);
		jute_write_int(&b, 1); jute_write_int(&b, 31); jute_write_string(&b, "world", 5);
		jute_write_string(&b, "anyone", 6);
		jute_write_int(&b, i == 7 ? ZK_CREATE_PERSISTENT_SEQUENTIAL : ZK_CREATE_PERSISTENT);
	}
	jute_write_int(&b, ZK_OP_SET_DATA); jute_write_bool(&b, false); jute_write_int(&b, -1);
	jute_write_string(&b, "/n19", 4); jute_write_buffer(&b, (const uint8_t *)"changed", 7);
	jute_write_int(&b, 0);
	jute_write_int(&b, -1); jute_write_bool(&b, true); jute_write_int(&b, -1);
	struct jute_reader r;
	jute_reader_init(&r, b.data, b.len);
	assert_int_equal(VERDICT(prep_multi(&w.p, NULL, NULL, &r, 1, &t, &f, &zk_err)), ZOK);
	assert_non_null(t);
	assert_int_equal(t->op_count, 21);
	assert_string_equal(t->ops[7].path, "/n7-0000000007");	/* seven creates before it */
	assert_int_equal(t->ops[3].data_len, 0);
	assert_null(t->ops[3].data);
	assert_int_equal(t->ops[20].data_len, 7);
	assert_memory_equal(t->ops[20].data, "changed", 7);
	txn_encode(&enc, t);
	assert_int_equal(enc.error, 0);
	assert_int_equal(txn_decode(enc.data, enc.len, &back), 0);
	assert_int_equal(back->op_count, 21);
	back->prep_seq = 0;
	apply(&copy, back);
	apply(&w, t);
	const struct znode *n12 = tree_lookup(&w.st.tree, "/n12", 4);
	assert_non_null(n12);
	assert_int_equal(n12->data_len, 16);
	assert_memory_equal(znode_data(n12), "value of node 12", 16);
	const struct znode *n19 = tree_lookup(&w.st.tree, "/n19", 4);
	assert_non_null(n19);
	assert_memory_equal(znode_data(n19), "changed", 7);
	compare_trees(&w.st.tree, &copy.st.tree);
	jute_buf_free(&enc);
	jute_buf_free(&b);
	world_free(&w);
	world_free(&copy);
}

/* Prep hands apply the hash it looked a path up with; a txn prepped against
 * one tree and applied to another that hashes with another key (a leader's
 * snapshot installed in between) still finds its node. */
static void test_a_txn_prepped_against_another_tree_finds_its_nodes(void **state)
{
	struct world w, other;
	world_init(&w);
	world_init(&other);
	create_now(&w, NULL, "/a", 0);
	create_now(&w, NULL, "/b", 0);
	create_now(&other, NULL, "/a", 0);
	create_now(&other, NULL, "/b", 0);
	struct txn *t;
	struct set_data_request sr = { .path = "/a", .path_len = 2, .data = (const uint8_t *)"x",
				       .data_len = 1, .version = -1 };
	assert_int_equal(VERDICT(prep_set_data(&w.p, NULL, NULL, &sr, 1000, &t, &zk_err)), ZOK);
	assert_true(t->ops[0].path_hashed);
	apply(&other, t);
	struct delete_request dr = { .path = "/b", .path_len = 2, .version = -1 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &dr, 1000, &t, &zk_err)), ZOK);
	apply(&other, t);
	struct znode *a = tree_lookup(&other.st.tree, "/a", 2);
	assert_non_null(a);
	assert_int_equal(znode_version(a), 1);
	assert_int_equal(a->data_len, 1);
	assert_null(tree_lookup(&other.st.tree, "/b", 2));
	world_free(&w);
	world_free(&other);
}

/* The digest kept as txns apply is the one computed from scratch. */
static uint64_t digest_from_scratch(struct tree *t)
{
	uint64_t kept = t->digest;
	tree_digest_recompute(t);
	uint64_t fresh = t->digest;
	t->digest = kept;
	return fresh;
}

static void test_the_digest_kept_as_txns_apply_is_the_tree_s(void **state)
{
	struct world w;
	struct txn *t;
	world_init(&w);
	uint64_t empty = w.st.tree.digest;
	assert_int_equal(digest_from_scratch(&w.st.tree), empty);
	struct session *s = new_session(&w);
	create_now(&w, NULL, "/a", 0);
	create_now(&w, NULL, "/a/b", ZK_CREATE_PERSISTENT_SEQUENTIAL);
	create_now(&w, s, "/a/e", ZK_CREATE_EPHEMERAL);
	assert_int_equal(digest_from_scratch(&w.st.tree), w.st.tree.digest);
	uint64_t before = w.st.tree.digest;
	struct set_data_request sd = { .path = "/a", .path_len = 2, .data = (const uint8_t *)"v",
				       .data_len = 1, .version = -1 };
	assert_int_equal(VERDICT(prep_set_data(&w.p, NULL, NULL, &sd, 5000, &t, &zk_err)), 0);
	apply(&w, t);
	assert_true(w.st.tree.digest != before);
	assert_int_equal(digest_from_scratch(&w.st.tree), w.st.tree.digest);
	struct delete_request d = { .path = "/a/b0000000000", .path_len = 14, .version = -1 };
	assert_int_equal(VERDICT(prep_delete(&w.p, NULL, NULL, &d, 1, &t, &zk_err)), 0);
	apply(&w, t);
	assert_int_equal(prep_close_session(&w.p, s->id, 1, &t), 0);
	apply(&w, t);
	assert_int_equal(digest_from_scratch(&w.st.tree), w.st.tree.digest);
	/* the nodes under /zookeeper/ are not in it */
	struct znode *quota = tree_lookup(&w.st.tree, "/zookeeper/quota", 16);
	assert_int_equal(tree_node_digest(&w.st.tree, quota), 0);
	/* and the history has the digest after each txn */
	uint64_t at;
	assert_int_equal(state_digest_at(&w.st, w.st.last_zxid, &at), 0);
	assert_int_equal(at, w.st.tree.digest);
	assert_int_equal(state_digest_at(&w.st, w.st.last_zxid + 1, &at), -ENOENT);
	world_free(&w);
}

static void test_codec_refuses_garbage(void **state)
{
	struct txn *t;
	static const uint8_t junk[] = { 0, 0, 0, 9, 1, 2, 3 };
	assert_int_equal(txn_decode(junk, sizeof(junk), &t), -EBADMSG);
}

/* A txn prep cannot make would stop a replay: an op of no known type, or
 * an op on a node without a valid path. */
static void test_codec_refuses_txns_prep_cannot_make(void **state)
{
	static const struct { int32_t type; const char *path; } bad[] = {
		{ 99, "/a" }, { TXN_OP_CREATE, NULL }, { TXN_OP_CREATE, "a" },
		{ TXN_OP_DELETE, "" }, { TXN_OP_SET_DATA, "/a/" }, { TXN_OP_SET_ACL, "//a" },
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		struct txn *t = txn_new(1), *back = NULL;
		struct jute_buf b = { 0 };
		assert_non_null(t);
		t->ops[0].type = bad[k].type;
		if (bad[k].path) {
			t->ops[0].path = strdup(bad[k].path);
			t->ops[0].path_len = (uint32_t)strlen(bad[k].path);
		}
		t->ops[0].data_len = -1;
		txn_encode(&b, t);
		assert_int_equal(txn_decode(b.data, b.len, &back), -EBADMSG);
		t->ops[0].type = TXN_OP_ERROR;	/* the same bytes in an error op: fine */
		b.len = 0;
		txn_encode(&b, t);
		assert_int_equal(txn_decode(b.data, b.len, &back), 0);
		txn_free(back);
		txn_free(t);
		jute_buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_sets_every_stat_field_and_the_parents),
		cmocka_unit_test(test_sequential_suffix_counts_creates_not_deletes),
		cmocka_unit_test(test_sequential_counter_wraps_like_a_java_int),
		cmocka_unit_test(test_create_error_precedence),
		cmocka_unit_test(test_delete_and_set_data_errors),
		cmocka_unit_test(test_pipelined_writes_see_each_other_before_they_apply),
		cmocka_unit_test(test_closing_a_session_deletes_its_ephemerals),
		cmocka_unit_test(test_multi_is_all_or_nothing),
		cmocka_unit_test(test_the_same_txns_give_the_same_tree_after_a_trip_through_the_codec),
		cmocka_unit_test(test_the_digest_kept_as_txns_apply_is_the_tree_s),
		cmocka_unit_test(test_a_txn_prepped_against_another_tree_finds_its_nodes),
		cmocka_unit_test(test_a_multi_of_twenty_ops_with_data_grows_and_reads_back),
		cmocka_unit_test(test_codec_refuses_garbage),
		cmocka_unit_test(test_codec_refuses_txns_prep_cannot_make),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
