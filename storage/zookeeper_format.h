/* zookeeper_format: what the ZooKeeper import's and export's files share:
 * the file headers' magic numbers, the file list of a version-2/ directory
 * and the txn applier the log reader feeds. Private to storage/zookeeper*.c. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "jute.h"
#include "state.h"
#include "zookeeper.h"

#define ZK_SNAP_MAGIC 0x5a4b534e	/* "ZKSN" */
#define ZK_LOG_MAGIC 0x5a4b4c47		/* "ZKLG" */
#define ZK_FILE_FORMAT_VERSION 2
/* An ephemeral owner no session of the snapshot or log had yet: its
 * session is kept with timeout 0 until a createSession says otherwise. */
#define ZK_PLACEHOLDER_TIMEOUT_MS 0

/* What applying txns carries from one to the next. */
struct zk_apply {
	struct state *st;
	struct zookeeper_import *res;
	const char *file;		/* for errors */
	uint64_t offset;		/* of the record being applied */
	char *why;
	size_t why_size;
	/* Where reading a log is: the file offset of the bytes in hand, and
	 * where the next record begins; following (a ZooKeeper still writing),
	 * a record not all there at the end of the last file is waited for. */
	uint64_t base, next;
	bool following;
	char log_name[256];		/* the log file read last */
	uint64_t log_zxid;
	uint64_t snap_zxid;
	/* The tree digest ZooKeeper logged with the last txn (TxnDigest). */
	int64_t digest_zxid;
	int32_t digest_version;
	uint64_t digest;
};

/* Applies one txn record (TxnHeader, txn, optional TxnDigest) as
 * ZooKeeper's DataTree.processTxn would. Returns 0, or a negative errno
 * with why. *ret_zxid is its zxid. */
int zk_apply_record(struct zk_apply *a, const uint8_t *p, size_t len, int64_t *ret_zxid);

/* The session id's session, made as a placeholder when there is none (an
 * ephemeral seen before its createSession). NULL on ENOMEM. */
struct session *zk_session_for(struct state *st, int64_t id);

/* Following: reads what ZooKeeper appended since the last call (or
 * zk_read_logs()): the rest of the file read last, then the newer ones of
 * names. */
int zk_follow_logs(const char *dir, char **names, const uint64_t *zxids, size_t count,
		   const struct zookeeper_import_options *opt, struct zk_apply *a);

/* Reads the log files after the snapshot at snap_zxid (names sorted by
 * their zxid, oldest first) and applies their txns. */
int zk_read_logs(const char *dir, char **names, const uint64_t *zxids, size_t count,
		 uint64_t snap_zxid, const struct zookeeper_import_options *opt, struct zk_apply *a);
