/* tls: TLS on the client port (client.tls), with OpenSSL over memory
 * buffers (replication/tls_engine.h, which the peer port uses too): the
 * ring keeps doing every recv and send of the socket, and a connection
 * hands the engine the bytes it received and takes from it the bytes to
 * send (conn.c). This file owns the server's SSL_CTX (certificate, key,
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
#include "tls_engine.h"

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

/* The subject DN (RFC 2253, as Java writes it) of the client's verified
 * certificate, malloc'd: 0, -ENOENT (no certificate, or not verified) or
 * -ENOMEM. */
int tls_conn_peer_dn(const struct tls_conn *t, char **ret);
