/* records: the request and reply records of the client protocol (zookeeper.jute),
 * decoded from and encoded to jute. Decoded strings and buffers point into the
 * received frame; only ACL entries are copied (they outlive the frame in a txn).
 * Decoders return 0 or -EBADMSG for a record that does not parse. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "jute.h"

/* ACL: a permission for an identity (scheme, id). */
struct acl_entry {
	int32_t perms;
	char *scheme;
	char *id;
};

/* The Stat record as clients see it. */
struct zk_stat {
	int64_t czxid, mzxid, ctime, mtime;
	int32_t version, cversion, aversion;
	int64_t ephemeral_owner;
	int32_t data_length, num_children;
	int64_t pzxid;
};

struct connect_request {
	int32_t protocol_version;
	int64_t last_zxid_seen;
	int32_t timeout_ms;
	int64_t session_id;
	const uint8_t *password;
	int32_t password_len;
	bool has_read_only;	/* old clients do not send the byte */
	bool read_only;
};

struct path_watch_request {	/* exists, getData, getChildren, getChildren2 */
	const char *path;
	int32_t path_len;
	bool watch;
};

struct create_request {		/* create, create2, createContainer, createTTL */
	const char *path;
	int32_t path_len;
	const uint8_t *data;
	int32_t data_len;
	struct acl_entry *acl;	/* owned: free with acl_entries_free() */
	uint32_t acl_count;
	int32_t flags;
	int64_t ttl_ms;
};

struct delete_request {
	const char *path;
	int32_t path_len;
	int32_t version;
};

struct set_data_request {
	const char *path;
	int32_t path_len;
	const uint8_t *data;
	int32_t data_len;
	int32_t version;
};

struct set_acl_request {
	const char *path;
	int32_t path_len;
	struct acl_entry *acl;	/* owned: free with acl_entries_free() */
	uint32_t acl_count;
	int32_t version;
};

struct auth_request {
	int32_t type;
	const char *scheme;
	int32_t scheme_len;
	const uint8_t *auth;
	int32_t auth_len;
};

int set_acl_request_decode(struct jute_reader *r, struct set_acl_request *ret);
int auth_request_decode(struct jute_reader *r, struct auth_request *ret);
int connect_request_decode(struct jute_reader *r, struct connect_request *ret);
int path_watch_request_decode(struct jute_reader *r, struct path_watch_request *ret);
int create_request_decode(struct jute_reader *r, bool with_ttl, struct create_request *ret);
int delete_request_decode(struct jute_reader *r, struct delete_request *ret);
int set_data_request_decode(struct jute_reader *r, struct set_data_request *ret);
/* vector<ACL>; a null vector decodes as empty. */
int acl_vector_decode(struct jute_reader *r, struct acl_entry **ret, uint32_t *ret_count);
void acl_entries_free(struct acl_entry *e, uint32_t n);
struct acl_entry *acl_entries_copy(const struct acl_entry *e, uint32_t n);

void stat_encode(struct jute_buf *b, const struct zk_stat *st);
