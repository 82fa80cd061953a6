/* zookeeper: Apache ZooKeeper's data directory (dataDir/version-2/: the
 * snapshot.<zxid> and log.<zxid> files of ZooKeeper 3.4 to 3.9), read into
 * corral's state, and a snapshot ZooKeeper loads as its own written from
 * it: `corrald import-zookeeper` and `corrald export-zookeeper`.
 *
 * Import: the newest snapshot that checks out (plain, gzip or snappy as
 * snapshot.compression.method writes it; Adler-32 seal; the session
 * table, the ACL map, every node with its StatPersisted), then every txn of
 * the log files after it (Adler-32 per record, the preallocated zero tail
 * ends a file), applied with ZooKeeper's own rules (DataTree.processTxn:
 * a snapshot is fuzzy, so a txn may find its effect already there). The
 * sessions get the password ZooKeeper derives from their id, so clients
 * reconnect to corral with the one they hold. Nothing here writes corral's
 * files: the caller does, with the snapshot writer.
 *
 * This file reads and writes files only; it knows corral's state through
 * core's tree and session table. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "state.h"

struct zookeeper_import {
	uint64_t snapshot_zxid;		/* the snapshot it started from */
	uint64_t last_zxid;		/* the last txn applied, else the snapshot's */
	int64_t last_time_ms;		/* of the last txn applied; 0: none */
	uint64_t txns_applied;		/* txns of the logs after the snapshot */
	unsigned log_files;		/* log files read */
	unsigned snapshots_skipped;	/* newer snapshots that did not check out */
	unsigned orphan_ephemerals;	/* ephemerals of a session ZooKeeper no longer had */
	bool digest_checked;		/* the tree's digest equals ZooKeeper's last one */
	/* It differs, and the options accepted that: ZooKeeper's digest and
	 * zxid, and the tree's. */
	bool digest_mismatch;
	uint64_t digest_zxid, digest_zookeeper, digest_tree;
};

/* The timeout an imported session gets when ZooKeeper's files name none
 * (the owner of an ephemeral that no session of the snapshot or log
 * created): it expires soon after corral starts, taking its ephemerals. */
#define ZOOKEEPER_ORPHAN_TIMEOUT_MS 4000

struct zookeeper_import_options {
	/* ZooKeeper's dataLogDir, when its logs are kept apart (NULL: with the
	 * snapshots). */
	const char *log_dir;
	/* A record cut short at the very end of the last log (ZooKeeper
	 * stopped while writing it, before it acknowledged it) ends the import
	 * there instead of failing it. */
	bool accept_torn_tail;
	/* A tree whose digest differs from the last one ZooKeeper logged is
	 * imported all the same (ret->digest_mismatch says so), for a look at
	 * what differs; without it, the import fails and writes nothing. */
	bool accept_digest_mismatch;
	/* Following a ZooKeeper that still runs: after the import, the txns
	 * it goes on appending to its logs are read and applied every 100 ms
	 * for as long as this says so (it is told where the import is); once
	 * it says no (ZooKeeper stopped), what ZooKeeper wrote last is read
	 * and the import ends. A record not all written yet is waited for, not
	 * damage. NULL: an import of a stopped ZooKeeper. */
	bool (*keep_following)(void *ctx, const struct zookeeper_import *progress);
	void *ctx;
	/* Told about each snapshot skipped (damaged), with the reason. */
	void (*skipped)(const char *file, const char *reason);
};

/* The password ZooKeeper gives session id (ZooKeeperServer.generatePasswd:
 * java.util.Random seeded with id ^ 0xB3415C00, nextBytes of 16). */
void zookeeper_session_password(int64_t session_id, uint8_t ret[ZK_PASSWORD_BYTES]);

/* Loads ZooKeeper's data directory zk_dir (its version-2/, or that
 * directory itself) into st (fresh from state_init()). Returns 0 with *ret
 * filled, or a negative errno with a sentence in why naming the file and
 * the offset of any damage. */
int zookeeper_import(const char *zk_dir, const struct zookeeper_import_options *opt,
		     struct state *st, struct zookeeper_import *ret, char *why, size_t why_size);

/* Writes st as ZooKeeper's snapshot.<zxid> (and an empty log.<zxid + 1>)
 * into zk_dir/version-2/, which must not hold ZooKeeper files yet. Returns
 * 0, or a negative errno with why. */
int zookeeper_export(const char *zk_dir, const struct state *st, uint64_t zxid, char *why,
		     size_t why_size);
