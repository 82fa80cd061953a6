/* admin_commands: ZooKeeper's AdminServer commands (/commands/NAME), as
 * JSON with ZooKeeper 3.8's field names and types, from what the server
 * tells of itself (struct server_status), as the four-letter words. Each
 * command answers to its name and to its short name (srvr, mntr, ...).
 *
 * A command whose four-letter word is not in client.four_letter_words is
 * refused (403), so one list says what this server tells. Commands that
 * change state (stat_reset, connection_stat_reset, set_trace_mask,
 * snapshot, restore, ...) are refused (403): ZooKeeper 3.9 asks for
 * authentication there, and corral has none on this endpoint yet; the
 * four-letter words crst and srst remain for that. */
#pragma once

#include "jute.h"
#include "status.h"

/* Writes the answer to name into out; returns the HTTP status (200, 403,
 * 404). */
unsigned admin_command_run(const struct server_status *ss, const char *name, struct jute_buf *out);
/* /commands: a link to each command, as ZooKeeper's page. */
void admin_commands_index(struct jute_buf *out);
