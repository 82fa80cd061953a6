/* tools: corrald's commands that work on files, without a server:
 * `corrald dump`, `corrald restore` and `corrald --verify FILE` (a backup).
 * Each returns the process's exit status. */
#pragma once

/* corrald dump [--at-zxid Z] SOURCE...: the tree (paths, data, Stat, ACL),
 * sorted by path, on stdout. */
int tool_dump(int argc, char **argv);
/* corrald restore [-c CONFIG] [--to-zxid Z | --to-time T] SOURCE... DATA_DIR */
int tool_restore(int argc, char **argv);
/* --verify FILE when FILE is not a directory: a backup, checked whole. */
int tool_verify_backup(const char *path);
