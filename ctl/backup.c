/* backup: `corralctl backup FILE`, an online backup of a running corrald.
 *
 * Asks with corral's opcode ZK_OP_CORRAL_BACKUP on a session authenticated
 * with --auth (the super user); the server answers with a reply header and
 * then streams its state as a snapshot file (see server/backup.h) until it
 * closes the connection. The stream goes to FILE.tmp, is checked (the
 * snapshot's magic, its end marker and its crc32 over everything before
 * the trailer: a stream cut short never becomes FILE), synced and renamed
 * to FILE. `corrald --verify FILE` checks it again later; `corrald restore`
 * makes a data directory of it. */
#include "backup.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "json.h"
#include "proto.h"

#define ZK_OP_CORRAL_BACKUP 5002
#define SNAP_MAGIC "CORRALSN"
#define SNAP_END_MAGIC "CORRALSE"
#define SNAP_TRAILER_BYTES 16
#define CHUNK_BYTES (1u << 20)

/* What the stream brought: its size, the crc32 of all but the trailer
 * (the last bytes are held back until more come), the header's first
 * bytes. */
struct received {
	uint64_t bytes;
	uLong crc;
	uint8_t head[64];
	uint8_t tail[SNAP_TRAILER_BYTES];	/* the last bytes so far, held of them */
	size_t held;
};

static void receive(struct received *r, const uint8_t *p, size_t n)
{
	if (r->bytes < sizeof(r->head)) {
		size_t k = sizeof(r->head) - r->bytes < n ? sizeof(r->head) - r->bytes : n;
		memcpy(r->head + r->bytes, p, k);
	}
	r->bytes += n;
	size_t total = r->held + n;
	if (total <= SNAP_TRAILER_BYTES) {
		memcpy(r->tail + r->held, p, n);
		r->held = total;
		return;
	}
	/* The first total - 16 bytes of (held, p) are not the trailer. */
	size_t k = total - SNAP_TRAILER_BYTES;
	size_t from_held = k < r->held ? k : r->held;
	r->crc = crc32_z(r->crc, r->tail, from_held);
	r->crc = crc32_z(r->crc, p, k - from_held);
	uint8_t next[SNAP_TRAILER_BYTES];
	size_t kept = r->held - from_held;	/* held bytes still among the last 16 */
	memcpy(next, r->tail + from_held, kept);
	memcpy(next + kept, p + (n - (SNAP_TRAILER_BYTES - kept)), SNAP_TRAILER_BYTES - kept);
	memcpy(r->tail, next, SNAP_TRAILER_BYTES);
	r->held = SNAP_TRAILER_BYTES;
}

/* Whether what arrived is a whole snapshot. */
static const char *incomplete(const struct received *r)
{
	uint32_t crc;
	if (r->bytes < 60 + SNAP_TRAILER_BYTES || memcmp(r->head, SNAP_MAGIC, 8) != 0)
		return "the stream is not a snapshot";
	memcpy(&crc, r->tail + 8, 4);
	if (memcmp(r->tail, SNAP_END_MAGIC, 8) != 0 || be32toh(crc) != (uint32_t)r->crc)
		return "the stream ended early or arrived damaged (checksum mismatch)";
	return NULL;
}

/* Receives the stream into fd until the server closes. Returns 0, or the
 * exit status with the message printed. */
static int receive_stream(struct ctx *x, int fd, const char *tmp, struct received *r)
{
	uint8_t *buf = malloc(CHUNK_BYTES);
	if (!buf) {
		fprintf(stderr, "corralctl: out of memory\n");
		return EXIT_NO;
	}
	int status = 0;
	for (;;) {
		ssize_t n = zkc_recv(&x->zk, buf, CHUNK_BYTES);
		if (n < 0) {
			status = unreachable_at(x->server, &x->zk);
			break;
		}
		if (n == 0)
			break;
		receive(r, buf, (size_t)n);
		size_t off = 0;
		while (off < (size_t)n) {
			ssize_t w = write(fd, buf + off, (size_t)n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				fprintf(stderr, "corralctl: %s: %s\n", tmp, strerror(errno));
				free(buf);
				return EXIT_NO;
			}
			off += (size_t)w;
		}
		if ((size_t)n < CHUNK_BYTES)
			break;	/* short: the server closed */
	}
	free(buf);
	return status;
}

/* Makes tmp FILE (fsynced, renamed, its directory fsynced). */
static int publish(const char *tmp, const char *file)
{
	char *copy = strdup(file);
	if (!copy || rename(tmp, file) < 0) {
		fprintf(stderr, "corralctl: %s: %s\n", file, strerror(copy ? errno : ENOMEM));
		free(copy);
		return EXIT_NO;
	}
	int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(copy);
	return 0;
}

static void print_done(const struct ctx *x, const char *file, const struct received *r)
{
	uint64_t index;
	char cluster[33], zxid[24];
	memcpy(&index, r->head + 40, 8);
	if (x->json) {
		for (int i = 0; i < 16; i++)
			snprintf(cluster + 2 * i, 3, "%02x", r->head[16 + i]);
		snprintf(zxid, sizeof(zxid), "0x%llx", (unsigned long long)be64toh(index));
		json_open(NULL, '{');
		json_str("file", file);
		json_str("zxid", zxid);
		json_int("bytes", (long long)r->bytes);
		json_str("cluster", cluster);
		json_close('}');
		return;
	}
	printf("backup at zxid 0x%llx, %llu bytes, cluster ", (unsigned long long)be64toh(index),
	       (unsigned long long)r->bytes);
	for (int i = 0; i < 16; i++)
		printf("%02x", r->head[16 + i]);
	printf(": %s\n", file);
}

int cmd_backup(struct ctx *x, char **args, int nargs)
{
	const char *file = args[0];
	struct jute_reader body;
	int32_t err;
	if (zkc_call(&x->zk, ZK_OP_CORRAL_BACKUP, NULL, &err, &body) < 0)
		return unreachable_at(x->server, &x->zk);
	if (err == ZNOAUTH) {
		fprintf(stderr, "corralctl: backup: not authorized: a backup needs the super user "
			"(--auth super:PASSWORD, auth.super_digest on the server)\n");
		return EXIT_NO;
	}
	if (err == ZUNIMPLEMENTED || err == ZMARSHALLINGERROR) {
		fprintf(stderr, "corralctl: backup: %s does not serve backups (not corral?)\n",
			x->server);
		return EXIT_NO;
	}
	if (err == ZTHROTTLEDOP) {
		fprintf(stderr, "corralctl: backup: another backup is streaming from %s; try again "
			"when it is done\n", x->server);
		return EXIT_NO;
	}
	if (err != ZOK)
		return answered_error("backup", err);
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "corralctl: %s: %s\n", tmp, strerror(errno));
		return EXIT_NO;
	}
	struct received r = { .crc = crc32(0L, Z_NULL, 0) };
	int status = receive_stream(x, fd, tmp, &r);
	const char *why = status == 0 ? incomplete(&r) : NULL;
	if (why) {
		fprintf(stderr, "corralctl: backup: %s (%llu bytes); nothing written to %s\n", why,
			(unsigned long long)r.bytes, file);
		status = EXIT_UNREACHABLE;
	}
	if (status == 0 && (fsync(fd) < 0 || close(fd) < 0)) {
		fprintf(stderr, "corralctl: %s: %s\n", tmp, strerror(errno));
		status = EXIT_NO;
		fd = -1;
	} else if (status == 0) {
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	if (status == 0)
		status = publish(tmp, file);
	if (status != 0) {
		unlink(tmp);
		return status;
	}
	print_done(x, file, &r);
	/* The server closed the connection: there is no session to close. */
	x->zk.session_id = 0;
	return EXIT_SUCCESS;
}
