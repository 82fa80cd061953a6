/* crc32: CRC-32 as zlib, gzip, Ethernet and ZooKeeper compute it (the IEEE
 * 802.3 polynomial, reflected, inverted in and out), with zlib's chaining:
 * corral_crc32(corral_crc32(0, a, n), b, m) is the CRC of a followed by b, and
 * every value equals zlib's crc32() of the same bytes.
 *
 * The log's records, the snapshots, the peer frames and the tree's digest
 * (ZooKeeper's: a CRC-32 of each node's path, data and Stat) all use it, so
 * it is on every write's path. zlib computes it a byte or two per cycle;
 * Intel's ISA-L (libisal, through pkg-config where the machine has it)
 * folds with carry-less multiplication, 8-9 times as fast on the short
 * inputs that dominate (64-256 bytes). */
#ifndef CORRAL_CRC32_H
#define CORRAL_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t corral_crc32(uint32_t crc, const void *p, size_t len);
/* Which implementation: "isa-l" or "zlib". */
const char *crc32_backend(void);

#endif
