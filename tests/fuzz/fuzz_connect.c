/* Fuzz target: the first bytes of a new client connection, the handshake.
 *
 * Input: what the client sends. As conn.c takes it: a length in 0..1048575
 * (else the connection closes), the whole frame (else it waits), and the
 * frame decoded as a ConnectRequest (records.c: connect_request_decode(),
 * the decode conn.c's handle_connect() makes; the optional readOnly byte
 * included). A resumed session's password is compared only when it has
 * ZK_PASSWORD_BYTES, as conn.c does. Frames pipelined after the handshake
 * have their request header read (the rest is fuzz_client_request's).
 *
 * Properties checked besides memory safety: what was decoded lies inside
 * the frame, and the readOnly byte is there exactly when a byte was left. */
#include "fuzz_util.h"

#include "jute.h"
#include "proto.h"
#include "records.h"

#define MAX_FRAME_BYTES 1048575u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t known_password[ZK_PASSWORD_BYTES] = "corral-password";
	size_t off = 0;
	bool established = false;

	while (size - off >= 4) {
		uint32_t len = fuzz_get32(data + off);
		if (len > MAX_FRAME_BYTES || size - off - 4 < len)
			return 0;
		const uint8_t *frame = data + off + 4;
		off += 4 + len;
		struct jute_reader r;
		jute_reader_init(&r, frame, len);
		if (!established) {
			struct connect_request req;
			if (connect_request_decode(&r, &req) < 0)
				return 0;	/* "malformed ConnectRequest": closed */
			FUZZ_CHECK(len >= 28);	/* the fields before the password's bytes */
			FUZZ_CHECK(req.password_len >= -1 && (req.password_len < 0 ||
				   (req.password >= frame &&
				    req.password + req.password_len <= frame + len)));
			size_t before_read_only = 28 + (size_t)(req.password_len > 0 ? req.password_len : 0);
			FUZZ_CHECK(req.has_read_only == (len > before_read_only));
			if (req.session_id != 0 && req.password_len == ZK_PASSWORD_BYTES)
				(void)memcmp(known_password, req.password, ZK_PASSWORD_BYTES);
			established = true;
			continue;
		}
		(void)jute_read_int(&r);	/* xid */
		(void)jute_read_int(&r);	/* op */
		if (r.error)
			return 0;
	}
	return 0;
}
