/* metrics: every figure the server reports, in one table that both mntr
 * (fourletter.c) and the HTTP endpoint's /metrics and /commands/monitor
 * (admin_http.c) read, so the three cannot drift apart. Each row names the
 * figure as mntr does (ZooKeeper's zk_* name where ZooKeeper has the figure,
 * corral_* for corral's own), how Prometheus names it (ZooKeeper's
 * PrometheusMetricsProvider drops the "zk_"; corral's counters gain
 * "_total"), its kind and where its value comes from (struct
 * server_status, read-only). Reading them takes one pass over the table;
 * the figures that walk the connections, sessions or the peers are
 * gathered once per pass (struct metrics_pass). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "summary.h"

enum metric_kind {
	METRIC_GAUGE,		/* a level, may go down */
	METRIC_COUNTER,		/* only grows (until srst) */
	METRIC_SUMMARY,		/* a distribution: avg/min/max/cnt/sum (and quantiles) */
	METRIC_TEXT,		/* mntr only (a version, a state) */
};

enum metric_value_type { VALUE_INT, VALUE_DOUBLE, VALUE_TEXT, VALUE_HEX, VALUE_SUMMARY };

struct metric_value {
	enum metric_value_type type;
	union {
		int64_t i;
		double d;
		const char *text;
		const struct summary *summary;
	};
	/* A summary's values times scale are the unit reported (ms or s); its
	 * quantiles are of the values recent at now_ms (the loop's clock). */
	double scale;
	uint64_t now_ms;
};

/* What one reading gathers once for every row. */
struct metrics_pass {
	const struct server_status *ss;
	long fds, max_fds;
	uint64_t ephemerals;
	uint32_t read_only_sessions;
	size_t outstanding;
	unsigned voters, learners, synced_voters, synced_observers;
	uint64_t peer_queue_bytes, peer_frames_dropped, peer_buffer_bytes;
	bool leader;		/* an ensemble's leader (the leader-only rows) */
};

#define METRIC_ENSEMBLE 1u	/* only in an ensemble */
#define METRIC_LEADER 2u	/* only on an ensemble's leader */
#define METRIC_QUANTILES 4u	/* a summary with p50/p95/p99/p999 (ZooKeeper's ADVANCED) */
#define METRIC_ZOOKEEPER 8u	/* ZooKeeper's figure: "zk_" in mntr */

struct metric {
	const char *name;		/* mntr's, without "zk_" for ZooKeeper's */
	const char *prometheus;		/* when not name (+ "_total" for a counter) */
	enum metric_kind kind;
	unsigned flags;
	const char *help;
	void (*get)(const struct metrics_pass *p, struct metric_value *ret);
};

extern const struct metric metrics_table[];
extern const unsigned metrics_count;

void metrics_pass_init(struct metrics_pass *p, const struct server_status *ss);
/* Whether row m applies to this server now (ensemble, leader). */
bool metric_present(const struct metrics_pass *p, const struct metric *m);

/* A double as Java's Double.toString() writes it after ZooKeeper's rounding
 * to 4 decimals ("0.0", "4.5", "1.0E-4"), as mntr prints averages. */
void metrics_java_double(char *buf, size_t size, double v);

/* Appends text to a growing buffer (mntr's and the endpoint's output). */
struct metrics_out {
	void (*write)(void *ctx, const char *text, size_t len);
	void *ctx;
};

/* mntr's lines ("zk_name\tvalue\n"). json: the same as a JSON object's
 * members without the braces, names without "zk_" (/commands/monitor). */
void metrics_write_mntr(const struct server_status *ss, const struct metrics_out *o, bool json);
/* The Prometheus text exposition format (version 0.0.4). */
void metrics_write_prometheus(const struct server_status *ss, const struct metrics_out *o);
