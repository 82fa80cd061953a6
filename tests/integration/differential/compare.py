"""Compare two normalised transcripts and print the differences readably."""
import json

KEYS = ("reply", "events", "closed", "notes")


def _j(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def diff(ref, other):
    """Steps whose records differ: [(i, ref_record, other_record, [keys that differ])]."""
    out = []
    for i in range(max(len(ref), len(other))):
        a = ref[i] if i < len(ref) else {}
        b = other[i] if i < len(other) else {}
        keys = [k for k in KEYS if _j(a.get(k)) != _j(b.get(k))]
        if a.get("desc") != b.get("desc"):
            keys.insert(0, "desc")
        if keys:
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


def report(diffs, ref, other, names=("zookeeper", "corrald"), limit=None):
    if not diffs:
        return "no differences in %d steps" % len(ref)
    lines = ["%d of %d steps differ between %s and %s:" % (len(diffs), len(ref), *names)]
    for n, (i, a, b, keys) in enumerate(diffs):
        if limit is not None and n >= limit:
            lines.append("... and %d more" % (len(diffs) - limit))
            break
        lines.append("")
        lines.append("step %d: %s" % (i, a.get("desc") or b.get("desc")))
        for k in keys:
            lines.append("  %s:" % k)
            if k == "reply" and "dump" in (a.get("desc") or ""):
                lines.extend(_dump_diff(a.get(k), b.get(k)))
                continue
            lines.append("    %-9s %s" % (names[0] + ":", _j(a.get(k))))
            lines.append("    %-9s %s" % (names[1] + ":", _j(b.get(k))))
    return "\n".join(lines)
