/* Fuzz target: txns as the log and the leader's AppendEntries carry them.
 *
 * Input: one or more log payloads, each preceded by its length (4 bytes,
 * big-endian). Each is decoded as recovery and a follower decode an entry
 * (txn_codec.c: txn_decode()) and, when it decodes, applied to the state in
 * order (txn.c: txn_apply()), as replay does: a durable txn must never stop
 * a server from starting, so applying any txn that decodes must work.
 *
 * Properties checked besides memory safety: a decoded txn encodes to bytes
 * that decode to a txn encoding to the same bytes; txn_apply() fails only
 * for memory. */
#include "fuzz_util.h"

#include "jute.h"
#include "state.h"
#include "txn.h"
#include "txn_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state st;
	int64_t zxid = 0;
	size_t off = 0;
	FUZZ_CHECK(state_init(&st, 1, 0) == 0);
	while (size - off >= 4) {
		size_t len = fuzz_get32(data + off);
		off += 4;
		if (len > size - off)
			len = size - off;
		struct txn *t = NULL;
		int r = txn_decode(data + off, len, &t);
		off += len;
		if (r < 0) {
			FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
			continue;
		}
		struct jute_buf b1 = { 0 }, b2 = { 0 };
		struct txn *back = NULL;
		txn_encode(&b1, t);
		FUZZ_CHECK(!b1.error && txn_decode(b1.data, b1.len, &back) == 0);
		txn_encode(&b2, back);
		FUZZ_CHECK(!b2.error && b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
		txn_free(back);
		jute_buf_free(&b1);
		jute_buf_free(&b2);

		struct txn_result *res = calloc(t->op_count ? t->op_count : 1, sizeof(*res));
		FUZZ_CHECK(res);
		t->zxid = ++zxid;
		FUZZ_CHECK(txn_apply(&st, t, res) == 0);
		free(res);
		txn_free(t);
	}
	state_free(&st);
	return 0;
}
