/* auth: who a connection is, and what an ACL lets it do.
 *
 * Every connection has the identity ip:<address>; a TLS client's verified
 * certificate adds x509:<subject DN>; a completed SASL exchange adds
 * sasl:<principal>; auth packets add digest
 * identities ("user:" + base64(SHA-1("user:password")), libcrypto), and a
 * digest equal to the configured super digest makes it super (every check
 * passes). This file also checks ACLs (ZooKeeper's checkACL) and validates and
 * expands the ACL of a create/setACL (fixupACL: "auth" becomes the
 * connection's authenticated ids). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl.h"

/* The most identities one connection holds: its ip one and 15 added by
 * addauth (the same credentials again add none). Each is a client's string
 * (up to a frame), every ACL check walks them all, and a follower forwards
 * them with each write: unbounded, one connection could make the server
 * hold gigabytes and check every request against them. ZooKeeper has no
 * limit; past this one addauth is answered AUTHFAILED and the connection
 * closes, with a log line that says why. */
#define AUTH_IDS_MAX 16

struct auth_id {
	char *scheme;
	char *id;
};

struct auth_identities {
	struct auth_id ids[AUTH_IDS_MAX];
	uint32_t count;
	bool super;
	struct sockaddr_storage peer;
};

void auth_identities_init(struct auth_identities *a, const struct sockaddr_storage *peer);
void auth_identities_free(struct auth_identities *a);

/* Handles an auth packet. Returns 0 (identity added), -EACCES (unknown scheme
 * or bad credentials: the caller answers AUTHFAILED and closes), -ENOSPC (too
 * many identities) or -ENOMEM. super_digest may be NULL. */
int auth_add(struct auth_identities *a, const char *scheme, size_t scheme_len,
	     const uint8_t *auth, size_t auth_len, const char *super_digest);

/* A client's verified certificate (the TLS port): the identity ("x509",
 * dn), dn its subject as Java's X500Principal.getName() writes it, and
 * super when dn equals super_user (auth.x509_super_user, may be NULL), as
 * ZooKeeper's X509AuthenticationProvider does. 0, -ENOSPC or -ENOMEM. */
int auth_add_x509(struct auth_identities *a, const char *dn, const char *super_user);

/* A completed SASL exchange (server/sasl.c): the identity ("sasl", name),
 * name made from authid as ZooKeeper's SaslServerCallbackHandler makes it
 * (auth_sasl_name()), and super when name equals super_user
 * (auth.sasl.super_user, may be NULL), as ZooKeeper's zookeeper.superUser.
 * 0, -ENOSPC or -ENOMEM. */
int auth_add_sasl(struct auth_identities *a, const char *name, const char *super_user);

/* ZooKeeper's name for an authenticated principal "service/host@REALM"
 * (either part may be missing): the host and the realm are kept unless
 * remove_host / remove_realm (zookeeper.kerberos.removeHostFromPrincipal,
 * zookeeper.kerberos.removeRealmFromPrincipal). The short name is the service part
 * (Kerberos' DEFAULT rule for a principal of the default realm). malloc'd,
 * or NULL when out of memory. */
char *auth_sasl_name(const char *authid, bool remove_host, bool remove_realm);

/* The schemes enforced authentication accepts (auth.enforce.schemes). */
enum {
	AUTH_SCHEME_DIGEST = 1u << 0,
	AUTH_SCHEME_SASL = 1u << 1,
	AUTH_SCHEME_X509 = 1u << 2,
	AUTH_SCHEME_IP = 1u << 3,
};
/* "sasl", "digest,sasl", ...: the bits, or -EINVAL with *ret_bad at the
 * unknown name (as ZooKeeper, which refuses to start with a scheme that
 * has no provider). */
int auth_schemes_parse(const char *text, uint32_t *ret, const char **ret_bad);
/* ZooKeeper's isCnxnAuthenticated: whether the connection holds an
 * identity of one of the schemes. */
bool auth_has_scheme_of(const struct auth_identities *a, uint32_t schemes);

/* "user:password" -> "user:base64(sha1(user:password))". Returns a malloc'd string or NULL. */
char *auth_digest(const char *user_password, size_t len);

/* The bytes as a Java String would hold them, in UTF-8: every byte that
 * does not begin a valid sequence becomes U+FFFD. malloc'd, NUL-terminated. */
char *utf8_as_java(const uint8_t *s, size_t len, size_t *ret_len);

/* ZooKeeper's checkACL: true when the connection may do perm on a node with acl. */
bool auth_allowed(const struct auth_identities *a, const struct acl_list *acl, int32_t perm);

/* ZooKeeper's fixupACL: validates entries and expands "auth". On success
 * returns 0 with *ret (malloc'd, caller frees with acl_entries_free()) and
 * *ret_count; returns -EINVAL for an invalid ACL (INVALIDACL), -ENOMEM. */
int auth_fixup_acl(const struct auth_identities *a, const struct acl_entry *in, uint32_t n,
		   struct acl_entry **ret, uint32_t *ret_count);

/* True when an ip ACL id ("addr" or "addr/bits") covers the address. */
bool auth_ip_matches(const char *acl_id, const struct sockaddr_storage *peer);
