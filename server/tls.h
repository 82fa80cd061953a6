/* tls: TLS on the client port (client.tls), with OpenSSL over memory
 * buffers: the ring keeps doing every recv and send of the socket, and a
 * connection hands this file the bytes it received and takes from it the
 * bytes to send (conn.c). It owns the server's SSL_CTX (certificate, key,
 * CA, client-certificate policy, protocol versions, ciphers), built again
 * on every reload so a new certificate reaches new connections while the
 * open ones keep theirs (an SSL holds a reference to the SSL_CTX it was
 * made from), and each connection's SSL and the identity its verified
 * certificate gives it: the subject's distinguished name as Java's
 * X500Principal.getName() writes it (RFC 2253), which is what ZooKeeper's
 * X509AuthenticationProvider calls the client.
 *
 * Kernel TLS: OpenSSL only hands the keys to the kernel through a socket
 * BIO, which would take the socket's I/O away from the ring; and the
 * kernel must offer the "tls" upper-layer protocol. tls_kernel_probe()
 * says whether it does; the records are OpenSSL's either way. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server_config.h"

#include <openssl/types.h>

struct ssl_ctx_st;
struct ssl_st;

/* A new SSL_CTX from cfg's client.tls keys. 0, or -EINVAL with the cause
 * (file and OpenSSL's reason) in why, or -ENOMEM. */
int tls_context_new(const struct server_config *cfg, struct ssl_ctx_st **ret, char *why,
		    size_t why_size);
void tls_context_free(struct ssl_ctx_st *ctx);

/* Whether the kernel offers kernel TLS (the "tls" TCP upper-layer
 * protocol): 1 yes, 0 no, with the reason in why. */
int tls_kernel_probe(char *why, size_t why_size);

/* One connection's TLS: an SSL between two memory buffers. */
struct tls_conn {
	struct ssl_st *ssl;
	bool handshake_done;
	bool shutdown_sent;
	bool failed;		/* a fatal error: OpenSSL must not be asked again */
};

int tls_conn_new(struct ssl_ctx_st *ctx, struct tls_conn **ret);
void tls_conn_free(struct tls_conn *t);
/* Bytes received from the socket. 0 or -ENOMEM. */
int tls_conn_feed(struct tls_conn *t, const uint8_t *data, size_t len);
/* Decrypts into buf (advancing the handshake first): 0 with *ret_len > 0
 * bytes, -EAGAIN when it needs more input, -ECONNRESET when the client
 * closed (close_notify), -EPROTO when the client broke the protocol (why
 * says how: a failed handshake, an unverified certificate, garbage). */
int tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap, size_t *ret_len, char *why,
		  size_t why_size);
/* Encrypts all of data into the output. 0, -EPROTO or -ENOMEM. */
int tls_conn_write(struct tls_conn *t, const uint8_t *data, size_t len);
/* Adds a close_notify alert to the output (once). */
void tls_conn_shutdown(struct tls_conn *t);
/* How many encrypted bytes wait to be sent, and taking up to cap of them. */
size_t tls_conn_pending(const struct tls_conn *t);
size_t tls_conn_take(struct tls_conn *t, uint8_t *buf, size_t cap);
/* The subject DN (RFC 2253, as Java writes it) of the client's verified
 * certificate, malloc'd: 0, -ENOENT (no certificate, or not verified) or
 * -ENOMEM. */
int tls_conn_peer_dn(const struct tls_conn *t, char **ret);
/* The protocol version and cipher, for log lines. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);
