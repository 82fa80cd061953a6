/* Fuzz target: what a client sends once its session is established.
 *
 * Input: one flags byte, then the bytes of the connection: frames (a length,
 * then xid and opcode, then the request's record). Each frame is taken as
 * conn.c and request.c take it (a length outside 0..1048575 closes the
 * connection, a short one waits for more), and its record is decoded for its
 * opcode by the code corrald uses (records.c; prep_request() for writes):
 * reads are decoded and their paths looked up and checked against the ACLs,
 * addauth adds identities (auth.c), writes are prepped against a live state
 * (prep.c, pending.c) and their txns go through the log's codec and are
 * applied (txn_codec.c, txn.c), as the server does.
 *
 * Flags: bits 0-1, how many writes are prepped before the oldest is applied
 * (1 to 4: pipelined writes see each other's pending changes); bit 2, the
 * connection holds the super identity.
 *
 * Properties checked besides memory safety: a txn re-encoded after a trip
 * through the codec is the same bytes, and applying it never fails but for
 * memory. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz_util.h"

#include "auth.h"
#include "jute.h"
#include "prep.h"
#include "proto.h"
#include "records.h"
#include "state.h"
#include "txn.h"
#include "txn_codec.h"

#define MAX_FRAME_BYTES 1048575u	/* client.max_frame_bytes, the default */
#define PIPELINE_MAX 4
#define SUPER_DIGEST "super:D/InIHSb7yEEbrWz8b9l71RjZJU="	/* super:test */

struct world {
	struct state st;
	struct prep p;
	struct session *session;
	struct auth_identities ids;
	struct txn *pipeline[PIPELINE_MAX];
	unsigned pipelined, depth;
	int64_t zxid;
};

/* Applies t as the commit step would, after a trip through the log codec. */
static void apply(struct world *w, struct txn *t)
{
	struct jute_buf b1 = { 0 }, b2 = { 0 };
	struct txn *back = NULL;
	txn_encode(&b1, t);
	FUZZ_CHECK(!b1.error);
	FUZZ_CHECK(txn_decode(b1.data, b1.len, &back) == 0);
	txn_encode(&b2, back);
	FUZZ_CHECK(!b2.error && b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	back->zxid = t->zxid = ++w->zxid;
	struct txn_result *res = calloc(back->op_count ? back->op_count : 1, sizeof(*res));
	FUZZ_CHECK(res);
	FUZZ_CHECK(txn_apply(&w->st, back, res) == 0);
	prep_retire(&w->p, t->prep_seq);
	free(res);
	txn_free(back);
	txn_free(t);
	jute_buf_free(&b1);
	jute_buf_free(&b2);
}

static void drain(struct world *w, unsigned keep)
{
	while (w->pipelined > keep) {
		struct txn *t = w->pipeline[0];
		memmove(w->pipeline, w->pipeline + 1, --w->pipelined * sizeof(*w->pipeline));
		apply(w, t);
	}
}

static void submit(struct world *w, struct txn *t)
{
	drain(w, w->depth - 1);
	w->pipeline[w->pipelined++] = t;
}

/* A new session for the connection, applied at once (as the handshake waits for it). */
static void new_session(struct world *w)
{
	struct txn *t = NULL;
	drain(w, 0);
	FUZZ_CHECK(prep_create_session(&w->p, 30000, 1000, &t) == 0);
	int64_t id = t->session_id;
	apply(w, t);
	w->session = session_lookup(&w->st.sessions, id);
	FUZZ_CHECK(w->session);
}

static void read_path(struct world *w, const char *path, int32_t len, int32_t perm)
{
	const struct znode *n = tree_lookup(&w->st.tree, path, (size_t)len);
	if (n)
		(void)auth_allowed(&w->ids, znode_acl(n), perm);
}

/* Returns false when the connection would be closed. */
static bool read_request(struct world *w, int32_t op, const uint8_t *body, uint32_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	switch (op) {
	case ZK_OP_EXISTS:
	case ZK_OP_GET_DATA:
	case ZK_OP_GET_CHILDREN:
	case ZK_OP_GET_CHILDREN2: {
		struct path_watch_request pw;
		if (path_watch_request_decode(&r, &pw) < 0)
			return false;
		read_path(w, pw.path, pw.path_len, ZK_PERM_READ);
		return true;
	}
	case ZK_OP_MULTI_READ:
		for (;;) {
			struct multi_header h;
			struct path_watch_request pw;
			if (multi_header_decode(&r, &h) < 0)
				return false;
			if (h.done)
				return true;
			if (h.type != ZK_OP_GET_DATA && h.type != ZK_OP_GET_CHILDREN)
				return true;	/* MARSHALLINGERROR, the connection stays */
			if (path_watch_request_decode(&r, &pw) < 0)
				return false;
			read_path(w, pw.path, pw.path_len, ZK_PERM_READ);
		}
	case ZK_OP_SYNC:
	case ZK_OP_GET_ACL:
	case ZK_OP_GET_EPHEMERALS:
	case ZK_OP_GET_ALL_CHILDREN_NUMBER: {
		struct path_request req;
		if (path_request_decode(&r, &req) < 0)
			return false;
		read_path(w, req.path, req.path_len, ZK_PERM_READ | ZK_PERM_ADMIN);
		return true;
	}
	case ZK_OP_SET_WATCHES:
	case ZK_OP_SET_WATCHES2: {
		struct set_watches_reader it;
		unsigned list;
		const char *path;
		int32_t plen;
		int more;
		if (set_watches_begin(&it, &r, op == ZK_OP_SET_WATCHES2) < 0)
			return false;
		while ((more = set_watches_next(&it, &list, &path, &plen)) > 0) {
			FUZZ_CHECK(list < 5);
			read_path(w, path, plen, 0);
		}
		return more == 0;
	}
	case ZK_OP_ADD_WATCH:
	case ZK_OP_CHECK_WATCHES:
	case ZK_OP_REMOVE_WATCHES: {
		struct watch_request req;
		if (watch_request_decode(&r, &req) < 0)
			return false;
		(void)memchr(req.path, '/', (size_t)req.path_len);
		return true;
	}
	case ZK_OP_AUTH: {
		struct auth_request req;
		if (auth_request_decode(&r, &req) < 0)
			return false;
		int err = auth_add(&w->ids, req.scheme, (size_t)req.scheme_len, req.auth,
				   (size_t)req.auth_len, SUPER_DIGEST);
		FUZZ_CHECK(w->ids.count <= AUTH_IDS_MAX);
		return err == 0;	/* AUTHFAILED closes the connection */
	}
	case ZK_OP_RECONFIG: {
		struct reconfig_request req;
		return reconfig_request_decode(&r, &req) == 0;
	}
	}
	return true;		/* ping, whoAmI, sasl: no record */
}

static bool write_request(struct world *w, int32_t op, const uint8_t *body, uint32_t len)
{
	struct txn *t = NULL;
	struct prep_refusal no;
	int err;
	if (w->session->closing)
		return true;	/* SESSIONEXPIRED */
	if (op == ZK_OP_CLOSE_SESSION) {
		err = prep_close_session(&w->p, w->session->id, 1000, &t);
		if (err == 0) {
			w->session->closing = true;
			submit(w, t);
			drain(w, 0);		/* the session ends with its close */
			new_session(w);		/* and the client makes another */
		}
		return true;
	}
	err = prep_request(&w->p, w->session, &w->ids, op, body, len, 1000, &t, &no);
	FUZZ_CHECK(err != -ENOMEM);
	if (err == -EBADMSG)
		return false;
	FUZZ_CHECK(err == 0);
	/* a txn, or a refusal: never both, never neither */
	FUZZ_CHECK(!t == (no.err != ZOK || no.multi.op_count > 0));
	free(no.multi.op_types);
	if (t)
		submit(w, t);
	return true;
}

static bool write_op(int32_t op)
{
	switch (op) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_DELETE:
	case ZK_OP_SET_DATA:
	case ZK_OP_SET_ACL:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
	case ZK_OP_DELETE_CONTAINER:
	case ZK_OP_MULTI:
	case ZK_OP_CLOSE_SESSION:
		return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct world w = { 0 };
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct sockaddr_storage ss = { 0 };

	if (size < 1)
		return 0;
	w.depth = (data[0] & 3u) + 1;
	memcpy(&ss, &peer, sizeof(peer));
	FUZZ_CHECK(state_init(&w.st, 1, 0) == 0);
	FUZZ_CHECK(prep_init(&w.p, &w.st, 1) == 0);
	auth_identities_init(&w.ids, &ss);
	if (data[0] & 4u)
		FUZZ_CHECK(auth_add(&w.ids, "digest", 6, (const uint8_t *)"super:test", 10,
				    SUPER_DIGEST) == 0 && w.ids.super);
	new_session(&w);

	size_t off = 1;
	while (size - off >= 4) {
		uint32_t len = fuzz_get32(data + off);
		if (len > MAX_FRAME_BYTES || size - off - 4 < len)
			break;		/* closed, or waiting for the rest */
		const uint8_t *frame = data + off + 4;
		off += 4 + len;
		struct jute_reader r;
		jute_reader_init(&r, frame, len);
		(void)jute_read_int(&r);	/* xid */
		int32_t op = jute_read_int(&r);
		if (r.error)
			break;
		const uint8_t *body = frame + r.pos;
		uint32_t body_len = len - (uint32_t)r.pos;
		bool open = write_op(op) ? write_request(&w, op, body, body_len)
					 : read_request(&w, op, body, body_len);
		if (!open)
			break;
	}
	drain(&w, 0);
	auth_identities_free(&w.ids);
	prep_free(&w.p);
	state_free(&w.st);
	return 0;
}
