/* admin_commands: ZooKeeper's AdminServer commands (/commands/NAME), as
 * JSON with ZooKeeper 3.8's field names and types, from what the server
 * tells of itself (struct server_status), as the four-letter words. Each
 * command answers to its name and to its short name (srvr, mntr, ...).
 *
 * A command whose four-letter word is not in client.four_letter_words is
 * refused (403), so one list says what this server tells. The commands
 * that change state need authentication, as in ZooKeeper 3.9: the request's
 * "Authorization: SCHEME CREDENTIALS" header (e.g. "digest user:password",
 * the auth packet's schemes, auth.super_digest making super) and the
 * client's ip identity must be allowed ALL on "/" by its ACL (ZooKeeper
 * 3.9's AuthRequest(Perms.ALL, "/")); else 403. stat_reset and
 * connection_stat_reset run so; snapshot, restore and set_trace_mask are
 * not implemented (501). An answer is at most client.max_output_bytes (as
 * a client's unread replies): a larger one (the watches of a million
 * paths) is not built, and refused (503). */
#pragma once

#include <sys/socket.h>

#include "jute.h"
#include "status.h"

/* Who asks: the Authorization header (NULL when none) and the address. */
struct admin_caller {
	const char *authorization;
	struct sockaddr_storage peer;
};

/* Writes the answer to name into out; returns the HTTP status (200, 403,
 * 404, 501). */
unsigned admin_command_run(const struct server_status *ss, const char *name,
			   const struct admin_caller *caller, struct jute_buf *out);
/* /commands: a link to each command, as ZooKeeper's page. */
void admin_commands_index(struct jute_buf *out);
