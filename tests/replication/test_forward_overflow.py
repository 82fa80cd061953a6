"""A follower's client closed by its own watch event must not take the other
clients' forwarded writes with it.

A follower lists the writes it forwarded to the leader (srv->fwd_head..
fwd_tail, in sequence order) and answers each when its txn comes back
through the log. on_committed() first matches the txn to the head of that
list (forward_match: the request is unlisted, then marked `forwarded` again
so that it completes through forward_complete), then applies it. Applying
fires the watches the write triggers; an event queued on a connection whose
unsent output is past client.max_output_bytes closes that connection there
and then (reply_end). When that connection is the one whose request was just
matched, request_queue_drop() unlists the request a second time: it is still
marked forwarded but no longer has a fwd_prev, so forward_unlist() takes it
for the head and clears fwd_head and fwd_tail. Every write forwarded after
it is orphaned: its txn applies on the follower with nobody to answer, its
client waits until its connection times out, and the next unlink of an
orphan writes through pointers to requests that may be freed by then.

The test builds exactly that, on a follower F of a 3-server ensemble whose
servers have a small client.max_output_bytes:

- client A, a raw-socket client with a tiny receive buffer that stops
  reading, registers a data watch on a node P with a very long path (its
  NodeDataChanged event is ~64 KiB), then fills F's unsent output for it to
  half an event short of the limit with pipelined getData of large nodes.
  The kernel's share is measured (A's unread bytes, FIONREAD, plus the
  Send-Q of F's socket in /proc/net/tcp), so the fill lands in its window
  whatever buffer sizes the kernel picked;
- the leader is paused (SIGSTOP, well within an election timeout) so that
  the order of the follower's list is certain: other clients' writes are
  forwarded, then A's setData on P, then more writes of the other clients,
  each step waited for on F's corral_forwarded counter;
- the leader resumes; when F applies A's txn, A's request is matched and
  A's own watch event closes A (this is checked: F logs that A was not
  reading its replies, and A was open before its setData), with the other
  clients' later writes still listed behind it.

Every write of the other clients must be answered (within 20 s), the
follower must go on serving writes, and no server may crash or log a
sanitizer report.
"""
import fcntl
import re
import struct
import termios
import time

from harness import four_letter, wait_until
from jute import Client, create_body, encode_body, path_watch_body

MAX_OUTPUT = 256 * 1024          # client.max_output_bytes on every server
P = "/p-" + "x" * (64 * 1024)    # the watched node: its event is ~64 KiB
EVENT_BYTES = 4 + 16 + 4 + 4 + 4 + len(P.encode())   # frame length, header, type, state, path
BIG = 60000                      # data of /big: coarse fill steps
SMALL = 1000                     # data of /small: fine ones
CLIENTS = 4                      # other clients on the follower
BEFORE = 3                       # writes each forwards before A's
AFTER = 6                        # and after it
ANSWER_WITHIN = 20.0

OP_CREATE, OP_GET_DATA, OP_SET_DATA = 1, 4, 5


class RawClient(Client):
    """A client that speaks the wire protocol itself, so that it can stop
    reading its socket (kazoo always reads). Its receive buffer is made tiny
    before it connects: the kernel then holds little of what the server
    sends it."""

    def __init__(self, port):
        super().__init__(port, rcvbuf=4096)
        self.local_port = self.sock.getsockname()[1]
        self.connect(timeout=30000)

    def call(self, op, body):
        """Sends and reads the reply (while this client still reads):
        (err, body, bytes on the wire)."""
        xid = self.request(op, body)
        got, _zxid, err, reply = self.reply()
        assert got == xid, (got, xid)
        return err, reply, 4 + 16 + len(reply)

    def unread_bytes(self):
        return struct.unpack("i", fcntl.ioctl(self.sock, termios.FIONREAD, b"\0" * 4))[0]


def get_data(path, watch=False):
    return path_watch_body(path, watch)


def set_data(path, data):
    return encode_body("setData", {"path": path, "data": data, "version": -1})


def create(path, data):
    return create_body(path, data)


def send_q(server_port, client_port):
    """Bytes the server's socket of this connection holds (sent and not
    acknowledged, or not sent yet): tx_queue in /proc/net/tcp."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, st = fields[1], fields[2], fields[3]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) == client_port and st == "01"):
                return int(fields[4].split(":")[0], 16)
    raise AssertionError(f"no established socket :{server_port} -> :{client_port} in "
                         "/proc/net/tcp")


STAT_LINE = re.compile(r"/127\.0\.0\.1:(\d+)\[(\d)\]\(queued=(\d+),recved=(\d+),sent=(\d+)")


def stat_entry(server, port):
    """(established, replies sent) of the server's connection from this local
    port, or None when the server lists no such connection."""
    for m in STAT_LINE.finditer(four_letter(server.client_port, "stat")):
        if int(m.group(1)) == port:
            return m.group(2) == "1", int(m.group(5))
    return None


def forwarded(server):
    return int(server.mntr()["corral_forwarded"])


def fill_output(follower, a, replies_sent, target):
    """Pipelines getData from A (which reads nothing more) until the
    follower's unsent output for A is within one small reply below target.
    That output is what the follower generated minus what the kernel took:
    A's unread bytes plus the Send-Q of the follower's socket, read once
    every reply is out (stat) and the kernel's share has stopped moving.
    Returns (bytes queued at the follower, replies sent, fill steps)."""
    _, _, big = a.call(OP_GET_DATA, get_data("/big"))
    _, _, small = a.call(OP_GET_DATA, get_data("/small"))
    replies_sent += 2
    generated = 0
    queued = 0
    steps = 0
    while True:
        gap = target - queued
        size, path = (big, "/big") if gap >= big else (small, "/small")
        n = gap // size
        if n == 0:
            return queued, replies_sent, steps
        steps += 1
        assert steps < 200, f"the fill did not converge: {queued} bytes queued, target {target}"
        for _ in range(n):
            a.request(OP_GET_DATA, get_data(path))
        generated += n * size
        replies_sent += n
        want = replies_sent

        def all_out():
            e = stat_entry(follower, a.local_port)
            assert e is not None and e[0], (
                f"the follower closed A while filling its output ({generated} bytes generated, "
                f"target {target}): the fill overshot client.max_output_bytes")
            return e[1] == want
        wait_until(all_out, 10, interval=0.01,
                   what=f"the follower to have answered A's {want} requests")
        last = [None]

        def kernel_settled():
            k = a.unread_bytes() + send_q(follower.client_port, a.local_port)
            four_letter(follower.client_port, "srvr")   # a turn of the follower's loop
            same = k == last[0]
            last[0] = k
            return same
        wait_until(kernel_settled, 10, interval=0.02,
                   what="the kernel's share of A's replies to stop moving")
        queued = generated - last[0]


def test_forwarded_writes_of_other_clients_are_answered_when_one_client_overflows_on_its_own_watch_event(ensemble):
    c = ensemble(3, election_timeout_ms=2000,
                 config={"client": {"max_output_bytes": MAX_OUTPUT}})
    lid = c.first_leader
    fid = c.followers(lid)[0]
    leader, follower = c[lid], c[fid]

    # A: the nodes it reads and P, then a data watch on P (replies read)
    a = RawClient(follower.client_port)
    for path, data in (("/big", b"b" * BIG), ("/small", b"s" * SMALL), (P, b"0"),
                       ("/w", b"")):
        err, _, _ = a.call(OP_CREATE, create(path, data))
        assert err == 0, f"creating {path[:20]}: error {err}"
    err, _, _ = a.call(OP_GET_DATA, get_data(P, watch=True))
    assert err == 0, err
    replies_sent = 5

    others = [ensemble.kazoo(c.hosts(only=[fid])) for _ in range(CLIENTS)]
    for i, zk in enumerate(others):
        zk.create(f"/w/c{i}", b"")

    # A's unsent output: half an event below the limit
    target = MAX_OUTPUT - EVENT_BYTES // 2
    queued, replies_sent, steps = fill_output(follower, a, replies_sent, target)
    assert MAX_OUTPUT - EVENT_BYTES < queued <= MAX_OUTPUT, queued
    e = stat_entry(follower, a.local_port)
    assert e == (True, replies_sent), f"A's connection before its setData: {e}"

    # the follower's list, in order: BEFORE writes of each other client,
    # A's setData, AFTER writes of each other client
    results = []
    base = forwarded(follower)
    paused_at = time.monotonic()
    leader.pause()
    try:
        for i, zk in enumerate(others):
            for j in range(BEFORE):
                results.append((f"client {i} setData /w/c{i} #{j} (before A's)",
                                zk.set_async(f"/w/c{i}", f"before {j}".encode())))
        n = BEFORE * CLIENTS
        wait_until(lambda: forwarded(follower) == base + n, 5, interval=0.005,
                   what=f"the follower to forward the other clients' first {n} writes")
        a.request(OP_SET_DATA, set_data(P, b"1"))
        n += 1
        wait_until(lambda: forwarded(follower) == base + n, 5, interval=0.005,
                   what="the follower to forward A's setData")
        for i, zk in enumerate(others):
            for j in range(AFTER):
                results.append((f"client {i} create /w/c{i}/after-{j} (after A's)",
                                zk.create_async(f"/w/c{i}/after-{j}", b"")))
        n += AFTER * CLIENTS
        wait_until(lambda: forwarded(follower) == base + n, 5, interval=0.005,
                   what=f"the follower to forward all {n} writes")
    finally:
        leader.resume()
    paused_ms = (time.monotonic() - paused_at) * 1000

    # every write of the other clients is answered
    end = time.monotonic() + ANSWER_WITHIN
    failed = []
    for what, r in results:
        try:
            r.get(timeout=max(0.01, end - time.monotonic()))
        except Exception as ex:
            failed.append(f"{what}: {type(ex).__name__} {ex}".rstrip())

    # what happened to A: closed by the follower, for its output, after its
    # setData (it was open before it)
    closed = re.findall(rf"connection \d+ from 127\.0\.0\.1:{a.local_port} closed: (.*)",
                        follower.log())
    a.close()
    crashed = [f"server {s.id} exited with status {s.proc.returncode}" for s in c
               if not s.running()]
    sanitizer = c.sanitizer_reports()
    problems = []
    if failed:
        problems.append(
            f"{len(failed)} of the {len(results)} writes that {CLIENTS} other clients sent "
            f"through follower {fid} around A's write were not answered within "
            f"{ANSWER_WITHIN:.0f} s: the follower closed A on A's own watch event while "
            f"applying A's write, and the writes forwarded after A's were lost from its list "
            f"of forwarded requests (what each client got instead):\n  " + "\n  ".join(failed))
    problems += crashed + sanitizer
    if not problems:
        # not a vacuous pass: the scenario took place
        assert closed and "client is not reading its replies" in closed[0], (
            f"A was not closed for its output (log: {closed}); the test did not build its "
            f"scenario (queued {queued} of {MAX_OUTPUT}, event {EVENT_BYTES})")
        m = re.search(r"(\d+) bytes queued", closed[0])
        assert m and int(m.group(1)) > MAX_OUTPUT, closed
        assert c.leader() == lid, f"the leader changed during the test: {c.describe()}"
        # the follower goes on serving writes
        zk = ensemble.kazoo(c.hosts(only=[fid]))
        zk.create("/w/still-serving", b"")
        assert zk.get("/w/still-serving")[0] == b""
    detail = (f"(A: local port {a.local_port}, {queued} bytes queued at the follower before "
              f"its setData, reached in {steps} fill steps; its event {EVENT_BYTES} bytes; "
              f"limit {MAX_OUTPUT}; leader {lid} paused {paused_ms:.0f} ms; follower's log on "
              f"A: {closed})")
    assert not problems, "\n".join(problems) + "\n" + detail
