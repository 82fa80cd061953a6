/* backup: see backup.h. */
#include "backup.h"

#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "commit.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "reply.h"
#include "request_path.h"
#include "server_config.h"
#include "snapshot.h"
#include "state.h"

/* The reply header the child writes before the snapshot: a frame of 16
 * bytes {xid, zxid, err 0}, as reply_begin() would make it. */
static void reply_prefix(uint8_t out[20], int32_t xid, int64_t zxid)
{
	uint32_t len = htobe32(16), x = htobe32((uint32_t)xid), err = 0;
	uint64_t z = htobe64((uint64_t)zxid);
	memcpy(out, &len, 4);
	memcpy(out + 4, &x, 4);
	memcpy(out + 8, &z, 8);
	memcpy(out + 16, &err, 4);
}

/* Why c may not have a backup now (a ZooKeeper error code), or 0. */
static int32_t refusal(const struct backup *b, const struct request_path *p, const struct conn *c)
{
	if (!c->auth.super)
		return ZNOAUTH;
	if (b->pid)
		return ZTHROTTLEDOP;
	/* The child writes to the socket: nothing of ours may be on its way,
	 * before or after (corralctl asks on a session with nothing else). */
	/* Over TLS the child would have to encrypt: not done; a backup is
	 * taken on the plaintext port (or with corralctl on this host). */
	if (c->tls || !list_empty(&c->queue) || c->obuf.len > 0 || c->wbuf.len > c->woff || c->send_armed ||
	    c->watches.count > 0 || c->rlen > c->rstart)
		return ZBADARGUMENTS;
	if (p->commit->failed)
		return ZSYSTEMERROR;
	return 0;
}

int backup_request(struct backup *b, struct request_path *p, struct conn *c, int32_t xid)
{
	int64_t zxid = p->state->last_zxid;
	int32_t err = refusal(b, p, c);
	if (err) {
		b->refused_log.what = "backups refused";
		if ((err == ZNOAUTH || err == ZTHROTTLEDOP) &&
		    log_limit_allow(&b->refused_log, c->hub->now_ms))
			log_notice("connection %llu from %s: backup refused: %s",
				   (unsigned long long)c->id, c->peer_text,
				   err == ZNOAUTH ? "not authenticated as the super user"
						  : "another backup is streaming");
		reply_error(c, xid, zxid, err);
		return 0;
	}
	struct snapshot_meta m;
	if (commit_snapshot_meta(p->commit, &m) < 0)
		return -ENOMEM;
	/* A client that stops reading must not hold the one backup slot for
	 * ever: a write of the child's blocked longer than
	 * client.frame_timeout_ms fails it (the socket is the child's now). */
	struct timeval stall = { .tv_sec = p->cfg->frame_timeout_ms / 1000,
				 .tv_usec = (p->cfg->frame_timeout_ms % 1000) * 1000 };
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &stall, sizeof(stall));
	uint8_t prefix[20];
	reply_prefix(prefix, xid, (int64_t)m.index);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = snapshot_stream_start(c->fd, prefix, sizeof(prefix), &p->commit->meta.identity,
					  p->state, &m);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long fork_us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
	free(m.conf);
	if (pid < 0) {
		log_warning("connection %llu from %s: cannot start a backup: %s",
			    (unsigned long long)c->id, c->peer_text, strerror((int)-pid));
		reply_error(c, xid, zxid, ZSYSTEMERROR);
		return 0;
	}
	b->pid = pid;
	b->index = m.index;
	b->conn_id = c->id;
	snprintf(b->peer, sizeof(b->peer), "%s", c->peer_text);
	log_notice("backup at zxid 0x%llx streaming to %s (connection %llu; the fork paused the "
		   "server %lld us)", (unsigned long long)m.index, c->peer_text,
		   (unsigned long long)c->id, fork_us);
	conn_hand_over(c);
	return 0;
}

void backup_tick(struct backup *b, uint64_t now_ms)
{
	int status;
	log_limit_tick(&b->refused_log, now_ms);
	if (!b->pid || waitpid(b->pid, &status, WNOHANG) != b->pid)
		return;
	b->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		b->taken++;
		log_notice("backup at zxid 0x%llx sent to %s", (unsigned long long)b->index, b->peer);
	} else {
		b->failed++;
		log_warning("backup at zxid 0x%llx to %s failed (the client went away, stopped "
			    "reading for client.frame_timeout_ms, or the connection broke)",
			    (unsigned long long)b->index, b->peer);
	}
}

void backup_stop(struct backup *b)
{
	int status;
	if (!b->pid)
		return;
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &status, 0);
	b->pid = 0;
}
