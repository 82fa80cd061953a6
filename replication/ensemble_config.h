/* ensemble_config: an ensemble as corral.yaml describes it (ensemble.*):
 * this server's id, the members a new data directory bootstraps with, the
 * cluster's name, this server's peer address and the election timeout.
 * Filled by the configuration (app/), read by the commit step (bootstrap,
 * identity, raft's timeouts) and the ensemble (its peers). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer_auth.h"
#include "peer_transport.h"
#include "sockaddr.h"

/* A server of the ensemble, as configured (ensemble.members). */
struct ensemble_member {
	uint32_t id;			/* 1..255, ZooKeeper's myid */
	struct listen_address client;	/* where its clients connect */
	struct listen_address peer;	/* where the other servers reach it */
	bool observer;			/* a non-voter: serves reads, forwards writes */
	size_t line;			/* in the file, for messages */
};

struct ensemble_config {
	uint32_t id;				/* ensemble.id (ZooKeeper's myid); 1 when standalone */
	char *cluster_name;			/* ensemble.cluster */
	uint32_t election_timeout_ms;		/* ensemble.election_timeout_ms */
	uint64_t entry_cache_bytes;		/* ensemble.entry_cache_bytes */
	struct listen_address peer_listen;	/* ensemble.peer_listen; host NULL when not given */
	struct ensemble_member *members;	/* ensemble.members: the initial membership */
	size_t member_count;
	/* ensemble.secret_file: the shared secret every peer connection proves
	 * (peer_auth.h), read at start; NULL: none, connections unauthenticated. */
	char *secret_file;			/* as configured, for messages */
	uint8_t *secret;
	size_t secret_len;
	enum peer_auth_mode peer_auth;		/* ensemble.peer_auth (OFF without a secret) */
	/* ensemble.tls: mutual TLS between members (peer_transport.h). */
	char *tls_certificate;			/* PEM chain naming this member's peer host */
	char *tls_private_key;			/* PEM, a secret's file (secret_locate) */
	char *tls_ca;				/* PEM: the ensemble's CA */
	uint32_t tls_mode_choice;		/* ensemble.tls.mode: 0 required, 1 optional */
	enum peer_tls_mode tls_mode;		/* from the two above (OFF without a certificate) */
};

/* This server's entry in members, or NULL (a server that joins later). */
static inline const struct ensemble_member *ensemble_config_self(const struct ensemble_config *e)
{
	for (size_t i = 0; i < e->member_count; i++)
		if (e->members[i].id == e->id)
			return &e->members[i];
	return NULL;
}
