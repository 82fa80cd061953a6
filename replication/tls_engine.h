/* tls_engine: OpenSSL over memory buffers, for every TLS corral speaks:
 * the client port (server/tls.c) and the peer port (peer_transport.c).
 * The ring keeps doing every recv and send of the socket; a connection
 * hands this file the bytes it received and takes from it the bytes to
 * send. It builds an SSL_CTX from files (certificate chain, key, CA,
 * verification policy, protocol floor, ciphers) and drives one SSL per
 * connection, in either role.
 *
 * It lives in replication/, the lowest layer that speaks TLS (the peers'
 * connections), so that server/ above uses the same code; base/ stays
 * free of libssl (every test and fuzz target links it). Pure of sockets
 * and logging: failures are a negative errno with a sentence in why. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "jute.h"

struct ssl_ctx_st;
struct ssl_st;

/* What an SSL_CTX is built from. Paths are read by OpenSSL here. */
struct tls_engine_files {
	const char *prefix;		/* "client.tls", "ensemble.tls": the keys, for messages */
	const char *certificate;	/* PEM chain */
	const char *private_key;	/* PEM */
	const char *ca;			/* PEM of the CAs the other side's certificate chains to, or NULL */
	int verify;			/* SSL_VERIFY_* */
	bool tls13_only;		/* TLS 1.3 at least (else 1.2) */
	bool both_roles;		/* connects too (the peers); else accepts only */
	const char *ciphers, *ciphersuites;	/* NULL: OpenSSL's defaults */
};

/* A new SSL_CTX. 0, or -EINVAL with the cause (key, file and OpenSSL's
 * reason) in why, or -ENOMEM. */
int tls_engine_context(const struct tls_engine_files *f, struct ssl_ctx_st **ret, char *why,
		       size_t why_size);

/* One connection's TLS: an SSL between two memory buffers. */
struct tls_conn {
	struct ssl_st *ssl;
	bool connector;			/* the TLS client */
	bool handshake_done;
	bool shutdown_sent;
	bool failed;			/* a fatal error: OpenSSL must not be asked again */
};

/* A connection's TLS; connector: the TLS client's side. 0 or -ENOMEM. */
int tls_conn_new(struct ssl_ctx_st *ctx, bool connector, struct tls_conn **ret);
void tls_conn_free(struct tls_conn *t);
/* Connector: the other side's certificate must name host (an IP address,
 * or a DNS name as hostname verification matches it), or the handshake
 * fails. 0 or -ENOMEM. */
int tls_conn_expect_name(struct tls_conn *t, const char *host);
/* Whether the other side's verified certificate names host (IP address or
 * DNS name, its subjectAltName). */
bool tls_conn_peer_names(const struct tls_conn *t, const char *host);
/* Bytes received from the socket. 0 or -ENOMEM. */
int tls_conn_feed(struct tls_conn *t, const uint8_t *data, size_t len);
/* Advances the handshake: 0 done, -EAGAIN more input needed (output may
 * be pending), -EPROTO with why. */
int tls_conn_handshake(struct tls_conn *t, char *why, size_t why_size);
/* Decrypts into buf (advancing the handshake first): 0 with *ret_len > 0
 * bytes, -EAGAIN when it needs more input, -ECONNRESET when the other side
 * closed (close_notify), -EPROTO when it broke the protocol (why says how:
 * a failed handshake, an unverified certificate, garbage). */
int tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap, size_t *ret_len, char *why,
		  size_t why_size);
/* Encrypts all of data into the output. 0, -EPROTO or -ENOMEM. */
int tls_conn_write(struct tls_conn *t, const uint8_t *data, size_t len);
/* Adds a close_notify alert to the output (once). */
void tls_conn_shutdown(struct tls_conn *t);
/* How many encrypted bytes wait to be sent, and taking up to cap of them. */
size_t tls_conn_pending(const struct tls_conn *t);
size_t tls_conn_take(struct tls_conn *t, uint8_t *buf, size_t cap);
/* All the encrypted bytes waiting, in place of b's contents. 0 or -ENOMEM. */
int tls_conn_take_all(struct tls_conn *t, struct jute_buf *b);
/* The protocol version and cipher, for log lines. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);
