"""The adversarial client: what a hostile or careless client does to a
ZooKeeper server, phase by phase, over raw sockets (jute.py's Client).

- mutated_frames: a request of every opcode, as a client library would
  encode it, then mutated (cut short, bytes flipped, a length or count made
  huge or negative, garbage after it, a frame length that lies), each sent
  on a session; the server may answer or close that one connection, never
  anything else.
- half_open: sockets that never send, that send half a ConnectRequest, or
  that begin a frame after their handshake and stop; they are held open.
- never_read: sessions that ask for a big node again and again and never
  read the replies.
- flood_watches: sessions that set watches on ever more paths.

Each phase returns what it held (close() it when done); the test around it
checks that an ordinary client is served meanwhile and that the server's
memory stays within its budget. Mutations come from a seeded random
generator: a failing seed replays."""
import random
import socket
import struct

from jute import (OP, OPEN_ACL, Client, Closed, NoReply, connect_request, encode_body, frame,
                  jint, path_watch_body, request)

# A valid argument set for every opcode (what a client library would send).
ARGS = {
    "create": {"path": "/adv/c", "data": b"x", "acl": OPEN_ACL},
    "create2": {"path": "/adv/c2", "data": b"x", "acl": OPEN_ACL},
    "createContainer": {"path": "/adv/cc", "data": b"", "acl": OPEN_ACL, "flags": 4},
    "createTTL": {"path": "/adv/t", "data": b"", "acl": OPEN_ACL, "flags": 5, "ttl": 1000},
    "delete": {"path": "/adv/c"}, "check": {"path": "/adv"},
    "deleteContainer": {"path": "/adv/cc"},
    "exists": {"path": "/adv", "watch": True}, "getData": {"path": "/adv", "watch": True},
    "getChildren": {"path": "/adv"}, "getChildren2": {"path": "/adv", "watch": True},
    "setData": {"path": "/adv", "data": b"y"}, "getACL": {"path": "/adv"},
    "setACL": {"path": "/adv/c", "acl": OPEN_ACL}, "sync": {"path": "/"},
    "getEphemerals": {"path": "/"}, "getAllChildrenNumber": {"path": "/"},
    "multi": {"ops": [("create", {"path": "/adv/m", "acl": OPEN_ACL}),
                      ("setData", {"path": "/adv/m", "data": b"z"}),
                      ("delete", {"path": "/adv/m"})]},
    "multiRead": {"ops": [("getData", {"path": "/adv"}), ("getChildren", {"path": "/adv"})]},
    "reconfig": {"joining": "server.9=127.0.0.1:1:2;3", "leaving": None, "members": None},
    "checkWatches": {"path": "/adv", "type": 3}, "removeWatches": {"path": "/adv", "type": 3},
    "addWatch": {"path": "/adv", "mode": 1},
    "auth": {"scheme": "digest", "auth": b"user:pw"},
    "setWatches": {"relativeZxid": 0, "data": ["/adv"], "exist": ["/n"], "child": ["/"]},
    "setWatches2": {"relativeZxid": 0, "data": ["/adv"], "exist": [], "child": [],
                    "persistent": ["/adv"], "recursive": ["/"]},
    "sasl": {"token": b"\x00" * 8}, "ping": {}, "whoAmI": {}, "closeSession": {},
    "createSession": {}, "notification": {},
}


def _mutate(rng, body):
    """One mutation of a request body, and its name."""
    b = bytearray(body)
    kind = rng.choice(["cut", "flip", "int", "garbage", "empty"])
    if kind == "cut" and b:
        return bytes(b[:rng.randrange(len(b))]), kind
    if kind == "flip" and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b), kind
    if kind == "int" and len(b) >= 4:
        at = rng.randrange(0, len(b) - 3)
        b[at:at + 4] = struct.pack(">i", rng.choice([-2, -1, 0x7FFFFFFF, 0x10000000, 1 << 20]))
        return bytes(b), kind
    if kind == "garbage":
        return bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))), kind
    return b"", "empty"


class Adversary:
    def __init__(self, host, port, seed=1):
        self.host, self.port = host, port
        self.rng = random.Random(seed)
        self.seed = seed
        self.held = []
        self.closed_by_server = 0
        self.answered = 0

    def _session(self, timeout=5, rcvbuf=None):
        c = Client(self.port, self.host, timeout=timeout, rcvbuf=rcvbuf)
        c.connect(timeout=30000)
        return c

    def _drain(self, c, wait):
        """Reads what the server answers within wait seconds; False once it
        closed the connection."""
        try:
            while True:
                c.sock.settimeout(wait)
                data = c.sock.recv(1 << 16)
                if not data:
                    return False
                self.answered += 1
        except socket.timeout:
            return True
        except OSError:
            return False

    def mutated_frames(self, rounds=3):
        """Every opcode, valid and mutated, rounds times over. Returns how
        many frames were sent."""
        sent = 0
        c = self._session()
        for _ in range(rounds):
            for name, code in sorted(OP.items()):
                body = encode_body(name, ARGS.get(name, {}))
                for mutated, _kind in [(body, "valid")] + [_mutate(self.rng, body)
                                                         for _ in range(4)]:
                    try:
                        c.send(request(c.next_xid(), code, mutated))
                        sent += 1
                        alive = self._drain(c, 0.02)
                    except Closed:
                        alive = False
                    if not alive:
                        self.closed_by_server += 1
                        c.close()
                        c = self._session()
        c.close()
        return sent

    def half_open(self, each=10):
        """Silent sockets, half ConnectRequests, sessions with half a frame;
        all held until close()."""
        for _ in range(each):
            self.held.append(socket.create_connection((self.host, self.port), timeout=10))
        for _ in range(each):
            s = socket.create_connection((self.host, self.port), timeout=10)
            s.sendall(frame(connect_request())[:self.rng.randint(1, 20)])
            self.held.append(s)
        for _ in range(each):
            c = self._session()
            c.send(struct.pack(">i", 200) + b"\x00" * self.rng.randint(0, 100))
            self.held.append(c)
        return len(self.held)

    def never_read(self, path, sessions=30, requests=20):
        """Sessions that ask for path requests times and never read."""
        burst = b"".join(frame(jint(i + 1) + jint(OP["getData"]) + path_watch_body(path))
                         for i in range(requests))
        for _ in range(sessions):
            c = self._session(rcvbuf=4096)
            try:
                c.send(burst)
            except Closed:
                pass
            self.held.append(c)

    def flood_watches(self, sessions=4, per_session=20000, batch=500):
        """Sessions that set exists watches on ever more paths (reading the
        replies); stops for a session the server closes. Returns the watches
        the server confirmed."""
        confirmed = 0
        for s in range(sessions):
            c = self._session(timeout=10)
            n = 0
            try:
                while n < per_session:
                    c.send(b"".join(request(c.next_xid(), OP["exists"],
                                            path_watch_body(f"/flood/{s}/{n + i}", True))
                                    for i in range(batch)))
                    for _ in range(batch):
                        c.reply()
                    n += batch
                    confirmed += batch
            except (Closed, NoReply):
                self.closed_by_server += 1
            self.held.append(c)
        return confirmed

    def close(self):
        for h in self.held:
            try:
                h.close()
            except OSError:
                pass
        self.held = []
