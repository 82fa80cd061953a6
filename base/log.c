/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

static int current_level = LOG_INFO;
static int to_journal;

/* $JOURNAL_STREAM is "DEV:INODE" of the journal stream systemd connected to
 * our stdout/stderr; only when stderr is that stream do we talk to journald. */
static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_setup(enum log_level level)
{
	current_level = (int)level;
	to_journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	current_level = (int)level;
}

int log_get_level(void)
{
	return current_level;
}

void log_full(int priority, const struct log_fields *f, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	int saved_errno = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (to_journal) {
		char prio[32], mid[64] = "", sid[64] = "", zxid[64] = "";
		struct iovec iov[7 + LOG_EXTRA_FIELDS_MAX];
		int n = 0;
		char *m = NULL, *p = NULL;

		snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
		if (asprintf(&m, "MESSAGE=%s", msg) < 0)
			m = NULL;
		if (m)
			iov[n++] = (struct iovec){ m, strlen(m) };
		iov[n++] = (struct iovec){ prio, strlen(prio) };
		iov[n++] = (struct iovec){ (char *)"SYSLOG_IDENTIFIER=corrald", 25 };
		if (f && f->message_id) {
			snprintf(mid, sizeof(mid), "MESSAGE_ID=%s", f->message_id);
			iov[n++] = (struct iovec){ mid, strlen(mid) };
		}
		if (f && f->session_id) {
			snprintf(sid, sizeof(sid), "SESSION_ID=0x%llx", (unsigned long long)f->session_id);
			iov[n++] = (struct iovec){ sid, strlen(sid) };
		}
		if (f && f->zxid) {
			snprintf(zxid, sizeof(zxid), "ZXID=0x%llx", (unsigned long long)f->zxid);
			iov[n++] = (struct iovec){ zxid, strlen(zxid) };
		}
		if (f && f->path && asprintf(&p, "PATH=%s", f->path) >= 0)
			iov[n++] = (struct iovec){ p, strlen(p) };
		for (int k = 0; f && f->extra && k < LOG_EXTRA_FIELDS_MAX && f->extra[k]; k++)
			iov[n++] = (struct iovec){ (char *)f->extra[k], strlen(f->extra[k]) };
		if (m && sd_journal_sendv(iov, n) >= 0) {
			free(m);
			free(p);
			errno = saved_errno;
			return;
		}
		free(m);
		free(p);
		/* journald unreachable: fall through to stderr. */
	}
	fprintf(stderr, "<%d>%s\n", priority, msg);
	errno = saved_errno;
}

void log_limit_tick(struct log_limit *l, uint64_t now_ms)
{
	if (now_ms - l->window_start_ms < LOG_LIMIT_WINDOW_MS)
		return;
	if (l->suppressed)
		log_warning("%u more %s in the last %u s (not logged one by one)", l->suppressed,
			    l->what, LOG_LIMIT_WINDOW_MS / 1000);
	l->window_start_ms = now_ms;
	l->logged = l->suppressed = 0;
}

bool log_limit_allow(struct log_limit *l, uint64_t now_ms)
{
	log_limit_tick(l, now_ms);
	if (l->logged < LOG_LIMIT_LINES) {
		l->logged++;
		return true;
	}
	l->suppressed++;
	return false;
}
