"""The tests' one codec of the ZooKeeper wire format (jute), and one raw
client over it: every suite that speaks the protocol byte by byte uses this.

Written from the protocol doc (/work/shared/docs/zookeeper-protocol.md):
big-endian ints and longs, one-byte booleans, int32-length-prefixed strings
and buffers (-1 = null), int32-counted vectors. Paths may be given as bytes
so that a test controls every byte (invalid UTF-8, NUL, ...); str is encoded
as UTF-8.

- Writer / Reader: the primitives; jint, jlong, jbool, jbuf, jstr, jacl the
  same as one-liners.
- encode_body(opname, args) / decode_reply(opname, payload): every request
  and reply record by op name (OP, OPNAME, ERR, errname, EVENT).
- connect_request(...) is a ConnectRequest's payload; frame() puts the
  length in front; request(xid, op, body) is a whole framed request.
- Client: one TCP connection. It sends frames and reads them in order:
  watch notifications (xid -1) are put aside in `events`; anything else is
  the reply to the oldest request still waiting.
"""
import socket
import struct
import time

# Opcodes (protocol doc, "Opcodes").
OP = dict(
    notification=0, create=1, delete=2, exists=3, getData=4, setData=5,
    getACL=6, setACL=7, getChildren=8, sync=9, ping=11, getChildren2=12,
    check=13, multi=14, create2=15, reconfig=16, checkWatches=17,
    removeWatches=18, createContainer=19, deleteContainer=20, createTTL=21,
    multiRead=22, auth=100, setWatches=101, sasl=102, getEphemerals=103,
    getAllChildrenNumber=104, setWatches2=105, addWatch=106, whoAmI=107,
    createSession=-10, closeSession=-11,
)
OPNAME = {v: k for k, v in OP.items()}

# Error codes (protocol doc, "Error codes").
ERR = {
    0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY",
    -3: "DATAINCONSISTENCY", -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR",
    -6: "UNIMPLEMENTED", -7: "OPERATIONTIMEOUT", -8: "BADARGUMENTS",
    -12: "UNKNOWNSESSION", -13: "NEWCONFIGNOQUORUM", -14: "RECONFIGINPROGRESS",
    -100: "APIERROR", -101: "NONODE", -102: "NOAUTH", -103: "BADVERSION",
    -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS", -111: "NOTEMPTY",
    -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK", -114: "INVALIDACL",
    -115: "AUTHFAILED", -118: "SESSIONMOVED", -119: "NOTREADONLY",
    -120: "EPHEMERALONLOCALSESSION", -121: "NOWATCHER",
    -123: "RECONFIGDISABLED", -124: "SESSIONCLOSEDREQUIRESASLAUTH",
    -125: "QUOTAEXCEEDED", -127: "THROTTLEDOP",
}


def errname(code):
    return "%s(%d)" % (ERR.get(code, "?"), code)


EVENT = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
         4: "NodeChildrenChanged", 5: "DataWatchRemoved",
         6: "ChildWatchRemoved", 7: "PersistentWatchRemoved"}


class Writer:
    def __init__(self):
        self.parts = []

    def int(self, v):
        self.parts.append(struct.pack(">i", v))
        return self

    def long(self, v):
        self.parts.append(struct.pack(">q", v))
        return self

    def bool(self, v):
        self.parts.append(b"\x01" if v else b"\x00")
        return self

    def buffer(self, v):
        if v is None:
            return self.int(-1)
        if isinstance(v, str):
            v = v.encode("utf-8")
        self.int(len(v))
        self.parts.append(bytes(v))
        return self

    ustring = buffer  # same wire shape; str is UTF-8 encoded, bytes pass as is

    def strings(self, vs):
        if vs is None:
            return self.int(-1)
        self.int(len(vs))
        for s in vs:
            self.ustring(s)
        return self

    def acls(self, acls):
        if acls is None:
            return self.int(-1)
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).ustring(scheme).ustring(ident)
        return self

    def raw(self, b):
        self.parts.append(bytes(b))
        return self

    def bytes(self):
        return b"".join(self.parts)


class Truncated(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise Truncated("need %d bytes at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        b = self._take(1)[0]
        return b != 0 if b in (0, 1) else ("bad-bool", b)

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        return bytes(self._take(n))

    def ustring(self):
        b = self.buffer()
        if b is None:
            return None
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return ("non-utf8", b)

    def strings(self):
        n = self.int()
        if n < 0:
            return None
        return [self.ustring() for _ in range(n)]

    def stat(self):
        keys = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion",
                "aversion", "ephemeralOwner", "dataLength", "numChildren", "pzxid")
        kinds = "llllii" "ilii" "l"
        out = {}
        for k, t in zip(keys, kinds):
            out[k] = self.long() if t == "l" else self.int()
        return out

    def acls(self):
        n = self.int()
        if n < 0:
            return None
        out = []
        for _ in range(n):
            perms = self.int()
            out.append((perms, self.ustring(), self.ustring()))
        return out

    def remaining(self):
        return len(self.data) - self.pos


# ---------------------------------------------------------------- requests

def connect_request(timeout=10000, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                    read_only=False, with_ro_byte=True, protocol=0):
    """A ConnectRequest's payload (frame() it). read_only=None or
    with_ro_byte=False leaves the trailing read-only byte out, as clients
    older than 3.4 do."""
    w = Writer().int(protocol).long(last_zxid).int(timeout).long(session_id).buffer(passwd)
    if with_ro_byte and read_only is not None:
        w.bool(read_only)
    return w.bytes()


def decode_connect_response(payload):
    r = Reader(payload)
    out = {"protocolVersion": r.int(), "timeOut": r.int(), "sessionId": r.long(),
           "passwd": r.buffer()}
    out["readOnly"] = r.bool() if r.remaining() >= 1 else None
    out["trailing"] = r.remaining()
    return out


def _path_watch(a):
    return Writer().ustring(a["path"]).bool(a.get("watch", False)).bytes()


def _create(a):
    return Writer().ustring(a["path"]).buffer(a.get("data", b"")).acls(a["acl"]).int(a.get("flags", 0)).bytes()


def _create_ttl(a):
    return Writer().ustring(a["path"]).buffer(a.get("data", b"")).acls(a["acl"]) \
        .int(a.get("flags", 0)).long(a["ttl"]).bytes()


def _delete(a):
    return Writer().ustring(a["path"]).int(a.get("version", -1)).bytes()


def _set_data(a):
    return Writer().ustring(a["path"]).buffer(a.get("data", b"")).int(a.get("version", -1)).bytes()


def _path(a):
    return Writer().ustring(a["path"]).bytes()


def _set_acl(a):
    return Writer().ustring(a["path"]).acls(a["acl"]).int(a.get("version", -1)).bytes()


def _path_type(key):
    def enc(a):
        return Writer().ustring(a["path"]).int(a[key]).bytes()
    return enc


def _multi_ops(ops):
    """ops: list of (opname, args). Encoded as MultiHeader + record each, then the end marker."""
    w = Writer()
    for name, a in ops:
        code = OP[name] if isinstance(name, str) else name
        w.int(code).bool(False).int(-1)
        w.raw(encode_body(name, a))
    w.int(-1).bool(True).int(-1)
    return w.bytes()


def _auth(a):
    return Writer().int(a.get("type", 0)).ustring(a["scheme"]).buffer(a["auth"]).bytes()


def _set_watches(a):
    w = Writer().long(a["relativeZxid"]).strings(a.get("data", [])) \
        .strings(a.get("exist", [])).strings(a.get("child", []))
    return w.bytes()


def _set_watches2(a):
    w = Writer().long(a["relativeZxid"]).strings(a.get("data", [])) \
        .strings(a.get("exist", [])).strings(a.get("child", [])) \
        .strings(a.get("persistent", [])).strings(a.get("recursive", []))
    return w.bytes()


def _reconfig(a):
    return Writer().ustring(a.get("joining")).ustring(a.get("leaving")) \
        .ustring(a.get("members")).long(a.get("configId", -1)).bytes()


def _none(a):
    return b""


ENCODERS = {
    "create": _create, "create2": _create, "createContainer": _create,
    "createTTL": _create_ttl, "delete": _delete, "exists": _path_watch,
    "getData": _path_watch, "setData": _set_data, "getACL": _path,
    "setACL": _set_acl, "getChildren": _path_watch, "getChildren2": _path_watch,
    "sync": _path, "ping": _none, "check": _delete,
    "multi": lambda a: _multi_ops(a["ops"]), "multiRead": lambda a: _multi_ops(a["ops"]),
    "reconfig": _reconfig, "checkWatches": _path_type("type"),
    "removeWatches": _path_type("type"), "deleteContainer": _path,
    "auth": _auth, "setWatches": _set_watches, "setWatches2": _set_watches2,
    "sasl": lambda a: Writer().buffer(a.get("token", b"")).bytes(),
    "getEphemerals": _path, "getAllChildrenNumber": _path,
    "addWatch": _path_type("mode"), "whoAmI": _none, "closeSession": _none,
    "createSession": _none, "notification": _none,
}


def encode_body(name, a):
    if "raw_body" in a:
        return a["raw_body"]
    return ENCODERS[name](a)


def encode_request(xid, name, a):
    code = a.get("opcode", OP.get(name))
    return Writer().int(xid).int(code).raw(encode_body(name, a)).bytes()


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def request(xid, op, body=b""):
    """A whole framed request: header (xid, op by name or code) and body."""
    code = OP[op] if isinstance(op, str) else op
    return frame(struct.pack(">ii", xid, code) + body)


# One-liners for tests that put a body together field by field.

OPEN_ACL = [(31, "world", "anyone")]


def jint(v): return struct.pack(">i", v)
def jlong(v): return struct.pack(">q", v)
def jbool(v): return b"\x01" if v else b"\x00"
def jbuf(b): return Writer().buffer(b).bytes()
def jstr(s): return Writer().ustring(s).bytes()
def jacl(acl): return Writer().acls(acl).bytes()


def create_body(path, data=b"", acl=OPEN_ACL, flags=0):
    return _create({"path": path, "data": data, "acl": acl, "flags": flags})


def path_watch_body(path, watch=False):
    return _path_watch({"path": path, "watch": watch})


# ---------------------------------------------------------------- responses

def _d_stat(r):
    return {"stat": r.stat()}


def _d_path(r):
    return {"path": r.ustring()}


def _d_path_stat(r):
    return {"path": r.ustring(), "stat": r.stat()}


def _d_data_stat(r):
    return {"data": r.buffer(), "stat": r.stat()}


def _d_acl_stat(r):
    return {"acl": r.acls(), "stat": r.stat()}


def _d_children(r):
    return {"children": r.strings()}


def _d_children_stat(r):
    return {"children": r.strings(), "stat": r.stat()}


def _d_nothing(r):
    return {}


def _d_int(r):
    return {"int": r.int()}


def _d_whoami(r):
    n = r.int()
    return {"clientInfo": None if n < 0 else [(r.ustring(), r.ustring()) for _ in range(n)]}


def _d_multi(r):
    results = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done is True:
            results.append({"end": (typ, err)}) if (typ, err) != (-1, -1) else None
            break
        if typ == -1:
            results.append({"type": "error", "err": r.int(), "hdr_err": err})
            continue
        name = OPNAME.get(typ, typ)
        entry = {"type": name, "hdr_err": err}
        if typ in (1,):
            entry.update(_d_path(r))
        elif typ in (15, 19, 21):
            entry.update(_d_path_stat(r))
        elif typ == 5:
            entry.update(_d_stat(r))
        elif typ == 8:
            entry.update(_d_children(r))
        elif typ == 4:
            entry.update(_d_data_stat(r))
        results.append(entry)
    return {"results": results}


def _d_sasl(r):
    return {"token": r.buffer()}


DECODERS = {
    "create": _d_path, "create2": _d_path_stat, "createContainer": _d_path_stat,
    "createTTL": _d_path_stat, "delete": _d_nothing, "exists": _d_stat,
    "getData": _d_data_stat, "setData": _d_stat, "getACL": _d_acl_stat,
    "setACL": _d_stat, "getChildren": _d_children, "getChildren2": _d_children_stat,
    "sync": _d_path, "ping": _d_nothing, "multi": _d_multi, "multiRead": _d_multi,
    "reconfig": _d_data_stat, "checkWatches": _d_nothing, "removeWatches": _d_nothing,
    "deleteContainer": _d_nothing, "auth": _d_nothing, "setWatches": _d_nothing,
    "setWatches2": _d_nothing, "sasl": _d_sasl, "getEphemerals": _d_children,
    "getAllChildrenNumber": _d_int, "addWatch": _d_int, "whoAmI": _d_whoami,
    "closeSession": _d_nothing, "check": _d_stat,
}


def decode_reply(name, payload):
    """ReplyHeader + body. Returns (xid, zxid, err, body-dict-or-None, trailing-bytes)."""
    r = Reader(payload)
    xid, zxid, err = r.int(), r.long(), r.int()
    body = None
    if xid == -1:
        body = {"type": r.int(), "state": r.int(), "path": r.ustring()}
    elif err == 0 and r.remaining() > 0 and name in DECODERS:
        try:
            body = DECODERS[name](r)
        except Truncated as e:
            body = {"undecodable": str(e), "raw": payload[16:].hex()}
    elif r.remaining() > 0:
        body = {"raw": payload[16:].hex()}
    return xid, zxid, err, body, r.remaining()


# ---------------------------------------------------------------- a client

REPLY_TIMEOUT_S = 10.0
MAX_FRAME = 64 << 20


class Closed(ConnectionError):
    """The server closed the connection (EOF or reset)."""


class NoReply(TimeoutError):
    """Nothing arrived within the timeout."""


class Client:
    """One raw TCP connection to a server; every byte under the test's
    control. Frames are read in order through one buffer: notifications
    (xid -1) go to `events` as (seq, type, state, path), anything else is a
    reply. rcvbuf shrinks the socket's receive buffer (a client that reads
    slowly fills it sooner)."""

    def __init__(self, port, host="127.0.0.1", timeout=REPLY_TIMEOUT_S, rcvbuf=None):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False
        self.events = []
        self.seq = 0        # arrival counter shared by events and replies
        self.xid = 0
        self.session_id = self.passwd = None

    # -- bytes

    def send(self, data):
        if self.closed:
            raise Closed("already closed")
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self._mark_closed()
            raise Closed(str(e)) from None

    send_raw = send

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
                # no more than the frame needs: what the test has not read
                # stays in the kernel's buffer (tests that stop reading count it)
                chunk = self.sock.recv(n - len(self.buf))
            except socket.timeout:
                raise NoReply("timeout") from None
            except OSError as e:
                self._mark_closed()
                raise Closed(str(e)) from None
            if not chunk:
                self._mark_closed()
                raise Closed("closed by the server")
            self.buf += chunk

    def recv_exact(self, n, timeout=None):
        if self.closed:
            raise Closed("already closed")
        self._fill(n, time.monotonic() + (timeout or self.timeout))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self, timeout=None):
        if self.closed:
            raise Closed("already closed")
        deadline = time.monotonic() + (timeout or self.timeout)
        self._fill(4, deadline)
        (n,) = struct.unpack_from(">i", self.buf)
        if n < 0 or n > MAX_FRAME:
            self._mark_closed()
            raise Closed("bad frame length %d" % n)
        self._fill(4 + n, deadline)
        payload = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        return payload

    recv_frame = read_frame

    def frames(self, timeout=None):
        """Yields frames as they arrive, for ever (each within timeout)."""
        while True:
            yield self.read_frame(timeout)

    def closed_by_server(self, timeout=10):
        """True when the server closes the connection within timeout (EOF or
        reset); what it sends before is read and dropped."""
        if self.closed:
            return True
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                self.sock.settimeout(max(0.01, end - time.monotonic()))
                if not self.sock.recv(65536):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True
        return False

    def close(self):
        if not self.closed:
            self._mark_closed()

    # -- a session

    def handshake(self, timeout_ms=10000, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                  read_only=False, with_ro_byte=True):
        """Sends a ConnectRequest, returns decode_connect_response's dict."""
        self.send(frame(connect_request(timeout_ms, session_id, passwd, last_zxid,
                                        read_only, with_ro_byte)))
        r = decode_connect_response(self.read_frame())
        self.session_id, self.passwd = r["sessionId"], r["passwd"]
        return r

    def connect(self, timeout=10000, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                read_only=False):
        """A handshake, answered as {length, timeout, session_id, passwd,
        read_only (the bytes after the password)}."""
        self.send(frame(connect_request(timeout, session_id, passwd, last_zxid, read_only)))
        body = self.read_frame()
        _, to, sid, plen = struct.unpack_from(">iiqi", body)
        self.session_id, self.passwd, self.negotiated = sid, body[20:20 + plen], to
        return dict(length=len(body), timeout=to, session_id=sid, passwd=self.passwd,
                    read_only=body[20 + plen:])

    # -- requests and replies

    def next_xid(self):
        self.xid += 1
        return self.xid

    def request(self, op, body=b"", xid=None):
        """Sends a request (op by name or code); returns its xid."""
        if xid is None:
            xid = self.next_xid()
        self.send(request(xid, op, body))
        return xid

    def _next_reply_frame(self, timeout):
        while True:
            f = self.read_frame(timeout)
            self.seq += 1
            xid = struct.unpack_from(">i", f)[0]
            if xid != -1:
                return f
            r = Reader(f[16:])
            self.events.append((self.seq, r.int(), r.int(), r.ustring()))

    def reply(self, timeout=None):
        """The next reply that is not a notification: (xid, zxid, err, body bytes)."""
        f = self._next_reply_frame(timeout)
        xid, zxid, err = struct.unpack_from(">iqi", f)
        return xid, zxid, err, f[16:]

    def call(self, op, body=b""):
        self.request(op, body)
        return self.reply()

    def read_reply(self, opname, timeout=None):
        """The next reply decoded as opname's: {xid, zxid, err, body (a dict),
        trailing, seq}."""
        f = self._next_reply_frame(timeout)
        xid, zxid, err, body, trailing = decode_reply(opname, f)
        return {"xid": xid, "zxid": zxid, "err": err, "body": body,
                "trailing": trailing, "seq": self.seq}
