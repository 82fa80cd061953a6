/* peer_auth: see peer_auth.h. The MACs are OpenSSL's HMAC-SHA256, compared
 * in constant time (CRYPTO_memcmp); the nonces come from RAND_bytes. */
#include "peer_auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "bytes.h"

#define VERSION 1

static const uint8_t hello_magic[4] = { 'C', 'R', 'P', 'H' };
static const uint8_t challenge_magic[4] = { 'C', 'R', 'P', 'C' };
static const uint8_t response_magic[4] = { 'C', 'R', 'P', 'R' };

/* The labels of the two proofs: one side's can never pass for the other's. */
static const char acceptor_label[] = "corral peer auth v1: acceptor";
static const char connector_label[] = "corral peer auth v1: connector";

bool peer_auth_is_hello(const uint8_t *data, size_t len)
{
	return len >= 4 && memcmp(data, hello_magic, 4) == 0;
}

/* HMAC-SHA256(secret, label NUL tag connector acceptor nonce_c nonce_a). */
static int proof(const struct peer_auth *a, const char *label, const uint8_t *secret,
		 size_t secret_len, uint8_t out[PEER_AUTH_MAC_BYTES])
{
	uint8_t msg[sizeof(connector_label) + 4 + 8 + 8 + 2 * PEER_AUTH_NONCE_BYTES];
	size_t n = strlen(label) + 1;
	unsigned int out_len = 0;

	memset(msg, 0, sizeof(msg));
	memcpy(msg, label, n);
	store_be32(msg + n, a->tag);
	store_be64(msg + n + 4, a->connector);
	store_be64(msg + n + 12, a->acceptor);
	memcpy(msg + n + 20, a->nonce_c, PEER_AUTH_NONCE_BYTES);
	memcpy(msg + n + 20 + PEER_AUTH_NONCE_BYTES, a->nonce_a, PEER_AUTH_NONCE_BYTES);
	n += 20 + 2 * PEER_AUTH_NONCE_BYTES;
	if (!HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, out, &out_len) ||
	    out_len != PEER_AUTH_MAC_BYTES)
		return -EIO;
	return 0;
}

int peer_auth_hello(struct peer_auth *a, uint32_t tag, uint64_t connector, uint64_t acceptor,
		    uint8_t out[PEER_AUTH_HELLO_BYTES])
{
	memset(a, 0, sizeof(*a));
	a->tag = tag;
	a->connector = connector;
	a->acceptor = acceptor;
	if (RAND_bytes(a->nonce_c, PEER_AUTH_NONCE_BYTES) != 1)
		return -EIO;
	memset(out, 0, PEER_AUTH_HELLO_BYTES);
	memcpy(out, hello_magic, 4);
	out[4] = VERSION;
	store_be32(out + 8, tag);
	store_be64(out + 12, connector);
	store_be64(out + 20, acceptor);
	memcpy(out + 28, a->nonce_c, PEER_AUTH_NONCE_BYTES);
	return 0;
}

int peer_auth_answer_hello(struct peer_auth *a, uint32_t tag, uint64_t self,
			   const uint8_t *secret, size_t secret_len,
			   const uint8_t in[PEER_AUTH_HELLO_BYTES],
			   uint8_t out[PEER_AUTH_CHALLENGE_BYTES], char *why, size_t why_size)
{
	if (!peer_auth_is_hello(in, PEER_AUTH_HELLO_BYTES) || in[4] != VERSION) {
		snprintf(why, why_size, "not an authentication this server speaks (version %u)", in[4]);
		return -EBADMSG;
	}
	if (load_be32(in + 8) != tag) {
		snprintf(why, why_size, "server %llu of another ensemble (tag %08x, ours %08x)",
			 (unsigned long long)load_be64(in + 12), (unsigned)load_be32(in + 8),
			 (unsigned)tag);
		return -EBADMSG;
	}
	if (load_be64(in + 20) != self) {
		snprintf(why, why_size, "server %llu meant to reach server %llu, not this one (%llu)",
			 (unsigned long long)load_be64(in + 12), (unsigned long long)load_be64(in + 20),
			 (unsigned long long)self);
		return -EBADMSG;
	}
	memset(a, 0, sizeof(*a));
	a->tag = tag;
	a->connector = load_be64(in + 12);
	a->acceptor = self;
	memcpy(a->nonce_c, in + 28, PEER_AUTH_NONCE_BYTES);
	if (RAND_bytes(a->nonce_a, PEER_AUTH_NONCE_BYTES) != 1) {
		snprintf(why, why_size, "no random bytes for a nonce");
		return -EIO;
	}
	memset(out, 0, PEER_AUTH_CHALLENGE_BYTES);
	memcpy(out, challenge_magic, 4);
	memcpy(out + 8, a->nonce_a, PEER_AUTH_NONCE_BYTES);
	if (proof(a, acceptor_label, secret, secret_len, out + 8 + PEER_AUTH_NONCE_BYTES) < 0) {
		snprintf(why, why_size, "HMAC-SHA256 failed");
		return -EIO;
	}
	return 0;
}

int peer_auth_answer_challenge(const struct peer_auth *a, const uint8_t *secret, size_t secret_len,
			       const uint8_t in[PEER_AUTH_CHALLENGE_BYTES],
			       uint8_t out[PEER_AUTH_RESPONSE_BYTES], char *why, size_t why_size)
{
	uint8_t expected[PEER_AUTH_MAC_BYTES];

	if (memcmp(in, challenge_magic, 4) != 0) {
		snprintf(why, why_size, "its answer is not an authentication challenge");
		return -EBADMSG;
	}
	struct peer_auth full = *a;
	memcpy(full.nonce_a, in + 8, PEER_AUTH_NONCE_BYTES);
	if (proof(&full, acceptor_label, secret, secret_len, expected) < 0) {
		snprintf(why, why_size, "HMAC-SHA256 failed");
		return -EIO;
	}
	if (CRYPTO_memcmp(expected, in + 8 + PEER_AUTH_NONCE_BYTES, PEER_AUTH_MAC_BYTES) != 0) {
		snprintf(why, why_size, "it does not prove the ensemble's secret (another "
			 "ensemble.secret_file there, or not a member)");
		return -EACCES;
	}
	memset(out, 0, PEER_AUTH_RESPONSE_BYTES);
	memcpy(out, response_magic, 4);
	if (proof(&full, connector_label, secret, secret_len, out + 8) < 0) {
		snprintf(why, why_size, "HMAC-SHA256 failed");
		return -EIO;
	}
	return 0;
}

int peer_auth_check_response(const struct peer_auth *a, const uint8_t *secret, size_t secret_len,
			     const uint8_t in[PEER_AUTH_RESPONSE_BYTES], char *why, size_t why_size)
{
	uint8_t expected[PEER_AUTH_MAC_BYTES];

	if (memcmp(in, response_magic, 4) != 0) {
		snprintf(why, why_size, "server %llu: its answer is not an authentication response",
			 (unsigned long long)a->connector);
		return -EBADMSG;
	}
	if (proof(a, connector_label, secret, secret_len, expected) < 0) {
		snprintf(why, why_size, "HMAC-SHA256 failed");
		return -EIO;
	}
	if (CRYPTO_memcmp(expected, in + 8, PEER_AUTH_MAC_BYTES) != 0) {
		snprintf(why, why_size, "server %llu does not prove the ensemble's secret (another "
			 "ensemble.secret_file there, or not a member)",
			 (unsigned long long)a->connector);
		return -EACCES;
	}
	return 0;
}
