/* offline: see offline.h. */
#include "offline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>

#include "datadir.h"
#include "snapshot.h"
#include "txn.h"
#include "txn_codec.h"
#include "wal.h"

/* What replaying the log keeps from one record to the next. */
struct replay {
	struct offline_state *s;
	const struct offline_point *pt;
	bool find_only;		/* the first pass of a point in time: no apply */
	uint64_t last_within;	/* find_only: the last index at or before the time */
	uint64_t first_seen;	/* the first index the log holds after the snapshot */
};

/* A record's txn, or NULL for an entry that is not one. */
static int decode(uint8_t type, const uint8_t *data, uint32_t len, struct txn **ret)
{
	*ret = NULL;
	return type == RAFT_COMMAND ? txn_decode(data, len, ret) : 0;
}

static int replay_entry(void *ctx, uint64_t index, uint64_t term, uint8_t type,
			const uint8_t *data, uint32_t len)
{
	struct replay *rp = ctx;
	struct offline_state *s = rp->s;
	if (index <= s->index)
		return 0;	/* in the snapshot */
	if (!rp->first_seen)
		rp->first_seen = index;
	if (index > rp->pt->zxid)
		return -ECANCELED;
	struct txn *t;
	int r = decode(type, data, len, &t);
	if (r < 0)
		return r;
	if (t && t->time_ms > rp->pt->time_ms) {
		txn_free(t);
		return -ECANCELED;
	}
	if (rp->find_only) {
		rp->last_within = index;
		txn_free(t);
		return 0;
	}
	if (index != s->index + 1) {
		txn_free(t);
		return -EBADMSG;	/* a gap between the snapshot and the log */
	}
	if (t) {
		struct txn_result *results = calloc(t->op_count ? t->op_count : 1, sizeof(*results));
		t->zxid = (int64_t)index;
		r = results ? txn_apply(&s->st, t, results) : -ENOMEM;
		free(results);
		s->last_time_ms = t->time_ms;
		s->txns_applied++;
		txn_free(t);
		if (r < 0)
			return r;
	}
	s->index = index;
	s->term = term;
	return 0;
}

static bool is_directory(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The newest snapshot at or before zxid in any of the directories. */
static int find_snapshot(char *const *dirs, size_t count, uint64_t zxid, char *ret_path,
			 size_t size, uint64_t *ret_index)
{
	int r = -ENOENT;
	*ret_index = 0;
	for (size_t i = 0; i < count; i++) {
		char path[4200];
		uint64_t index;
		if (snapshot_find(dirs[i], zxid, path, sizeof(path), &index) == 0 &&
		    (r < 0 || index > *ret_index)) {
			snprintf(ret_path, size, "%s", path);
			*ret_index = index;
			r = 0;
		}
	}
	return r;
}

/* Whose the directories' files are: a snapshot's, else a raft.meta's. */
static void find_identity(char *const *dirs, size_t count, const char *snapshot,
			  struct offline_state *s)
{
	char why[512];
	if (snapshot && snapshot_file_identity(snapshot, &s->id, why, sizeof(why)) == 0) {
		s->have_id = true;
		return;
	}
	for (size_t i = 0; i < count && !s->have_id; i++) {
		struct datadir_meta m;
		if (datadir_meta_read(dirs[i], &m, why, sizeof(why)) == 0) {
			s->id = m.identity;
			s->have_id = true;
		}
	}
}

/* For a point in time: the last index whose txn is not later, found by
 * reading the log once without applying it. */
static int zxid_at_time(char *const *dirs, size_t count, int64_t time_ms, uint64_t *ret,
			char *why, size_t why_size)
{
	struct offline_state none = { 0 };
	struct offline_point pt = { .zxid = UINT64_MAX, .time_ms = time_ms };
	struct replay rp = { .s = &none, .pt = &pt, .find_only = true };
	struct wal_recovery rec;
	int r = wal_read((const char *const *)dirs, count, 0, replay_entry, &rp, &rec, why, why_size);
	if (r < 0 && r != -ECANCELED)
		return r;
	if (!rp.first_seen) {
		snprintf(why, why_size, "the log is empty: no txn tells the time");
		return -ENOENT;
	}
	*ret = rp.last_within ? rp.last_within : rp.first_seen - 1;
	return 0;
}

static int load_dirs(char *const *dirs, size_t count, const struct offline_point *pt,
		     struct offline_state *s, char *why, size_t why_size)
{
	char snap[4200];
	struct snapshot_meta m;
	uint64_t snap_index;
	bool have_snap = find_snapshot(dirs, count, pt->zxid, snap, sizeof(snap), &snap_index) == 0;
	find_identity(dirs, count, have_snap ? snap : NULL, s);
	if (have_snap) {
		int r = snapshot_load_file(snap, NULL, &s->st, &m, why, why_size);
		if (r < 0)
			return r;
		free(m.conf);
		s->index = s->snapshot_index = m.index;
		s->term = m.term;
	}
	struct replay rp = { .s = s, .pt = pt };
	struct wal_recovery rec;
	int r = wal_read((const char *const *)dirs, count, s->index, replay_entry, &rp, &rec, why,
			 why_size);
	if (r == -EBADMSG && rp.first_seen > s->index + 1) {
		if (have_snap)
			snprintf(why, why_size, "the log after the snapshot at zxid 0x%llx begins at "
				 "0x%llx: the records between are in none of the directories given",
				 (unsigned long long)s->snapshot_index, (unsigned long long)rp.first_seen);
		else
			snprintf(why, why_size, "no snapshot at or before zxid 0x%llx, and the log "
				 "begins at 0x%llx: the files do not reach back that far",
				 (unsigned long long)pt->zxid, (unsigned long long)rp.first_seen);
		return r;
	}
	if (r < 0 && r != -ECANCELED)
		return r;
	if (!have_snap && rp.first_seen > 1) {
		snprintf(why, why_size, "no snapshot at or before zxid 0x%llx, and the log begins at "
			 "0x%llx: the files do not reach back that far (an archive keeps "
			 "storage.archive_keep_snapshots snapshots)", (unsigned long long)pt->zxid,
			 (unsigned long long)rp.first_seen);
		return -ERANGE;
	}
	if (!have_snap && !rp.first_seen) {
		snprintf(why, why_size, "no snapshot at or before zxid 0x%llx and no log in %s%s",
			 (unsigned long long)pt->zxid, dirs[0], count > 1 ? " and the others" : "");
		return -ENOENT;
	}
	if (pt->zxid != UINT64_MAX && s->index < pt->zxid) {
		snprintf(why, why_size, "the files end at zxid 0x%llx, before 0x%llx",
			 (unsigned long long)s->index, (unsigned long long)pt->zxid);
		return -ERANGE;
	}
	return 0;
}

int offline_load(char *const *sources, size_t count, const struct offline_point *pt,
		 struct offline_state *ret, char *why, size_t why_size)
{
	struct offline_point at = *pt;
	memset(ret, 0, sizeof(*ret));
	why[0] = 0;
	if (count == 0 || count > 8) {
		snprintf(why, why_size, "give one backup file or 1 to 8 directories");
		return -EINVAL;
	}
	bool dirs = is_directory(sources[0]);
	for (size_t i = 1; i < count; i++)
		if (!dirs || !is_directory(sources[i])) {
			snprintf(why, why_size, "%s: a backup file comes alone; more sources must all "
				 "be directories", sources[i]);
			return -EINVAL;
		}
	if (!dirs && (pt->zxid != UINT64_MAX || pt->time_ms != INT64_MAX)) {
		snprintf(why, why_size, "%s: a backup holds one zxid; a point in time needs the "
			 "data directory or the archive (storage.archive_dir)", sources[0]);
		return -EINVAL;
	}
	int r = 0;
	if (dirs && at.time_ms != INT64_MAX)
		r = zxid_at_time(sources, count, at.time_ms, &at.zxid, why, why_size);
	if (r == 0)
		r = state_init(&ret->st, 1, 0);
	if (r < 0)
		return r;
	if (dirs) {
		r = load_dirs(sources, count, &at, ret, why, why_size);
	} else {
		struct snapshot_meta m;
		r = snapshot_load_file(sources[0], NULL, &ret->st, &m, why, why_size);
		if (r == 0) {
			free(m.conf);
			ret->index = ret->snapshot_index = m.index;
			ret->term = m.term;
			r = snapshot_file_identity(sources[0], &ret->id, why, why_size);
			ret->have_id = r == 0;
		}
	}
	if (r < 0) {
		if (!why[0])
			snprintf(why, why_size, "%s", strerror(-r));
		state_free(&ret->st);
		memset(ret, 0, sizeof(*ret));
	}
	return r;
}

void offline_free(struct offline_state *s)
{
	state_free(&s->st);
	memset(s, 0, sizeof(*s));
}
