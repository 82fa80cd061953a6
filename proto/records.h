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

/* sync, getACL, getEphemerals (a prefix), getAllChildrenNumber: one path. */
struct path_request {
	const char *path;
	int32_t path_len;
};

/* addWatch (type = its mode), checkWatches and removeWatches (type = the
 * WatcherType): a path and a number. */
struct watch_request {
	const char *path;
	int32_t path_len;
	int32_t type;
};

/* The header before each op of a multi or multiRead, and after the last
 * (done = true). */
struct multi_header {
	int32_t type;
	bool done;
	int32_t err;		/* unused in requests */
};

/* reconfig: the servers joining, leaving, or the new members (each "" or
 * null, -1 long), and the configuration it applies to (-1: any). */
struct reconfig_request {
	const char *joining, *leaving, *members;
	int32_t joining_len, leaving_len, members_len;
	int64_t config_id;
};

/* setWatches and setWatches2: the last zxid the client saw, then lists of
 * paths (data, exist, child watches; setWatches2 adds persistent and
 * persistent recursive ones), walked one path at a time: the record is
 * applied as it is read. */
struct set_watches_reader {
	struct jute_reader *r;
	int64_t relative_zxid;
	unsigned lists;		/* 3, or 5 for setWatches2 */
	unsigned next_list;
	unsigned list;		/* of the path returned last */
	int32_t left;		/* paths left in list */
};

int set_acl_request_decode(struct jute_reader *r, struct set_acl_request *ret);
int path_request_decode(struct jute_reader *r, struct path_request *ret);
int watch_request_decode(struct jute_reader *r, struct watch_request *ret);
int multi_header_decode(struct jute_reader *r, struct multi_header *ret);
int reconfig_request_decode(struct jute_reader *r, struct reconfig_request *ret);
/* Reads the relative zxid. Returns 0 or -EBADMSG. */
int set_watches_begin(struct set_watches_reader *it, struct jute_reader *r, bool v2);
/* The next path: returns 1 with *ret_list (0..4: data, exist, child,
 * persistent, recursive) and the path, 0 after the last, or -EBADMSG. */
int set_watches_next(struct set_watches_reader *it, unsigned *ret_list, const char **ret_path,
		     int32_t *ret_path_len);
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
