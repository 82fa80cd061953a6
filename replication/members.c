/* members: an ensemble's members in ZooKeeper's words. The members are
 * raft's configuration: each with an id, a role (voter = ZooKeeper's
 * participant, standby = observer) and an address that corral writes
 * "PEER;CLIENT". This file turns a configuration into /zookeeper/config's
 * text and a reconfig's server specs into the next configuration; what a
 * client may change, and when, is the server's (server/membership.c). */
#include "members.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "sockaddr.h"

/* "PEER;CLIENT" -> the two halves ("" when there is no client part). */
void members_split_address(const char *address, char *peer, size_t psize, char *client,
			   size_t csize)
{
	size_t n = strcspn(address, ";");
	snprintf(peer, psize, "%.*s", (int)n, address);
	snprintf(client, csize, "%s", address[n] ? address + n + 1 : "");
}

int members_config_text(const struct raft_configuration *conf, uint64_t index, struct jute_buf *b)
{
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		char peer[128], client[128], line[400];
		members_split_address(s->address, peer, sizeof(peer), client, sizeof(client));
		/* ZooKeeper has a quorum port and an election port; corral has
		 * one peer port, and shows election port 0 (ZooKeeper's parser,
		 * in Curator's EnsembleTracker for one, refuses two equal ports). */
		int n = snprintf(line, sizeof(line), "server.%llu=%s:0:%s;%s\n",
				 (unsigned long long)s->id, peer,
				 s->role == RAFT_VOTER ? "participant" : "observer", client);
		jute_write_raw(b, line, (size_t)n);
	}
	char version[40];
	int n = snprintf(version, sizeof(version), "version=%llx", (unsigned long long)index);
	jute_write_raw(b, version, (size_t)n);
	return b->error ? -ENOMEM : 0;
}

/* "server.N=HOST:PORT[:PORT][:ROLE][;[CLIENTHOST:]CLIENTPORT]" into raft's
 * terms. Returns 0 or ZBADARGUMENTS. */
static int32_t parse_server(const char *spec, size_t len, raft_id *ret_id, char *address, size_t size,
			    int *ret_role)
{
	char text[512], *eq, *semi, *end;
	if (len >= sizeof(text))
		return ZBADARGUMENTS;
	memcpy(text, spec, len);
	text[len] = 0;
	if (strncmp(text, "server.", 7) != 0 || !(eq = strchr(text, '=')))
		return ZBADARGUMENTS;
	unsigned long id = strtoul(text + 7, &end, 10);
	if (end != eq || id < 1 || id > 255)
		return ZBADARGUMENTS;
	char *server = eq + 1;
	semi = strchr(server, ';');
	char *client = semi ? semi + 1 : NULL;
	if (semi)
		*semi = 0;
	/* host:port[:port][:role]; an IPv6 host is in brackets. */
	char *host_end = server[0] == '[' ? strchr(server, ']') : server;
	if (!host_end)
		return ZBADARGUMENTS;
	char *colon = strchr(host_end, ':');
	if (!colon)
		return ZBADARGUMENTS;
	char *port = colon + 1;
	char *rest = strchr(port, ':');
	*ret_role = RAFT_VOTER;
	if (rest) {
		*rest = 0;
		char *second = rest + 1;
		char *role = strchr(second, ':');
		if (role)
			*role++ = 0;
		else if (strspn(second, "0123456789") != strlen(second))
			role = second;	/* host:port:role */
		if (role && strcmp(role, "observer") == 0)
			*ret_role = RAFT_STANDBY;
		else if (role && strcmp(role, "participant") != 0)
			return ZBADARGUMENTS;
	}
	char peer[160];
	snprintf(peer, sizeof(peer), "%.*s:%s", (int)(colon - server), server, port);
	struct sockaddr_storage ss;
	socklen_t sl;
	if (sockaddr_parse(peer, false, &ss, &sl) < 0)
		return ZBADARGUMENTS;
	char client_text[160] = "";
	if (client) {
		/* "[host:]port": without a host, ZooKeeper means every interface. */
		if (!strchr(client, ':'))
			snprintf(client_text, sizeof(client_text), "0.0.0.0:%s", client);
		else
			snprintf(client_text, sizeof(client_text), "%s", client);
		if (sockaddr_parse(client_text, false, &ss, &sl) < 0)
			return ZBADARGUMENTS;
	}
	snprintf(address, size, "%s;%s", peer, client_text);
	*ret_id = id;
	return ZOK;
}

/* Takes id out of conf (the public API adds only: conf is rebuilt).
 * Returns 0 (with *ret_err ZBADARGUMENTS when id is not there) or -ENOMEM. */
static int conf_remove(struct raft_configuration *conf, raft_id id, int32_t *ret_err)
{
	struct raft_configuration next;
	bool found = false;
	raft_configuration_init(&next);
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		if (s->id == id) {
			found = true;
			continue;
		}
		if (raft_configuration_add(&next, s->id, s->address, s->role) != 0) {
			raft_configuration_close(&next);
			return -ENOMEM;
		}
	}
	if (!found) {
		raft_configuration_close(&next);
		*ret_err = ZBADARGUMENTS;
		return 0;
	}
	raft_configuration_close(conf);
	*conf = next;
	return 0;
}

/* Applies a comma-separated list of server specs to conf: 0 (with
 * *ret_err ZBADARGUMENTS for a spec that does not parse) or -ENOMEM. */
static int add_servers(struct raft_configuration *conf, const char *list, int32_t len,
		       int32_t *ret_err)
{
	for (int32_t start = 0; start < len; ) {
		int32_t end = start;
		while (end < len && list[end] != ',' && list[end] != '\n')
			end++;
		while (start < end && (list[start] == ' ' || list[start] == '\t'))
			start++;
		if (end > start && strncmp(list + start, "version=", 8) != 0) {
			raft_id id;
			int role;
			char address[400];
			int32_t err = parse_server(list + start, (size_t)(end - start), &id, address,
						   sizeof(address), &role);
			if (err) {
				*ret_err = err;
				return 0;
			}
			for (unsigned i = 0; i < conf->n; i++)
				if (conf->servers[i].id == id) {
					if (conf_remove(conf, id, ret_err) < 0)
						return -ENOMEM;
					break;
				}
			if (raft_configuration_add(conf, id, address, role) != 0)
				return -ENOMEM;
		}
		start = end + 1;
	}
	return 0;
}

static int remove_servers(struct raft_configuration *conf, const char *list, int32_t len,
			  int32_t *ret_err)
{
	for (int32_t start = 0; start < len; ) {
		int32_t end = start;
		while (end < len && list[end] != ',')
			end++;
		char idtext[16];
		int32_t n = end - start;
		if (n > 0 && n < (int32_t)sizeof(idtext)) {
			memcpy(idtext, list + start, (size_t)n);
			idtext[n] = 0;
			char *e;
			unsigned long id = strtoul(idtext, &e, 10);
			if (*e || id < 1 || id > 255) {
				*ret_err = ZBADARGUMENTS;
				return 0;
			}
			int r = conf_remove(conf, id, ret_err);
			if (r < 0 || *ret_err)
				return r;
		} else if (n) {
			*ret_err = ZBADARGUMENTS;
			return 0;
		}
		start = end + 1;
	}
	return 0;
}

int members_change(const struct raft_configuration *cur, const struct reconfig_request *change,
		   struct raft_configuration *ret_next, int32_t *ret_err)
{
	struct raft_configuration next;
	int r = 0;
	*ret_err = ZOK;
	raft_configuration_init(&next);
	if (change->members_len >= 0) {
		r = add_servers(&next, change->members, change->members_len, ret_err);
	} else {
		for (unsigned i = 0; i < cur->n && r == 0; i++)
			if (raft_configuration_add(&next, cur->servers[i].id, cur->servers[i].address,
						   cur->servers[i].role) != 0)
				r = -ENOMEM;
		if (r == 0 && !*ret_err && change->leaving_len > 0)
			r = remove_servers(&next, change->leaving, change->leaving_len, ret_err);
		if (r == 0 && !*ret_err && change->joining_len > 0)
			r = add_servers(&next, change->joining, change->joining_len, ret_err);
	}
	unsigned voters = 0;
	for (unsigned i = 0; i < next.n; i++)
		voters += next.servers[i].role == RAFT_VOTER;
	if (r == 0 && !*ret_err && voters == 0)
		*ret_err = ZBADARGUMENTS;
	if (r < 0 || *ret_err) {
		raft_configuration_close(&next);
		return r;
	}
	*ret_next = next;
	return 0;
}
