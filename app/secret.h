/* secret: reads a secret that corral.yaml names instead of holding it
 * (ensemble.secret_file, auth.super_digest_file, auth.sasl.users_file,
 * auth.sasl.keytab, client.tls.private_key, ensemble.tls.private_key; every
 * later key that carries a key or a password reads through here too).
 *
 * The value of such a key is:
 *   credential:NAME, or a relative NAME: systemd's credential NAME, the file
 *     $CREDENTIALS_DIRECTORY/NAME (LoadCredential=, LoadCredentialEncrypted=
 *     or SetCredential= in the unit); refused when that variable is not set;
 *   an absolute path: that file, refused when its group or others may read
 *     it (mode & 077), unless it lies in $CREDENTIALS_DIRECTORY, which
 *     systemd keeps for the service alone.
 * Trailing line ends are cut (a file written with echo works). This file
 * does not log: a failure is a sentence in why, naming the file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Reads the secret named by value, at most max_bytes. Returns 0 with a
 * malloc'ed copy (ret_len bytes, NUL after them) or a negative errno with
 * why filled. */
int secret_read(const char *value, size_t max_bytes, uint8_t **ret, size_t *ret_len, char *why,
		size_t why_size);

/* A secret that a library reads itself (a keytab): the path value names,
 * checked as secret_read checks it but not read. 0 with *ret_path
 * (malloc'd), or a negative errno with why filled. */
int secret_locate(const char *value, char **ret_path, char *why, size_t why_size);

/* Wipes and frees a secret. */
void secret_free(uint8_t *secret, size_t len);
