/* fourletter: ZooKeeper's four-letter words (ruok, srvr, stat, mntr, ...).
 *
 * On a connection that has not sent a ConnectRequest, the first four bytes
 * are read as a command when they spell one; the text answer is sent and the
 * connection closed. A whitelist (client.four_letter_words) decides which
 * run; the others answer that they are not in the whitelist, as ZooKeeper does. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct server_status;

enum four_letter_word {
	FLW_CONF, FLW_CONS, FLW_CRST, FLW_DIRS, FLW_DUMP, FLW_ENVI, FLW_RUOK, FLW_SRST,
	FLW_SRVR, FLW_STAT, FLW_WCHC, FLW_WCHP, FLW_WCHS, FLW_MNTR, FLW_ISRO,
	FLW_HASH,
	FLW_COUNT,
};

#define FLW_ALL ((1u << FLW_COUNT) - 1)

/* The word's index for its 4 characters, or -1. */
int four_letter_word_parse(const char *name, size_t len);
const char *four_letter_word_name(enum four_letter_word w);

/* When the 4 bytes at p spell a command, answers it on c from what ss
 * tells (closing after the answer) and returns true. */
bool four_letter_word_handle(const struct server_status *ss, struct conn *c, const uint8_t *p);

/* What the words and the AdminServer commands (admin_commands.c) share:
 * the bytes of the data directory and of its log (dirs), ZooKeeper's name
 * of an op (cons' lop), the version line's text. */
unsigned long long four_letter_data_dir_bytes(const struct server_status *ss);
unsigned long long four_letter_log_dir_bytes(const struct server_status *ss);
const char *four_letter_op_name(int32_t op);
