"""A minimal raw ZooKeeper-protocol client for tests that need to control
every byte: ConnectRequest/Response, framed requests, replies and events."""
import socket
import struct

OPEN_ACL = [(31, "world", "anyone")]


def jint(v): return struct.pack(">i", v)
def jlong(v): return struct.pack(">q", v)
def jbool(v): return b"\x01" if v else b"\x00"


def jbuf(b):
    if b is None:
        return jint(-1)
    return jint(len(b)) + b


def jstr(s):
    return jbuf(s.encode() if isinstance(s, str) else s)


def jacl(acl):
    return jint(len(acl)) + b"".join(jint(p) + jstr(s) + jstr(i) for p, s, i in acl)


def frame(payload):
    return jint(len(payload)) + payload


def connect_request(session_id=0, passwd=b"\x00" * 16, timeout=10000, last_zxid=0, read_only=True):
    body = jint(0) + jlong(last_zxid) + jint(timeout) + jlong(session_id) + jbuf(passwd)
    if read_only is not None:
        body += jbool(read_only)
    return frame(body)


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.xid = 0

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by the server")
            out += chunk
        return out

    def recv_frame(self):
        (n,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(n)

    def connect(self, **kw):
        self.send_raw(connect_request(**kw))
        body = self.recv_frame()
        proto, timeout, sid = struct.unpack(">iiq", body[:16])
        (plen,) = struct.unpack(">i", body[16:20])
        passwd = body[20:20 + plen]
        self.session_id, self.passwd, self.timeout = sid, passwd, timeout
        return dict(length=len(body), timeout=timeout, session_id=sid, passwd=passwd,
                    read_only=body[20 + plen:])

    def request(self, op, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_raw(frame(jint(xid) + jint(op) + body))
        return xid

    def reply(self):
        """Next reply that is not a watch event: (xid, zxid, err, body)."""
        while True:
            f = self.recv_frame()
            xid, zxid, err = struct.unpack(">iqi", f[:16])
            if xid != -1:
                return xid, zxid, err, f[16:]

    def call(self, op, body=b""):
        self.request(op, body)
        return self.reply()

    def closed_by_server(self, timeout=10):
        """True when the server closes the socket within timeout (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def create_body(path, data=b"", acl=OPEN_ACL, flags=0):
    return jstr(path) + jbuf(data) + jacl(acl) + jint(flags)


def path_watch_body(path, watch=False):
    return jstr(path) + jbool(watch)
