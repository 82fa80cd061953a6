/* path: ZooKeeper's rules for a znode path (PathUtils.validatePath), applied
 * to the UTF-8 bytes a client sent, as Java would see them after decoding. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* True when path (len bytes, not NUL-terminated) is a valid znode path.
 * With sequential, the path may end in '/' (the server appends the suffix). */
bool path_valid(const char *path, size_t len, bool sequential);

/* Length of the parent's path ("/a/b" -> 2 for "/a", "/a" -> 1 for "/").
 * path must start with '/' and not be "/". */
size_t path_parent_len(const char *path, size_t len);
