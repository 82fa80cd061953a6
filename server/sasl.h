/* sasl: the server side of ZooKeeper's SASL exchange (opcode 102) with
 * Cyrus SASL (libsasl2). It owns the library's process-wide state, the
 * DIGEST-MD5 users (auth.sasl.users_file, served to the library by an
 * auxiliary property plugin of our own, so no system sasldb is read) and
 * each connection's exchange; it knows nothing of connections, sessions
 * or replies (read.c answers, auth.c records the identity).
 *
 * As ZooKeeper's server, one exchange per connection: a DIGEST-MD5 client
 * opens with an empty token (it waits for the challenge), a GSSAPI client
 * with its Kerberos AP-REQ, so the first token picks the mechanism.
 * DIGEST-MD5 is served as ZooKeeper's: service "zookeeper", server name
 * and realm "zk-sasl-md5", quality of protection "auth" only. GSSAPI
 * accepts the service principal auth.sasl.principal from
 * auth.sasl.keytab. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sasl_exchange;

struct sasl_settings {
	const char *users;		/* "name: password" lines, or NULL: no DIGEST-MD5 */
	size_t users_len;
	const char *keytab;		/* a keytab path, or NULL: no GSSAPI */
	const char *principal;		/* "service/host[@REALM]", NULL: zookeeper/<hostname> */
};

/* Checks the users text: one "name: password" a line; blank lines and
 * lines starting with '#' are skipped. 0, or -EINVAL with *ret_line (1
 * based) and *ret_why. */
int sasl_users_check(const char *text, size_t len, unsigned *ret_line, const char **ret_why);

/* (Re)configures the library for this process. 0 or a negative errno,
 * *ret_why then saying what failed. */
int sasl_setup(const struct sasl_settings *s, const char **ret_why);
/* Releases what sasl_setup took. */
void sasl_teardown(void);
/* Whether any mechanism is configured. */
bool sasl_enabled(void);

/* One step of a connection's exchange: *x is NULL before its first token
 * (a new exchange is made). Returns 1 when the exchange is complete
 * (*ret_authid, malloc'd, names who authenticated), 0 when a token goes
 * back and more is to come, -EACCES when the client failed (*ret_why says
 * how), -ENOMEM. *ret_out and *ret_out_len: the token to answer with (may be
 * empty), valid until the next step or free. */
int sasl_step(struct sasl_exchange **x, const uint8_t *in, size_t in_len,
	      const uint8_t **ret_out, uint32_t *ret_out_len, char **ret_authid,
	      const char **ret_why);
void sasl_exchange_free(struct sasl_exchange *x);
