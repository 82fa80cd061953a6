/* log: corrald's log output.
 *
 * When stderr is the journal ($JOURNAL_STREAM names our stderr), entries go to
 * journald with structured fields: MESSAGE_ID (one per kind of event, see
 * below), SESSION_ID, ZXID, PATH where they apply. Otherwise each entry is a
 * line "<N>message" on stderr (the priority prefix systemd and syslog parse).
 * Entries below the configured level cost one comparison. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>


/* The levels of log_level in corral.yaml: syslog priorities. */
enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* MESSAGE_IDs: one 128-bit id per kind of event, for journalctl MESSAGE_ID=. */
#define LOG_MSGID_STARTED		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a01"
#define LOG_MSGID_STOPPING		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a02"
#define LOG_MSGID_CONNECTION_REFUSED	"1e4c0b6d27a94d0f9a3b7c1f0e2d5a03"
#define LOG_MSGID_BAD_INPUT		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a04"
#define LOG_MSGID_SESSION_CREATED	"1e4c0b6d27a94d0f9a3b7c1f0e2d5a05"
#define LOG_MSGID_SESSION_EXPIRED	"1e4c0b6d27a94d0f9a3b7c1f0e2d5a06"
#define LOG_MSGID_SESSION_CLOSED	"1e4c0b6d27a94d0f9a3b7c1f0e2d5a07"
#define LOG_MSGID_SESSION_RESUMED	"1e4c0b6d27a94d0f9a3b7c1f0e2d5a08"
#define LOG_MSGID_CONFIG		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a09"
#define LOG_MSGID_SLOW_CLIENT		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a0a"
#define LOG_MSGID_DEADLINE		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a0b"
#define LOG_MSGID_MEMORY_BUDGET		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a0c"
#define LOG_MSGID_DIGEST_MISMATCH	"1e4c0b6d27a94d0f9a3b7c1f0e2d5a0d"
#define LOG_MSGID_STATE_REBUILT		"1e4c0b6d27a94d0f9a3b7c1f0e2d5a0e"
#define LOG_MSGID_AUDIT			"1e4c0b6d27a94d0f9a3b7c1f0e2d5a0f"

void log_setup(enum log_level level);
void log_set_level(enum log_level level);
int log_get_level(void);

/* Structured fields that apply to an entry; 0/NULL ones are left out. */
struct log_fields {
	const char *message_id;
	int64_t session_id;
	int64_t zxid;
	const char *path;
	/* More journal fields, "NAME=value" each, up to LOG_EXTRA_FIELDS_MAX;
	 * NULL-terminated (or NULL). */
	const char *const *extra;
};
#define LOG_EXTRA_FIELDS_MAX 12

void log_full(int priority, const struct log_fields *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_at(prio, ...)						\
	do {								\
		if ((prio) <= log_get_level())				\
			log_full((prio), NULL, __VA_ARGS__);		\
	} while (0)
#define log_error(...) log_at(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_at(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

/* An entry with structured fields: log_event(LOG_INFO, .message_id = ..., .session_id = id)(fmt, ...) */
#define log_event(prio, fmt, ...)					\
	do {								\
		if ((prio) <= log_get_level())				\
			log_full((prio), &(struct log_fields)fmt, __VA_ARGS__); \
	} while (0)

/* A kind of line that a flood of clients could repeat (refused or
 * timed-out connections): at most LOG_LIMIT_LINES of it per
 * LOG_LIMIT_WINDOW_MS, then one line saying how many were left out. */
#define LOG_LIMIT_LINES 10
#define LOG_LIMIT_WINDOW_MS 10000

struct log_limit {
	const char *what;		/* names the kind in the summary: "connections refused" */
	uint64_t window_start_ms;
	uint32_t logged;
	uint32_t suppressed;
};

/* Whether a line of this kind may be logged at now_ms. */
bool log_limit_allow(struct log_limit *l, uint64_t now_ms);
/* From a timer: once a window is over, says how many lines it left out. */
void log_limit_tick(struct log_limit *l, uint64_t now_ms);
