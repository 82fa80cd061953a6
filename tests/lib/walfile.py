"""The write-ahead log's files as the tests read them (storage/wal.h,
storage/wal_format.c): segments named by their first index in hex, a
64-byte header ("CORRALWL", crc32 of the first 60 bytes at 60), then
records padded to 8 bytes, each a 40-byte header (length, crc32 of the
rest, index, term, batch, type, payload length) and its payload."""
import os
import struct
import zlib

SEGMENT_HEADER = 64
RECORD_HEADER = 40


class Record:
    __slots__ = ("offset", "length", "crc", "index", "term", "batch", "type", "payload_len",
                 "padded")

    def __repr__(self):
        return (f"Record(offset={self.offset}, index={self.index}, batch={self.batch}, "
                f"type={self.type}, length={self.length})")


def wal_segments(data_dir):
    """[(first index, path)] of a data directory's log segments, in order."""
    d = os.path.join(str(data_dir), "wal")
    if not os.path.isdir(d):
        return []
    return sorted((int(n[:16], 16), os.path.join(d, n)) for n in os.listdir(d)
                  if len(n) == 20 and n.endswith(".seg"))


def segment_files(data_dir):
    return [p for _, p in wal_segments(data_dir)]


def read_records(path, check=True):
    """Walks a segment's records as corrald does; with check, every one must
    check out (length, crc32, payload length, consecutive indexes)."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"CORRALWL", f"{path}: not a segment"
    assert struct.unpack(">I", b[60:64])[0] == zlib.crc32(b[:60]), f"{path}: header crc"
    first = struct.unpack(">Q", b[40:48])[0]
    recs = []
    off = SEGMENT_HEADER
    while off + RECORD_HEADER <= len(b):
        length, crc = struct.unpack(">II", b[off:off + 8])
        if length == 0:
            break
        r = Record()
        r.offset, r.length, r.crc = off, length, crc
        r.index, r.term, r.batch = struct.unpack(">QQQ", b[off + 8:off + 32])
        r.type = b[off + 32]
        r.payload_len = struct.unpack(">I", b[off + 36:off + 40])[0]
        r.padded = (length + 7) & ~7
        if check:
            assert length >= RECORD_HEADER and off + length <= len(b), f"{path}@{off}: length"
            assert zlib.crc32(b[off + 8:off + length]) == crc, f"{path}@{off}: crc"
            assert r.payload_len == length - RECORD_HEADER, f"{path}@{off}: payload length"
            assert r.index == (recs[-1].index + 1 if recs else first), f"{path}@{off}: index"
        recs.append(r)
        off += r.padded
    return recs


def all_records(data_dir):
    """[(segment path, [Record...])...] in index order."""
    return [(p, read_records(p)) for p in segment_files(data_dir)]


def wal_last_index(data_dir):
    """The index of the last whole record in a (stopped) server's log, or
    None when it has none: the records walked as corrald does, stopping at
    the first that does not check out (a torn tail)."""
    last = None
    for _, path in wal_segments(data_dir):
        with open(path, "rb") as f:
            b = f.read()
        if len(b) < SEGMENT_HEADER or b[:8] != b"CORRALWL":
            continue
        off = SEGMENT_HEADER
        while off + RECORD_HEADER <= len(b):
            length, crc = struct.unpack(">II", b[off:off + 8])
            if length < RECORD_HEADER or off + length > len(b):
                break
            if zlib.crc32(b[off + 8:off + length]) != crc:
                break
            last = struct.unpack(">Q", b[off + 8:off + 16])[0]
            off += (length + 7) & ~7
    return last


def file_digests(directory):
    """relative path -> crc32 of every file under directory."""
    out = {}
    for root, _, files in os.walk(str(directory)):
        for n in files:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, str(directory))] = zlib.crc32(f.read())
    return out
