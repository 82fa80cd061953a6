/* archive: where point-in-time recovery finds what the data directory no
 * longer holds (storage.archive_dir). It is laid out as a data directory
 * (snap/<index>.snap, wal/<first index>.seg), so the code that reads a data
 * directory reads an archive too. A snapshot or sealed log segment is put
 * there just before it is purged: a hard link when the archive is on the
 * data directory's file system (instant), else a copy (temp file, fsync,
 * rename, directory fsync). A file that cannot be archived is not purged. */
#pragma once

/* Puts src_dir/name into archive_dir/sub/name (sub: "snap" or "wal"), made
 * when missing. An identical name already there is left as it is (the same
 * file, archived before). Returns 0 or a negative errno. */
int archive_file(int src_dir_fd, const char *name, const char *archive_dir, const char *sub);
