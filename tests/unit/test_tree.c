/* Unit tests of the tree (daemon/tree.c) and the built-in nodes (state.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "quota.h"
#include "state.h"
#include "tree.h"

static struct znode *add(struct tree *t, const char *parent, const char *path, const char *data)
{
	struct znode *p = tree_lookup(t, parent, strlen(parent));
	assert_non_null(p);
	return tree_add(t, p, path, strlen(path), data, data ? (int32_t)strlen(data) : -1,
			t->acls.open_acl, 0, 7, 1000);
}

/* A change of data as the tree's users make it: between
 * tree_node_changing() and tree_node_changed(). */
static int set_data(struct tree *t, struct znode *n, const void *data, int32_t len)
{
	tree_node_changing(t, n);
	int r = tree_set_data(t, n, data, len);
	tree_node_changed(t, n);
	return r;
}

/* The tree's digest as kept, against one computed from scratch. */
static void assert_digest_kept(struct tree *t)
{
	uint64_t kept = t->digest;
	tree_digest_recompute(t);
	assert_int_equal(kept, t->digest);
}

static void test_builtin_nodes_show_what_zookeeper_shows(void **state)
{
	struct state st;
	struct zk_stat s;
	assert_int_equal(state_init(&st, 1, 0), 0);
	struct znode *zk = tree_lookup(&st.tree, "/zookeeper", 10);
	assert_non_null(zk);
	znode_stat(zk, &s);
	assert_int_equal(s.num_children, 2);
	assert_int_equal(s.cversion, -2);
	struct znode *cfg = tree_lookup(&st.tree, "/zookeeper/config", 17);
	znode_stat(cfg, &s);
	assert_int_equal(s.aversion, -1);
	assert_int_equal(znode_acl(cfg)->count, 1);
	assert_int_equal(znode_acl(cfg)->entries[0].perms, 1);	/* read-only */
	assert_true(state_is_system_path("/zookeeper/quota", 16));
	assert_false(state_is_system_path("/zookeeperx", 11));
	state_free(&st);
}

static void test_children_keep_creation_order_through_removals(void **state)
{
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	add(&t, "/", "/p", NULL);
	for (int i = 0; i < 5; i++) {
		char path[16];
		snprintf(path, sizeof(path), "/p/%d", i);
		add(&t, "/p", path, "x");
	}
	tree_remove(&t, tree_lookup(&t, "/p/0", 4));	/* first */
	tree_remove(&t, tree_lookup(&t, "/p/2", 4));	/* middle */
	tree_remove(&t, tree_lookup(&t, "/p/4", 4));	/* last */
	struct znode *p = tree_lookup(&t, "/p", 2);
	assert_int_equal(znode_num_children(p), 2);
	assert_string_equal(znode_name(znode_first_child(p)), "1");
	assert_string_equal(znode_name(znode_next_sibling(znode_first_child(p))), "3");
	assert_null(znode_next_sibling(znode_next_sibling(znode_first_child(p))));
	add(&t, "/p", "/p/5", NULL);
	assert_string_equal(znode_name(znode_next_sibling(znode_next_sibling(znode_first_child(p)))), "5");
	tree_free(&t);
}

/* A leaf keeps no children's part: its stat says no children, cversion 0
 * and pzxid its czxid. The part comes with the first child and stays
 * after the last one goes (the creates and pzxid are the node's for good),
 * and a loaded stat that says otherwise makes it. */
/* Children bigger than a slab's largest chunk (their data inline past
 * SLAB_CHUNK_MAX) and with an owner (and an ephemeral's session link)
 * before the node in their chunk link into the sibling list and to their
 * parent as any other: the list is walked, in order, and unlinked from
 * its middle, its ends, to empty. */
static void test_big_and_owned_children_link_as_any_other(void **state)
{
	(void)state;
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	struct znode *p = add(&t, "/", "/p", NULL);
	static char big[4000];
	memset(big, 'b', sizeof(big));
	static const int64_t owners[] = { 0, 0x100000001, ZNODE_OWNER_CONTAINER, 0, 0x100000002 };
	struct znode *kids[5];
	for (int i = 0; i < 5; i++) {
		char path[16];
		snprintf(path, sizeof(path), "/p/%d", i);
		kids[i] = tree_add(&t, p, path, strlen(path), big, i % 2 ? 20 : (int32_t)sizeof(big),
				   t.acls.open_acl, owners[i], 8, 1000);
		assert_non_null(kids[i]);
		assert_ptr_equal(znode_parent(kids[i]), p);
		assert_int_equal(znode_owner(kids[i]), owners[i]);
	}
	struct znode *ch = znode_first_child(p);
	for (int i = 0; i < 5; i++, ch = znode_next_sibling(ch))
		assert_ptr_equal(ch, kids[i]);
	assert_null(ch);
	static const int order[] = { 2, 0, 4, 3, 1 };
	for (int r = 0; r < 5; r++) {
		tree_remove(&t, kids[order[r]]);
		kids[order[r]] = NULL;
		int seen = 0;
		for (ch = znode_first_child(p); ch; ch = znode_next_sibling(ch)) {
			while (!kids[seen])
				seen++;
			assert_ptr_equal(ch, kids[seen++]);
			assert_int_equal(znode_data(ch)[0], 'b');
		}
		assert_int_equal(znode_num_children(p), 4 - r);
	}
	assert_null(znode_first_child(p));
	tree_free(&t);
}

static void test_a_leaf_has_no_childrens_part_until_it_has_a_child(void **state)
{
	struct tree t;
	struct zk_stat s;
	assert_int_equal(tree_init(&t), 0);
	struct znode *n = add(&t, "/", "/n", "abc");
	assert_null(znode_kids(n));
	znode_stat(n, &s);
	assert_true(s.num_children == 0 && s.cversion == 0 && s.pzxid == s.czxid);
	struct znode *c = tree_add(&t, n, "/n/c", 4, NULL, -1, t.acls.open_acl, 0, 9, 1000);
	assert_non_null(znode_kids(n));
	assert_null(znode_kids(c));
	znode_kids(n)->creates = 1;
	znode_kids(n)->pzxid = 9;
	tree_remove(&t, c);
	znode_stat(n, &s);
	assert_true(s.num_children == 0 && s.cversion == 2 && s.pzxid == 9 && s.czxid == 7);
	/* a leaf loaded with a pzxid of its own */
	struct znode *l = add(&t, "/", "/l", NULL);
	const struct znode_persisted back = { .czxid = 3, .mzxid = 4, .pzxid = 5, .ctime = 6,
					      .mtime = 7, .version = 1, .child_creates = 2,
					      .aversion = 0 };
	assert_int_equal(tree_restore_stat(&t, l, &back), 0);
	znode_stat(l, &s);
	assert_true(s.pzxid == 5 && s.cversion == 4 && s.czxid == 3 && s.num_children == 0);
	const struct znode_persisted plain = { .czxid = 3, .mzxid = 3, .pzxid = 3 };
	struct znode *m = add(&t, "/", "/m", NULL);
	assert_int_equal(tree_restore_stat(&t, m, &plain), 0);
	assert_null(znode_kids(m));
	tree_free(&t);
}

/* A node never changed after its create keeps no modification part: its
 * mzxid and mtime are its czxid and ctime, its versions 0, with no chunk
 * of its own. tree_mod() makes the part (a slab chunk) from those values
 * on the first change and hands back the same one after; a data change
 * alone (a quota's stats) makes none; a loaded stat makes one only when it
 * differs from a fresh node's; removing the node frees it. */
static void test_a_node_keeps_a_modification_part_only_once_changed(void **state)
{
	(void)state;
	struct tree t;
	struct zk_stat s;
	assert_int_equal(tree_init(&t), 0);
	assert_non_null(add(&t, "/", "/keep", NULL));	/* the root's children's part */
	size_t start = t.slab.allocated_bytes;
	struct znode *n = add(&t, "/", "/n", "abc");
	size_t with_n = t.slab.allocated_bytes;
	assert_null(znode_mod(n));
	znode_stat(n, &s);
	assert_true(s.mzxid == 7 && s.czxid == 7 && s.mtime == 1000 && s.ctime == 1000);
	assert_true(s.version == 0 && s.aversion == 0);

	assert_int_equal(set_data(&t, n, "xyz", 3), 0);
	assert_null(znode_mod(n));
	assert_int_equal(t.slab.allocated_bytes, with_n);

	tree_node_changing(&t, n);
	struct znode_mod *m = tree_mod(&t, n);
	assert_non_null(m);
	assert_true(m->mzxid == 7 && m->mtime == 1000 && m->version == 0 && m->aversion == 0);
	m->mzxid = 12;
	m->mtime = 3000;
	m->version = 1;
	tree_node_changed(&t, n);
	assert_int_equal(t.slab.allocated_bytes, with_n + sizeof(struct znode_mod));
	znode_stat(n, &s);
	assert_true(s.mzxid == 12 && s.mtime == 3000 && s.version == 1 && s.aversion == 0);
	assert_true(s.czxid == 7 && s.ctime == 1000);
	tree_node_changing(&t, n);
	assert_ptr_equal(tree_mod(&t, n), m);
	m->aversion = 2;
	tree_node_changed(&t, n);
	assert_int_equal(znode_aversion(n), 2);
	assert_int_equal(t.slab.allocated_bytes, with_n + sizeof(struct znode_mod));

	/* loaded stats: a fresh node's make no part, others do */
	struct znode *plain = add(&t, "/", "/plain", NULL);
	const struct znode_persisted fresh = { .czxid = 3, .mzxid = 3, .pzxid = 3, .ctime = 5, .mtime = 5 };
	assert_int_equal(tree_restore_stat(&t, plain, &fresh), 0);
	assert_null(znode_mod(plain));
	const struct znode_persisted acl_set = { .czxid = 3, .mzxid = 3, .pzxid = 3, .ctime = 5,
						 .mtime = 5, .aversion = 1 };
	assert_int_equal(tree_restore_stat(&t, plain, &acl_set), 0);
	assert_non_null(znode_mod(plain));
	znode_stat(plain, &s);
	assert_true(s.mzxid == 3 && s.mtime == 5 && s.version == 0 && s.aversion == 1);

	tree_remove(&t, n);
	tree_remove(&t, plain);
	assert_int_equal(t.slab.allocated_bytes, start);
	tree_free(&t);
}

/* A node names its ACL list by a 32-bit reference: equal lists are one
 * interned list, counted once per node; a list too big for a slab chunk
 * (60 entries, over 1 KiB) is named as well as a small one; tree_set_acl()
 * moves a node to another list and lets go of the old one, which goes
 * with its last node. */
static void test_nodes_name_their_interned_acl_lists_small_or_big(void **state)
{
	(void)state;
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	enum { BIG = 60 };
	struct acl_entry big[BIG];
	char ids[BIG][16];
	for (int i = 0; i < BIG; i++) {
		snprintf(ids[i], sizeof(ids[i]), "10.0.0.%d", i);
		big[i] = (struct acl_entry){ .perms = 1 + i % 31, .scheme = "ip", .id = ids[i] };
	}
	struct acl_list *l = acl_intern(&t.acls, big, BIG);
	assert_non_null(l);
	assert_true(sizeof(*l) + BIG * sizeof(struct acl_entry) > SLAB_CHUNK_MAX);
	size_t lists = t.acls.lists.count;

	struct znode *a = tree_add(&t, t.root, "/a", 2, "x", 1, l, 0, 7, 1000);
	struct znode *b = tree_add(&t, t.root, "/b", 2, "y", 1, l, 0, 8, 1000);
	assert_true(a && b);
	acl_unref(&t.acls, l);		/* the nodes hold it now */
	assert_ptr_equal(znode_acl(a), znode_acl(b));
	assert_int_equal(znode_acl(a)->count, BIG);
	assert_string_equal(znode_acl(a)->entries[BIG - 1].id, "10.0.0.59");
	assert_int_equal(znode_acl(a)->refs, 2);

	tree_set_acl(&t, a, t.acls.open_acl);
	assert_ptr_equal(znode_acl(a), t.acls.open_acl);
	assert_int_equal(znode_acl(b)->refs, 1);
	assert_int_equal(t.acls.lists.count, lists);
	tree_set_acl(&t, b, t.acls.open_acl);	/* the big list's last node */
	assert_int_equal(t.acls.lists.count, lists - 1);
	assert_ptr_equal(znode_acl(b), t.acls.open_acl);
	tree_free(&t);
}

static void test_stat_fields_and_cversion_from_creates_and_children(void **state)
{
	struct tree t;
	struct zk_stat s;
	assert_int_equal(tree_init(&t), 0);
	struct znode *n = add(&t, "/", "/n", "abc");
	tree_kids(&t, n)->creates = 5;	/* 5 creates under it ... */
	add(&t, "/n", "/n/a", NULL);
	add(&t, "/n", "/n/b", NULL);	/* ... of which 2 remain: 3 deletes */
	znode_stat(n, &s);
	assert_int_equal(s.cversion, 8);
	assert_int_equal(s.num_children, 2);
	assert_int_equal(s.data_length, 3);
	assert_true(s.czxid == 7 && s.mzxid == 7 && s.pzxid == 7 && s.ctime == 1000);
	tree_free(&t);
}

static void test_ephemeral_owner_shows_sessions_only(void **state)
{
	struct tree t;
	struct zk_stat s;
	assert_int_equal(tree_init(&t), 0);
	struct znode *root = t.root;
	struct znode *e = tree_add(&t, root, "/e", 2, NULL, -1, t.acls.open_acl, 0x1234, 1, 1);
	struct znode *c = tree_add(&t, root, "/c", 2, NULL, -1, t.acls.open_acl, ZNODE_OWNER_CONTAINER, 1, 1);
	struct znode *ttl = tree_add(&t, root, "/t", 2, NULL, -1, t.acls.open_acl,
				     ZNODE_OWNER_TTL_MASK | 5000, 1, 1);
	znode_stat(e, &s);
	assert_int_equal(s.ephemeral_owner, 0x1234);
	znode_stat(c, &s);
	assert_int_equal(s.ephemeral_owner, 0);
	znode_stat(ttl, &s);
	assert_int_equal(s.ephemeral_owner, 0);
	assert_int_equal(t.reapable_count, 2);
	/* the owner as stored, before the node (a persistent node has none):
	 * snapshots and the digest keep the markers */
	struct znode *p = tree_add(&t, root, "/p", 2, "x", 1, t.acls.open_acl, 0, 1, 1);
	assert_int_equal(znode_owner(e), 0x1234);
	assert_int_equal(znode_owner(c), ZNODE_OWNER_CONTAINER);
	assert_int_equal(znode_owner(ttl), ZNODE_OWNER_TTL_MASK | 5000);
	assert_int_equal(znode_owner(p), 0);
	assert_true(e->owned && c->owned && ttl->owned && !p->owned);
	assert_ptr_equal(znode_of_owner_node(znode_owner_node(e)), e);
	assert_int_equal(t.nodes.count, 5);
	/* each freed from where its allocation starts (ASan) */
	tree_remove(&t, c);
	tree_remove(&t, ttl);
	tree_remove(&t, p);
	assert_int_equal(t.reapable_count, 0);
	tree_free(&t);
}

static void test_null_data_is_kept_distinct_from_empty(void **state)
{
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	struct znode *a = add(&t, "/", "/null", NULL);
	struct znode *b = add(&t, "/", "/empty", "");
	assert_int_equal(a->data_len, -1);
	assert_int_equal(b->data_len, 0);
	assert_int_equal(set_data(&t, b, "four", 4), 0);
	assert_int_equal(t.data_bytes, 4);
	tree_free(&t);
}

static void test_set_data_stays_in_the_nodes_slot_while_it_fits_and_moves_out_when_it_grows(void **state)
{
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	const char *made = "0123456789abcdef";	/* the slot: 16 bytes after the name */
	struct znode *n = add(&t, "/", "/v", made);
	const uint8_t *slot = znode_data(n);
	assert_ptr_equal(slot, (const uint8_t *)n->name + n->name_len + 1);
	assert_int_equal(set_data(&t, n, "fedcba9876543210", 16), 0);
	assert_ptr_equal(znode_data(n), slot);
	assert_int_equal(set_data(&t, n, "wxyz", 4), 0);
	assert_ptr_equal(znode_data(n), slot);
	assert_memory_equal(znode_data(n), "wxyz", 4);
	const char *longer = "longer than the slot it was made with";
	assert_int_equal(set_data(&t, n, longer, (int32_t)strlen(longer)), 0);
	assert_ptr_not_equal(znode_data(n), slot);
	assert_memory_equal(znode_data(n), longer, strlen(longer));
	assert_int_equal(t.data_bytes, strlen(longer));
	/* from its own buffer back into the slot (the buffer is freed: ASan) */
	assert_int_equal(set_data(&t, n, "back", 4), 0);
	assert_ptr_equal(znode_data(n), slot);
	assert_memory_equal(znode_data(n), "back", 4);
	assert_int_equal(set_data(&t, n, longer, (int32_t)strlen(longer)), 0);
	assert_int_equal(set_data(&t, n, NULL, -1), 0);
	assert_int_equal(n->data_len, -1);
	assert_int_equal(t.data_bytes, 0);
	/* a node made empty has room for a few bytes, then a buffer of its own */
	struct znode *e = add(&t, "/", "/e", "");
	assert_int_equal(set_data(&t, e, "12345678", 8), 0);
	assert_ptr_equal(znode_data(e), (const uint8_t *)e->name + e->name_len + 1);
	assert_int_equal(set_data(&t, e, longer, (int32_t)strlen(longer)), 0);
	assert_memory_equal(znode_data(e), longer, strlen(longer));
	assert_digest_kept(&t);
	tree_free(&t);	/* frees the node that still has a buffer of its own */
}

/* A change hashes the node's path and data once for both digests, unless
 * the data changes in between: the digest stays right either way. */
static void test_digest_kept_through_stat_only_and_data_changes(void **state)
{
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	struct znode *p = add(&t, "/", "/p", "the parent's data");
	assert_non_null(add(&t, "/p", "/p/c", "x"));
	/* a child's create: the parent's stat only */
	struct znode_kids *k = tree_kids(&t, p);
	assert_non_null(k);
	tree_node_changing(&t, p);
	k->pzxid = 99;
	k->creates++;
	tree_node_changed(&t, p);
	assert_digest_kept(&t);
	/* data and stat in one change */
	tree_node_changing(&t, p);
	assert_int_equal(tree_set_data(&t, p, "other", 5), 0);
	tree_mod(&t, p)->version++;
	tree_node_changed(&t, p);
	assert_digest_kept(&t);
	/* the same length, overwritten in place */
	tree_node_changing(&t, p);
	assert_int_equal(tree_set_data(&t, p, "OTHER", 5), 0);
	tree_node_changed(&t, p);
	assert_digest_kept(&t);
	tree_free(&t);
}

static uint8_t *be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* The digest from scratch, without touching the tree (no new epoch). */
static uint64_t digest_from_scratch(const struct tree *t)
{
	uint64_t sum = 0;
	tree_for_each_node(t, n)
		sum += tree_node_digest(t, n);
	return sum;
}

/* A node changed once keeps its digest in its modification part for its
 * next change: that one is what comes out of the tree's digest (a wrong
 * one planted there shows), and fields set directly, as a load sets them,
 * are followed by a new epoch that makes the next change hash the node. */
static void test_a_changed_node_keeps_its_digest_for_its_next_change(void **state)
{
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	struct znode *n = add(&t, "/", "/counter", "0");
	struct znode_mod *m = NULL;
	for (int i = 1; i <= 5; i++) {
		char v[8];
		int len = snprintf(v, sizeof(v), "%d", i * 1000);
		tree_node_changing(&t, n);
		m = tree_mod(&t, n);
		assert_non_null(m);
		m->version = i;
		m->mzxid = 10 + i;
		if (i % 2)
			assert_int_equal(tree_set_data(&t, n, v, len), 0);
		else
			m->aversion = i;	/* a stat-only change */
		tree_node_changed(&t, n);
		assert_int_equal(m->digest, tree_node_digest(&t, n));
		assert_int_equal(m->digest_epoch, t.digest_epoch);
		assert_int_equal(t.digest, digest_from_scratch(&t));
	}

	/* the kept digest is the one taken out */
	m->digest += 1;
	tree_node_changing(&t, n);
	m->version = 6;
	tree_node_changed(&t, n);
	assert_int_equal(t.digest, digest_from_scratch(&t) - 1);
	assert_int_equal(m->digest, tree_node_digest(&t, n));

	/* fields set directly while the digest is deferred, then recomputed */
	t.digest_deferred = true;
	m->version = 99;
	tree_digest_recompute(&t);
	assert_int_equal(t.digest, digest_from_scratch(&t));
	assert_int_not_equal(m->digest_epoch, t.digest_epoch);
	tree_node_changing(&t, n);
	m->version = 100;
	tree_node_changed(&t, n);
	assert_int_equal(t.digest, digest_from_scratch(&t));

	/* ... or taken node by node, as a snapshot's load does, then resumed */
	t.digest_deferred = true;
	tree_digest_unload(&t, n);
	m->version = 7;
	tree_digest_loaded(&t, n);
	tree_digest_resume(&t);
	assert_int_equal(t.digest, digest_from_scratch(&t));
	tree_node_changing(&t, n);
	m->version = 8;
	tree_node_changed(&t, n);
	assert_int_equal(t.digest, digest_from_scratch(&t));
	tree_free(&t);
}

/* A node's digest is ZooKeeper's (DigestCalculator): zlib's CRC-32 of its
 * path, data, then czxid, mzxid, pzxid, ctime, mtime, version, cversion
 * (the creates), aversion and ephemeralOwner, big-endian. Small nodes are
 * hashed in one call over a copy, larger ones in three: both sizes. */
static void test_a_nodes_digest_is_zookeepers_small_or_large(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 100, 400, 600, 5000 };
	struct tree t;
	assert_int_equal(tree_init(&t), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char path[32], data[5000];
		snprintf(path, sizeof(path), "/digest-%zu", sizes[i]);
		memset(data, 'a' + (int)i, sizes[i]);
		struct znode *n = tree_add(&t, t.root, path, strlen(path), data, (int32_t)sizes[i],
					   t.acls.open_acl, 0, 7, 1000);
		assert_non_null(n);
		tree_node_changing(&t, n);
		struct znode_mod *m = tree_mod(&t, n);
		assert_non_null(m);
		m->mzxid = 9;
		m->mtime = 2000;
		m->version = 3;
		m->aversion = 4;
		tree_node_changed(&t, n);

		uint8_t expect[64], *q = expect;
		q = be64(q, 7);		/* czxid */
		q = be64(q, 9);		/* mzxid */
		q = be64(q, 7);		/* pzxid: the czxid, no children */
		q = be64(q, 1000);	/* ctime */
		q = be64(q, 2000);	/* mtime */
		q = be32(q, 3);		/* version */
		q = be32(q, 0);		/* cversion */
		q = be32(q, 4);		/* aversion */
		q = be64(q, 0);		/* ephemeralOwner */
		uLong crc = crc32(0L, (const Bytef *)path, (uInt)strlen(path));
		crc = crc32(crc, (const Bytef *)data, (uInt)sizes[i]);
		crc = crc32(crc, expect, (uInt)(q - expect));
		assert_int_equal(tree_node_digest(&t, n), (uint32_t)crc);
	}
	assert_digest_kept(&t);
	tree_free(&t);
}

static void test_thousands_of_nodes_are_all_found_after_growth(void **state)
{
	struct tree t;
	char path[32];
	assert_int_equal(tree_init(&t), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		assert_non_null(add(&t, "/", path, "v"));
	}
	assert_int_equal(t.nodes.count, 5001);
	assert_true(t.nodes.bucket_count >= 5001);
	for (int i = 0; i < 5000; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		assert_non_null(tree_lookup(&t, path, strlen(path)));
	}
	assert_null(tree_lookup(&t, "/n5000", 6));
	assert_int_equal(t.data_bytes, 5000);
	tree_free(&t);
}

/* The memory budget's figure: what the slabs hand out, within the slack
 * of slabs partly used or kept empty (a few per size class), plus the
 * buckets and the data grown into buffers of its own; it falls again as
 * data shrinks and nodes go. */
static void test_memory_bytes_follow_what_the_tree_holds(void **state)
{
	struct tree t;
	char path[32], data[100];
	assert_int_equal(tree_init(&t), 0);
	memset(data, 'd', sizeof(data) - 1);
	data[sizeof(data) - 1] = 0;
	const uint64_t empty = tree_memory_bytes(&t);
	const uint64_t slack = 16 * (uint64_t)SLAB_BYTES;	/* 4 path lengths: 4 classes */
	for (int i = 0; i < 10000; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		assert_non_null(add(&t, "/", path, data));
	}
	uint64_t full = tree_memory_bytes(&t);
	uint64_t buckets = t.nodes.bucket_count * sizeof(void *);
	/* each node: its fields, name, NUL and 99 bytes of data in one chunk */
	assert_true(full >= t.slab.allocated_bytes + buckets);
	assert_true(t.slab.allocated_bytes >= 10000 * (offsetof(struct znode, name) + 2 + 1 + 99));
	assert_true(full - t.slab.allocated_bytes - buckets <= slack);

	struct znode *n = tree_lookup(&t, "/n7", 3);
	static char big[100000];
	assert_int_equal(set_data(&t, n, big, sizeof(big)), 0);
	uint64_t grown = tree_memory_bytes(&t);
	assert_true(grown - full >= sizeof(big) && grown - full <= sizeof(big) + 32);
	assert_int_equal(set_data(&t, n, "back", 4), 0);
	assert_int_equal(tree_memory_bytes(&t), full);

	for (int i = 0; i < 10000; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		tree_remove(&t, tree_lookup(&t, path, strlen(path)));
	}
	uint64_t after = tree_memory_bytes(&t);
	/* the buckets stay; the slabs go but for one kept per class */
	buckets = t.nodes.bucket_count * sizeof(void *);
	assert_true(after <= empty + buckets + slack);
	assert_true(after < full / 4);
	tree_free(&t);
}

static void test_quota_limits_parse_as_statstrack(void **state)
{
	struct quota_track q;
	const char *old = "count=10,bytes=-1";
	quota_parse((const uint8_t *)old, (int32_t)strlen(old), &q);
	assert_true(q.count == 10 && q.bytes == -1 && q.count_hard == -1 && q.bytes_hard == -1);
	const char *v37 = "count=-1,bytes=5=;byteHardLimit=100;countHardLimit=3";
	quota_parse((const uint8_t *)v37, (int32_t)strlen(v37), &q);
	assert_true(q.count == -1 && q.bytes == 5 && q.count_hard == 3 && q.bytes_hard == 100);
	const char *bad = "count=x,,;bytes=,junk";
	quota_parse((const uint8_t *)bad, (int32_t)strlen(bad), &q);
	assert_true(q.count == -1 && q.bytes == -1);
	quota_parse(NULL, -1, &q);
	assert_true(q.count == -1 && q.bytes_hard == -1);
}

static void quota_stats_are(struct tree *t, const char *want)
{
	struct znode *n = tree_lookup(t, "/zookeeper/quota/q/zookeeper_stats", 34);
	assert_non_null(n);
	assert_int_equal(n->data_len, (int32_t)strlen(want));
	assert_memory_equal(znode_data(n), want, strlen(want));
}

static void test_quota_stats_follow_the_subtree_and_are_recomputed(void **state)
{
	struct state st;
	assert_int_equal(state_init(&st, 1, 0), 0);
	struct tree *t = &st.tree;
	assert_int_equal(quota_node_added(t, add(t, "/", "/q", "ab")), 0);
	assert_int_equal(quota_node_added(t, add(t, "/q", "/q/a", "123")), 0);
	add(t, "/zookeeper/quota", "/zookeeper/quota/q", NULL);
	struct znode *lim = add(t, "/zookeeper/quota/q", "/zookeeper/quota/q/zookeeper_limits",
				"count=2,bytes=-1");
	assert_int_equal(quota_node_added(t, lim), 0);
	assert_int_equal(t->quota_count, 1);
	struct znode *sn = add(t, "/zookeeper/quota/q", "/zookeeper/quota/q/zookeeper_stats",
			       "count=0,bytes=0");
	assert_int_equal(quota_node_added(t, sn), 0);
	quota_stats_are(t, "count=2,bytes=5");
	struct znode *b = add(t, "/q/a", "/q/a/b", "4444");
	assert_int_equal(quota_node_added(t, b), 0);
	quota_stats_are(t, "count=3,bytes=9");
	/* the count's soft limit (2) is past: logged, never refused */
	struct log_limit lim_log = { .what = "quota" };
	assert_int_equal(quota_check(t, "/q/c", 4, 0, 1, true, &lim_log, 0), ZOK);
	assert_int_equal(lim_log.logged, 1);
	int32_t old = b->data_len;
	assert_int_equal(set_data(t, b, "1", 1), 0);
	assert_int_equal(quota_data_changed(t, b, old), 0);
	quota_stats_are(t, "count=3,bytes=6");
	/* outside the quota, and /zookeeper itself: not counted */
	assert_int_equal(quota_node_added(t, add(t, "/", "/qq", "zzzz")), 0);
	quota_stats_are(t, "count=3,bytes=6");
	assert_int_equal(quota_node_removing(t, b), 0);
	tree_remove(t, b);
	quota_stats_are(t, "count=2,bytes=5");
	/* a snapshot's load recomputes whatever the data said */
	assert_int_equal(set_data(t, sn, "count=9,bytes=9", 15), 0);
	t->quota_count = 0;
	assert_int_equal(quota_recompute(t), 0);
	assert_int_equal(t->quota_count, 1);
	quota_stats_are(t, "count=2,bytes=5");
	assert_int_equal(quota_node_removing(t, lim), 0);
	assert_int_equal(t->quota_count, 0);
	state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_nodes_show_what_zookeeper_shows),
		cmocka_unit_test(test_set_data_stays_in_the_nodes_slot_while_it_fits_and_moves_out_when_it_grows),
		cmocka_unit_test(test_children_keep_creation_order_through_removals),
		cmocka_unit_test(test_big_and_owned_children_link_as_any_other),
		cmocka_unit_test(test_a_leaf_has_no_childrens_part_until_it_has_a_child),
		cmocka_unit_test(test_stat_fields_and_cversion_from_creates_and_children),
		cmocka_unit_test(test_nodes_name_their_interned_acl_lists_small_or_big),
		cmocka_unit_test(test_a_node_keeps_a_modification_part_only_once_changed),
		cmocka_unit_test(test_ephemeral_owner_shows_sessions_only),
		cmocka_unit_test(test_null_data_is_kept_distinct_from_empty),
		cmocka_unit_test(test_thousands_of_nodes_are_all_found_after_growth),
		cmocka_unit_test(test_digest_kept_through_stat_only_and_data_changes),
		cmocka_unit_test(test_a_changed_node_keeps_its_digest_for_its_next_change),
		cmocka_unit_test(test_a_nodes_digest_is_zookeepers_small_or_large),
		cmocka_unit_test(test_memory_bytes_follow_what_the_tree_holds),
		cmocka_unit_test(test_quota_limits_parse_as_statstrack),
		cmocka_unit_test(test_quota_stats_follow_the_subtree_and_are_recomputed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
