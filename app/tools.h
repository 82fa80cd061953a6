/* tools: corrald's commands that work on files, without a server:
 * `corrald dump`, `corrald restore` and `corrald --verify FILE` (a backup).
 * Each returns the process's exit status. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* corrald dump [--at-zxid Z] SOURCE...: the tree (paths, data, Stat, ACL),
 * sorted by path, on stdout. */
int tool_dump(int argc, char **argv);
/* corrald restore [-c CONFIG] [--to-zxid Z | --to-time T] SOURCE... DATA_DIR */
int tool_restore(int argc, char **argv);
/* --verify FILE when FILE is not a directory: a backup, checked whole. */
int tool_verify_backup(const char *path);
/* corrald import-zookeeper [-c CONFIG] [--accept-torn-tail] ZK_DATA_DIR DATA_DIR
 * (migrate.c) */
int tool_import_zookeeper(int argc, char **argv);
/* corrald export-zookeeper SOURCE... ZK_DATA_DIR (migrate.c) */
int tool_export_zookeeper(int argc, char **argv);

/* For the tools: */
struct server_config;
struct offline_state;
struct wal_identity;
/* The configuration at path (NULL: the default, which may be missing). */
int tool_load_config(const char *path, struct server_config *cfg, char *why, size_t why_size);
/* Whether dir holds nothing a data directory's writer could mix with: it
 * is empty but for wal/ as an empty mount point, and a file system's
 * lost+found (a data directory or log on a disk of its own). */
bool tool_data_dir_empty(const char *dir);
/* Writes s into data_dir (new, or empty as tool_data_dir_empty() says) as
 * cfg's server, alone in a new cluster: a snapshot at s->index and raft.meta. */
int tool_write_data_dir(const char *data_dir, const struct server_config *cfg,
			const struct offline_state *s, char *why, size_t why_size);
void tool_print_cluster(const struct wal_identity *id);
