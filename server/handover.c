/* handover: see handover.h. */
#include "handover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bytes.h"
#include "clients.h"
#include "conn.h"
#include "crc32.h"
#include "log.h"
#include "request_path.h"
#include "server_config.h"
#include "session.h"
#include "state.h"
#include "watch.h"

#define MAGIC "CORRALHO"
#define HEADER_BYTES (8 + 4 + 4 + 8 + 4 + 8)

enum { REC_NEW = 0, REC_ESTABLISHED = 1 };

void handover_begin(struct clients *cl)
{
	cl->hub.frozen = true;
	clients_for_each(cl, c) {
		if (c->state == CONN_CLOSING)
			continue;
		if (c->tls || c->read_only || c->sasl)
			conn_close_after_flush(c);	/* as on a plain stop */
		else
			conn_freeze(c);
	}
}

bool handover_ready(const struct clients *cl)
{
	list_for_each(&cl->all, n)
		if (!conn_quiescent(list_entry(n, struct conn, node)))
			return false;
	return true;
}

static bool can_hand_over(const struct conn *c)
{
	return conn_quiescent(c) && !c->tls && !c->read_only && !c->sasl &&
	       (c->state == CONN_NEW || c->state == CONN_ESTABLISHED);
}

/* One connection's record (handover.h). */
static void write_record(struct jute_buf *b, const struct conn *c)
{
	jute_write_long(b, (int64_t)c->id);
	jute_write_int(b, c->state == CONN_ESTABLISHED ? REC_ESTABLISHED : REC_NEW);
	jute_write_long(b, c->session ? c->session->id : 0);
	jute_write_int(b, c->session ? (int32_t)c->session->timeout_ms : 0);
	jute_write_long(b, c->last_zxid);
	jute_write_long(b, c->last_cxid);
	jute_write_bool(b, c->mirror_read_only);
	jute_write_buffer(b, c->rbuf + c->rstart, (int32_t)(c->rlen - c->rstart));
	/* Quiescent: nothing is being sent, so what was not is wbuf's rest and obuf. */
	size_t unsent = c->wbuf.len - c->woff + c->obuf.len;
	jute_write_int(b, (int32_t)unsent);
	jute_write_raw(b, c->wbuf.data + c->woff, c->wbuf.len - c->woff);
	jute_write_raw(b, c->obuf.data, c->obuf.len);
	jute_write_int(b, (int32_t)c->watches.count);
	watch_owner_for_each_entry(&c->watches, e) {
		jute_write_int(b, e->kinds);
		jute_write_string(b, e->wp->path, (int32_t)e->wp->path_len);
	}
	jute_write_bool(b, c->auth.super);
	jute_write_int(b, (int32_t)(c->auth.count > 0 ? c->auth.count - 1 : 0));
	for (uint32_t i = 1; i < c->auth.count; i++) {
		jute_write_string(b, c->auth.ids[i].scheme, (int32_t)strlen(c->auth.ids[i].scheme));
		jute_write_string(b, c->auth.ids[i].id, (int32_t)strlen(c->auth.ids[i].id));
	}
}

int handover_save(struct request_path *p, struct handover_image *img, size_t max)
{
	struct jute_buf *b = &img->bytes;
	memset(img, 0, sizeof(*img));
	img->conns = calloc(p->clients->all.length + 1, sizeof(*img->conns));
	jute_write_raw(b, MAGIC, 8);
	jute_write_int(b, HANDOVER_VERSION);
	jute_write_int(b, 0);		/* records, patched */
	jute_write_long(b, p->state->last_zxid);
	jute_write_int(b, 0);		/* CRC, patched */
	jute_write_long(b, 0);		/* body length, patched */
	clients_for_each(p->clients, c) {
		if (!img->conns || !can_hand_over(c) || img->count >= max) {
			conn_close(c, LOG_INFO, img->count >= max
				   ? "not handed over: the fd store is full (FileDescriptorStoreMax)"
				   : "not handed over: busy at the end of the grace period, or TLS");
			continue;
		}
		size_t start = b->len;
		jute_write_int(b, 0);
		write_record(b, c);
		jute_patch_int(b, start, (int32_t)(b->len - start - 4));
		img->conns[img->count++] = (struct handover_fd){ .id = c->id, .fd = c->fd };
		/* Closing it here leaves its socket alone (when it is not
		 * stored after all, its last close still ends it). */
		c->handed_over = true;
	}
	if (!img->conns || b->error) {
		handover_image_free(img);
		return -ENOMEM;
	}
	size_t body = b->len - HEADER_BYTES;
	jute_patch_int(b, 12, (int32_t)img->count);
	jute_patch_int(b, 24, (int32_t)corral_crc32(0, b->data + HEADER_BYTES, body));
	store_be64(b->data + 28, body);
	return 0;
}

void handover_image_free(struct handover_image *img)
{
	jute_buf_free(&img->bytes);
	free(img->conns);
	memset(img, 0, sizeof(*img));
}

/* ---- taking them back ---- */

/* A record, found by its connection's id. */
struct record {
	uint64_t id;
	const uint8_t *p;
	int32_t len;
};

/* The image's records, or NULL with why (the image is refused whole). */
static struct record *read_image(const uint8_t *img, size_t len, int64_t last_zxid,
				 size_t *count, const char **why)
{
	*count = 0;
	if (!img)
		return (*why = "no state was written (the previous process was killed)"), NULL;
	if (len < HEADER_BYTES || memcmp(img, MAGIC, 8) != 0)
		return (*why = "the state is not corrald's hand-over image"), NULL;
	if ((int32_t)load_be32(img + 8) != HANDOVER_VERSION)
		return (*why = "the state's format version is not one this corrald reads"), NULL;
	uint32_t n = load_be32(img + 12);
	if ((int64_t)load_be64(img + 16) > last_zxid)
		return (*why = "the state is newer than the recovered data"), NULL;
	uint64_t body = load_be64(img + 28);
	if (body != len - HEADER_BYTES ||
	    corral_crc32(0, img + HEADER_BYTES, body) != load_be32(img + 24))
		return (*why = "the state is damaged (length or checksum)"), NULL;
	struct record *recs = calloc(n ? n : 1, sizeof(*recs));
	if (!recs)
		return (*why = "out of memory"), NULL;
	struct jute_reader r;
	jute_reader_init(&r, img + HEADER_BYTES, body);
	for (uint32_t i = 0; i < n && !r.error; i++) {
		jute_read_buffer(&r, &recs[i].p, &recs[i].len);
		if (!r.error && recs[i].len >= 8)
			recs[i].id = load_be64(recs[i].p);
		else
			r.error = -EBADMSG;
	}
	if (r.error) {
		free(recs);
		return (*why = "the state is damaged (a record)"), NULL;
	}
	*count = n;
	return recs;
}

/* The watches and identities of a record, into c. */
static int restore_watches_auth(struct request_path *p, struct conn *c, struct jute_reader *r)
{
	int32_t watches = jute_read_int(r);
	for (int32_t i = 0; i < watches && !r->error; i++) {
		int32_t kinds = jute_read_int(r), len;
		const char *path;
		jute_read_string(r, &path, &len);
		for (int k = 0; k < 5 && !r->error; k++)
			if ((kinds & (1 << k)) &&
			    watch_add(p->watches, &c->watches, path, (size_t)len, 1u << k) < 0)
				return -ENOMEM;
	}
	c->auth.super = jute_read_bool(r);
	int32_t ids = jute_read_int(r);
	for (int32_t i = 0; i < ids && !r->error; i++) {
		const char *scheme, *id;
		int32_t slen, ilen;
		jute_read_string(r, &scheme, &slen);
		jute_read_string(r, &id, &ilen);
		if (r->error || c->auth.count >= AUTH_IDS_MAX)
			return -EBADMSG;
		struct auth_id *a = &c->auth.ids[c->auth.count];
		a->scheme = strndup(scheme, (size_t)slen);
		a->id = strndup(id, (size_t)ilen);
		c->auth.count++;
		if (!a->scheme || !a->id)
			return -ENOMEM;
	}
	return r->error;
}

/* The receive buffer's bytes and the replies not sent. */
static int restore_buffers(struct conn *c, struct jute_reader *r)
{
	const uint8_t *in, *out;
	int32_t in_len, out_len;
	jute_read_buffer(r, &in, &in_len);
	jute_read_buffer(r, &out, &out_len);
	if (r->error || in_len < 0 || out_len < 0 ||
	    (uint32_t)in_len > 2 * (c->hub->cfg->max_frame_bytes + 4))
		return -EBADMSG;
	if ((uint32_t)in_len > c->rcap) {
		uint8_t *nb = realloc(c->rbuf, (size_t)in_len);
		if (!nb)
			return -ENOMEM;
		c->rbuf = nb;
		c->rcap = (uint32_t)in_len;
	}
	memcpy(c->rbuf, in, (size_t)in_len);
	c->rlen = (uint32_t)in_len;
	jute_write_raw(&c->obuf, out, (size_t)out_len);
	return c->obuf.error;
}

/* A connection from its record: 0, or why it cannot be served (it is then
 * closed by the caller). */
static const char *restore_conn(struct request_path *p, struct conn *c, const struct record *rec)
{
	struct jute_reader r;
	jute_reader_init(&r, rec->p + 8, (size_t)rec->len - 8);
	int32_t state = jute_read_int(&r);
	int64_t session_id = jute_read_long(&r);
	int32_t timeout_ms = jute_read_int(&r);
	c->last_zxid = jute_read_long(&r);
	c->last_cxid = jute_read_long(&r);
	c->mirror_read_only = jute_read_bool(&r);
	if (r.error || (state != REC_NEW && state != REC_ESTABLISHED))
		return "its record is damaged";
	if (state == REC_ESTABLISHED) {
		struct session *s = session_lookup(&p->state->sessions, session_id);
		if (!s || s->closing || s->conn)
			return "its session is gone";
		c->session = s;
		s->conn = c;
		s->timeout_ms = (uint32_t)timeout_ms;
		session_touch(s, c->hub->now_ms);
		c->touched = true;	/* in an ensemble, told to the leader (forward.h) */
		c->state = CONN_ESTABLISHED;
	}
	int e = restore_buffers(c, &r);
	if (e == 0)
		e = restore_watches_auth(p, c, &r);
	if (e == -ENOMEM)
		return "out of memory";
	return e ? "its record is damaged" : NULL;
}

/* One socket: served again with its record (1), closed as a connection
 * (0: conn_close() shut it down, the server's hook unstored it), or not
 * made into one (-1: the caller shuts it down). */
static int take_back(struct request_path *p, const struct handover_fd *h,
		     const struct record *rec)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	if (!rec || getpeername(h->fd, (struct sockaddr *)&peer, &plen) < 0)
		return -1;
	struct conn *c = clients_adopt(p->clients, h->fd, &peer, h->id);
	if (!c)
		return -1;
	c->stored = true;
	const char *why = restore_conn(p, c, rec);
	if (why) {
		conn_close(c, LOG_INFO, why);
		return 0;
	}
	log_event(LOG_DEBUG, { .session_id = c->session ? c->session->id : 0 },
		  "connection %llu from %s taken over from the previous process",
		  (unsigned long long)c->id, c->peer_text);
	conn_start(c);
	return 1;
}

void handover_restore(struct request_path *p, const uint8_t *image, size_t len,
		      const struct handover_fd *fds, size_t n,
		      void (*unstored)(void *ctx, uint64_t id), void *ctx,
		      struct handover_result *res)
{
	size_t count = 0;
	memset(res, 0, sizeof(*res));
	struct record *recs = n ? read_image(image, len, p->state->last_zxid, &count, &res->why)
				: NULL;
	for (size_t i = 0; i < n; i++) {
		const struct record *rec = NULL;
		for (size_t j = 0; j < count && !rec; j++)
			if (recs[j].id == fds[i].id)
				rec = &recs[j];
		int r = take_back(p, &fds[i], rec);
		if (r > 0) {
			res->adopted++;
			continue;
		}
		res->closed++;
		if (r == 0)
			continue;
		/* Its client sees the close and reconnects, as after any restart. */
		shutdown(fds[i].fd, SHUT_RDWR);
		close(fds[i].fd);
		if (unstored)
			unstored(ctx, fds[i].id);
	}
	free(recs);
}
