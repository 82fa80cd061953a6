"""Compare two normalised transcripts and print the differences readably."""
import json

KEYS = ("reply", "events", "closed", "notes")


def _j(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


# Differences corral intends. Each is in the README (Compatibility notes)
# with its reason; a step is named by its exact description.
ZK_WATCH_REGISTRY = ("ZooKeeper 3.8 keeps one mode per watcher and path (ZOOKEEPER-4466): a "
                     "one-shot watch replaces a persistent one and checks or removals of one kind "
                     "reach the other; corral keeps each watch as it was set")
INTENDED_STEPS = {
    "S3 checkWatches path='/w' type=3":
        "ZooKeeper 3.8's checkWatches also finds another connection's watch; corral answers "
        "for the asking connection only",
    "S1 create path='/pw/c2' data='' acl=[('rwcda', 'world', 'anyone')] flags=0": ZK_WATCH_REGISTRY,
    "S2 removeWatches path='/pw' type=3": ZK_WATCH_REGISTRY,
    "S1 setData path='/pw' data='5' version=-1": ZK_WATCH_REGISTRY,
    "S1 setData path='/rw/m2' data='x' version=-1": ZK_WATCH_REGISTRY,
    "S3 removeWatches path='/rw' type=3": ZK_WATCH_REGISTRY,
    "Rbad connect timeout=30000 resume='R' passwd='wrong'":
        "ZooKeeper also closes the live connection of a session when someone presents a wrong "
        "password for it; corral does not, so knowing a session id is not enough to disconnect it",
    "X26 sasl token=''":
        "corral has no SASL mechanism and fails the authentication (AUTHFAILED, the connection "
        "closes); ZooKeeper without a JAAS section answers a null token and does not renew the "
        "session, so a SASL client loops on it until the session expires",
}
# Intended differences after which the session's later steps differ too (the
# connection closed on one side): step -> the session they follow from.
CASCADES = {
    "Rbad connect timeout=30000 resume='R' passwd='wrong'": "R",
    "X26 sasl token=''": "X26",
}
UNPARSABLE = ("a request whose record does not parse closes the connection in corral (one log "
              "line), where ZooKeeper answers MARSHALLINGERROR")


def _session(rec):
    return (rec.get("desc") or "").split(" ", 1)[0]


def intended(a, b, sessions):
    """The reason a difference is intended, or None. sessions: the sessions whose
    later steps differ only as a consequence of an intended difference."""
    desc = a.get("desc") or b.get("desc") or ""
    if desc in INTENDED_STEPS:
        if desc in CASCADES:
            sessions.add(CASCADES[desc])
        return INTENDED_STEPS[desc]
    ra, rb = a.get("reply"), b.get("reply")
    if ("raw_body=" in desc and isinstance(ra, dict) and ra.get("err") == "MARSHALLINGERROR(-5)"
            and rb == "CONNECTION CLOSED (no reply)"):
        sessions.add(_session(a))
        return UNPARSABLE
    if _session(a) in sessions:
        return "follows from an intended difference earlier in this session"
    return None


def diff(ref, other, accepted=None):
    """Steps whose records differ: [(i, ref_record, other_record, [keys that differ])].
    Intended differences go to accepted (a list) instead, with their reason."""
    out = []
    sessions = set()
    for i in range(max(len(ref), len(other))):
        a = ref[i] if i < len(ref) else {}
        b = other[i] if i < len(other) else {}
        keys = [k for k in KEYS if _j(a.get(k)) != _j(b.get(k))]
        if a.get("desc") != b.get("desc"):
            keys.insert(0, "desc")
        if not keys:
            continue
        reason = intended(a, b, sessions) if "desc" not in keys else None
        if reason is not None:
            if accepted is not None:
                accepted.append((i, a.get("desc"), reason))
            continue
        out.append((i, a, b, keys))
    return out


def _dump_diff(a, b):
    """For the whole-tree dump: only the nodes that differ."""
    lines = []
    if not isinstance(a, dict) or not isinstance(b, dict):
        return ["      zookeeper: " + _j(a), "      corrald:   " + _j(b)]
    for p in sorted(set(a) | set(b)):
        if _j(a.get(p)) != _j(b.get(p)):
            na, nb = a.get(p), b.get(p)
            lines.append("      node %r" % p)
            if na is None or nb is None:
                lines.append("        zookeeper: " + _j(na))
                lines.append("        corrald:   " + _j(nb))
                continue
            for k in sorted(set(na) | set(nb)):
                if _j(na.get(k)) != _j(nb.get(k)):
                    lines.append("        %s zookeeper: %s" % (k, _j(na.get(k))))
                    lines.append("        %s corrald:   %s" % (k, _j(nb.get(k))))
    return lines


def _not_sent(rec):
    r = rec.get("reply")
    return isinstance(r, str) and r.startswith("NOT CONNECTED")


def _short(v, n=160):
    s = _j(v)
    return s if len(s) <= n else s[:n] + "..."


def report(diffs, ref, other, names=("zookeeper", "corrald"), limit=None):
    if not diffs:
        return "no differences in %d steps" % len(ref)
    lines = ["%d of %d steps differ between %s and %s:" % (len(diffs), len(ref), *names)]
    for n, (i, a, b, keys) in enumerate(diffs):
        if limit is not None and n >= limit:
            lines.append("... and %d more" % (len(diffs) - limit))
            break
        desc = a.get("desc") or b.get("desc")
        if _not_sent(a) != _not_sent(b):
            # a consequence of an earlier difference: one server had already
            # closed this session's connection, so the request was not sent
            side, other_side, rec = (names[0], names[1], b) if _not_sent(a) else (names[1], names[0], a)
            lines.append("step %d: %s\n    (not sent to %s: connection already closed; %s: %s)"
                         % (i, desc, side, other_side, _short(rec.get("reply"))))
            continue
        lines.append("")
        lines.append("step %d: %s" % (i, desc))
        for k in keys:
            lines.append("  %s:" % k)
            if k == "reply" and "dump" in (a.get("desc") or ""):
                lines.extend(_dump_diff(a.get(k), b.get(k)))
                continue
            lines.append("    %-9s %s" % (names[0] + ":", _j(a.get(k))))
            lines.append("    %-9s %s" % (names[1] + ":", _j(b.get(k))))
    return "\n".join(lines)
