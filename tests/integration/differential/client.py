"""A raw ZooKeeper protocol connection: every byte under the test's control.

One Connection is one TCP socket. It sends frames, and reads frames in order:
watch notifications (xid -1) are put aside in `events`; everything else is a
reply to the oldest request still waiting (replies come back in request order).
"""
import socket
import struct
import time

from . import jute

REPLY_TIMEOUT_S = 10.0


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class NoReply(Exception):
    """No reply within REPLY_TIMEOUT_S."""


class Connection:
    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=REPLY_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False
        self.events = []   # (seq, type, state, path) in arrival order
        self.seq = 0        # arrival counter shared by events and replies
        self.xid = 0

    def next_xid(self):
        self.xid += 1
        return self.xid

    def send(self, data):
        if self.closed:
            raise Closed("already closed")
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self._mark_closed()
            raise Closed(str(e))

    def _mark_closed(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoReply("timeout")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise NoReply("timeout")
            except (ConnectionResetError, BrokenPipeError, OSError) as e:
                self._mark_closed()
                raise Closed(str(e))
            if not chunk:
                self._mark_closed()
                raise Closed("eof")
            self.buf += chunk

    def read_frame(self, timeout=REPLY_TIMEOUT_S):
        if self.closed:
            raise Closed("already closed")
        deadline = time.monotonic() + timeout
        self._fill(4, deadline)
        (n,) = struct.unpack(">i", self.buf[:4])
        if n < 0 or n > 64 << 20:
            self._mark_closed()
            raise Closed("bad frame length %d" % n)
        self._fill(4 + n, deadline)
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return payload

    def read_reply(self, opname, timeout=REPLY_TIMEOUT_S):
        """Next non-notification frame, decoded as a reply to opname.
        Notifications read on the way are appended to self.events."""
        while True:
            payload = self.read_frame(timeout)
            self.seq += 1
            xid, zxid, err, body, trailing = jute.decode_reply(opname, payload)
            if xid == -1:
                self.events.append((self.seq, body["type"], body["state"], body["path"]))
                continue
            return {"xid": xid, "zxid": zxid, "err": err, "body": body,
                    "trailing": trailing, "seq": self.seq}

    def handshake(self, timeout_ms, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                  with_ro_byte=True):
        self.send(jute.frame(jute.connect_request(timeout_ms, session_id, passwd,
                                                  last_zxid, with_ro_byte=with_ro_byte)))
        payload = self.read_frame()
        return jute.decode_connect_response(payload)

    def close(self):
        if not self.closed:
            self._mark_closed()
