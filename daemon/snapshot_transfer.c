/* snapshot_transfer: see snapshot_transfer.h. */
#include "snapshot_transfer.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commit.h"
#include "log.h"
#include "raft_conf.h"

#define CHUNK_BYTES (1u << 20)
#define QUEUE_AHEAD_BYTES (4u << 20)
#define SENDS_MAX 16
#define CHUNK_HEADER 24

struct snapshot_send {
	raft_id to;
	int fd;
	uint64_t offset, size;
	struct raft_message m;		/* InstallSnapshot, its data and conf to fill */
	struct snapshot_meta meta;
};

struct snapshot_receive {
	int fd;
	uint64_t index, expected, size;
	bool broken;
};

struct snapshot_transfers {
	struct snapshot_send sends[SENDS_MAX];
	unsigned send_count;
	struct snapshot_receive rx;
	uint8_t *chunk;
};

static struct snapshot_transfers *transfers(struct commit *c)
{
	if (!c->transfers) {
		c->transfers = calloc(1, sizeof(*c->transfers));
		if (c->transfers)
			c->transfers->rx.fd = -1;
	}
	return c->transfers;
}

static void send_end(struct snapshot_transfers *x, unsigned i)
{
	struct snapshot_send *s = &x->sends[i];
	if (s->fd >= 0)
		close(s->fd);
	free(s->meta.conf);
	x->sends[i] = x->sends[--x->send_count];
}

void snapshot_transfer_start(struct commit *c, const struct raft_message *m)
{
	struct snapshot_transfers *x = transfers(c);
	if (!x)
		return;
	for (unsigned i = 0; i < x->send_count; i++)
		if (x->sends[i].to == m->server_id) {
			send_end(x, i);
			break;
		}
	if (x->send_count == SENDS_MAX)
		return;
	char path[4200];
	snapshot_path(c->data_dir, m->install_snapshot.last_index, path, sizeof(path));
	struct snapshot_send *s = &x->sends[x->send_count];
	memset(s, 0, sizeof(*s));
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = s->fd < 0 ? -errno : snapshot_read_header(path, &s->meta);
	off_t size = r == 0 ? lseek(s->fd, 0, SEEK_END) : -1;
	if (r < 0 || size < 0) {
		log_warning("cannot send the snapshot at index %llu to server %llu: %s: %s",
			    (unsigned long long)m->install_snapshot.last_index,
			    (unsigned long long)m->server_id, path, strerror(r < 0 ? -r : errno));
		if (s->fd >= 0)
			close(s->fd);
		free(s->meta.conf);
		return;
	}
	s->to = m->server_id;
	s->size = (uint64_t)size;
	s->m = *m;
	x->send_count++;
	log_info("sending the snapshot at index %llu (%llu bytes) to server %llu, which is too far "
		 "behind for the log", (unsigned long long)s->meta.index, (unsigned long long)s->size,
		 (unsigned long long)s->to);
	snapshot_transfer_pump(c);
}

/* All chunks queued: the InstallSnapshot message follows them. */
static void send_install(struct commit *c, struct snapshot_send *s)
{
	struct raft_message m = s->m;
	struct raft_install_snapshot *a = &m.install_snapshot;
	uint64_t announce[2] = { htobe64(s->meta.index), htobe64(s->size) };
	if (raft_conf_decode(s->meta.conf, s->meta.conf_len, &a->conf) < 0) {
		log_warning("the snapshot at index %llu holds an unreadable configuration; not sent",
			    (unsigned long long)s->meta.index);
		return;
	}
	a->last_index = s->meta.index;
	a->last_term = s->meta.term;
	a->conf_index = s->meta.conf_index;
	a->data.base = announce;
	a->data.len = sizeof(announce);
	peer_transport_send(&c->peers, &m);
	raft_configuration_close(&a->conf);
}

void snapshot_transfer_pump(struct commit *c)
{
	struct snapshot_transfers *x = c->transfers;
	if (!x)
		return;
	if (!x->chunk && !(x->chunk = malloc(CHUNK_HEADER + CHUNK_BYTES)))
		return;
	for (unsigned i = 0; i < x->send_count; ) {
		struct snapshot_send *s = &x->sends[i];
		bool done = false;
		while (peer_transport_up(&c->peers, s->to) &&
		       peer_transport_queued(&c->peers, s->to) < QUEUE_AHEAD_BYTES) {
			uint64_t n = s->size - s->offset;
			if (n > CHUNK_BYTES)
				n = CHUNK_BYTES;
			ssize_t got = n ? pread(s->fd, x->chunk + CHUNK_HEADER, n, (off_t)s->offset) : 0;
			if (got != (ssize_t)n) {
				log_warning("reading the snapshot for server %llu failed; giving up on it",
					    (unsigned long long)s->to);
				done = true;
				break;
			}
			uint64_t h[3] = { htobe64(s->meta.index), htobe64(s->offset), htobe64(s->size) };
			memcpy(x->chunk, h, CHUNK_HEADER);
			if (n && peer_transport_send_frame(&c->peers, s->to, PEER_FRAME_SNAPSHOT_CHUNK,
							   x->chunk, CHUNK_HEADER + n) < 0)
				break;
			s->offset += n;
			if (s->offset == s->size) {
				send_install(c, s);
				done = true;
				break;
			}
		}
		if (done)
			send_end(x, i);
		else
			i++;
	}
}

void snapshot_transfer_peer_down(struct commit *c, raft_id id)
{
	struct snapshot_transfers *x = c->transfers;
	for (unsigned i = 0; x && i < x->send_count; i++)
		if (x->sends[i].to == id)
			x->sends[i].offset = 0;
}

void snapshot_transfer_stop(struct commit *c)
{
	struct snapshot_transfers *x = c->transfers;
	if (!x)
		return;
	while (x->send_count)
		send_end(x, 0);
	if (x->rx.fd >= 0)
		close(x->rx.fd);
	free(x->chunk);
	free(x);
	c->transfers = NULL;
}

static void incoming_path(struct commit *c, char *out, size_t size)
{
	snprintf(out, size, "%s/snap/incoming.tmp", c->data_dir);
}

void snapshot_transfer_chunk(struct commit *c, const struct peer_frame *f)
{
	struct snapshot_transfers *x = transfers(c);
	if (!x || f->body_len < CHUNK_HEADER)
		return;
	uint64_t h[3];
	memcpy(h, f->body, CHUNK_HEADER);
	uint64_t index = be64toh(h[0]), offset = be64toh(h[1]), size = be64toh(h[2]);
	struct snapshot_receive *rx = &x->rx;
	if (offset == 0) {
		char path[4200], dir[4200];
		snprintf(dir, sizeof(dir), "%s/snap", c->data_dir);
		mkdir(dir, 0700);	/* a follower that never wrote a snapshot has none */
		incoming_path(c, path, sizeof(path));
		if (rx->fd >= 0)
			close(rx->fd);
		rx->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		rx->index = index;
		rx->size = size;
		rx->expected = 0;
		rx->broken = rx->fd < 0;
		if (rx->fd < 0)
			log_warning("%s: %s; the leader's snapshot cannot be received", path,
				    strerror(errno));
		else
			log_info("receiving the leader's snapshot at index %llu (%llu bytes)",
				 (unsigned long long)index, (unsigned long long)size);
	}
	if (rx->broken || rx->fd < 0 || index != rx->index || offset != rx->expected)
		return;
	size_t n = f->body_len - CHUNK_HEADER;
	if (pwrite(rx->fd, f->body + CHUNK_HEADER, n, (off_t)offset) != (ssize_t)n) {
		log_warning("writing the leader's snapshot: %s", strerror(errno));
		rx->broken = true;
		return;
	}
	rx->expected += n;
}

bool snapshot_transfer_received(struct commit *c, struct raft_message *m)
{
	struct snapshot_transfers *x = transfers(c);
	struct raft_install_snapshot *a = &m->install_snapshot;
	if (!x || a->data.len != 16)
		return false;
	uint64_t announce[2];
	memcpy(announce, a->data.base, 16);
	uint64_t index = be64toh(announce[0]), size = be64toh(announce[1]);
	struct snapshot_receive *rx = &x->rx;
	if (rx->fd < 0 || rx->broken || rx->index != index || rx->expected != size ||
	    index != a->last_index) {
		log_info("the leader's snapshot at index %llu arrived incomplete; waiting for it again",
			 (unsigned long long)index);
		return false;
	}
	if (fdatasync(rx->fd) < 0) {
		log_warning("syncing the leader's snapshot: %s", strerror(errno));
		return false;
	}
	return true;
}

/* RAFT_UPDATE_SNAPSHOT: the received file becomes this server's newest
 * snapshot and its state. */
int ensemble_install_snapshot(struct commit *c, struct raft_snapshot_metadata *meta,
			      struct raft_buffer *chunk)
{
	struct snapshot_transfers *x = transfers(c);
	char from[4200], to[4200], why[512];
	raft_free(chunk->base);
	chunk->base = NULL;
	if (!x || x->rx.fd < 0)
		return -EIO;
	close(x->rx.fd);
	x->rx.fd = -1;
	incoming_path(c, from, sizeof(from));
	snapshot_path(c->data_dir, meta->index, to, sizeof(to));
	if (rename(from, to) < 0)
		return -errno;
	int dfd = open(to, O_RDONLY | O_CLOEXEC);
	if (dfd >= 0) {
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s/snap", c->data_dir);
		close(dfd);
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	/* Everything this server had after its old snapshot is superseded. */
	while (c->head) {
		struct txn *t = c->head;
		c->head = t->next;
		t->next = NULL;
		c->queued--;
		c->txns_truncated++;
		c->on_abandoned(c->ctx, t, ECONNRESET);
	}
	c->tail = NULL;
	if (c->reset_state && c->reset_state(c->ctx) < 0)
		return -ENOMEM;
	struct snapshot_meta snap;
	int r = snapshot_load_newest(c->data_dir, &c->meta.identity, c->state, &snap, why,
				     sizeof(why), NULL);
	if (r < 0 || snap.index != meta->index) {
		log_error("the leader's snapshot at index %llu does not load: %s",
			  (unsigned long long)meta->index, r < 0 ? why : "another one is newer");
		if (r == 0)
			free(snap.conf);
		return r < 0 ? r : -EBADMSG;
	}
	free(c->conf);
	c->conf = snap.conf;
	c->conf_len = snap.conf_len;
	c->conf_index = snap.conf_index;
	c->conf_fired_index = snap.conf_index;
	c->snapshot_index = snap.index;
	c->term_run_count = 0;
	commit_note_term(c, snap.index, snap.term);
	entry_cache_truncate(&c->entries, 0);
	wal_skip_to(&c->wal, snap.index + 1, snap.term);
	c->last_zxid = (int64_t)snap.index;
	c->applied_index = snap.index;
	c->installed = *meta;
	c->installed_pending = true;
	log_notice("installed the leader's snapshot at index %llu (%zu nodes, %zu sessions)",
		   (unsigned long long)snap.index, c->state->tree.node_count,
		   c->state->sessions.count);
	return 0;
}
