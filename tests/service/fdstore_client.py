"""The clients of test_fdstore.py, run in the container's network namespace
(nsenter -n) with the host's python3 and kazoo, driven by one command per
line on stdin, answering one JSON line each on stdout:

  setup           kazoo: session, ephemeral /eph, one-shot data watch on
                  /watched, persistent watch on /persistent (addWatch)
  load            starts pipelining: a create and a getData after it, with
                  no wait between them, until `stop`
  stop            stops the load and checks it: every request answered once,
                  in the order sent; every acknowledged create is there
  change          sets /watched and /persistent; waits for both events
  raw             a raw connection with a session: its ConnectRequest answered
  half            sends the first half of an exists(/watched) frame on it
  rest            sends the rest; answers the reply's xid and error
  close           closes the raw connection
  report          kazoo's connection states, session id, events
"""
import json
import socket
import struct
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.protocol.connection import ConnectionHandler
from kazoo.protocol.serialization import write_string

EVENTS = []
XIDS = []       # every reply's xid, in the order read from the socket
_read_watch_event = ConnectionHandler._read_watch_event
_read_response = ConnectionHandler._read_response


def _recording_response(self, header, buffer, offset):
    XIDS.append(header.xid)
    return _read_response(self, header, buffer, offset)


def _recording(self, buffer, offset):
    # every event as it arrives, persistent ones too (kazoo 2.8 has no addWatch)
    typ, state, plen = struct.unpack_from("!iii", buffer, offset)
    EVENTS.append((typ, buffer[offset + 12:offset + 12 + plen].decode()))
    return _read_watch_event(self, buffer, offset)


ConnectionHandler._read_watch_event = _recording
ConnectionHandler._read_response = _recording_response


class AddWatch:
    type = 106

    def __init__(self, path, mode):
        self.path, self.mode = path, mode

    def serialize(self):
        return write_string(self.path) + struct.pack("!i", self.mode)

    @classmethod
    def deserialize(cls, buf, offset):
        return True


class Client:
    def __init__(self, hosts):
        self.zk = KazooClient(hosts=hosts, timeout=30,
                              connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1,
                                                "max_delay": 0.1},
                              command_retry={"max_tries": 0})
        self.states = []
        self.zk.add_listener(lambda s: self.states.append(str(s)))
        self.loading = False
        self.sent = []          # (index, kind, async result)
        self.first_xid = 0      # of the load's replies in XIDS
        self.raw = None

    def setup(self):
        self.zk.start(30)
        self.zk.create("/eph", b"e", ephemeral=True)
        self.zk.create("/watched", b"0")
        self.zk.create("/persistent", b"0")
        self.zk.create("/load")
        self.zk.get("/watched", watch=lambda e: None)
        r = self.zk.handler.async_result()
        self.zk._call(AddWatch("/persistent", 0), r)
        r.get(10)
        self.states.clear()
        return {"sid": self.zk.client_id[0]}

    def _load(self):
        i = 0
        while self.loading:
            for kind in ("create", "get"):
                a = (self.zk.create_async(f"/load/n{i}", b"v") if kind == "create"
                     else self.zk.get_async("/watched"))
                self.sent.append((i, kind, a))
            i += 1
            if len(self.sent) - (len(XIDS) - self.first_xid) > 200:
                time.sleep(0.01)    # some in flight always, never a flood
            time.sleep(0.002)

    def load(self):
        self.loading = True
        self.first_xid = len(XIDS)
        self.thread = threading.Thread(target=self._load, daemon=True)
        self.thread.start()
        end = time.monotonic() + 10
        while len(XIDS) - self.first_xid < 20 and time.monotonic() < end:
            time.sleep(0.01)
        return {"answered": len(XIDS) - self.first_xid}

    def stop(self):
        self.loading = False
        self.thread.join()
        errors = []
        for i, kind, a in self.sent:
            try:
                a.get(60)
            except Exception as e:
                errors.append(f"{kind} {i}: {e!r}")
        missing = [i for i, kind, a in self.sent
                   if kind == "create" and a.successful() and not self.zk.exists(f"/load/n{i}")]
        xids = XIDS[self.first_xid:self.first_xid + len(self.sent)]
        # kazoo itself fails a request whose reply has another xid; this
        # sees the whole sequence: each reply once, in the order sent
        return {"sent": len(self.sent), "answered": len(xids),
                "in_order": all(a < b for a, b in zip(xids, xids[1:])),
                "once": len(set(xids)) == len(xids),
                "errors": errors[:5], "missing": missing[:5]}

    def change(self):
        before = len(EVENTS)
        self.zk.set("/watched", b"1")
        self.zk.set("/persistent", b"1")
        end = time.monotonic() + 10
        while time.monotonic() < end and len(EVENTS) - before < 2:
            time.sleep(0.01)
        return {"events": EVENTS[before:]}

    def raw_connect(self, port=2181):
        self.raw = socket.create_connection(("127.0.0.1", port), 10)
        body = struct.pack("!iqiqi", 0, 0, 30000, 0, 16) + bytes(16) + b"\0"
        self.raw.sendall(struct.pack("!i", len(body)) + body)
        reply = self._frame()
        timeout, sid = struct.unpack_from("!iiq", reply)[1:]
        path = b"/watched"
        req = struct.pack("!ii", 7, 3) + struct.pack("!i", len(path)) + path + b"\0"
        self.frame = struct.pack("!i", len(req)) + req
        return {"sid": sid, "timeout": timeout}

    def _frame(self):
        def exact(n):
            b = b""
            while len(b) < n:
                chunk = self.raw.recv(n - len(b))
                if not chunk:
                    raise EOFError("closed")
                b += chunk
            return b
        return exact(struct.unpack("!i", exact(4))[0])

    def half(self):
        self.raw.sendall(self.frame[:9])
        return {"sent": 9}

    def rest(self):
        self.raw.sendall(self.frame[9:])
        xid, zxid, err = struct.unpack_from("!iqi", self._frame())
        return {"xid": xid, "err": err}

    def report(self):
        return {"states": self.states, "sid": self.zk.client_id[0], "connected": self.zk.connected,
                "eph": self.zk.exists("/eph") is not None}


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 2181
    c = Client(f"127.0.0.1:{port}")
    c.port = port
    for line in sys.stdin:
        cmd = line.strip()
        try:
            out = {"setup": c.setup, "load": c.load, "stop": c.stop, "change": c.change,
                   "raw": lambda: c.raw_connect(c.port), "half": c.half, "rest": c.rest,
                   "close": lambda: c.raw.close() or {}, "report": c.report}[cmd]()
        except Exception as e:
            out = {"error": repr(e)}
        print(json.dumps(out), flush=True)
    c.zk.stop()


if __name__ == "__main__":
    main()
