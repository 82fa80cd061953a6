/* peer_message: libraft's messages on the wire between corral servers.
 *
 * Replication (an ensemble of servers) sends Raft's RPCs over TCP; this is
 * their encoding, corral's own: versioned, length-framed, checksummed.
 * One frame:
 *
 *   u32 length     bytes after this field (header rest + body)
 *   u32 crc32      zlib crc32 of the bytes after this field
 *   u16 version    PEER_PROTOCOL_VERSION
 *   u16 type       enum raft_message_type
 *   u32 reserved   0
 *   u64 from       the sending server's id (low 32 bits) and its ensemble's
 *                  cluster tag (high 32 bits; peer_transport.h)
 *   body           the message's fields, big-endian, in struct order
 *
 * AppendEntries carries its entries (term, type, length, bytes each) and
 * InstallSnapshot its configuration (libraft's own encoding) and data.
 * Decoding checks everything (length, checksum, version, type, every count
 * against the bytes present) before it allocates by a count, so a damaged
 * or hostile frame costs at most the frame's size. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <raft.h>

#include "jute.h"

#define PEER_PROTOCOL_VERSION 1
#define PEER_HEADER_BYTES 24
/* The frame types besides Raft's messages (enum raft_message_type, below
 * PEER_FRAME_CORRAL): corral's own, one place for all of them. */
enum peer_frame_type {
	PEER_FRAME_CORRAL = 0x100,
	PEER_FRAME_SNAPSHOT_CHUNK = PEER_FRAME_CORRAL + 1,	/* snapshot_transfer.c */
	PEER_FRAME_FORWARD = PEER_FRAME_CORRAL + 2,		/* a follower's request (forward) */
	PEER_FRAME_TOUCH = PEER_FRAME_CORRAL + 3,		/* sessions heard from (forward) */
	PEER_FRAME_COMMIT = PEER_FRAME_CORRAL + 4,		/* the leader's commit index (ensemble.c) */
	PEER_FRAME_DIGEST = PEER_FRAME_CORRAL + 5,		/* the leader's tree digest (digest_check) */
	PEER_FRAME_REBUILD = PEER_FRAME_CORRAL + 6,		/* a diverged follower asks (digest_check) */
	PEER_FRAME_FORWARD_REFUSED = PEER_FRAME_CORRAL + 7,	/* not logged: send it on (forward) */
	PEER_FRAME_FORWARD_DRAINED = PEER_FRAME_CORRAL + 8,	/* a leader stepping down (forward) */
};

/* A frame whose header checked out; body points into the buffer decoded. */
struct peer_frame {
	uint16_t type;
	raft_id from;
	const uint8_t *body;
	size_t body_len;
};

/* Appends one frame holding m, sent by server from. Returns 0, or -ENOMEM
 * (out->error set), -EINVAL for a message type libraft does not define. */
int peer_message_encode(const struct raft_message *m, raft_id from, struct jute_buf *out);

/* Appends one frame of corral's own type (>= PEER_FRAME_CORRAL) with body
 * as it is. Returns 0 or -ENOMEM / -EMSGSIZE. */
int peer_frame_encode(uint16_t type, raft_id from, const void *body, size_t len,
		      struct jute_buf *out);

/* Checks the frame at the start of buf[0..len) (length, checksum, version)
 * and fills *ret. Returns as peer_message_decode() does. */
ssize_t peer_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, struct peer_frame *ret,
			  char *why, size_t why_size);
/* Decodes a checked frame of one of Raft's types into *ret (see below).
 * Returns 0 or -EBADMSG / -ENOMEM with why. */
int peer_message_from_frame(const struct peer_frame *f, struct raft_message *ret, char *why,
			    size_t why_size);

/* Decodes the frame at the start of buf[0..len). Returns the frame's size
 * (> 0) with *ret filled (ret->server_id = the sender, ret->server_address
 * NULL: the transport knows it), 0 when buf holds only part of a frame, or
 * a negative errno with a sentence in why: -EMSGSIZE (the frame would be
 * longer than max_frame), -EBADMSG (checksum, lengths, type or fields
 * wrong), -EPROTONOSUPPORT (another version), -ENOMEM.
 *
 * What a decoded message holds is allocated with raft_malloc(), as libraft
 * expects of received messages: AppendEntries' entries array and one batch
 * buffer that every entry points into (entry.batch), InstallSnapshot's data
 * and configuration. Hand it to raft_step() or free it with
 * peer_message_release(). */
ssize_t peer_message_decode(const uint8_t *buf, size_t len, size_t max_frame,
			    struct raft_message *ret, char *why, size_t why_size);

/* Frees what peer_message_decode() allocated for m (for a message that is
 * not handed to libraft). */
void peer_message_release(struct raft_message *m);
