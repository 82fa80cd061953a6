"""The Python side of an ensemble's peer connection, for tests that play a
stranger or a member on a corrald's peer port: its frames
(replication/peer_message.h) and the shared-secret handshake
(replication/peer_auth.h), each in one place.

    s = PeerConnection("127.0.0.1", port)
    ok = s.authenticate(tag, me=9, to=1, secret=b"...")   # the CHALLENGE's proof checked
    s.send(request_vote_frame(tag, 9, term=1000, last_index=10**9, last_term=1000))
    s.closed_by_server(timeout)                           # True once it closed us

raft_view(), settled_view() and refusals() are what the peer-auth and
peer-TLS suites check a refusal by: each server's term, leader and commit
index, and its "peer connection from ... refused" lines.

Nothing here sleeps: reads have deadlines."""
import hashlib
import hmac
import os
import socket
import struct
import time
import zlib

from harness import make_kazoo, stop_kazoo, wait_until

RAFT_REQUEST_VOTE = 3
PEER_PROTOCOL_VERSION = 1

HELLO_MAGIC = b"CRPH"
CHALLENGE_MAGIC = b"CRPC"
RESPONSE_MAGIC = b"CRPR"
HELLO_BYTES, CHALLENGE_BYTES, RESPONSE_BYTES = 60, 72, 40
ACCEPTOR_LABEL = b"corral peer auth v1: acceptor\0"
CONNECTOR_LABEL = b"corral peer auth v1: connector\0"


def cluster_tag(name):
    """The tag every frame of the ensemble named `name` carries (the first
    four bytes of its cluster id, sha256 of the name)."""
    return struct.unpack(">I", hashlib.sha256(name.encode()).digest()[:4])[0]


def frame(tag, sender, ftype, body):
    """One peer frame: length, crc32, version, type, reserved, from, body."""
    rest = struct.pack(">HHIQ", PEER_PROTOCOL_VERSION, ftype, 0, (tag << 32) | sender) + body
    return struct.pack(">II", len(rest) + 4, zlib.crc32(rest) & 0xffffffff) + rest


def request_vote_frame(tag, sender, term, last_index, last_term, pre_vote=False):
    """A RequestVote (version 2) that would win any election it reached."""
    body = struct.pack(">BQQQQBB", 2, term, sender, last_index, last_term, 1, int(pre_vote))
    return frame(tag, sender, RAFT_REQUEST_VOTE, body)


def proof(secret, label, tag, connector, acceptor, nonce_c, nonce_a):
    msg = label + struct.pack(">IQQ", tag, connector, acceptor) + nonce_c + nonce_a
    return hmac.new(secret, msg, hashlib.sha256).digest()


class PeerConnection:
    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout)
        self.timeout = timeout

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv_exactly(self, n):
        """n bytes, or fewer when the other side closed first."""
        out = b""
        self.sock.settimeout(self.timeout)
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out

    def hello(self, tag, me, to, nonce=None):
        self.tag, self.me, self.to = tag, me, to
        self.nonce_c = nonce or os.urandom(32)
        self.send(HELLO_MAGIC + bytes([1, 0, 0, 0]) + struct.pack(">IQQ", tag, me, to)
                  + self.nonce_c)

    def authenticate(self, tag, me, to, secret):
        """The connector's side of the handshake. True when the server's
        CHALLENGE proves `secret` (our RESPONSE then sent); False when its
        proof is of another secret (nothing sent); None when it closed the
        connection instead of answering."""
        self.hello(tag, me, to)
        ch = self.recv_exactly(CHALLENGE_BYTES)
        if len(ch) < CHALLENGE_BYTES:
            return None
        assert ch[:4] == CHALLENGE_MAGIC, ch[:4]
        nonce_a, mac_a = ch[8:40], ch[40:72]
        want = proof(secret, ACCEPTOR_LABEL, tag, me, to, self.nonce_c, nonce_a)
        if not hmac.compare_digest(want, mac_a):
            return False
        mac_c = proof(secret, CONNECTOR_LABEL, tag, me, to, self.nonce_c, nonce_a)
        self.send(RESPONSE_MAGIC + bytes(4) + mac_c)
        return True

    def closed_by_server(self, timeout=10.0):
        """Whether the server closes the connection within timeout (reads
        and drops whatever comes before the end)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def raft_view(c, ids):
    """Each server's (term, leader, commit index)."""
    out = {}
    for sid in ids:
        m = c[sid].mntr()
        out[sid] = (m["corral_raft_term"], m["corral_leader_id"], m["corral_raft_commit_index"])
    return out


def settled_view(c, ids):
    """The (term, leader, commit index) that every server of ids agrees on,
    once they do."""
    def agreed():
        v = raft_view(c, ids)
        return v if len(set(v.values())) == 1 else None
    return wait_until(agreed, 20, what=f"servers {ids} to agree on term, leader and commit")


def refusals(member):
    """The member's log lines that refused a peer connection."""
    return [ln for ln in member.log().splitlines() if "peer connection from" in ln
            and "refused" in ln]


def assert_replicates(c, path):
    """A write on c's first member is read on its second (after a sync):
    the members reach each other through their peer ports."""
    a, b = c.ids[0], c.ids[1]
    zk1, zk2 = make_kazoo(c.hosts(only=[a])), make_kazoo(c.hosts(only=[b]))
    try:
        zk1.start(timeout=30)
        zk2.start(timeout=30)
        zk1.create(path, b"yes")
        zk2.sync(path)
        assert zk2.get(path)[0] == b"yes"
    finally:
        stop_kazoo([zk1, zk2])


def assert_leader_kept_and_served(c, lid, watch_s=2.0):
    """After strangers were refused: lid still leads for watch_s (every
    member's view, polled), and the ensemble takes a write."""
    end = time.monotonic() + watch_s
    while time.monotonic() < end:
        assert c.leader() == lid, c.describe()
        time.sleep(0.1)
    zk = make_kazoo(c.hosts())
    try:
        zk.start(timeout=30)
        zk.create("/still-served", b"")
    finally:
        stop_kazoo([zk])
