/* client: corralctl's side of the ZooKeeper client protocol, over one
 * short-lived TCP connection: resolving and connecting with a deadline,
 * four-letter words, a session (ConnectRequest, requests answered in order,
 * closeSession). Plain poll(2) on a non-blocking socket; every wait for the
 * server is bounded by the timeout.
 *
 * A function that fails because the server cannot be reached or talked to
 * returns -1 and leaves a one-line reason in c->error; an answer the server
 * gave (an error code, a refused word) is not such a failure. The encoding
 * is the server's own (daemon/jute.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jute.h"

#define ZKC_DEFAULT_PORT "2181"
/* Largest reply frame accepted: corrald answers with at most
 * client.max_output_bytes (16 MiB by default) in flight per connection. */
#define ZKC_MAX_FRAME_BYTES (64u << 20)

struct zk_client {
	int fd;				/* -1 when not connected */
	int timeout_ms;			/* the longest wait for each step */
	int32_t next_xid;
	int64_t session_id;		/* 0: no session */
	int32_t session_timeout_ms;	/* as negotiated */
	uint8_t *reply;			/* the last reply frame (owned) */
	size_t reply_len;
	char error[512];
};

/* Splits "HOST:PORT", "[IPV6]:PORT", "HOST" or a bare IPv6 address into host
 * and port (ZKC_DEFAULT_PORT when none is given). Returns 0, or -1 with a
 * reason in why. */
int zkc_split_server(const char *text, char *host, size_t host_size, char *port,
		     size_t port_size, char *why, size_t why_size);

void zkc_init(struct zk_client *c, int timeout_ms);
/* Resolves host and connects to its first address that accepts, all within
 * the timeout. */
int zkc_connect(struct zk_client *c, const char *host, const char *port);
/* On a fresh connection: sends the word and reads the answer until the
 * server closes (at most 16 MiB). *ret_text is NUL-terminated; free it. */
int zkc_four_letter(struct zk_client *c, const char *word, char **ret_text, size_t *ret_len);
/* zkc_connect, zkc_four_letter and zkc_close: one word on a connection of
 * its own. */
int zkc_word(struct zk_client *c, const char *host, const char *port, const char *word,
	     char **ret_text, size_t *ret_len);
/* ConnectRequest for a new session; -1 also when the server refuses it. */
int zkc_session_open(struct zk_client *c, int32_t timeout_ms);
/* Sends {xid, op} + body (NULL: no body) and waits for its reply. Returns 0
 * with the reply's error code in *ret_err and, when that is 0, the body in
 * *ret_body (it points into c->reply: valid until the next call). */
int zkc_call(struct zk_client *c, int32_t op, const struct jute_buf *body, int32_t *ret_err,
	     struct jute_reader *ret_body);
/* Reads raw bytes (after a reply that begins a stream, as a backup's):
 * up to len, fewer only when the server closed the connection. Returns the
 * count (0: closed), or -1. Each call waits at most the timeout. */
ssize_t zkc_recv(struct zk_client *c, void *data, size_t len);
/* addauth: an AuthPacket {type 0, scheme, auth} with xid -4. Returns 0 with
 * the server's answer in *ret_err (AUTHFAILED: the server then closes the
 * connection), or -1. */
int zkc_auth(struct zk_client *c, const char *scheme, const char *auth, int32_t *ret_err);
/* Closes the session if there is one (closeSession, waiting for its reply),
 * then the connection; frees what c holds. Failures are ignored: the
 * server expires a session that was not closed. */
void zkc_close(struct zk_client *c);

/* The answer to a four-letter word as "key: value" (srvr) or "key\tvalue"
 * (mntr) lines, parsed in place. */
struct zkc_kv {
	char *text;		/* owned */
	struct { const char *key, *value; } *v;
	size_t n;
	bool answered;		/* the word ran (was not refused by the whitelist) */
};

#define ZKC_NOT_IN_WHITELIST "is not executed because it is not in the whitelist"

/* Takes text (from zkc_four_letter) over: zkc_kv_free frees it, also after
 * a failure (-1: out of memory). */
int zkc_kv_parse(struct zkc_kv *l, char *text, const char *sep);
/* The value of key; NULL when there is none or the word was refused. */
const char *zkc_kv_get(const struct zkc_kv *l, const char *key);
void zkc_kv_free(struct zkc_kv *l);
