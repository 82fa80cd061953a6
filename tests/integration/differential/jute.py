"""A minimal jute (ZooKeeper wire format) encoder and decoder.

Only what the differential test needs, written from the protocol doc
(/work/shared/docs/zookeeper-protocol.md): big-endian ints and longs, one-byte
booleans, int32-length-prefixed strings and buffers (-1 = null), int32-counted
vectors. Paths may be given as bytes so that the test controls every byte
(invalid UTF-8, NUL, ...); str is encoded as UTF-8.
"""
import struct

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

def connect_request(timeout, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                    read_only=False, with_ro_byte=True, protocol=0):
    w = Writer().int(protocol).long(last_zxid).int(timeout).long(session_id).buffer(passwd)
    if with_ro_byte:
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
