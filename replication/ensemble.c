/* ensemble: see ensemble.h. */
#include "ensemble.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>
#include <openssl/ssl.h>

#include "bytes.h"
#include "log.h"
#include "snapshot_transfer.h"
#include "sockaddr.h"

#define PEER_QUEUE_BYTES (64u << 20)
#define PEER_FRAME_BYTES (80u << 20)
#define PEER_BACKOFF_MIN_MS 50
#define PEER_BACKOFF_MAX_MS 2000
#define PEER_MAX_INBOUND 64

static const char *address_of(struct commit *c, raft_id id)
{
	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		if (c->raft.configuration.servers[i].id == id)
			return c->raft.configuration.servers[i].address;
	return "";
}

/* After RAFT_RECEIVE of AppendEntries: raft freed the batch itself unless
 * it asked for the entries to be persisted (then it is ours, the log has
 * copied them); the entries array is always ours. */
static void free_received(struct commit *c, struct raft_message *m)
{
	struct raft_append_entries *a = &m->append_entries;
	if (m->type != RAFT_APPEND_ENTRIES || a->n_entries == 0)
		return;
	if (c->persisted_batch == a->entries[0].batch)
		raft_free(a->entries[0].batch);
	raft_free(a->entries);
	a->entries = NULL;
	a->n_entries = 0;
}

static void on_message(void *ctx, struct raft_message *m)
{
	struct ensemble *en = ctx;
	struct commit *c = en->commit;
	if (c->failed || !c->raft_ready) {
		peer_message_release(m);
		return;
	}
	if (m->type == RAFT_INSTALL_SNAPSHOT && !snapshot_transfer_received(en->transfers, m)) {
		peer_message_release(m);
		return;
	}
	if (snapshot_transfer_is_rebuild(m)) {
		/* For the state alone, from the leader it follows: raft's log is sound. */
		if (m->server_id == commit_leader(c) && c->apply_paused) {
			int r = snapshot_transfer_rebuild_install(en->transfers, m);
			if (r < 0)
				log_warning("rebuilding the state from the leader's snapshot failed: %s; "
					    "asking again", strerror(-r));
		}
		peer_message_release(m);
		return;
	}
	m->server_address = address_of(c, m->server_id);
	struct raft_event e = { .type = RAFT_RECEIVE };
	e.receive.message = m;
	c->persisted_batch = NULL;
	c->received_batch = m->type == RAFT_APPEND_ENTRIES && m->append_entries.n_entries
			    ? m->append_entries.entries[0].batch : NULL;
	int r = commit_step(c, &e);
	c->received_batch = NULL;
	free_received(c, m);
	if (r < 0 && r != -EAGAIN)
		commit_fail(c, -r);
}

/* COMMIT: the leader's commit index, as far as this follower's log is
 * known to match the leader's (its match index): Raft would tell it with
 * the next AppendEntries, a heartbeat away; this tells it at once, so a
 * write forwarded from here is answered one hop after it commits. */
static void receive_commit(struct ensemble *en, const struct peer_frame *f)
{
	struct commit *c = en->commit;
	if (f->body_len != 16)
		return;
	uint64_t term = load_be64(f->body), index = load_be64(f->body + 8);
	if (term != raft_current_term(&c->raft) || f->from != commit_leader(c) ||
	    raft_state(&c->raft) != RAFT_FOLLOWER)
		return;
	commit_learn_commit(c, term, index);
}

static void announce_commit(struct ensemble *en)
{
	struct commit *c = en->commit;
	raft_index commit = raft_commit_index(&c->raft);
	for (unsigned i = 0; i < c->raft.configuration.n; i++) {
		raft_id id = c->raft.configuration.servers[i].id;
		raft_index match = 0;
		if (id == c->self || id >= ANNOUNCE_IDS ||
		    raft_match_index(&c->raft, id, &match) != 0 || match == 0)
			continue;
		uint64_t index = match < commit ? match : commit;
		if (index <= en->announced_to[id])
			continue;
		en->announced_to[id] = index;
		uint8_t v[16];
		store_be64(v, raft_current_term(&c->raft));
		store_be64(v + 8, index);
		peer_transport_send_frame(&en->peers, id, PEER_FRAME_COMMIT, v, sizeof(v));
	}
}

static void on_frame(void *ctx, const struct peer_frame *f)
{
	struct ensemble *en = ctx;
	if (f->type == PEER_FRAME_COMMIT)
		receive_commit(en, f);
	else if (f->type == PEER_FRAME_SNAPSHOT_CHUNK)
		snapshot_transfer_chunk(en->transfers, f);
	else
		en->cb.on_frame(en->cb.ctx, f);
}

/* The connection to the leader dropped: a leader that crashed is noticed
 * at once (its kernel closes its sockets), not after a silent election
 * timeout. The voters that remain stand for election in turn (hasten.h),
 * once per term, unless the leader is heard from again first. A leader
 * that is alive keeps its followers (pre-vote: they still hear it, and
 * refuse). */
static void hasten_election(struct ensemble *en, raft_id id)
{
	struct commit *c = en->commit;
	if (id != commit_leader(c) || raft_state(&c->raft) != RAFT_FOLLOWER)
		return;
	en->lost_leader = id;
	en->lost_leader_term = raft_current_term(&c->raft);
	if (en->hastened_term == raft_current_term(&c->raft))
		return;
	en->hastened_term = raft_current_term(&c->raft);
	const struct raft_configuration *conf = &c->raft.configuration;
	uint64_t *voters = calloc(conf->n ? conf->n : 1, sizeof(*voters));
	if (!voters)
		return;		/* raft's own timers still elect */
	unsigned n = 0;
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].role == RAFT_VOTER)
			voters[n++] = conf->servers[i].id;
	hasten_start(&en->hasten, voters, n, c->self, id, en->election_timeout_ms, loop_now_ms());
	free(voters);
	en->hasten.heard_mark = c->raft.election_timer_start;
	log_info("the connection to the leader (server %llu) dropped; %s", (unsigned long long)id,
		 hasten_active(&en->hasten)
		 ? "the voters left stand for election in turn if it stays silent"
		 : "an election follows if it stays silent");
}

/* A turn of this member to stand (hasten.h): raft's election timer is
 * made to run out now, by moving raft's clock on to it. */
static void take_turn(struct ensemble *en, uint64_t now)
{
	struct commit *c = en->commit;
	if (!hasten_active(&en->hasten))
		return;
	enum raft_state st = raft_state(&c->raft);
	raft_id leader = commit_leader(c);
	bool heard = st == RAFT_FOLLOWER && c->raft.election_timer_start != en->hasten.heard_mark;
	if ((st != RAFT_FOLLOWER && st != RAFT_CANDIDATE) || heard ||
	    (leader && leader != en->hasten.lost)) {
		hasten_stop(&en->hasten);
		return;
	}
	if (!hasten_due(&en->hasten, now))
		return;
	uint64_t raft_now = now + c->raft_clock_ahead_ms;
	if (c->next_timeout > raft_now)
		c->raft_clock_ahead_ms += c->next_timeout - raft_now;
}

static void on_peer_down(void *ctx, raft_id id)
{
	struct ensemble *en = ctx;
	snapshot_transfer_peer_down(en->transfers, id);
	hasten_election(en, id);
	en->cb.on_peer_down(en->cb.ctx, id);
}

/* Every member of raft's configuration but this server is a peer. */
static void sync_peers(struct ensemble *en)
{
	struct commit *c = en->commit;
	for (unsigned i = 0; i < c->raft.configuration.n; i++) {
		const struct raft_server *s = &c->raft.configuration.servers[i];
		if (s->id == c->self)
			continue;
		char peer[96];
		size_t n = strcspn(s->address, ";");
		snprintf(peer, sizeof(peer), "%.*s", (int)n, s->address);
		int r = peer_transport_add(&en->peers, s->id, peer);
		if (r == -EINVAL)
			log_warning("member %llu has address '%s', which is not a numeric ip:port; "
				    "it cannot be reached", (unsigned long long)s->id, s->address);
	}
}

/* The entries of an AppendEntries come from the cache, or the log on disk
 * (commit_entry): raft names the range (at most
 * ENSEMBLE_MAX_INFLIGHT_ENTRIES, so a read from disk is bounded by that
 * many records, read on from the reader's cursor). Returns false when they
 * are not all there (not sent then: raft sends again, or the snapshot). */
static bool send_append_entries(struct ensemble *en, struct raft_message *m)
{
	struct commit *c = en->commit;
	struct raft_append_entries *a = &m->append_entries;
	struct raft_entry *entries = NULL;
	bool *owned = NULL;
	unsigned k = 0;
	bool ok = true;
	/* A server not connected gets a heartbeat (no entries), which keeps
	 * the connection attempts going: entries queued for it would be held
	 * here (up to the peer queue's bound) until it is back, and raft
	 * sends what it lacks then (a follower's answer is never more than
	 * the entries it was sent). */
	if (!peer_transport_up(&en->peers, m->server_id))
		a->n_entries = 0;
	if (a->n_entries) {
		entries = calloc(a->n_entries, sizeof(*entries));
		owned = calloc(a->n_entries, sizeof(*owned));
		ok = entries && owned;
		for (; ok && k < a->n_entries; k++) {
			struct wal_entry e;
			if (commit_entry(c, a->prev_log_index + 1 + k, m->server_id, &e, &owned[k]) < 0)
				break;
			entries[k].term = e.term;
			entries[k].type = (enum raft_entry_type)e.type;
			entries[k].buf.base = e.data;
			entries[k].buf.len = e.len;
		}
		ok = ok && k == a->n_entries;
	}
	int r = -1;
	if (ok) {
		a->entries = entries;
		r = peer_transport_send(&en->peers, m);	/* encodes: the entries are copied */
		a->entries = NULL;
	}
	for (unsigned j = 0; j < k; j++)
		if (owned[j])
			free(entries[j].buf.base);
	free(owned);
	free(entries);
	return r == 0;
}

static void send_messages(void *ctx, struct raft_message *m, unsigned n)
{
	struct ensemble *en = ctx;
	for (unsigned i = 0; i < n; i++) {
		int r = 0;
		switch (m[i].type) {
		case RAFT_APPEND_ENTRIES:
			send_append_entries(en, &m[i]);
			break;
		case RAFT_INSTALL_SNAPSHOT:
			snapshot_transfer_start(en->transfers, &m[i]);
			break;
		default:
			r = peer_transport_send(&en->peers, &m[i]);
			break;
		}
		if (r == -ENOENT)
			log_debug("no peer %llu to send to", (unsigned long long)m[i].server_id);
	}
}

static const char *state_name(enum raft_state s)
{
	switch (s) {
	case RAFT_LEADER: return "leader";
	case RAFT_FOLLOWER: return "follower";
	case RAFT_CANDIDATE: return "candidate";
	default: return "unavailable";
	}
}

static void after_step(void *ctx)
{
	struct ensemble *en = ctx;
	struct commit *c = en->commit;
	enum raft_state st = raft_state(&c->raft);
	raft_id leader = commit_leader(c);
	bool changed = false;
	if (st != en->state_seen) {
		if (st == RAFT_LEADER) {
			/* Raft appended a barrier when earlier terms left entries
			 * uncommitted: writes wait until it (and they) apply. */
			en->leader_ready_index = raft_last_index(&c->raft);
			en->leader_ready = false;
		}
		if (en->state_seen == RAFT_LEADER)
			en->leader_ready = false;
		changed = true;
	}
	if (st == RAFT_LEADER && !en->leader_ready &&
	    raft_commit_index(&c->raft) >= en->leader_ready_index) {
		en->leader_ready = true;
		changed = true;
		log_notice("this server (%llu) leads the ensemble from term %llu; writes are served",
			   (unsigned long long)c->self,
			   (unsigned long long)raft_current_term(&c->raft));
	}
	if (leader != en->leader_seen) {
		en->leader_changes++;
		if (st != RAFT_LEADER && leader)
			log_notice("server %llu leads the ensemble (term %llu); this server is a %s",
				   (unsigned long long)leader,
				   (unsigned long long)raft_current_term(&c->raft), state_name(st));
		else if (!leader)
			log_notice("no leader known (term %llu); this server is a %s",
				   (unsigned long long)raft_current_term(&c->raft), state_name(st));
		changed = true;
	}
	if (st == RAFT_LEADER)
		announce_commit(en);
	else if (en->state_seen == RAFT_LEADER)
		memset(en->announced_to, 0, sizeof(en->announced_to));
	en->state_seen = st;
	en->leader_seen = leader;
	if (changed)
		en->cb.on_role(en->cb.ctx);
}

static int install_snapshot(void *ctx, struct raft_snapshot_metadata *m, struct raft_buffer *chunk)
{
	struct ensemble *en = ctx;
	return snapshot_transfer_install(en->transfers, m, chunk);
}

static bool can_prep(void *ctx)
{
	struct ensemble *en = ctx;
	struct commit *c = en->commit;
	/* While leadership is handed over, raft takes no entries. */
	return raft_state(&c->raft) == RAFT_LEADER && en->leader_ready &&
	       raft_transferee(&c->raft) == 0;
}

static bool leader_reachable(void *ctx, raft_id leader)
{
	struct ensemble *en = ctx;
	/* A link not made yet (made on the first message) does not count:
	 * only one that dropped under this leader. */
	return en->lost_leader != leader ||
	       en->lost_leader_term != raft_current_term(&en->commit->raft) ||
	       peer_transport_up(&en->peers, leader);
}

void ensemble_send_rebuild(struct ensemble *en, raft_id to)
{
	struct commit *c = en->commit;
	snapshot_transfer_rebuild(en->transfers, to, c->snapshot_index, raft_current_term(&c->raft));
}

static bool peer_up(void *ctx, raft_id id)
{
	struct ensemble *en = ctx;
	return peer_transport_up(&en->peers, id);
}

int ensemble_send_frame(struct ensemble *e, raft_id to, uint16_t type, const void *body, size_t len)
{
	return peer_transport_send_frame(&e->peers, to, type, body, len);
}

static void arm_timer(struct ensemble *en);

static void on_raft_timer(struct loop_op *op, int res, uint32_t flags)
{
	struct ensemble *en = container_of(op, struct ensemble, raft_timer_op);
	struct commit *c = en->commit;
	en->raft_timer_armed = false;
	if (en->peers.closing)
		return;
	uint64_t now = loop_now_ms();
	take_turn(en, now);
	if (!c->failed && now + c->raft_clock_ahead_ms >= c->next_timeout) {
		struct raft_event e = { .type = RAFT_TIMEOUT };
		int r = commit_step(c, &e);
		if (r < 0 && r != -EAGAIN)
			commit_fail(c, -r);
	}
	peer_transport_tick(&en->peers, now);
	snapshot_transfer_pump(en->transfers);
	sync_peers(en);
	arm_timer(en);
}

/* Raft's timers are tens of milliseconds (heartbeats are a tenth of the
 * election timeout): a ticker at a twentieth of it keeps them within 5%.
 * While members take turns to stand, a finer one keeps the turns apart. */
static void arm_timer(struct ensemble *en)
{
	uint32_t ms = en->election_timeout_ms / 20;
	if (hasten_active(&en->hasten) && ms > en->hasten.step_ms / 8)
		ms = en->hasten.step_ms / 8;
	if (ms < 5)
		ms = 5;
	if (ms > 50)
		ms = 50;
	en->raft_timer_ts.tv_sec = 0;
	en->raft_timer_ts.tv_nsec = (long long)ms * 1000000;
	struct io_uring_sqe *sqe = loop_sqe(en->commit->loop, &en->raft_timer_op);
	io_uring_prep_timeout(sqe, &en->raft_timer_ts, 0, 0);
	en->raft_timer_armed = true;
}

/* ensemble.tls: the SSL_CTX both roles use: this member's certificate,
 * and the others' required and verified against the ensemble's CA. */
static int open_tls(struct ensemble *en, const struct ensemble_config *cfg, char *why,
		    size_t why_size)
{
	if (cfg->tls_mode == PEER_TLS_OFF)
		return 0;
	const struct tls_engine_files f = {
		.prefix = "ensemble.tls",
		.certificate = cfg->tls_certificate,
		.private_key = cfg->tls_private_key,
		.ca = cfg->tls_ca,
		.verify = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		.both_roles = true,
	};
	return tls_engine_context(&f, &en->tls_ctx, why, why_size);
}

/* What protects the peer port, said once at start. */
static void log_peer_security(const struct ensemble *en, const struct ensemble_config *cfg)
{
	if (cfg->tls_mode != PEER_TLS_OFF)
		log_info("ensemble \"%s\": peer connections are mutual TLS (%s), certificate %s, "
			 "CA %s", cfg->cluster_name, cfg->tls_mode == PEER_TLS_OPTIONAL
			 ? "optional: plaintext heard too, and spoken to members without TLS"
			 : "required", cfg->tls_certificate, cfg->tls_ca);
	if (!cfg->secret_len && cfg->tls_mode != PEER_TLS_REQUIRED)
		log_warning("ensemble \"%s\": no ensemble.secret_file: peer connections are not "
			    "authenticated%s, and whoever reaches %s can speak Raft to this server",
			    cfg->cluster_name, cfg->tls_mode == PEER_TLS_OPTIONAL
			    ? " unless they are TLS" : "", en->peers.listen_name);
	else if (cfg->secret_len)
		log_info("ensemble \"%s\": peer connections authenticate with the secret of %s (%s)",
			 cfg->cluster_name, cfg->secret_file ? cfg->secret_file : "?",
			 cfg->tls_mode != PEER_TLS_OFF ? "the plaintext ones; TLS ones by certificate"
			 : cfg->peer_auth == PEER_AUTH_OPTIONAL
				 ? "optional: servers that do not authenticate are heard too"
				 : "required");
}

int ensemble_open(struct ensemble *en, struct commit *c, const struct ensemble_config *cfg,
		  const struct ensemble_callbacks *cb, char *why, size_t why_size)
{
	char listen[96];
	memset(en, 0, sizeof(*en));
	en->commit = c;
	en->cb = *cb;
	en->election_timeout_ms = cfg->election_timeout_ms;
	sockaddr_format(cfg->peer_listen.host, cfg->peer_listen.port, listen, sizeof(listen));
	struct peer_transport_options po = {
		.self = c->self,
		.cluster_tag = (uint32_t)c->meta.identity.cluster_id[0] << 24 |
			       (uint32_t)c->meta.identity.cluster_id[1] << 16 |
			       (uint32_t)c->meta.identity.cluster_id[2] << 8 |
			       c->meta.identity.cluster_id[3],
		.listen = listen,
		.secret = cfg->secret_len ? cfg->secret : NULL,
		.secret_len = cfg->secret_len,
		.auth_optional = cfg->peer_auth == PEER_AUTH_OPTIONAL,
		.tls_mode = cfg->tls_mode,
		.max_queue_bytes = PEER_QUEUE_BYTES,
		.max_frame_bytes = PEER_FRAME_BYTES,
		.backoff_min_ms = PEER_BACKOFF_MIN_MS,
		.backoff_max_ms = PEER_BACKOFF_MAX_MS,
		.max_inbound = PEER_MAX_INBOUND,
		.on_message = on_message,
		.on_frame = on_frame,
		.on_peer_down = on_peer_down,
		.ctx = en,
	};
	int r = open_tls(en, cfg, why, why_size);
	if (r < 0)
		return r;
	po.tls_ctx = en->tls_ctx;
	en->transfers = snapshot_transfers_new(c, &en->peers);
	if (!en->transfers) {
		snprintf(why, why_size, "out of memory");
		r = -ENOMEM;
	}
	if (r == 0)
		r = peer_transport_init(&en->peers, c->loop, &po, why, why_size);
	if (r < 0) {
		snapshot_transfers_free(en->transfers);
		en->transfers = NULL;
		SSL_CTX_free(en->tls_ctx);
		en->tls_ctx = NULL;
		return r;
	}
	en->peers_ready = true;
	/* The configured members too: a server that joins later has no
	 * configuration yet, and must answer the leader that adds it. */
	for (size_t i = 0; i < cfg->member_count; i++) {
		char peer[96];
		if (cfg->members[i].id == c->self)
			continue;
		sockaddr_format(cfg->members[i].peer.host, cfg->members[i].peer.port, peer, sizeof(peer));
		peer_transport_add(&en->peers, cfg->members[i].id, peer);
	}
	sync_peers(en);
	en->ops = (struct commit_peers){
		.send = send_messages,
		.install_snapshot = install_snapshot,
		.after_step = after_step,
		.can_prep = can_prep,
		.leader_reachable = leader_reachable,
		.peer_up = peer_up,
		.own_timer = true,
		.ctx = en,
	};
	commit_attach_peers(c, &en->ops);
	en->raft_timer_op.complete = on_raft_timer;
	en->state_seen = RAFT_UNAVAILABLE;
	arm_timer(en);
	log_info("ensemble \"%s\": server %llu, peers on %s, %u members, election timeout %u ms",
		 cfg->cluster_name, (unsigned long long)c->self, en->peers.listen_name,
		 c->raft.configuration.n, en->election_timeout_ms);
	log_peer_security(en, cfg);
	after_step(en);
	return 0;
}

bool ensemble_close(struct ensemble *en)
{
	if (!en->peers_ready)
		return true;
	if (en->raft_timer_armed) {
		struct io_uring_sqe *sqe = loop_sqe(en->commit->loop, NULL);
		io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&en->raft_timer_op, 0);
	}
	if (!peer_transport_close(&en->peers) || en->raft_timer_armed)
		return false;
	en->peers_ready = false;
	return true;
}

void ensemble_free(struct ensemble *en)
{
	if (en->commit && en->commit->peers == &en->ops)
		commit_attach_peers(en->commit, &commit_alone);
	snapshot_transfers_free(en->transfers);
	en->transfers = NULL;
	SSL_CTX_free(en->tls_ctx);
	en->tls_ctx = NULL;
}
