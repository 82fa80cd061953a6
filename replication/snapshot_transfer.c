/* snapshot_transfer: see snapshot_transfer.h. */
#include "snapshot_transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
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
	bool rebuild;			/* for a diverged follower's state (announce says so) */
};

struct snapshot_receive {
	int fd;
	uint64_t index, expected, size;
	bool broken;
};

struct snapshot_transfers {
	struct commit *commit;		/* the snapshot files, and where one installs */
	struct peer_transport *peers;
	struct snapshot_send sends[SENDS_MAX];
	unsigned send_count;
	struct snapshot_receive rx;
	uint8_t *chunk;
};

struct snapshot_transfers *snapshot_transfers_new(struct commit *c, struct peer_transport *peers)
{
	struct snapshot_transfers *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->commit = c;
	x->peers = peers;
	x->rx.fd = -1;
	return x;
}

static void send_end(struct snapshot_transfers *x, unsigned i)
{
	struct snapshot_send *s = &x->sends[i];
	if (s->fd >= 0)
		close(s->fd);
	free(s->meta.conf);
	x->sends[i] = x->sends[--x->send_count];
}

static void start_send(struct snapshot_transfers *x, const struct raft_message *m, bool rebuild);

void snapshot_transfer_start(struct snapshot_transfers *x, const struct raft_message *m)
{
	start_send(x, m, false);
}

void snapshot_transfer_rebuild(struct snapshot_transfers *x, raft_id to, uint64_t index,
			       uint64_t term)
{
	struct raft_message m = { .type = RAFT_INSTALL_SNAPSHOT, .server_id = to };
	m.install_snapshot.version = 0;
	m.install_snapshot.term = term;
	m.install_snapshot.last_index = index;
	start_send(x, &m, true);
}

static void start_send(struct snapshot_transfers *x, const struct raft_message *m, bool rebuild)
{
	for (unsigned i = 0; i < x->send_count; i++) {
		struct snapshot_send *s = &x->sends[i];
		if (s->to != m->server_id)
			continue;
		/* Raft asks again while a big snapshot is still on its way (the
		 * follower answers heartbeats from its old log meanwhile): the
		 * transfer goes on. Starting over at the first chunk each time
		 * would never get a snapshot of more than a heartbeat's worth
		 * of chunks across. A newer snapshot, or a rebuild, replaces it. */
		if (s->meta.index == m->install_snapshot.last_index && s->rebuild == rebuild)
			return;
		send_end(x, i);
		break;
	}
	if (x->send_count == SENDS_MAX)
		return;
	char path[4200];
	snapshot_path(x->commit->data_dir, m->install_snapshot.last_index, path, sizeof(path));
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
	s->rebuild = rebuild;
	x->send_count++;
	log_info("sending the snapshot at index %llu (%llu bytes) to server %llu, %s",
		 (unsigned long long)s->meta.index, (unsigned long long)s->size,
		 (unsigned long long)s->to, rebuild ? "whose state diverged, to rebuild it"
		 : "which is too far behind for the log");
	snapshot_transfer_pump(x);
}

/* All chunks queued: the InstallSnapshot message follows them. */
static void send_install(struct snapshot_transfers *x, struct snapshot_send *s)
{
	struct raft_message m = s->m;
	struct raft_install_snapshot *a = &m.install_snapshot;
	/* index, size, and for a rebuild a third word: 1 */
	uint8_t announce[24];
	store_be64(announce, s->meta.index);
	store_be64(announce + 8, s->size);
	store_be64(announce + 16, 1);
	if (raft_conf_decode(s->meta.conf, s->meta.conf_len, &a->conf) < 0) {
		log_warning("the snapshot at index %llu holds an unreadable configuration; not sent",
			    (unsigned long long)s->meta.index);
		return;
	}
	a->last_index = s->meta.index;
	a->last_term = s->meta.term;
	a->conf_index = s->meta.conf_index;
	a->data.base = announce;
	a->data.len = s->rebuild ? 24 : 16;
	peer_transport_send(x->peers, &m);
	raft_configuration_close(&a->conf);
}

void snapshot_transfer_pump(struct snapshot_transfers *x)
{
	if (!x->chunk && !(x->chunk = malloc(CHUNK_HEADER + CHUNK_BYTES)))
		return;
	for (unsigned i = 0; i < x->send_count; ) {
		struct snapshot_send *s = &x->sends[i];
		bool done = false;
		while (peer_transport_up(x->peers, s->to) &&
		       peer_transport_queued(x->peers, s->to) < QUEUE_AHEAD_BYTES) {
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
			store_be64(x->chunk, s->meta.index);
			store_be64(x->chunk + 8, s->offset);
			store_be64(x->chunk + 16, s->size);
			if (n && peer_transport_send_frame(x->peers, s->to, PEER_FRAME_SNAPSHOT_CHUNK,
							   x->chunk, CHUNK_HEADER + n) < 0)
				break;
			s->offset += n;
			if (s->offset == s->size) {
				send_install(x, s);
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

void snapshot_transfer_peer_down(struct snapshot_transfers *x, raft_id id)
{
	for (unsigned i = 0; i < x->send_count; i++)
		if (x->sends[i].to == id)
			x->sends[i].offset = 0;
}

void snapshot_transfers_free(struct snapshot_transfers *x)
{
	if (!x)
		return;
	while (x->send_count)
		send_end(x, 0);
	if (x->rx.fd >= 0)
		close(x->rx.fd);
	free(x->chunk);
	free(x);
}

static void incoming_path(struct snapshot_transfers *x, char *out, size_t size)
{
	snprintf(out, size, "%s/snap/incoming.tmp", x->commit->data_dir);
}

void snapshot_transfer_chunk(struct snapshot_transfers *x, const struct peer_frame *f)
{
	if (f->body_len < CHUNK_HEADER)
		return;
	uint64_t index = load_be64(f->body), offset = load_be64(f->body + 8),
		 size = load_be64(f->body + 16);
	struct snapshot_receive *rx = &x->rx;
	if (offset == 0) {
		char path[4200], dir[4200];
		snprintf(dir, sizeof(dir), "%s/snap", x->commit->data_dir);
		mkdir(dir, 0700);	/* a follower that never wrote a snapshot has none */
		incoming_path(x, path, sizeof(path));
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

bool snapshot_transfer_received(struct snapshot_transfers *x, struct raft_message *m)
{
	struct raft_install_snapshot *a = &m->install_snapshot;
	if (a->data.len != 16 && !snapshot_transfer_is_rebuild(m))
		return false;
	uint64_t index = load_be64(a->data.base), size = load_be64((uint8_t *)a->data.base + 8);
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
 * snapshot and its state (commit_install_snapshot). */
int snapshot_transfer_install(struct snapshot_transfers *x, struct raft_snapshot_metadata *meta,
			      struct raft_buffer *chunk)
{
	char from[4200];
	raft_free(chunk->base);
	chunk->base = NULL;
	if (x->rx.fd < 0)
		return -EIO;
	close(x->rx.fd);
	x->rx.fd = -1;
	incoming_path(x, from, sizeof(from));
#ifdef CORRAL_FAULT_INJECTION
	/* Test builds: CORRAL_FAULT_SNAPSHOT_INSTALL_DELAY_MS=N makes the install
	 * take N ms more, on the loop's thread, as a big tree's load does. */
	const char *fault = getenv("CORRAL_FAULT_SNAPSHOT_INSTALL_DELAY_MS");
	if (fault) {
		uint64_t ms = strtoull(fault, NULL, 10);
		log_notice("fault injection: the snapshot's install takes %llu ms more",
			   (unsigned long long)ms);
		struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
				       .tv_nsec = (long)(ms % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
#endif
	return commit_install_snapshot(x->commit, meta, from);
}

bool snapshot_transfer_is_rebuild(const struct raft_message *m)
{
	const struct raft_install_snapshot *a = &m->install_snapshot;
	return m->type == RAFT_INSTALL_SNAPSHOT && a->data.len == 24 &&
	       load_be64((const uint8_t *)a->data.base + 16) == 1;
}

int snapshot_transfer_rebuild_install(struct snapshot_transfers *x, const struct raft_message *m)
{
	char path[4200];
	if (x->rx.fd < 0)
		return -EIO;
	close(x->rx.fd);
	x->rx.fd = -1;
	incoming_path(x, path, sizeof(path));
	int r = commit_rebuild(x->commit, path, m->install_snapshot.last_index);
	unlink(path);
	return r;
}
