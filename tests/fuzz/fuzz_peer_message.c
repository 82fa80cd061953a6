/* Fuzz target: what another server sends on a peer connection.
 *
 * Input: one flags byte, then the bytes of the connection: frames, decoded
 * one after the other as peer_transport.c does (peer_frame_decode(): 0 waits
 * for more, an error closes the connection), Raft's types decoded into a
 * message (peer_message_from_frame(), what ensemble.c hands to raft_step()).
 *
 * Flags: bit 0, the harness sets each frame's crc32 right before decoding,
 * so the fuzzer reaches the bodies without finding checksums; bit 1, the
 * bytes are instead the handshake an acceptor with a secret reads first
 * (peer_auth.h: a HELLO, then a RESPONSE), answered and checked as
 * peer_transport.c does: every refusal says why, and no RESPONSE passes
 * without the secret.
 *
 * Properties checked besides memory safety: a decoded message encodes
 * (peer_message_encode()) into a frame that decodes again, and encoding that
 * gives the same bytes; what was decoded is released whole (no leak). */
#include <zlib.h>

#include "fuzz_util.h"

#include "jute.h"
#include "peer_auth.h"
#include "peer_message.h"

#define MAX_FRAME_BYTES (1u << 20)

/* The acceptor's side of the handshake over p[0..len). */
static void handshake(const uint8_t *p, size_t len)
{
	static const uint8_t secret[] = "a fuzzing secret, 32 bytes long.";
	uint8_t challenge[PEER_AUTH_CHALLENGE_BYTES];
	struct peer_auth a;
	char why[256] = "";
	if (len < PEER_AUTH_HELLO_BYTES + PEER_AUTH_RESPONSE_BYTES)
		return;
	if (peer_auth_answer_hello(&a, 0x01020304, 1, secret, 32, p, challenge, why,
				   sizeof(why)) < 0) {
		FUZZ_CHECK(why[0]);
		return;
	}
	FUZZ_CHECK(peer_auth_is_hello(p, len));
	/* nobody without the secret passes: a proof can only be guessed */
	int r = peer_auth_check_response(&a, secret, 32, p + PEER_AUTH_HELLO_BYTES, why, sizeof(why));
	FUZZ_CHECK(r == -EBADMSG || r == -EACCES);
	FUZZ_CHECK(why[0]);
}

static void check_round_trip(const struct raft_message *m, raft_id from)
{
	struct jute_buf b1 = { 0 }, b2 = { 0 };
	struct raft_message back;
	char why[256];
	FUZZ_CHECK(peer_message_encode(m, from, &b1) == 0);
	FUZZ_CHECK(peer_message_decode(b1.data, b1.len, SIZE_MAX, &back, why, sizeof(why)) ==
		   (ssize_t)b1.len);
	FUZZ_CHECK(back.type == m->type && back.server_id == from);
	FUZZ_CHECK(peer_message_encode(&back, from, &b2) == 0);
	FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	peer_message_release(&back);
	jute_buf_free(&b1);
	jute_buf_free(&b2);
}

/* Sets the crc32 of every whole frame in p[0..len). */
static void fix_checksums(uint8_t *p, size_t len)
{
	size_t off = 0;
	while (len - off >= 8) {
		size_t frame = (size_t)fuzz_get32(p + off) + 4;
		if (frame < 8 || frame > len - off)
			return;
		fuzz_put32(p + off + 4, (uint32_t)crc32_z(0L, p + off + 8, frame - 8));
		off += frame;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *buf = malloc(len ? len : 1);
	FUZZ_CHECK(buf);
	memcpy(buf, data + 1, len);
	if (data[0] & 1u)
		fix_checksums(buf, len);

	size_t off = 0;
	if (data[0] & 2u) {
		handshake(buf, len);
		free(buf);
		return 0;
	}
	while (off < len) {
		struct peer_frame f;
		char why[256];
		ssize_t n = peer_frame_decode(buf + off, len - off, MAX_FRAME_BYTES, &f, why,
					      sizeof(why));
		if (n <= 0) {
			FUZZ_CHECK(n == 0 || why[0]);	/* an error says why */
			break;
		}
		FUZZ_CHECK((size_t)n <= len - off && f.body + f.body_len == buf + off + n);
		off += (size_t)n;
		if (f.type >= PEER_FRAME_CORRAL)
			continue;	/* corral's own frames: forward.c, snapshot_transfer.c */
		struct raft_message m;
		if (peer_message_from_frame(&f, &m, why, sizeof(why)) < 0) {
			FUZZ_CHECK(why[0]);
			break;
		}
		check_round_trip(&m, f.from);
		peer_message_release(&m);
	}
	free(buf);
	return 0;
}
