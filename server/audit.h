/* audit: the audit log, as ZooKeeper's (zookeeper.audit.enable): for every
 * write a client asks (create, delete, setData, setAcl, multi, reconfig), who asked
 * it (session, client address, authenticated identities) and what came of
 * it (operation, path, node type and ACL where they apply, success or
 * failure), one record per write on the server that holds the client's
 * connection, when the client is answered (as ZooKeeper's
 * FinalRequestProcessor does it). A multi that succeeded gives a record
 * per op; one that failed, one multiOperation record.
 *
 * A record is a log entry at info (a failure: notice) with MESSAGE_ID
 * LOG_MSGID_AUDIT, logged whatever log_level says, with the journal fields SESSION_ID, ZXID (of a
 * success), PATH, CLIENT_ADDRESS, USER, OPERATION, RESULT, ZNODE_TYPE,
 * ACL, ERROR (the code of a failure); its message is ZooKeeper's audit
 * line, tab-separated: "session=0x... user=... ip=... operation=...
 * znode=... znode_type=... acl=... result=...". Off unless audit_log is
 * true in corral.yaml; a reload turns it on or off. */
#pragma once

#include <stdint.h>

struct conn;
struct request;
struct server_config;
struct session;

/* A write request arrived (audit on): keeps what its record needs that the
 * answer does not carry (the path asked, a create's mode). */
void audit_note_request(struct request *rq, const uint8_t *body, uint32_t len);
/* rq (a write) is answered: its record(s), when audit is on. */
void audit_write(const struct conn *c, const struct request *rq);
/* A session's end (close or expiry) is about to be applied at zxid: a
 * record per ephemeral node it deletes, by the server (user: the one
 * corrald runs as), on every server that applies it, as ZooKeeper's. */
void audit_session_ending(const struct server_config *cfg, const struct session *s, int64_t zxid);
/* The server's own records, as ZooKeeper's ZKAuditProvider writes them
 * (no session, no address: "user=... operation=... result=..."), when
 * audit is on: operation "serverStart" with result "success" once it
 * serves or "failure" when it cannot start, "serverStop" with "invoked"
 * when it is asked to stop (a hand-over to a new process included). */
void audit_server(const struct server_config *cfg, const char *operation, const char *result);
