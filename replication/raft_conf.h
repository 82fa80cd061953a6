/* raft_conf: a Raft configuration (the members and their roles) in
 * libraft's encoding, checked before libraft decodes it.
 *
 * libraft's decoder trusts its input: it reads a byte of an empty buffer,
 * reads the fixed fields of a server without looking at the length, and
 * frees what it decoded when it fails halfway (a caller that closes the
 * configuration then frees it twice). The bytes come from other servers
 * (AppendEntries' configuration entries, InstallSnapshot), from the log and
 * from snapshot files: every decode of them goes through here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>

/* True when p[0..len) is a configuration libraft can decode without
 * reading past it: format 1, at least one server, each with a non-zero id,
 * a NUL-terminated address and a known role, all inside the bytes (padding
 * may follow). */
bool raft_conf_valid(const void *p, size_t len);

/* Checks, then decodes into *ret (raft_configuration_close() it after).
 * Returns 0, or -EBADMSG / -ENOMEM with *ret empty (nothing to close). */
int raft_conf_decode(const void *p, size_t len, struct raft_configuration *ret);
