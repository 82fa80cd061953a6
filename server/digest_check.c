/* digest_check: see digest_check.h. */
#include "digest_check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "log.h"
#include "tree.h"
#include "txn.h"

#define DIGEST_FRAME_BYTES 28	/* term, zxid, digest (u64 each), digest version (u32) */
#define REBUILD_FRAME_BYTES 16	/* term, applied index */
#define REBUILD_ASK_AGAIN_MS 10000

void digest_check_init(struct digest_check *d, struct state *state, struct commit *commit,
		       struct ensemble *ensemble, void (*on_diverged)(void *ctx), void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->state = state;
	d->commit = commit;
	d->ensemble = ensemble;
	d->on_diverged = on_diverged;
	d->ctx = ctx;
#ifdef CORRAL_FAULT_INJECTION
	const char *fault = getenv("CORRAL_FAULT_DIVERGE_SET_DATA");
	d->fault_set_data_countdown = fault ? strtoull(fault, NULL, 10) : 0;
	fault = getenv("CORRAL_FAULT_REBUILD_DELAY_MS");
	d->fault_rebuild_delay_ms = fault ? strtoull(fault, NULL, 10) : 0;
#endif
}

static bool leading(const struct digest_check *d)
{
	return d->ensemble && commit_state(d->commit) == RAFT_LEADER;
}

static void send_digest(struct digest_check *d)
{
	struct commit *c = d->commit;
	uint8_t body[DIGEST_FRAME_BYTES];
	store_be64(body, raft_current_term(&c->raft));
	store_be64(body + 8, (uint64_t)d->state->last_zxid);
	store_be64(body + 16, d->state->tree.digest);
	store_be32(body + 24, TREE_DIGEST_VERSION);
	for (unsigned i = 0; i < c->raft.configuration.n; i++) {
		raft_id id = c->raft.configuration.servers[i].id;
		if (id != c->self)
			ensemble_send_frame(d->ensemble, id, PEER_FRAME_DIGEST, body, sizeof(body));
	}
	d->sent_zxid = d->state->last_zxid;
}

static void ask_rebuild(struct digest_check *d, uint64_t now_ms)
{
	struct commit *c = d->commit;
	raft_id leader = commit_leader(c);
	d->ask_at_ms = now_ms + REBUILD_ASK_AGAIN_MS;
	if (!leader || leader == c->self)
		return;
	uint8_t body[REBUILD_FRAME_BYTES];
	store_be64(body, raft_current_term(&c->raft));
	store_be64(body + 8, c->applied_index);
	ensemble_send_frame(d->ensemble, leader, PEER_FRAME_REBUILD, body, sizeof(body));
}

static void diverged(struct digest_check *d, const struct zxid_digest *leader, uint64_t ours,
		     uint64_t now_ms)
{
	d->mismatches++;
	d->diverged = true;
	d->pending = false;
	d->rebuilds_seen = d->commit->rebuilds;
	log_event(LOG_ERR, { .message_id = LOG_MSGID_DIGEST_MISMATCH, .zxid = leader->zxid },
		  "the tree's digest at zxid 0x%llx is %lld here and %lld on the leader (server "
		  "%llu): this server's state diverged; it stops serving clients and rebuilds its "
		  "state from the leader's snapshot", (unsigned long long)leader->zxid,
		  (long long)ours, (long long)leader->digest,
		  (unsigned long long)commit_leader(d->commit));
	commit_pause_apply(d->commit);
	if (d->on_diverged)
		d->on_diverged(d->ctx);
	d->ask_at_ms = now_ms;
#ifdef CORRAL_FAULT_INJECTION
	d->ask_at_ms += d->fault_rebuild_delay_ms;
#endif
	if (now_ms >= d->ask_at_ms)
		ask_rebuild(d, now_ms);
}

/* The leader's digest at a zxid this server applied: compare. */
static void compare(struct digest_check *d, const struct zxid_digest *leader, uint64_t now_ms)
{
	uint64_t ours;
	if (state_digest_at(d->state, leader->zxid, &ours) < 0) {
		d->unchecked++;
		return;
	}
	if (ours == leader->digest)
		d->checks++;
	else
		diverged(d, leader, ours, now_ms);
}

#ifdef CORRAL_FAULT_INJECTION
static void fault_apply_wrongly(struct digest_check *d, const struct txn *t)
{
	for (uint32_t i = 0; i < t->op_count && d->fault_set_data_countdown; i++) {
		const struct txn_op *op = &t->ops[i];
		if (op->type != TXN_OP_SET_DATA || --d->fault_set_data_countdown)
			continue;
		struct znode *n = tree_lookup(&d->state->tree, op->path, op->path_len);
		if (!n || n->data_len <= 0)
			return;
		uint8_t *wrong = malloc((size_t)n->data_len);
		if (!wrong)
			return;
		memcpy(wrong, znode_data(n), (size_t)n->data_len);
		wrong[0] ^= 0x20;
		tree_node_changing(&d->state->tree, n);
		tree_set_data(&d->state->tree, n, wrong, n->data_len);
		tree_node_changed(&d->state->tree, n);
		free(wrong);
		/* the digest this server had after the txn */
		struct digest_history *h = &d->state->digests;
		h->recent[(h->recent_next + STATE_DIGEST_RECENT - 1) % STATE_DIGEST_RECENT].digest =
			d->state->tree.digest;
		log_warning("fault injection: txn 0x%llx applied wrongly to %.*s",
			    (unsigned long long)t->zxid, (int)op->path_len, op->path);
	}
}
#endif

/* The state was rebuilt from the leader's snapshot: serve again. */
static void check_rebuilt(struct digest_check *d)
{
	if (!d->diverged || d->commit->rebuilds == d->rebuilds_seen)
		return;
	d->diverged = false;
	d->rebuilds++;
	log_event(LOG_NOTICE, { .message_id = LOG_MSGID_STATE_REBUILT, .zxid = d->state->last_zxid },
		  "the state is the leader's again (digest %lld at zxid 0x%llx): serving clients",
		  (long long)d->state->tree.digest, (unsigned long long)d->state->last_zxid);
}

void digest_check_fault(struct digest_check *d, const struct txn *t)
{
#ifdef CORRAL_FAULT_INJECTION
	if (d->fault_set_data_countdown)
		fault_apply_wrongly(d, t);
#else
	(void)d;
	(void)t;
#endif
}

void digest_check_applied(struct digest_check *d, uint64_t now_ms)
{
	check_rebuilt(d);
	if (!d->ensemble)
		return;
	if (leading(d)) {
		if (d->state->last_zxid - d->sent_zxid >= DIGEST_CHECK_TXNS)
			send_digest(d);
		return;
	}
	if (d->pending && d->state->last_zxid >= d->pending_digest.zxid) {
		d->pending = false;
		compare(d, &d->pending_digest, now_ms);
	}
}

static void receive_digest(struct digest_check *d, const struct peer_frame *f, uint64_t now_ms)
{
	struct commit *c = d->commit;
	if (f->body_len != DIGEST_FRAME_BYTES || d->diverged || leading(d))
		return;
	if (load_be64(f->body) != raft_current_term(&c->raft) || f->from != commit_leader(c) ||
	    load_be32(f->body + 24) != TREE_DIGEST_VERSION)
		return;
	struct zxid_digest leader = { .zxid = (int64_t)load_be64(f->body + 8),
				      .digest = load_be64(f->body + 16) };
	if (leader.zxid <= d->state->last_zxid)
		compare(d, &leader, now_ms);
	else if (!d->pending) {
		/* Kept until applied; later ones go by meanwhile (this one
		 * is checked within a bounded number of txns). */
		d->pending = true;
		d->pending_digest = leader;
	}
}

static void receive_rebuild(struct digest_check *d, const struct peer_frame *f, uint64_t now_ms)
{
	if (f->body_len != REBUILD_FRAME_BYTES || !leading(d) ||
	    load_be64(f->body) != raft_current_term(&d->commit->raft))
		return;
	uint64_t min_index = load_be64(f->body + 8);
	unsigned k;
	for (k = 0; k < d->want_count && d->wants[k].id != f->from; k++)
		;
	if (k == DIGEST_CHECK_WANTS_MAX)
		return;
	if (k == d->want_count)
		d->want_count++;
	d->wants[k].id = f->from;
	d->wants[k].min_index = min_index;
	log_notice("server %llu's state diverged; it gets a snapshot of index %llu or later",
		   (unsigned long long)f->from, (unsigned long long)min_index);
	digest_check_tick(d, now_ms);
}

bool digest_check_receive(struct digest_check *d, const struct peer_frame *f, uint64_t now_ms)
{
	if (f->type == PEER_FRAME_DIGEST)
		receive_digest(d, f, now_ms);
	else if (f->type == PEER_FRAME_REBUILD)
		receive_rebuild(d, f, now_ms);
	else
		return false;
	return true;
}

/* The leader: each diverged follower gets a snapshot of at least the
 * index it applied; one is written first when the newest is older. */
static void serve_rebuilds(struct digest_check *d)
{
	struct commit *c = d->commit;
	for (unsigned k = 0; k < d->want_count; ) {
		if (c->snapshot_index >= d->wants[k].min_index && !c->snapshot_pid) {
			ensemble_send_rebuild(d->ensemble, d->wants[k].id);
			d->wants[k] = d->wants[--d->want_count];
			continue;
		}
		commit_snapshot_request(c, d->wants[k].min_index);
		k++;
	}
}

void digest_check_tick(struct digest_check *d, uint64_t now_ms)
{
	if (!d->ensemble)
		return;
	if (d->diverged && leading(d)) {
		/* Elected with a diverged state (its log is as good as any): it
		 * cannot apply, so it could never take writes. Another leads. */
		if (now_ms >= d->ask_at_ms) {
			log_warning("elected leader while this server's state is diverged; handing "
				    "leadership over");
			commit_transfer(d->commit, 0);
			d->ask_at_ms = now_ms + REBUILD_ASK_AGAIN_MS / 10;
		}
		return;
	}
	if (leading(d)) {
		if (d->state->last_zxid > d->sent_zxid)
			send_digest(d);
		serve_rebuilds(d);
		return;
	}
	d->want_count = 0;
	if (!d->diverged)
		return;
	check_rebuilt(d);
	if (d->diverged && now_ms >= d->ask_at_ms)
		ask_rebuild(d, now_ms);
}
