"""A reload tells the truth: after SIGHUP every key whose value changed
either takes effect at once or is named in the log and kept, exactly as
corral.yaml(5) lists them. The test changes every key of corral.yaml at
once on a one-member ensemble, reads the three lists from the man page
(at once, at the next start, never by a reload), checks that the log names
exactly the keys of the last two, and that the live keys are in force
(conf, mntr, the four-letter words, debug lines)."""
import base64
import hashlib
import os
import re
import signal

import pytest
import yaml

import harness
import tls_pki

SOURCE_ROOT = os.environ.get("CORRAL_SOURCE_ROOT",
                             os.path.join(os.path.dirname(__file__), "..", ".."))
MAN = os.path.join(SOURCE_ROOT, "man", "corral.yaml.5")

pytestmark = pytest.mark.skipif(not os.environ.get("CORRALD"), reason="CORRALD is not set")


def digest(user, password):
    return f"{user}:" + base64.b64encode(hashlib.sha1(f"{user}:{password}".encode()).digest()).decode()


def man_keys():
    """Every key corral.yaml(5) documents (a .TP entry named .B KEY)."""
    text = open(MAN).read()
    return set(re.findall(r"^\.TP\n\.B ((?:[a-z0-9_]+\.){0,2}[a-z0-9_]+)$", text, re.M))


def man_reload_lists(keys):
    """{list name: keys} of the man page's paragraph on SIGHUP."""
    text = open(MAN).read()
    out = {}
    for name in ("At once:", "At the next start:", "Never by a reload or a restart:"):
        start = text.index(f".B {name}\n") + len(name) + 4
        body = text[start:]
        body = body[:re.search(r"^\.(TP|PP)$", body, re.M).start()]
        body = re.sub(r"\([^)]*\)", "", body)            # what is said of a key
        out[name] = {w for w in re.findall(r"[a-z0-9_]+(?:\.[a-z0-9_]+){0,2}", body) if w in keys}
    return out


def flatten(cfg, prefix=""):
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def secret(path, data):
    with open(path, "w") as f:
        f.write(data + "\n")
    os.chmod(path, 0o600)
    return str(path)


def test_a_reload_applies_or_names_every_key_as_corral_yaml_5_says(tmp_path):
    client, peer, client2, peer2, client3, admin, admin2, tls, tls2 = harness.free_ports(9)
    peer_secret = secret(tmp_path / "peer-secret", "one peer secret, 32 bytes long..")
    peer_secret2 = secret(tmp_path / "peer-secret2", "another peer secret, 32 bytes...")
    super_file = secret(tmp_path / "super-digest", digest("super", "two"))
    users = secret(tmp_path / "sasl-users", "bob: one")
    users2 = secret(tmp_path / "sasl-users2", "bob: two")
    keytab, keytab2 = secret(tmp_path / "keytab", ""), secret(tmp_path / "keytab2", "")
    pki = tls_pki.Pki(tmp_path / "pki")
    pki.issue("server", "/CN=localhost", server=True).issue("server2", "/CN=localhost", server=True)
    pki.make_ca("ca2", "/CN=Second CA")
    pki.issue("peer1", "/CN=server 1", peer_hosts=["127.0.0.1"])
    pki.issue("peer2", "/CN=server 2", ca="ca2", peer_hosts=["127.0.0.1"])
    before = {
        "data_dir": str(tmp_path / "data"),
        "log_level": "info",
        "audit_log": False,
        "client": {"listen": [f"127.0.0.1:{client}"], "max_connections": 100,
                   "max_connections_per_address": 50, "max_frame_bytes": 1048576,
                   "max_outstanding_requests": 1000, "max_output_bytes": 16777216,
                   "four_letter_words": ["ruok", "conf", "mntr", "srvr"],
                   "handshake_timeout_ms": 10000, "frame_timeout_ms": 10000,
                   "tls": {"listen": [f"127.0.0.1:{tls}"], "certificate": pki.cert("server"),
                           "private_key": pki.key("server"), "ca": pki.ca_file(),
                           "client_auth": "required", "min_protocol": "TLSv1.2",
                           "ciphers": "HIGH", "ciphersuites": "TLS_AES_128_GCM_SHA256"}},
        "session": {"tick_time_ms": 200, "min_timeout_ms": 1000, "max_timeout_ms": 30000,
                    "max_sessions": 1000, "max_watches": 10000},
        "znode": {"extended_types": False, "container_check_interval_ms": 1000,
                  "container_max_per_minute": 100, "enforce_quota": False},
        "storage": {"segment_bytes": 4194304, "snapshot_entries": 10000,
                    "snapshot_log_bytes": 67108864, "keep_snapshots": 2,
                    "archive_dir": str(tmp_path / "archive"), "archive_keep_snapshots": 5},
        "auth": {"super_digest": digest("super", "one"), "super_digest_file": None,
                 "x509_super_user": "CN=admin one,O=Corral Test",
                 "sasl": {"users_file": users, "keytab": keytab,
                          "principal": "zookeeper/one.example.com",
                          "super_user": "alice", "remove_host_from_principal": False,
                          "remove_realm_from_principal": False},
                 "enforce": {"enabled": False, "schemes": "sasl"}},
        "memory": {"budget_bytes": 268435456},
        "admin": {"listen": f"127.0.0.1:{admin}", "max_connections": 10,
                  "max_connections_per_address": 5, "timeout_ms": 5000},
        "ensemble": {"id": 1, "cluster": "c1", "election_timeout_ms": 300,
                     "entry_cache_bytes": 4194304,
                     "read_only": False, "reconfig": False,
                     "peer_listen": f"127.0.0.1:{peer}",
                     "secret_file": peer_secret, "peer_auth": "required",
                     "tls": {"certificate": pki.cert("peer1"), "private_key": pki.key("peer1"),
                             "ca": pki.ca_file(), "mode": "required"},
                     "members": [{"id": 1, "client": f"127.0.0.1:{client}",
                                  "peer": f"127.0.0.1:{peer}"}]},
    }
    after = {
        "data_dir": str(tmp_path / "data2"),
        "log_level": "debug",
        "audit_log": True,
        "client": {"listen": [f"127.0.0.1:{client3}"], "max_connections": 200,
                   "max_connections_per_address": 60, "max_frame_bytes": 2097152,
                   "max_outstanding_requests": 2000, "max_output_bytes": 33554432,
                   "four_letter_words": ["ruok", "conf", "mntr", "srvr", "stat"],
                   "handshake_timeout_ms": 20000, "frame_timeout_ms": 20000,
                   "tls": {"listen": [f"127.0.0.1:{tls2}"], "certificate": pki.cert("server2"),
                           "private_key": pki.key("server2"), "ca": pki.ca_file("ca2"),
                           "client_auth": "optional", "min_protocol": "TLSv1.3",
                           "ciphers": "HIGH:!aNULL",
                           "ciphersuites": "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"}},
        "session": {"tick_time_ms": 100, "min_timeout_ms": 2000, "max_timeout_ms": 20000,
                    "max_sessions": 2000, "max_watches": 20000},
        "znode": {"extended_types": True, "container_check_interval_ms": 2000,
                  "container_max_per_minute": 200, "enforce_quota": True},
        "storage": {"segment_bytes": 8388608, "snapshot_entries": 20000,
                    "snapshot_log_bytes": 134217728, "keep_snapshots": 3,
                    "archive_dir": str(tmp_path / "archive2"), "archive_keep_snapshots": 6},
        "auth": {"super_digest": None, "super_digest_file": super_file,
                 "x509_super_user": "CN=admin two,O=Corral Test",
                 "sasl": {"users_file": users2, "keytab": keytab2,
                          "principal": "zookeeper/two.example.com@EXAMPLE.COM",
                          "super_user": "carol", "remove_host_from_principal": True,
                          "remove_realm_from_principal": True},
                 "enforce": {"enabled": True, "schemes": "sasl,digest"}},
        "memory": {"budget_bytes": 134217728},
        "admin": {"listen": f"127.0.0.1:{admin2}", "max_connections": 20,
                  "max_connections_per_address": 6, "timeout_ms": 6000},
        "ensemble": {"id": 2, "cluster": "c2", "election_timeout_ms": 400,
                     "entry_cache_bytes": 33554432,
                     "read_only": True, "reconfig": True,
                     "peer_listen": f"127.0.0.1:{peer2}",
                     "secret_file": peer_secret2, "peer_auth": "optional",
                     "tls": {"certificate": pki.cert("peer2"), "private_key": pki.key("peer2"),
                             "ca": pki.ca_file("ca2"), "mode": "optional"},
                     "members": [{"id": 1, "client": f"127.0.0.1:{client}",
                                  "peer": f"127.0.0.1:{peer}"},
                                 {"id": 2, "client": f"127.0.0.1:{client2}",
                                  "peer": f"127.0.0.1:{peer2}"}]},
    }
    keys = man_keys()
    assert set(flatten(before)) == keys == set(flatten(after)), \
        "the test changes every key corral.yaml(5) documents"
    assert all(flatten(before)[k] != flatten(after)[k] for k in keys)
    lists = man_reload_lists(keys)
    live, restart, never = lists.values()
    assert live | restart | never == keys and not (live & restart or live & never
                                                   or restart & never), lists

    srv = harness.Corrald(tmp_path, config=before, port=client)
    srv.start()
    try:
        assert "not in the whitelist" in srv.four_letter("stat")
        # log_level info: the four-letter connection's close (a debug line) is not logged
        assert "<7>" not in srv.log(), "debug lines at log_level: info"
        with open(srv.config_path, "w") as f:
            yaml.safe_dump(after, f)
        srv.proc.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: "configuration reloaded" in srv.log(), 15,
                           what="the reload to be logged")
        named = set(re.findall(r"reload: ((?:[a-z0-9_]+\.){0,2}[a-z0-9_]+) changed; ", srv.log()))
        assert named == restart | never, (named, restart | never)
        for key in never:
            assert re.search(rf"reload: {re.escape(key)} changed; not applied: ", srv.log())

        # the live keys are in force; the others are not
        conf = dict(line.split("=", 1) for line in srv.four_letter("conf").splitlines()
                    if "=" in line)
        assert (conf["tickTime"], conf["maxClientCnxns"], conf["minSessionTimeout"],
                conf["maxSessionTimeout"]) == ("100", "60", "2000", "20000")
        assert (conf["clientPort"], conf["dataDir"], conf["serverId"]) == \
            (str(client), str(tmp_path / "data"), "1")
        assert srv.mntr()["corral_memory_budget_bytes"] == "134217728"
        assert "reload: TLS certificate" in srv.log()
        assert srv.four_letter("stat").startswith("Zookeeper version:")
        harness.wait_until(lambda: "<7>" in srv.log().split("configuration reloaded")[-1], 15,
                           what="debug lines after log_level: debug")
    finally:
        assert srv.stop() == 0, srv.log()
