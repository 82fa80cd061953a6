/* members: an ensemble's members (raft's configuration) in ZooKeeper's
 * words: /zookeeper/config's text, and the next configuration a reconfig
 * asks for. See members.c. */
#pragma once

#include <stdint.h>

#include <raft.h>

#include "jute.h"
#include "records.h"

/* "PEER;CLIENT" -> the two halves ("" when there is no client part). */
void members_split_address(const char *address, char *peer, size_t psize, char *client,
			   size_t csize);
/* /zookeeper/config's data for conf, committed at index: one line per
 * member, "server.N=PEERHOST:PEERPORT:0:participant|observer;CLIENTHOST:CLIENTPORT",
 * and "version=HEX". Returns 0 or -ENOMEM. */
int members_config_text(const struct raft_configuration *conf, uint64_t index, struct jute_buf *b);
/* The configuration a reconfig asks for (joining and leaving servers, or
 * the whole member list), from cur: 0 with *ret_next (the
 * caller's to close), or 0 with *ret_err (ZBADARGUMENTS: a spec that does
 * not parse, a server to remove that is not there, no voter left); or
 * -ENOMEM. */
int members_change(const struct raft_configuration *cur, const struct reconfig_request *change,
		   struct raft_configuration *ret_next, int32_t *ret_err);
