/* words: see words.h. ruok exits 0 only on imok; status prints the values
 * of srvr and mntr in one aligned table (srvr's when both give one), and
 * says on stderr what it cannot show when mntr is not enabled. */
#include "words.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "json.h"

static void print_escaped(FILE *f, const char *p, size_t len, size_t max)
{
	for (size_t i = 0; i < len && i < max; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
	if (len > max)
		fputs("...", f);
}

static int unreachable(const struct ctx *x)
{
	return unreachable_at(x->server, &x->zk);
}

/* Runs one word on its own connection. Returns 0 with the answer, or -1
 * (could not reach or talk to the server; x->zk.error says why). */
static int four_letter(struct ctx *x, const char *word, char **ret_text, size_t *ret_len)
{
	return zkc_word(&x->zk, x->host, x->port, word, ret_text, ret_len);
}

int cmd_ruok(struct ctx *x, char **args, int nargs)
{
	char *text;
	size_t len;
	int status = EXIT_NO;

	if (four_letter(x, "ruok", &text, &len) < 0)
		return unreachable(x);
	if (len == 4 && memcmp(text, "imok", 4) == 0) {
		if (x->json) {
			json_open(NULL, '{');
			json_str("server", x->server);
			json_str("answer", "imok");
			json_close('}');
		} else {
			puts("imok");
		}
		status = EXIT_SUCCESS;
	} else if (strstr(text, ZKC_NOT_IN_WHITELIST)) {
		fprintf(stderr, "corralctl: %s: ruok is not enabled on the server "
			"(not in its four-letter-word whitelist)\n", x->server);
	} else if (len == 0) {
		fprintf(stderr, "corralctl: %s: the server closed the connection without "
			"answering ruok\n", x->server);
	} else {
		fprintf(stderr, "corralctl: %s: the server answered ruok with '", x->server);
		print_escaped(stderr, text, len, 100);
		fputs("', not 'imok'\n", stderr);
	}
	free(text);
	return status;
}

struct row {
	const char *label;
	char value[256];
};

static void add_row(struct row *rows, size_t *n, const char *label, const char *value)
{
	if (!value)
		return;
	rows[*n].label = label;
	snprintf(rows[*n].value, sizeof(rows[*n].value), "%s", value);
	(*n)++;
}

/* "1d 2h 3m 4s" from milliseconds; NULL when text is not a number. */
static const char *format_uptime(const char *text, char *buf, size_t size)
{
	char *end;
	if (!text)
		return NULL;
	errno = 0;
	unsigned long long ms = strtoull(text, &end, 10);
	if (end == text || *end || errno)
		return text;
	unsigned long long s = ms / 1000;
	unsigned long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
	if (d)
		snprintf(buf, size, "%llud %lluh %llum %llus", d, h, m, s % 60);
	else if (h)
		snprintf(buf, size, "%lluh %llum %llus", h, m, s % 60);
	else if (m)
		snprintf(buf, size, "%llum %llus", m, s % 60);
	else
		snprintf(buf, size, "%llus", s);
	return buf;
}

/* Asks srvr and mntr. Returns 0 with both parsed into srvr and mntr, at
 * least one of them understood; else the exit status with the message
 * printed and both freed. */
static int ask_srvr_mntr(struct ctx *x, struct zkc_kv *srvr, struct zkc_kv *mntr)
{
	char *text;
	size_t len;

	if (four_letter(x, "srvr", &text, &len) < 0)
		return unreachable(x);
	if (zkc_kv_parse(srvr, text, ": ") < 0) {
		zkc_kv_free(srvr);
		fprintf(stderr, "corralctl: out of memory\n");
		return EXIT_NO;
	}
	if (four_letter(x, "mntr", &text, &len) < 0) {
		zkc_kv_free(srvr);
		return unreachable(x);
	}
	if (zkc_kv_parse(mntr, text, "\t") < 0) {
		zkc_kv_free(srvr);
		zkc_kv_free(mntr);
		fprintf(stderr, "corralctl: out of memory\n");
		return EXIT_NO;
	}
	if (!zkc_kv_get(srvr, "Mode") && !zkc_kv_get(mntr, "zk_server_state")) {
		if (!srvr->answered && !mntr->answered)
			fprintf(stderr, "corralctl: %s: neither srvr nor mntr is enabled on the server "
				"(not in its four-letter-word whitelist)\n", x->server);
		else
			fprintf(stderr, "corralctl: %s: the answers to srvr and mntr do not parse: "
				"not a ZooKeeper server?\n", x->server);
		zkc_kv_free(srvr);
		zkc_kv_free(mntr);
		return EXIT_NO;
	}
	return 0;
}

/* srvr's value for skey if it has one, else mntr's for mkey (or NULL). */
static const char *either(const struct zkc_kv *srvr, const struct zkc_kv *mntr, const char *skey,
			  const char *mkey)
{
	return zkc_kv_get(srvr, skey) ? zkc_kv_get(srvr, skey) : zkc_kv_get(mntr, mkey);
}

/* The rows both words can give (srvr's value first). */
static void add_common_rows(struct row *rows, size_t *n, const struct zkc_kv *srvr,
			    const struct zkc_kv *mntr)
{
	char buf[256];
	add_row(rows, n, "mode", either(srvr, mntr, "Mode", "zk_server_state"));
	add_row(rows, n, "version", either(srvr, mntr, "Zookeeper version", "zk_version"));
	add_row(rows, n, "zxid", either(srvr, mntr, "Zxid", "corral_last_zxid"));
	add_row(rows, n, "znodes", either(srvr, mntr, "Node count", "zk_znode_count"));
	add_row(rows, n, "connections",
		either(srvr, mntr, "Connections", "zk_num_alive_connections"));
	add_row(rows, n, "outstanding",
		either(srvr, mntr, "Outstanding", "zk_outstanding_requests"));
	const char *lat = zkc_kv_get(srvr, "Latency min/avg/max");
	const char *lmin = zkc_kv_get(mntr, "zk_min_latency");
	const char *lavg = zkc_kv_get(mntr, "zk_avg_latency");
	const char *lmax = zkc_kv_get(mntr, "zk_max_latency");
	if (lat) {
		snprintf(buf, sizeof(buf), "%s ms", lat);
		add_row(rows, n, "latency min/avg/max", buf);
	} else if (lmin && lavg && lmax) {
		snprintf(buf, sizeof(buf), "%s/%s/%s ms", lmin, lavg, lmax);
		add_row(rows, n, "latency min/avg/max", buf);
	}
	const char *rcvd = either(srvr, mntr, "Received", "zk_packets_received");
	const char *sent = either(srvr, mntr, "Sent", "zk_packets_sent");
	if (rcvd && sent) {
		snprintf(buf, sizeof(buf), "%s/%s", rcvd, sent);
		add_row(rows, n, "packets received/sent", buf);
	}
}

/* The rows only mntr gives. */
static void add_mntr_rows(struct row *rows, size_t *n, const struct zkc_kv *mntr)
{
	char buf[256];
	add_row(rows, n, "watches", zkc_kv_get(mntr, "zk_watch_count"));
	add_row(rows, n, "ephemerals", zkc_kv_get(mntr, "zk_ephemerals_count"));
	const char *size = zkc_kv_get(mntr, "zk_approximate_data_size");
	if (size) {
		snprintf(buf, sizeof(buf), "%s bytes", size);
		add_row(rows, n, "data size", buf);
	}
	add_row(rows, n, "sessions", zkc_kv_get(mntr, "zk_global_sessions"));
	add_row(rows, n, "log fsyncs", zkc_kv_get(mntr, "corral_log_fsyncs"));
	add_row(rows, n, "log entries/fsync", zkc_kv_get(mntr, "corral_log_entries_per_fsync"));
	const char *failed = zkc_kv_get(mntr, "corral_log_failed");
	const char *space = zkc_kv_get(mntr, "corral_log_refusing_for_space");
	if (failed && strcmp(failed, "0") != 0)
		add_row(rows, n, "log state", "FAILED: writes refused, restart once the disk is sound");
	else if (space && strcmp(space, "0") != 0)
		add_row(rows, n, "log state", "writes refused: no room for a log segment");
	else if (failed || space)
		add_row(rows, n, "log state", "ok");
	add_row(rows, n, "uptime", format_uptime(zkc_kv_get(mntr, "zk_uptime"), buf, sizeof(buf)));
}

/* The rows as a table, the values aligned after the longest label. */
static void print_rows(const struct row *rows, size_t n)
{
	int width = 0;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(rows[i].label) > width)
			width = (int)strlen(rows[i].label);
	for (size_t i = 0; i < n; i++)
		printf("%-*s  %s\n", width, rows[i].label, rows[i].value);
}

int cmd_status(struct ctx *x, char **args, int nargs)
{
	struct zkc_kv srvr = { 0 }, mntr = { 0 };
	int status = ask_srvr_mntr(x, &srvr, &mntr);
	if (status != 0)
		return status;

	bool have_mntr = zkc_kv_get(&mntr, "zk_server_state") != NULL;
	struct row rows[24];
	size_t n = 0;
	add_row(rows, &n, "server", x->server);
	add_common_rows(rows, &n, &srvr, &mntr);
	add_mntr_rows(rows, &n, &mntr);
	if (x->json) {
		json_open(NULL, '{');
		for (size_t i = 0; i < n; i++)
			json_str(rows[i].label, rows[i].value);
		json_open("mntr", '{');
		for (size_t i = 0; i < mntr.n; i++)
			json_str(mntr.v[i].key, mntr.v[i].value);
		json_close('}');
		json_close('}');
	} else {
		print_rows(rows, n);
	}
	if (!have_mntr)
		fprintf(stderr, "corralctl: %s: mntr is %s: watches, ephemerals, data size, sessions, "
			"log and uptime are not shown\n", x->server,
			mntr.answered ? "not understood by the server"
				      : "not enabled on the server (not in its four-letter-word whitelist)");
	zkc_kv_free(&srvr);
	zkc_kv_free(&mntr);
	return EXIT_SUCCESS;
}
