/* members: an ensemble's members (raft's configuration) in ZooKeeper's
 * words: /zookeeper/config's text, and the next configuration a reconfig
 * asks for. See members.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "jute.h"
#include "records.h"

/* raft's address of a member, "PEER;CLIENT[;ELECTIONPORT]", in parts
 * (client "" when there is none; election "0" when not given, as for the
 * members that corral.yaml bootstrapped). */
void members_split_address(const char *address, char *peer, size_t psize, char *client,
			   size_t csize, char *election, size_t esize);
/* /zookeeper/config's data for conf, committed at index: one line per
 * member, "server.N=PEERHOST:PEERPORT:ELECTIONPORT:participant|observer;CLIENTHOST:CLIENTPORT",
 * then "version=HEX". Returns 0 or -ENOMEM. */
int members_config_text(const struct raft_configuration *conf, uint64_t index, struct jute_buf *b);

/* What members_change() found wrong with a reconfig's arguments. */
struct members_verdict {
	int32_t err;		/* ZBADARGUMENTS or ZMARSHALLINGERROR, as ZooKeeper answers */
	bool foreign_id;	/* a joining id outside corral's 1..255 (refused after the
				 * permission check, where ZooKeeper would take it) */
};

/* The configuration a reconfig asks for (joining and leaving servers, or
 * the whole member list), from cur: 0 with *ret_next (the caller's to
 * close) when *ret says nothing is wrong, or 0 with the verdict in *ret;
 * or -ENOMEM. */
int members_change(const struct raft_configuration *cur, const struct reconfig_request *req,
		   struct raft_configuration *ret_next, struct members_verdict *ret);
