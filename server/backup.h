/* backup: an online backup streamed to an administrator's client
 * (`corralctl backup FILE`).
 *
 * The request is corral's own opcode ZK_OP_CORRAL_BACKUP, with no body, on
 * a session authenticated as the super user (auth.super_digest). It is
 * answered with a reply header {xid, zxid, err}; when err is 0 the
 * connection then carries the snapshot of the state at zxid, in the
 * snapshot file's format (storage/snapshot.h: magic, cluster identity,
 * index, term, configuration, sessions, ACLs, nodes, crc32 trailer), until
 * the server closes it. A forked child writes it from copy-on-write memory
 * (snapshot_stream_start()), so writes go on while it streams; the
 * connection is handed to the child and leaves the server (its session
 * expires). One backup at a time; another is answered THROTTLEDOP. A
 * client that stops reading for client.frame_timeout_ms ends its backup. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "log.h"

#define ZK_OP_CORRAL_BACKUP 5002

struct conn;
struct request_path;

struct backup {
	pid_t pid;			/* the child streaming one, or 0 */
	uint64_t index;			/* of the one streaming */
	uint64_t conn_id;
	char peer[64];
	uint64_t taken, failed;		/* since the start */
	struct log_limit refused_log;	/* refusals a client could repeat */
};

/* Serves the backup request xid of c: answers an error on c, or hands c
 * to a backup child (c is then closing). Returns 0, or -ENOMEM. */
int backup_request(struct backup *b, struct request_path *p, struct conn *c, int32_t xid);
/* Reaps the child once it exits and says how it went; from the timer. */
void backup_tick(struct backup *b, uint64_t now_ms);
/* Stops a backup still streaming (the server stops). */
void backup_stop(struct backup *b);
