/* raft_conf: see raft_conf.h. */
#include "raft_conf.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define FORMAT 1
/* A server's fields at their smallest: id, an empty address's NUL, role. */
#define SERVER_MIN_BYTES (8 + 1 + 1)

bool raft_conf_valid(const void *bytes, size_t len)
{
	const uint8_t *p = bytes;
	uint64_t n;
	if (len < 1 + 8 || p[0] != FORMAT)
		return false;
	memcpy(&n, p + 1, 8);
	n = le64toh(n);		/* libraft writes little-endian */
	size_t off = 1 + 8;
	if (n == 0 || n > (len - off) / SERVER_MIN_BYTES)
		return false;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id;
		if (len - off < SERVER_MIN_BYTES)
			return false;
		memcpy(&id, p + off, 8);
		off += 8;
		const uint8_t *nul = memchr(p + off, 0, len - off);
		if (id == 0 || !nul || (size_t)(nul - p) + 1 >= len)
			return false;
		off = (size_t)(nul - p) + 1;
		uint8_t role = p[off++];
		if (role != RAFT_STANDBY && role != RAFT_VOTER && role != RAFT_SPARE)
			return false;
	}
	return true;
}

int raft_conf_decode(const void *p, size_t len, struct raft_configuration *ret)
{
	raft_configuration_init(ret);
	if (!raft_conf_valid(p, len))
		return -EBADMSG;
	struct raft_buffer b = { .base = (void *)p, .len = len };
	int rv = raft_configuration_decode(&b, ret);
	if (rv != 0) {
		/* libraft freed what it had decoded (duplicate ids or addresses). */
		raft_configuration_init(ret);
		return rv == RAFT_NOMEM ? -ENOMEM : -EBADMSG;
	}
	return 0;
}
