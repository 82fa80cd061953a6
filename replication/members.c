/* members: an ensemble's members in ZooKeeper's words. The members are
 * raft's configuration: each with an id, a role (voter = ZooKeeper's
 * participant, standby = observer) and an address that corral writes
 * "PEER;CLIENT[;ELECTIONPORT]". This file turns a configuration into
 * /zookeeper/config's text, and a reconfig's arguments into the next
 * configuration, refusing what ZooKeeper refuses; what a client may
 * change, and when, is the server's (server/membership.c). */
#include "members.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "sockaddr.h"

/* raft's address of a member, "PEER;CLIENT[;ELECTIONPORT]", in parts
 * (client "" when there is none; election "0" when not given, as for the
 * members that corral.yaml bootstrapped). */
void members_split_address(const char *address, char *peer, size_t psize, char *client,
			   size_t csize, char *election, size_t esize)
{
	size_t n = strcspn(address, ";");
	snprintf(peer, psize, "%.*s", (int)n, address);
	const char *rest = address[n] ? address + n + 1 : "";
	size_t m = strcspn(rest, ";");
	snprintf(client, csize, "%.*s", (int)m, rest);
	snprintf(election, esize, "%s", rest[m] && rest[m + 1] ? rest + m + 1 : "0");
}

int members_config_text(const struct raft_configuration *conf, uint64_t index, struct jute_buf *b)
{
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		char peer[128], client[128], election[16], line[400];
		if (s->role == RAFT_SPARE)
			continue;	/* joining, not yet a member (membership.c) */
		members_split_address(s->address, peer, sizeof(peer), client, sizeof(client), election,
				      sizeof(election));
		/* ZooKeeper has a quorum port and an election port; corral has
		 * one peer port. A member shows the election port it was added
		 * with, so what a client wrote reads back the same; one from
		 * corral.yaml shows 0 (never equal to the quorum port, which
		 * ZooKeeper's parser, in Curator's EnsembleTracker for one,
		 * refuses). */
		int n = snprintf(line, sizeof(line), "server.%llu=%s:%s:%s;%s\n",
				 (unsigned long long)s->id, peer, election,
				 s->role == RAFT_VOTER ? "participant" : "observer", client);
		jute_write_raw(b, line, (size_t)n);
	}
	char version[40];
	int n = snprintf(version, sizeof(version), "version=%llx", (unsigned long long)index);
	jute_write_raw(b, version, (size_t)n);
	return b->error ? -ENOMEM : 0;
}

/* A decimal port, 0..65535, the whole of text. */
static bool parse_port(const char *text, unsigned *ret_port)
{
	char *end;
	if (!text[0] || strspn(text, "0123456789") != strlen(text))
		return false;
	unsigned long v = strtoul(text, &end, 10);
	if (*end || v > 65535)
		return false;
	*ret_port = (unsigned)v;
	return true;
}

/* A server id as ZooKeeper reads one (Long.parseLong): ZMARSHALLINGERROR
 * when it is not a number. Whether it is one of corral's ids (1..255) is
 * the caller's to check: ZooKeeper takes any, so a well-formed reconfig is
 * checked for WRITE on /zookeeper/config first. */
static int32_t parse_id(const char *text, long long *ret_id)
{
	char *end;
	const char *digits = text[0] == '-' || text[0] == '+' ? text + 1 : text;
	if (!digits[0] || strspn(digits, "0123456789") != strlen(digits))
		return ZMARSHALLINGERROR;
	errno = 0;
	long long id = strtoll(text, &end, 10);
	if (errno || *end)
		return ZMARSHALLINGERROR;
	*ret_id = id;
	return ZOK;
}

static bool corral_id(long long id)
{
	return id >= 1 && id <= 255;
}

/* One joining server, "server.N=HOST:QUORUMPORT:ELECTIONPORT[:ROLE];[CLIENTHOST:]CLIENTPORT",
 * checked as ZooKeeper's reconfig checks it (PrepRequestProcessor and
 * QuorumServer): exactly one '='; the id after the last '.' before it (not
 * a number: ZMARSHALLINGERROR); one server address (no '|'), with both
 * ports, different from each other; a role of participant or observer; a
 * client port. Hosts are numeric addresses here (corral resolves no names).
 * Returns ZOK with raft's id, address ("PEER;CLIENT;ELECTIONPORT") and
 * role, or the error for the whole reconfig. */
static int32_t parse_server(const char *spec, size_t len, long long *ret_id, char *address,
			    size_t size, int *ret_role)
{
	char text[512];
	if (len >= sizeof(text))
		return ZBADARGUMENTS;
	memcpy(text, spec, len);
	text[len] = 0;
	char *eq = strchr(text, '=');
	if (!eq || strchr(eq + 1, '='))
		return ZBADARGUMENTS;
	*eq = 0;
	char *dot = strrchr(text, '.');
	long long id;
	int32_t err = parse_id(dot ? dot + 1 : text, &id);
	if (err)
		return err;
	char *server = eq + 1;
	char *semi = strchr(server, ';');
	if (!semi || strchr(semi + 1, ';') || strchr(server, '|'))
		return ZBADARGUMENTS;
	*semi = 0;
	char *client = semi + 1;

	/* HOST:PORT:PORT[:ROLE]; an IPv6 host is in brackets. */
	char *host_end = server[0] == '[' ? strchr(server, ']') : server;
	char *colon = host_end ? strchr(host_end, ':') : NULL;
	if (!colon || colon == server)
		return ZBADARGUMENTS;
	*colon = 0;
	char *fields[4] = { 0 };
	int count = 0;
	for (char *f = colon + 1; f; count++) {
		if (count == 3)
			return ZBADARGUMENTS;
		fields[count] = f;
		f = strchr(f, ':');
		if (f)
			*f++ = 0;
	}
	unsigned quorum_port, election_port;
	if (count < 2 || !parse_port(fields[0], &quorum_port) ||
	    !parse_port(fields[1], &election_port) || quorum_port == election_port)
		return ZBADARGUMENTS;
	*ret_role = RAFT_VOTER;
	if (count == 3) {
		if (strcasecmp(fields[2], "observer") == 0)
			*ret_role = RAFT_STANDBY;
		else if (strcasecmp(fields[2], "participant") != 0)
			return ZBADARGUMENTS;
	}
	char peer[160], host[160];
	uint16_t port;
	snprintf(peer, sizeof(peer), "%s:%u", server, quorum_port);
	if (sockaddr_split(peer, false, host, sizeof(host), &port) < 0)
		return ZBADARGUMENTS;

	/* "[host:]port": without a host, ZooKeeper means every interface. */
	char client_text[160];
	char *client_colon = strrchr(client, ':');
	unsigned client_port;
	if (!parse_port(client_colon ? client_colon + 1 : client, &client_port))
		return ZBADARGUMENTS;
	snprintf(client_text, sizeof(client_text), "%.*s:%u",
		 client_colon ? (int)(client_colon - client) : 7,
		 client_colon ? client : "0.0.0.0", client_port);
	if (sockaddr_split(client_text, false, host, sizeof(host), &port) < 0)
		return ZBADARGUMENTS;
	snprintf(address, size, "%s;%s;%u", peer, client_text, election_port);
	*ret_id = id;
	return ZOK;
}

/* Takes id out of conf, if it is there (the public API adds only: conf is
 * rebuilt). Returns 0 or -ENOMEM. */
static int conf_remove(struct raft_configuration *conf, raft_id id)
{
	struct raft_configuration next;
	raft_configuration_init(&next);
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		if (s->id == id)
			continue;
		if (raft_configuration_add(&next, s->id, s->address, s->role) != 0) {
			raft_configuration_close(&next);
			return -ENOMEM;
		}
	}
	raft_configuration_close(conf);
	*conf = next;
	return 0;
}

/* The next item of a list split at any of seps, trimmed of blanks as
 * ZooKeeper's StringUtils.split trims them; false at the end. *pos moves
 * past it. */
static bool next_item(const char *list, int32_t len, const char *seps, int32_t *pos,
		      int32_t *ret_start, int32_t *ret_len)
{
	while (*pos < len) {
		int32_t start = *pos, end = start;
		while (end < len && !strchr(seps, list[end]))
			end++;
		*pos = end + 1;
		while (start < end && (list[start] == ' ' || list[start] == '\t'))
			start++;
		while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t' ||
				       list[end - 1] == '\r'))
			end--;
		if (end > start) {
			*ret_start = start;
			*ret_len = end - start;
			return true;
		}
	}
	return false;
}

/* A member's addresses as "host:port" texts: quorum, client, election. */
static void member_addresses(const char *address, char out[3][160])
{
	char quorum[160], election[16];
	members_split_address(address, quorum, sizeof(quorum), out[1], 160, election, sizeof(election));
	const char *colon = strrchr(quorum, ':');
	snprintf(out[0], 160, "%s", quorum);
	snprintf(out[2], 160, "%.*s:%s", colon ? (int)(colon - quorum) : 0, quorum, election);
}

/* ZooKeeper refuses a joining server that has an address of another member
 * (QuorumServer.checkAddressDuplicate), leaving out the wildcard host and
 * port 0, which name no one address. */
static bool conflicts(const struct raft_configuration *conf, raft_id id, const char *address)
{
	char mine[3][160], other[3][160];
	member_addresses(address, mine);
	for (unsigned i = 0; i < conf->n; i++) {
		if (conf->servers[i].id == id)
			continue;
		member_addresses(conf->servers[i].address, other);
		for (int a = 0; a < 3; a++) {
			if (strncmp(mine[a], "0.0.0.0:", 8) == 0 || strncmp(mine[a], "[::]:", 5) == 0 ||
			    (strlen(mine[a]) > 2 && strcmp(mine[a] + strlen(mine[a]) - 2, ":0") == 0))
				continue;
			for (int b = 0; b < 3; b++)
				if (strcmp(mine[a], other[b]) == 0)
					return true;
		}
	}
	return false;
}

/* Applies a list of server specs (split at seps) to conf; a member given
 * again is replaced. An id that is no corral id (1..255) is left out and
 * *ret_bad_id set. Returns 0 (with *ret_err for a spec ZooKeeper refuses)
 * or -ENOMEM. */
static int add_servers(struct raft_configuration *conf, const char *list, int32_t len,
		       const char *seps, bool *ret_bad_id, int32_t *ret_err)
{
	int32_t pos = 0, start, n;
	while (next_item(list, len, seps, &pos, &start, &n)) {
		if (strncmp(list + start, "version=", 8) == 0)
			continue;	/* a member list copied from /zookeeper/config */
		long long id;
		int role;
		char address[400];
		int32_t err = parse_server(list + start, (size_t)n, &id, address, sizeof(address),
					   &role);
		if (err == ZOK && !corral_id(id)) {
			*ret_bad_id = true;
			continue;
		}
		if (err == ZOK && conflicts(conf, (raft_id)id, address))
			err = ZBADARGUMENTS;
		if (err) {
			*ret_err = err;
			return 0;
		}
		if (conf_remove(conf, (raft_id)id) < 0 ||
		    raft_configuration_add(conf, (raft_id)id, address, role) != 0)
			return -ENOMEM;
	}
	return 0;
}

/* Takes the listed ids out of conf; as in ZooKeeper, an id that is not a
 * member is no error. Returns 0 (with *ret_err for an id that is not a
 * number) or -ENOMEM. */
static int remove_servers(struct raft_configuration *conf, const char *list, int32_t len,
			  int32_t *ret_err)
{
	int32_t pos = 0, start, n;
	while (next_item(list, len, ",", &pos, &start, &n)) {
		char text[32];
		long long id;
		int32_t err = ZMARSHALLINGERROR;
		if (n < (int32_t)sizeof(text)) {
			memcpy(text, list + start, (size_t)n);
			text[n] = 0;
			err = parse_id(text, &id);
		}
		if (err) {
			*ret_err = err;
			return 0;
		}
		if (!corral_id(id))
			continue;	/* a number, but never a member's id */
		if (conf_remove(conf, (raft_id)id) < 0)
			return -ENOMEM;
	}
	return 0;
}

int members_change(const struct raft_configuration *cur, const struct reconfig_request *req,
		   struct raft_configuration *ret_next, struct members_verdict *ret)
{
	struct raft_configuration next;
	int r = 0;
	*ret = (struct members_verdict){ .err = ZOK };
	raft_configuration_init(&next);
	if (req->members_len >= 0) {
		r = add_servers(&next, req->members, req->members_len, ",\n", &ret->foreign_id,
				&ret->err);
	} else {
		for (unsigned i = 0; i < cur->n && r == 0; i++)
			if (raft_configuration_add(&next, cur->servers[i].id, cur->servers[i].address,
						   cur->servers[i].role) != 0)
				r = -ENOMEM;
		if (r == 0 && !ret->err && req->leaving_len > 0)
			r = remove_servers(&next, req->leaving, req->leaving_len, &ret->err);
		if (r == 0 && !ret->err && req->joining_len > 0)
			r = add_servers(&next, req->joining, req->joining_len, ",", &ret->foreign_id,
					&ret->err);
	}
	unsigned voters = 0;
	for (unsigned i = 0; i < next.n; i++)
		voters += next.servers[i].role == RAFT_VOTER;
	if (r == 0 && !ret->err && voters == 0 && !ret->foreign_id)
		ret->err = ZBADARGUMENTS;
	if (r < 0 || ret->err || ret->foreign_id) {
		raft_configuration_close(&next);
		return r;
	}
	*ret_next = next;
	return 0;
}
