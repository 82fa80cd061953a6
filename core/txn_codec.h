/* txn_codec: a txn as bytes, for the log (and, with replication, the wire).
 *
 * The encoding is corral's own, versioned, big-endian (jute primitives): what
 * goes in comes out identical, so a txn applied from the log on restart or on
 * another server has exactly the effects the leader decided. The zxid is not
 * encoded: it is the index of the log entry that carries the txn. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "jute.h"
#include "txn.h"

/* 2 added origin and origin_seq; 1 is still read (a standalone log). */
#define TXN_CODEC_VERSION 2

/* Appends t to b (b->error says if memory ran out). */
void txn_encode(struct jute_buf *b, const struct txn *t);
/* Decodes a txn; returns 0 with *ret (caller frees with txn_free), -EBADMSG
 * for bytes that are not a txn of a known version, or -ENOMEM. */
int txn_decode(const uint8_t *p, size_t len, struct txn **ret);
