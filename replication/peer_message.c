/* peer_message: see peer_message.h. */
#include "peer_message.h"
#include "crc32.h"
#include "raft_conf.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Per-entry header in AppendEntries: term, type, length. */
#define ENTRY_HEADER_BYTES (8 + 1 + 4)

/* ---- encoding ---- */

static void put_u8(struct jute_buf *b, uint8_t v)
{
	jute_write_raw(b, &v, 1);
}

static void put_u16(struct jute_buf *b, uint16_t v)
{
	v = htobe16(v);
	jute_write_raw(b, &v, 2);
}

static void put_u32(struct jute_buf *b, uint32_t v)
{
	jute_write_int(b, (int32_t)v);
}

static void put_u64(struct jute_buf *b, uint64_t v)
{
	jute_write_long(b, (int64_t)v);
}

static int encode_body(const struct raft_message *m, struct jute_buf *b)
{
	switch (m->type) {
	case RAFT_REQUEST_VOTE: {
		const struct raft_request_vote *p = &m->request_vote;
		put_u8(b, p->version);
		put_u64(b, p->term);
		put_u64(b, p->candidate_id);
		put_u64(b, p->last_log_index);
		put_u64(b, p->last_log_term);
		put_u8(b, p->disrupt_leader);
		put_u8(b, p->pre_vote);
		return 0;
	}
	case RAFT_REQUEST_VOTE_RESULT: {
		const struct raft_request_vote_result *p = &m->request_vote_result;
		put_u8(b, p->version);
		put_u64(b, p->term);
		put_u8(b, p->vote_granted);
		put_u8(b, p->pre_vote);
		put_u16(b, p->features);
		put_u16(b, p->capacity);
		return 0;
	}
	case RAFT_APPEND_ENTRIES: {
		const struct raft_append_entries *p = &m->append_entries;
		put_u8(b, p->version);
		put_u64(b, p->term);
		put_u64(b, p->prev_log_index);
		put_u64(b, p->prev_log_term);
		put_u64(b, p->leader_commit);
		put_u32(b, p->n_entries);
		/* headers first, then the data in one run: decoded into one batch */
		for (unsigned i = 0; i < p->n_entries; i++) {
			const struct raft_entry *e = &p->entries[i];
			if (e->buf.len > UINT32_MAX)
				return -EINVAL;
			put_u64(b, e->term);
			put_u8(b, (uint8_t)e->type);
			put_u32(b, (uint32_t)e->buf.len);
		}
		for (unsigned i = 0; i < p->n_entries; i++)
			jute_write_raw(b, p->entries[i].buf.base, p->entries[i].buf.len);
		return 0;
	}
	case RAFT_APPEND_ENTRIES_RESULT: {
		const struct raft_append_entries_result *p = &m->append_entries_result;
		put_u8(b, p->version);
		put_u64(b, p->term);
		put_u64(b, p->rejected);
		put_u64(b, p->last_log_index);
		put_u16(b, p->features);
		put_u16(b, p->capacity);
		return 0;
	}
	case RAFT_INSTALL_SNAPSHOT: {
		const struct raft_install_snapshot *p = &m->install_snapshot;
		struct raft_buffer conf = { 0 };
		if (raft_configuration_encode(&p->conf, &conf) != 0)
			return -ENOMEM;
		put_u8(b, p->version);
		put_u64(b, p->term);
		put_u64(b, p->last_index);
		put_u64(b, p->last_term);
		put_u64(b, p->conf_index);
		put_u32(b, (uint32_t)conf.len);
		jute_write_raw(b, conf.base, conf.len);
		raft_free(conf.base);
		put_u64(b, p->data.len);
		jute_write_raw(b, p->data.base, p->data.len);
		return 0;
	}
	case RAFT_TIMEOUT_NOW: {
		const struct raft_timeout_now *p = &m->timeout_now;
		put_u8(b, p->version);
		put_u64(b, p->term);
		put_u64(b, p->last_log_index);
		put_u64(b, p->last_log_term);
		return 0;
	}
	}
	return -EINVAL;
}

static size_t frame_begin(struct jute_buf *out, uint16_t type, raft_id from)
{
	size_t start = out->len;
	put_u32(out, 0);		/* length, patched by frame_end */
	put_u32(out, 0);		/* crc32, patched by frame_end */
	put_u16(out, PEER_PROTOCOL_VERSION);
	put_u16(out, type);
	put_u32(out, 0);
	put_u64(out, from);
	return start;
}

static int frame_end(struct jute_buf *out, size_t start, int r)
{
	if (r == 0 && out->error)
		r = out->error;
	if (r < 0) {
		if (out->len > start)
			out->len = start;	/* nothing half-written stays */
		return r;
	}
	size_t after_length = out->len - start - 4;
	if (after_length > UINT32_MAX) {
		out->len = start;
		return -EMSGSIZE;
	}
	uint32_t crc = corral_crc32(0, out->data + start + 8, out->len - start - 8);
	jute_patch_int(out, start, (int32_t)after_length);
	jute_patch_int(out, start + 4, (int32_t)crc);
	return 0;
}

int peer_message_encode(const struct raft_message *m, raft_id from, struct jute_buf *out)
{
	if ((unsigned)m->type >= (unsigned)PEER_FRAME_CORRAL)
		return -EINVAL;
	size_t start = frame_begin(out, (uint16_t)m->type, from);
	return frame_end(out, start, encode_body(m, out));
}

int peer_frame_encode(uint16_t type, raft_id from, const void *body, size_t len,
		      struct jute_buf *out)
{
	size_t start = frame_begin(out, type, from);
	jute_write_raw(out, body, len);
	return frame_end(out, start, 0);
}

/* ---- decoding ---- */

struct in {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static const uint8_t *take(struct in *i, size_t n)
{
	if (i->bad || n > i->len - i->pos) {
		i->bad = true;
		return NULL;
	}
	const uint8_t *p = i->p + i->pos;
	i->pos += n;
	return p;
}

static uint8_t get_u8(struct in *i)
{
	const uint8_t *p = take(i, 1);
	return p ? p[0] : 0;
}

static bool get_bool(struct in *i)
{
	uint8_t v = get_u8(i);
	if (v > 1)
		i->bad = true;
	return v == 1;
}

static uint16_t get_u16(struct in *i)
{
	const uint8_t *p = take(i, 2);
	uint16_t v = 0;
	if (p)
		memcpy(&v, p, 2);
	return be16toh(v);
}

static uint32_t get_u32(struct in *i)
{
	const uint8_t *p = take(i, 4);
	uint32_t v = 0;
	if (p)
		memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t get_u64(struct in *i)
{
	const uint8_t *p = take(i, 8);
	uint64_t v = 0;
	if (p)
		memcpy(&v, p, 8);
	return be64toh(v);
}

static int decode_append_entries(struct in *i, struct raft_append_entries *p, char *why,
				 size_t why_size)
{
	p->version = get_u8(i);
	p->term = get_u64(i);
	p->prev_log_index = get_u64(i);
	p->prev_log_term = get_u64(i);
	p->leader_commit = get_u64(i);
	uint32_t n = get_u32(i);
	if (i->bad || n > (i->len - i->pos) / ENTRY_HEADER_BYTES) {
		snprintf(why, why_size, "AppendEntries: %u entries do not fit in the frame", n);
		return -EBADMSG;
	}
	const uint8_t *headers = take(i, (size_t)n * ENTRY_HEADER_BYTES);
	uint64_t total = 0;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t len;
		memcpy(&len, headers + k * ENTRY_HEADER_BYTES + 9, 4);
		total += be32toh(len);
	}
	if (total != i->len - i->pos) {
		snprintf(why, why_size, "AppendEntries: the entries announce %llu bytes of data, "
			 "the frame has %zu", (unsigned long long)total, i->len - i->pos);
		return -EBADMSG;
	}
	p->n_entries = n;
	p->entries = NULL;
	if (n == 0)
		return 0;
	struct raft_entry *entries = raft_malloc(n * sizeof(*entries));
	uint8_t *batch = total ? raft_malloc(total) : NULL;
	if (!entries || (total && !batch)) {
		raft_free(entries);
		raft_free(batch);
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	if (total)
		memcpy(batch, take(i, total), total);
	size_t off = 0;
	for (uint32_t k = 0; k < n; k++) {
		const uint8_t *h = headers + k * ENTRY_HEADER_BYTES;
		uint64_t term;
		uint32_t len;
		memcpy(&term, h, 8);
		memcpy(&len, h + 9, 4);
		entries[k].term = be64toh(term);
		entries[k].type = (enum raft_entry_type)h[8];
		entries[k].buf.len = be32toh(len);
		entries[k].buf.base = batch ? batch + off : NULL;
		entries[k].batch = batch;
		off += entries[k].buf.len;
		if (h[8] < RAFT_COMMAND || h[8] > RAFT_CHANGE) {
			snprintf(why, why_size, "AppendEntries: entry %u has unknown type %u", k, h[8]);
			raft_free(entries);
			raft_free(batch);
			return -EBADMSG;
		}
		/* libraft decodes a configuration entry as it appends it. */
		if (h[8] == RAFT_CHANGE &&
		    !raft_conf_valid(entries[k].buf.base, entries[k].buf.len)) {
			snprintf(why, why_size, "AppendEntries: entry %u holds no valid configuration", k);
			raft_free(entries);
			raft_free(batch);
			return -EBADMSG;
		}
	}
	p->entries = entries;
	return 0;
}

static int decode_install_snapshot(struct in *i, struct raft_install_snapshot *p, char *why,
				   size_t why_size)
{
	p->version = get_u8(i);
	p->term = get_u64(i);
	p->last_index = get_u64(i);
	p->last_term = get_u64(i);
	p->conf_index = get_u64(i);
	uint32_t conf_len = get_u32(i);
	const uint8_t *conf = take(i, conf_len);
	uint64_t data_len = get_u64(i);
	if (i->bad || data_len != i->len - i->pos) {
		snprintf(why, why_size, "InstallSnapshot: lengths do not match the frame");
		return -EBADMSG;
	}
	int r = raft_conf_decode(conf, conf_len, &p->conf);
	if (r < 0) {
		snprintf(why, why_size, "InstallSnapshot: %s", r == -ENOMEM ? "out of memory"
			 : "the configuration does not decode");
		return r;
	}
	p->data.len = (size_t)data_len;
	p->data.base = NULL;
	if (data_len) {
		p->data.base = raft_malloc((size_t)data_len);
		if (!p->data.base) {
			raft_configuration_close(&p->conf);
			snprintf(why, why_size, "out of memory");
			return -ENOMEM;
		}
		memcpy(p->data.base, take(i, (size_t)data_len), (size_t)data_len);
	}
	return 0;
}

ssize_t peer_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, struct peer_frame *ret,
			  char *why, size_t why_size)
{
	why[0] = 0;
	if (len < 4)
		return 0;
	uint32_t after_length;
	memcpy(&after_length, buf, 4);
	after_length = be32toh(after_length);
	size_t frame = (size_t)after_length + 4;
	if (frame > max_frame) {
		snprintf(why, why_size, "a frame of %zu bytes, more than the %zu allowed", frame,
			 max_frame);
		return -EMSGSIZE;
	}
	if (frame < PEER_HEADER_BYTES) {
		snprintf(why, why_size, "a frame of %zu bytes, shorter than its header", frame);
		return -EBADMSG;
	}
	if (len < frame)
		return 0;
	uint32_t crc;
	memcpy(&crc, buf + 4, 4);
	if (be32toh(crc) != corral_crc32(0, buf + 8, frame - 8)) {
		snprintf(why, why_size, "checksum mismatch");
		return -EBADMSG;
	}
	struct in i = { .p = buf, .len = frame, .pos = 8 };
	uint16_t version = get_u16(&i);
	ret->type = get_u16(&i);
	uint32_t reserved = get_u32(&i);
	ret->from = get_u64(&i);
	if (version != PEER_PROTOCOL_VERSION) {
		snprintf(why, why_size, "protocol version %u (this server speaks %u)", version,
			 PEER_PROTOCOL_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (reserved != 0) {
		snprintf(why, why_size, "reserved header bits set");
		return -EBADMSG;
	}
	ret->body = buf + PEER_HEADER_BYTES;
	ret->body_len = frame - PEER_HEADER_BYTES;
	return (ssize_t)frame;
}

ssize_t peer_message_decode(const uint8_t *buf, size_t len, size_t max_frame,
			    struct raft_message *ret, char *why, size_t why_size)
{
	struct peer_frame f;
	ssize_t n = peer_frame_decode(buf, len, max_frame, &f, why, why_size);
	if (n <= 0)
		return n;
	int r = peer_message_from_frame(&f, ret, why, why_size);
	return r < 0 ? r : n;
}

int peer_message_from_frame(const struct peer_frame *f, struct raft_message *ret, char *why,
			    size_t why_size)
{
	struct in i = { .p = f->body, .len = f->body_len, .pos = 0 };
	uint16_t type = f->type;
	memset(ret, 0, sizeof(*ret));
	ret->type = (enum raft_message_type)type;
	ret->server_id = f->from;
	int r = 0;
	switch (type) {
	case RAFT_REQUEST_VOTE: {
		struct raft_request_vote *p = &ret->request_vote;
		p->version = get_u8(&i);
		p->term = get_u64(&i);
		p->candidate_id = get_u64(&i);
		p->last_log_index = get_u64(&i);
		p->last_log_term = get_u64(&i);
		p->disrupt_leader = get_bool(&i);
		p->pre_vote = get_bool(&i);
		break;
	}
	case RAFT_REQUEST_VOTE_RESULT: {
		struct raft_request_vote_result *p = &ret->request_vote_result;
		p->version = get_u8(&i);
		p->term = get_u64(&i);
		p->vote_granted = get_bool(&i);
		p->pre_vote = get_bool(&i);
		p->features = get_u16(&i);
		p->capacity = get_u16(&i);
		break;
	}
	case RAFT_APPEND_ENTRIES:
		r = decode_append_entries(&i, &ret->append_entries, why, why_size);
		break;
	case RAFT_APPEND_ENTRIES_RESULT: {
		struct raft_append_entries_result *p = &ret->append_entries_result;
		p->version = get_u8(&i);
		p->term = get_u64(&i);
		p->rejected = get_u64(&i);
		p->last_log_index = get_u64(&i);
		p->features = get_u16(&i);
		p->capacity = get_u16(&i);
		break;
	}
	case RAFT_INSTALL_SNAPSHOT:
		r = decode_install_snapshot(&i, &ret->install_snapshot, why, why_size);
		break;
	case RAFT_TIMEOUT_NOW: {
		struct raft_timeout_now *p = &ret->timeout_now;
		p->version = get_u8(&i);
		p->term = get_u64(&i);
		p->last_log_index = get_u64(&i);
		p->last_log_term = get_u64(&i);
		break;
	}
	default:
		snprintf(why, why_size, "unknown message type %u", type);
		return -EBADMSG;
	}
	if (r < 0)
		return r;
	if (i.bad || i.pos != i.len) {
		peer_message_release(ret);
		snprintf(why, why_size, "message type %u: %s", type,
			 i.bad ? "the body is shorter than its fields" : "bytes left after the body");
		return -EBADMSG;
	}
	return 0;
}

void peer_message_release(struct raft_message *m)
{
	switch (m->type) {
	case RAFT_APPEND_ENTRIES:
		if (m->append_entries.n_entries)
			raft_free(m->append_entries.entries[0].batch);
		raft_free(m->append_entries.entries);
		m->append_entries.entries = NULL;
		m->append_entries.n_entries = 0;
		break;
	case RAFT_INSTALL_SNAPSHOT:
		raft_configuration_close(&m->install_snapshot.conf);
		raft_free(m->install_snapshot.data.base);
		m->install_snapshot.data.base = NULL;
		break;
	default:
		break;
	}
}
