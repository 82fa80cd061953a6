"""Run the differential script against one server and produce its transcript.

A transcript is a list of records, one per step, each already *normalised*:
everything that legitimately differs between two correct servers (absolute
zxids, times, session ids, passwords, children order) is replaced by a
symbolic form, so that two transcripts can be compared with ==.

Normalisations (and why):
- Absolute zxids are never compared. corral does not consume a zxid for a
  write that fails its checks (README, "Compatibility notes"), ZooKeeper logs an
  error txn for it, so absolute values drift apart. Instead every zxid seen in a
  Stat (czxid, mzxid, pzxid) is mapped to the step whose successful write produced
  it ("Z12" = the zxid in the reply header of the successful write of step 12),
  or "after:Z12" for a txn without a reply to us (session expiry, container/TTL
  cleanup) that came after step 12's write, or "0". That keeps every relation
  (czxid == mzxid, pzxid == the czxid of the last child created, ...) and makes
  it comparable. ReplyHeader.zxid itself is not compared for the same reason.
- ctime/mtime are wall clock: only "is it zero" is compared.
- Session ids are replaced by the script's session names (ephemeralOwner too).
- Passwords: only their length and whether they are all zero.
- Children lists and getEphemerals lists are compared sorted: the order is
  unspecified in ZooKeeper (a HashSet's) and creation order in corral (README).
  whoAmI's list too: ZooKeeper keeps a connection's identities in a hash set.
- The events of a step that ends a session (closeSession, expiry) are compared
  as sorted lists: ZooKeeper deletes the session's ephemerals in HashSet order,
  all in one txn, so the order among them is unspecified.
- A reply with err != 0 has no body (protocol doc: "body only when err == 0"),
  and clients do not read one. ZooKeeper sometimes sends one anyway (an empty
  MultiResponse after a multiRead's MARSHALLINGERROR); it is not compared.
- The ping after each step (used to collect the watch events of every session
  and to notice closed connections) is not part of the record.
"""
import bisect
import time

import jute
from jute import REPLY_TIMEOUT_S, Closed, NoReply
from jute import Client as Connection

HUGE_ZXID = 1 << 62
SPECIAL_XID = {"auth": -4, "ping": -2, "setWatches": -8, "setWatches2": -8}
WRITE_OPS = {"create", "create2", "createContainer", "createTTL", "delete", "setData",
             "setACL", "multi", "closeSession", "deleteContainer"}
PERMS = "rwcda"


class Sess:
    def __init__(self, name):
        self.name = name
        self.conn = None
        self.sid = None
        self.passwd = None
        self.idle = False
        self.last_zxid = 0


def fmt_bytes(b):
    if b is None:
        return None
    if isinstance(b, tuple):  # ("non-utf8", raw)
        return "non-utf8:" + b[1].hex()
    if isinstance(b, str):
        return b
    try:
        s = b.decode("ascii")
        if s.isprintable():
            return "b'%s'" % s
    except UnicodeDecodeError:
        pass
    return "hex:" + b.hex()


def fmt_perms(p):
    s = "".join(c if p & (1 << i) else "-" for i, c in enumerate(PERMS))
    return s if 0 <= p <= 31 else "%s(%d)" % (s, p)


def describe(step):
    """One line that says what a step does."""
    skip = {"s", "op", "note", "unordered_events"}
    parts = []
    for k, v in step.items():
        if k in skip:
            continue
        if k == "ops":
            v = "[" + "; ".join(n + " " + " ".join("%s=%s" % (kk, _short(vv)) for kk, vv in a.items())
                                for n, a in v) + "]"
        elif k == "acl" and isinstance(v, list):
            v = [(fmt_perms(p), s, i) for p, s, i in v]
        else:
            v = _short(v)
        parts.append("%s=%s" % (k, v))
    return "%s %s %s" % (step.get("s", "-"), step["op"], " ".join(parts))


def _short(v):
    if isinstance(v, bytes):
        try:
            s = v.decode("utf-8")
            if s.isprintable():
                return repr(s) if len(v) < 80 else "%r... (%d bytes)" % (s[:40], len(v))
        except UnicodeDecodeError:
            pass
        return "bytes:" + (v.hex() if len(v) < 80 else v[:40].hex() + "... (%d bytes)" % len(v))
    if isinstance(v, str):
        return repr(v) if len(v) < 80 else "%r... (%d chars)" % (v[:40], len(v))
    if isinstance(v, list) and v and isinstance(v[0], tuple) and len(v[0]) == 3 and isinstance(v[0][0], int):
        return str([(fmt_perms(p), s, i) for p, s, i in v])
    return str(v)


class Runner:
    def __init__(self, port, name="server"):
        self.port = port
        self.name = name
        self.sessions = {}
        self.orphans = []       # (session name, old connection) after a resume
        self.sid_names = {}
        self.labels = {}        # zxid -> "Z<step>"
        self.label_keys = []    # sorted zxids that have a label
        self.records = []
        self.sent_ops = set()   # opcodes actually sent (multi's sub-ops too)
        self.errors_seen = set()  # error codes in replies (multi results too)
        self.requests_sent = 0
        self.step_index = 0

    # ------------------------------------------------------------ helpers
    def sess(self, name):
        if name not in self.sessions:
            self.sessions[name] = Sess(name)
        return self.sessions[name]

    def label(self, zxid, label):
        if zxid in self.labels or zxid <= 0:
            return
        self.labels[zxid] = label
        bisect.insort(self.label_keys, zxid)

    def zx(self, v):
        if v == 0:
            return "0"
        if v in self.labels:
            return self.labels[v]
        i = bisect.bisect_left(self.label_keys, v)
        if i == 0:
            return "before:Z-start" if v > 0 else "neg:%d" % v
        return "after:" + self.labels[self.label_keys[i - 1]]

    def owner(self, v):
        if v == 0:
            return 0
        return self.sid_names.get(v, "unknown-session")

    def norm_stat(self, st):
        if st is None:
            return None
        return {
            "czxid": self.zx(st["czxid"]), "mzxid": self.zx(st["mzxid"]),
            "pzxid": self.zx(st["pzxid"]),
            "ctime": "0" if st["ctime"] == 0 else "t", "mtime": "0" if st["mtime"] == 0 else "t",
            "version": st["version"], "cversion": st["cversion"], "aversion": st["aversion"],
            "ephemeralOwner": self.owner(st["ephemeralOwner"]),
            "dataLength": st["dataLength"], "numChildren": st["numChildren"],
        }

    def norm_body(self, op, body):
        if body is None:
            return None
        out = {}
        for k, v in body.items():
            if k == "stat":
                out[k] = self.norm_stat(v)
            elif k == "children":
                out[k] = None if v is None else sorted(fmt_bytes(c) for c in v)
            elif k in ("data", "token"):
                out[k] = fmt_bytes(v)
            elif k == "path":
                out[k] = fmt_bytes(v)
            elif k == "acl":
                out[k] = None if v is None else [[fmt_perms(p), fmt_bytes(s), fmt_bytes(i)] for p, s, i in v]
            elif k == "clientInfo":
                out[k] = None if v is None else sorted([fmt_bytes(a), fmt_bytes(b)] for a, b in v)
            elif k == "results":
                out[k] = [self.norm_multi_entry(e) for e in v]
            else:
                out[k] = v
        return out

    def norm_multi_entry(self, e):
        out = {}
        for k, v in e.items():
            if k == "err":
                out[k] = jute.errname(v)
            elif k == "hdr_err":
                if v != -1:
                    out[k] = v
            else:
                out.update(self.norm_body(None, {k: v}))
        return out

    def norm_reply(self, step, op, xid, r, label=None):
        rep = {"err": jute.errname(r["err"])}
        if r["xid"] != xid:
            rep["xid"] = r["xid"]
        if r["body"] is not None and r["err"] == 0:
            rep["body"] = self.norm_body(op, r["body"])
        if r["trailing"] and r["err"] == 0:
            rep["trailing_bytes"] = r["trailing"]
        return rep

    # ------------------------------------------------------------ sending
    def send_and_read(self, s, op, args, xid=None, label=None):
        """Returns (normalised reply, raw reply or None). label: the name given to
        the zxid of this request if it is a successful write."""
        conn = s.conn
        if conn is None or conn.closed:
            return "NOT CONNECTED (not sent)", None
        if xid is None:
            xid = (None if "opcode" in args else SPECIAL_XID.get(op)) or conn.next_xid()
        code = args.get("opcode", jute.OP.get(op))
        self.sent_ops.add(code)
        self.requests_sent += 1
        try:
            conn.send(jute.frame(jute.encode_request(xid, op, args)))
            r = self.read_reply(conn, op)
        except Closed:
            return "CONNECTION CLOSED (no reply)", None
        except NoReply:
            conn.close()
            return "NO REPLY (timeout)", None
        s.last_zxid = max(s.last_zxid, r["zxid"])
        if label and self.successful_write(op, r):
            self.label(r["zxid"], label)
        return self.norm_reply(None, op, xid, r), r

    def read_reply(self, conn, op):
        """conn.read_reply, pinging the other sessions while waiting (so that a
        server that does not answer does not also expire every short session)."""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            try:
                r = conn.read_reply(op, timeout=0.25)
                self.errors_seen.add(r["err"])
                for e in (r["body"] or {}).get("results", []) if r["err"] == 0 else ():
                    if e.get("type") == "error":
                        self.errors_seen.add(e["err"])
                return r
            except NoReply:
                if time.monotonic() > deadline:
                    raise
                self.keepalive(exclude=conn)

    def successful_write(self, op, r):
        if r is None or r["err"] != 0 or op not in WRITE_OPS:
            return False
        if op == "multi":
            res = (r["body"] or {}).get("results", [])
            return all(e.get("type") != "error" for e in res) and len(res) > 0
        return True

    # ------------------------------------------------------------ steps
    def run(self, steps):
        for i, step in enumerate(steps):
            self.step_index = i
            try:
                rec = self.run_step(i, step)
            except Exception as e:  # a runner bug must not hide the rest
                rec = {"i": i, "desc": describe(step), "reply": "RUNNER ERROR %r" % (e,)}
            self.records.append(rec)
        return self.records

    def run_step(self, i, step):
        op = step["op"]
        rec = {"i": i, "desc": describe(step)}
        handler = getattr(self, "step_" + op, None)
        seqs = {}
        if handler:
            rec["reply"] = handler(i, step)
        else:
            s = self.sess(step["s"])
            args = {k: v for k, v in step.items() if k not in ("s", "op", "note", "xid", "unordered_events")}
            if op in ("multi", "multiRead"):
                for sub, _ in args["ops"]:
                    self.sent_ops.add(jute.OP[sub])
            if "relativeZxid" in args and isinstance(args["relativeZxid"], str):
                args["relativeZxid"] = self.resolve_zxid(s, args["relativeZxid"])
            reply, raw = self.send_and_read(s, op, args, step.get("xid"), label="Z%d" % i)
            rec["reply"] = reply
            if raw is not None:
                seqs[step["s"]] = [raw["seq"]]
        extra = self.flush(rec, step)
        seqs.update(getattr(self, "_batch_seqs", {}))
        self._batch_seqs = {}
        self.collect_events(rec, seqs)
        if step.get("unordered_events") and "events" in rec:
            rec["events"] = {k: sorted(v) for k, v in rec["events"].items()}
        rec.update(extra)
        return rec

    def step_mark(self, i, step):
        """Remember the last zxid session s has seen (for a later setWatches)."""
        s = self.sess(step["s"])
        s.mark = s.last_zxid
        return "marked"

    def resolve_zxid(self, s, spec):
        if spec == "mark":
            return s.mark
        if spec == "last":
            return s.last_zxid
        if spec == "huge":
            return HUGE_ZXID
        raise ValueError(spec)

    def step_connect(self, i, step):
        name = step["s"]
        timeout = step.get("timeout", 30000)
        sid, passwd = 0, b"\0" * 16
        target = None
        if "resume" in step:
            target = self.sessions[step["resume"]]
            sid, passwd = target.sid, target.passwd
            if step.get("passwd") == "wrong":
                passwd = bytes((b ^ 0x5A) for b in passwd)
        last = step.get("last_zxid", 0)
        if last == "huge":
            last = HUGE_ZXID
        elif last == "last":
            last = (target or self.sess(name)).last_zxid
        try:
            conn = Connection(self.port)
        except OSError as e:
            return "CONNECT FAILED %s" % e
        pipelined = step.get("pipeline", [])
        data = jute.frame(jute.connect_request(timeout, sid, passwd, last,
                                               with_ro_byte=step.get("ro_byte", True)))
        xids = []
        for opname, a in pipelined:
            x = SPECIAL_XID.get(opname) or conn.next_xid()
            xids.append((x, opname))
            self.sent_ops.add(jute.OP[opname])
            self.requests_sent += 1
            data += jute.frame(jute.encode_request(x, opname, a))
        self.requests_sent += 1  # the ConnectRequest
        s = self.sess(name)
        if s.conn is not None and not s.conn.closed and s.conn is not conn:
            self.orphans.append((name, s.conn))
        s.conn = conn
        s.idle = False
        try:
            conn.send(data)
            payload = conn.read_frame()
        except Closed:
            return "CLOSED without ConnectResponse"
        except NoReply:
            conn.close()
            return "NO ConnectResponse (timeout)"
        resp = jute.decode_connect_response(payload)
        out = {"protocolVersion": resp["protocolVersion"], "timeOut": resp["timeOut"]}
        rsid = resp["sessionId"]
        if rsid == 0:
            out["session"] = "0"
        elif target is not None and rsid == target.sid:
            out["session"] = "same as " + target.name
            s.sid, s.passwd = rsid, resp["passwd"]
        elif rsid in self.sid_names:
            out["session"] = "reused id of " + self.sid_names[rsid]
        else:
            out["session"] = "new"
            self.sid_names[rsid] = name
            s.sid, s.passwd = rsid, resp["passwd"]
        pw = resp["passwd"]
        out["passwd"] = None if pw is None else ("%d zero bytes" % len(pw) if not any(pw) else "%d bytes" % len(pw))
        out["readOnly"] = resp["readOnly"]
        if resp["trailing"]:
            out["trailing_bytes"] = resp["trailing"]
        if pipelined:
            reps = []
            for x, opname in xids:
                try:
                    r = self.read_reply(conn, opname)
                except Closed:
                    reps.append("CONNECTION CLOSED (no reply)")
                    break
                except NoReply:
                    reps.append("NO REPLY (timeout)")
                    conn.close()
                    break
                if self.successful_write(opname, r):
                    self.label(r["zxid"], "Z%d.%d" % (i, len(reps)))
                reps.append(self.norm_reply(None, opname, x, r))
            out["pipelined"] = reps
        return out

    def step_batch(self, i, step):
        """Several requests written at once (one send), replies read in order."""
        s = self.sess(step["s"])
        conn = s.conn
        if conn is None or conn.closed:
            return "NOT CONNECTED (not sent)"
        data = b""
        xids = []
        for opname, a in step["ops"]:
            x = SPECIAL_XID.get(opname) or conn.next_xid()
            xids.append((x, opname))
            self.sent_ops.add(jute.OP[opname])
            self.requests_sent += 1
            data += jute.frame(jute.encode_request(x, opname, a))
        reps = []
        seqs = []
        try:
            conn.send(data)
        except Closed:
            return "CONNECTION CLOSED (not sent)"
        for k, (x, opname) in enumerate(xids):
            try:
                r = self.read_reply(conn, opname)
            except Closed:
                reps.append("CONNECTION CLOSED (no reply)")
                break
            except NoReply:
                reps.append("NO REPLY (timeout)")
                conn.close()
                break
            seqs.append(r["seq"])
            if self.successful_write(opname, r):
                self.label(r["zxid"], "Z%d.%d" % (i, k))
            reps.append(self.norm_reply(None, opname, x, r))
        self._batch_seqs = {step["s"]: seqs}
        return reps

    def step_idle(self, i, step):
        """Stop pinging a session (so that it expires)."""
        self.sess(step["s"]).idle = True
        return "idle"

    def keepalive(self, exclude=None):
        for name in sorted(self.sessions):
            s = self.sessions[name]
            if s.idle or s.conn is None or s.conn.closed or s.conn is exclude:
                continue
            try:
                s.conn.send(jute.frame(jute.encode_request(-2, "ping", {})))
                s.conn.read_reply("ping")
            except (Closed, NoReply):
                pass

    def step_sleep(self, i, step):
        end = time.monotonic() + step["seconds"]
        while time.monotonic() < end:
            self.keepalive()
            time.sleep(0.1)
        return "slept"

    def step_wait_gone(self, i, step):
        """Poll exists(path) from session s until NONODE (bounded); record the last reply.
        The number of polls is timing, not behaviour, so it is not recorded."""
        s = self.sess(step["s"])
        end = time.monotonic() + step.get("timeout", 15)
        while True:
            reply, raw = self.send_and_read(s, "exists", {"path": step["path"], "watch": False})
            if raw is None or raw["err"] != 0 or time.monotonic() > end:
                return {"final": reply, "gone_in_time": raw is not None and raw["err"] == -101}
            self.keepalive()
            time.sleep(0.1)

    def step_expect_close(self, i, step):
        """Wait (bounded) for the server to close the connection of an idle session."""
        s = self.sess(step["s"])
        conn = s.conn
        if conn is None or conn.closed:
            return "already closed"
        end = time.monotonic() + step.get("timeout", 10)
        frames = 0
        while time.monotonic() < end:
            try:
                conn.read_reply("ping", timeout=0.2)
                frames += 1
            except Closed:
                return "closed" + (" after %d non-event frames" % frames if frames else "")
            except NoReply:
                self.keepalive()
        return "still open after %ss" % step.get("timeout", 10)

    def step_dump(self, i, step):
        """The whole tree, read by session s: per node getData + getACL + getChildren2."""
        s = self.sess(step["s"])
        out = {}
        todo = [step.get("path", "/")]
        while todo:
            p = todo.pop()
            d, _ = self.send_and_read(s, "getData", {"path": p})
            a, _ = self.send_and_read(s, "getACL", {"path": p})
            c, raw = self.send_and_read(s, "getChildren2", {"path": p})
            out[p] = {"getData": d, "getACL": a, "getChildren2": c}
            if raw is not None and raw["err"] == 0:
                for ch in raw["body"]["children"]:
                    todo.append((p.rstrip("/") + "/" + ch) if isinstance(ch, str) else p)
        return out

    # ------------------------------------------------------------ flush & events
    def flush(self, rec, step):
        """Ping every active session so that all events caused by the step have
        arrived, and notice connections that the server closed."""
        closed = []
        notes = []
        for name in sorted(self.sessions):
            s = self.sessions[name]
            if s.conn is None or s.conn.closed:
                if s.conn is not None and getattr(s.conn, "_reported", False) is False:
                    s.conn._reported = True
                    closed.append(name)
                continue
            if s.idle:
                continue
            try:
                s.conn.send(jute.frame(jute.encode_request(-2, "ping", {})))
                r = s.conn.read_reply("ping")
                if r["err"] != 0 or r["xid"] != -2:
                    notes.append("%s: flush ping got xid=%d err=%s" % (name, r["xid"], jute.errname(r["err"])))
            except Closed:
                s.conn._reported = True
                closed.append(name)
            except NoReply:
                notes.append("%s: no reply to flush ping" % name)
                s.conn.close()
                s.conn._reported = True
                closed.append(name)
        for name, conn in self.orphans:
            # the connection a resumed session had before: the server must close it
            if conn.closed:
                res = "closed"
            else:
                try:
                    conn.read_reply("ping", timeout=3)
                    res = "sent a frame"
                    conn.close()
                except Closed:
                    res = "closed"
                except NoReply:
                    res = "still open after 3s"
                    conn.close()
            ev = self._take_events(conn)
            notes.append("old connection of %s: %s%s" % (name, res, (" events " + str(ev)) if ev else ""))
        self.orphans = []
        out = {}
        if closed:
            out["closed"] = closed
        if notes:
            out["notes"] = notes
        return out

    def _take_events(self, conn, reply_seqs=()):
        evs = []
        marks = sorted(reply_seqs)
        for seq, typ, state, path in conn.events:
            while marks and marks[0] < seq:
                evs.append("<reply>")
                marks.pop(0)
            e = "%s %s" % (jute.EVENT.get(typ, typ), fmt_bytes(path))
            if state != 3:
                e += " state=%d" % state
            evs.append(e)
        conn.events = []
        # a trailing <reply> marker is implied: leave it out
        return evs

    def collect_events(self, rec, seqs):
        events = {}
        for name in sorted(self.sessions):
            s = self.sessions[name]
            if s.conn is None:
                continue
            ev = self._take_events(s.conn, seqs.get(name, ()))
            if ev:
                events[name] = ev
        if events:
            rec["events"] = events
