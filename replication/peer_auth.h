/* peer_auth: the handshake by which two servers of an ensemble prove to each
 * other that they hold the ensemble's shared secret (ensemble.secret_file),
 * before any Raft message on the connection is heard.
 *
 * The server that connects (the connector) and the one that accepts (the
 * acceptor) each pick a fresh random nonce; each proves itself with an
 * HMAC-SHA256, keyed by the secret, over a label naming its side, the
 * ensemble's tag, both server ids and both nonces:
 *
 *   connector -> acceptor  HELLO      "CRPH" 1 0 0 0  tag  connector  acceptor  nonce_c
 *   acceptor -> connector  CHALLENGE  "CRPC" 0 0 0 0  nonce_a  mac(acceptor)
 *   connector -> acceptor  RESPONSE   "CRPR" 0 0 0 0  mac(connector)
 *
 * then the connector's frames follow. A recorded handshake cannot be played
 * again (the other side's nonce is new each time), nor one side's proof be
 * sent back as the other's (the labels differ), nor a proof meant for one
 * server be used at another (both ids are in it). The magic of HELLO is far
 * above any frame's length, so an acceptor tells it from the first frame of
 * a server that does not authenticate (peer_auth_is_hello()).
 *
 * Pure: no sockets, no logging. Bytes in, bytes out (peer_transport.c moves
 * them); failures return a negative errno with a sentence in why. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEER_AUTH_NONCE_BYTES 32
#define PEER_AUTH_MAC_BYTES 32
#define PEER_AUTH_HELLO_BYTES 60
#define PEER_AUTH_CHALLENGE_BYTES 72
#define PEER_AUTH_RESPONSE_BYTES 40
#define PEER_AUTH_SECRET_MIN_BYTES 16
#define PEER_AUTH_SECRET_MAX_BYTES 4096

/* Whether a server of the ensemble authenticates its peer connections. */
enum peer_auth_mode {
	PEER_AUTH_OFF,		/* no secret: connections as before, a warning at start */
	PEER_AUTH_OPTIONAL,	/* secret: authenticates, and still hears servers that do not */
	PEER_AUTH_REQUIRED,	/* secret: every connection authenticates, or is refused */
};

/* One side's state of one handshake. */
struct peer_auth {
	uint32_t tag;
	uint64_t connector, acceptor;
	uint8_t nonce_c[PEER_AUTH_NONCE_BYTES];
	uint8_t nonce_a[PEER_AUTH_NONCE_BYTES];
};

/* Whether the first bytes a connection sent (len >= 4) are a HELLO. */
bool peer_auth_is_hello(const uint8_t *data, size_t len);

/* Connector: a fresh nonce, and the HELLO to send to server acceptor.
 * Returns 0 or -EIO (no randomness). */
int peer_auth_hello(struct peer_auth *a, uint32_t tag, uint64_t connector, uint64_t acceptor,
		    uint8_t out[PEER_AUTH_HELLO_BYTES]);

/* Acceptor: checks a HELLO (to this server, of this ensemble), picks its own
 * nonce and writes the CHALLENGE with its proof. Returns 0, -EBADMSG
 * (malformed, another ensemble, meant for another server) or -EIO. */
int peer_auth_answer_hello(struct peer_auth *a, uint32_t tag, uint64_t self,
			   const uint8_t *secret, size_t secret_len,
			   const uint8_t in[PEER_AUTH_HELLO_BYTES],
			   uint8_t out[PEER_AUTH_CHALLENGE_BYTES], char *why, size_t why_size);

/* Connector: checks the acceptor's proof in a CHALLENGE and writes the
 * RESPONSE with its own. Returns 0, -EBADMSG (malformed) or -EACCES (the
 * proof is wrong: the acceptor holds another secret). */
int peer_auth_answer_challenge(const struct peer_auth *a, const uint8_t *secret, size_t secret_len,
			       const uint8_t in[PEER_AUTH_CHALLENGE_BYTES],
			       uint8_t out[PEER_AUTH_RESPONSE_BYTES], char *why, size_t why_size);

/* Acceptor: checks the connector's proof in a RESPONSE. Returns 0, -EBADMSG
 * or -EACCES. */
int peer_auth_check_response(const struct peer_auth *a, const uint8_t *secret, size_t secret_len,
			     const uint8_t in[PEER_AUTH_RESPONSE_BYTES], char *why, size_t why_size);
