"""The HTTP endpoint (admin.listen): /metrics scraped by a real Prometheus
and checked by promtool, ZooKeeper's AdminServer commands under /commands/
compared with Apache ZooKeeper 3.8's own AdminServer (the same field names
and JSON types for the same state), and hostile HTTP clients (slowloris, a
huge header, a garbage request line, thousands of connections) that stay
bounded while the ZooKeeper port keeps serving kazoo.

The reference and Prometheus must be there (scripts/deps.sh test installs
them): a missing one fails these tests, it does not skip them.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from kazoo.client import KazooClient

import harness
from harness import free_port

pytestmark = pytest.mark.corral_only		# corrald (and ZooKeeper as its reference)

ALL_WORDS = ["ruok", "srvr", "stat", "mntr", "isro", "conf", "envi", "dirs", "wchs", "cons",
             "wchc", "wchp", "dump", "crst", "srst"]
JARS = ["zookeeper", "jetty9-server", "jetty9-servlet", "jetty9-http", "jetty9-io", "jetty9-util",
        "jetty9-security", "jetty9-util-ajax", "servlet-api", "jackson-core", "jackson-databind",
        "jackson-annotations", "slf4j-simple"]

# The commands compared, and what differs on purpose (each with its reason).
COMMANDS = ["ruok", "server_stats", "stats", "configuration", "connections", "environment",
            "dirs", "watch_summary", "watches", "watches_by_path", "is_read_only",
            "last_snapshot", "voting_view", "zabstate", "leader", "dump", "srvr", "cons", "wchc"]
# (monitor is compared below, on the keys corral has: ZooKeeper has hundreds more)
DIFFERENCES = {
    # The JVM's properties: a native server has no equivalent.
    "environment": {"java.version", "java.vendor", "java.home", "java.class.path",
                    "java.library.path", "java.io.tmpdir", "java.compiler", "os.memory.free",
                    "os.memory.max", "os.memory.total"},
}
# monitor: ZooKeeper's gauges and the summaries corral has (ZooKeeper's
# other internal counters of its processor pipeline are not compared).
MONITOR_KEYS = [
    "version", "server_state", "ephemerals_count", "num_alive_connections", "avg_latency",
    "outstanding_requests", "znode_count", "global_sessions", "non_mtls_remote_conn_count",
    "last_client_response_size", "packets_sent", "packets_received",
    "max_client_response_size", "connection_drop_probability", "watch_count",
    "auth_failed_count", "min_latency", "max_file_descriptor_count", "approximate_data_size",
    "open_file_descriptor_count", "local_sessions", "uptime", "max_latency",
    "outstanding_tls_handshake", "min_client_response_size", "non_mtls_local_conn_count",
    "connection_rejected", "connection_request_count", "snap_count", "connection_drop_count",
    "looking_count", "unrecoverable_error_count",
] + [f"{s}_{n}" for n in ("readlatency", "updatelatency")
     for s in ("avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999")] \
  + [f"{s}_{n}" for n in ("fsynctime", "snapshottime")
     for s in ("avg", "min", "max", "cnt", "sum")]
# promtool's lint: ZooKeeper's gauge names end in _count; they are kept as
# ZooKeeper's PrometheusMetricsProvider exports them, so its dashboards work.
ZOOKEEPER_COUNT_NAMES = {"auth_failed_count", "ephemerals_count", "max_file_descriptor_count",
                         "non_mtls_local_conn_count", "non_mtls_remote_conn_count",
                         "open_file_descriptor_count", "watch_count", "znode_count",
                         "connection_request_count", "connection_drop_count", "looking_count",
                         "snap_count", "digest_mismatches_count",
                         "unrecoverable_error_count"}


class ZooKeeperWithAdmin(harness.ZooKeeper):
    """Apache ZooKeeper standalone with its AdminServer on a free port."""

    def __init__(self, tmp):
        self.admin_port = free_port()
        super().__init__(tmp, properties={
            "tickTime": 200, "minSessionTimeout": 1000, "maxSessionTimeout": 60000,
            "admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
            "admin.serverPort": self.admin_port},
            system={"org.slf4j.simpleLogger.defaultLogLevel": "warn"})
        self.target = "zookeeper"

    def argv(self):
        cp = ":".join(["/etc/zookeeper/conf"] + [f"/usr/share/java/{j}.jar" for j in JARS])
        return (["java", "-cp", cp] + [f"-D{k}={v}" for k, v in self.system.items()]
                + [harness.ZK_MAIN, self.config_path])


def get(port, path, timeout=10):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what, check, seconds=60):
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s (last: {last!r})")


def mntr(srv):
    return harness.mntr(srv.port, 5, srv.host)


@pytest.fixture
def corrald(make_server):
    admin_port = free_port()
    srv = make_server(client={"four_letter_words": ALL_WORDS},
                      admin={"listen": f"127.0.0.1:{admin_port}", "timeout_ms": 2000})
    srv.admin_port = admin_port
    return srv


def closed_now(s):
    """The other side has closed s (EOF or reset); False while it is open."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def rss_kib(pid):
    return harness.rss_bytes(pid) // 1024


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def kazoo_round_trip(srv, path):
    zk = KazooClient(hosts=srv.hosts, timeout=10)
    zk.start(timeout=15)
    try:
        zk.create(path, b"v")
        assert zk.get(path)[0] == b"v"
    finally:
        zk.stop()
        zk.close()


# ---- Prometheus ----

def test_prometheus_scrapes_corrald_and_sees_mntrs_znode_count(corrald):
    zk = KazooClient(hosts=corrald.hosts)
    zk.start()
    for i in range(7):
        zk.create(f"/scraped-{i}", b"x")
    zk.stop()
    zk.close()
    tmp = tempfile.mkdtemp(prefix="corral-prom-")
    port = free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: corral\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{corrald.admin_port}']\n")
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    prom = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                             f"--storage.tsdb.path={tmp}/data",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)

    def query(q):
        url = f"/api/v1/query?query={urllib.parse.quote(q)}"
        status, body = get(port, url)
        result = json.loads(body)["data"]["result"] if status == 200 else []
        return result[0]["value"][1] if result else None

    try:
        wait_for("up{job=\"corral\"} == 1", lambda: query('up{job="corral"}') == "1")
        want = mntr(corrald)["zk_znode_count"]
        assert int(want) == 4 + 7	# / zookeeper quota config and the 7 made here
        wait_for(f"znode_count == mntr's {want}",
                 lambda: query('znode_count{job="corral"}') == want)
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_promtool_accepts_the_exposition(corrald):
    kazoo_round_trip(corrald, "/for-the-summaries")
    status, body = get(corrald.admin_port, "/metrics")
    assert status == 200
    assert "readlatency{quantile=\"0.99\"}" in body and "fsynctime_count " in body
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       text=True)
    # 0: clean; 3: lint remarks only (1 is a format error).
    assert p.returncode in (0, 3), p.stdout + p.stderr
    remarks = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    for line in remarks:
        name = line.split()[0]
        assert name in ZOOKEEPER_COUNT_NAMES and '"_count" suffix' in line, line


def test_quota_figures_are_samples_keyed_by_namespace(make_server):
    """ZooKeeper's quota gauge and counter sets and its summary sets of bytes
    read and written (test_quota.py and test_client_compat.py compare mntr's
    with ZooKeeper's): in /metrics one sample per namespace, labelled
    key="NS" as ZooKeeper's PrometheusMetricsProvider labels a set, the
    label escaped; in /commands/monitor "NS_quota_..." members."""
    from test_quota import QuotaExceededError, quota_on
    admin_port = free_port()
    srv = make_server(znode={"enforce_quota": True},
                      admin={"listen": f"127.0.0.1:{admin_port}", "timeout_ms": 2000})
    ns = 'we"ird\\ns'
    zk = harness.make_kazoo(srv.hosts)
    zk.start(30)
    try:
        zk.create(f"/{ns}", b"abc")
        quota_on(zk, f"/{ns}", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1")
        with pytest.raises(QuotaExceededError):
            zk.create(f"/{ns}/child")
    finally:
        harness.stop_kazoo([zk])
    _, body = get(admin_port, "/metrics")
    key = 'we\\"ird\\\\ns'
    for sample in (f'quota_count_limit_per_namespace{{key="{key}"}} 1',
                   f'quota_bytes_limit_per_namespace{{key="{key}"}} -1',
                   f'quota_count_usage_per_namespace{{key="{key}"}} 1',
                   f'quota_bytes_usage_per_namespace{{key="{key}"}} 3',
                   f'quota_exceeded_error_per_namespace_total{{key="{key}"}} 1',
                   # the create of /NS and the quota nodes' (namespace zookeeper)
                   f'write_per_namespace_count{{key="{key}"}} 1',
                   f'write_per_namespace_sum{{key="{key}"}} {1 + len(ns) + 3}'):
        assert sample + "\n" in body, (sample, [x for x in body.splitlines() if "quota" in x])
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       text=True)
    assert p.returncode in (0, 3), p.stdout + p.stderr
    assert not [x for x in (p.stdout + p.stderr).splitlines() if "quota" in x], p.stdout
    _, text = get(admin_port, "/commands/monitor")
    monitor = json.loads(text)
    assert monitor[f"{ns}_quota_count_usage_per_namespace"] == 1, monitor
    assert monitor[f"{ns}_quota_exceeded_error_per_namespace"] == 1, monitor


def test_metrics_and_mntr_read_the_same_figures(corrald):
    kazoo_round_trip(corrald, "/same")
    assert get(corrald.admin_port, "/nowhere")[0] == 404
    _, body = get(corrald.admin_port, "/metrics")
    samples = dict(line.rsplit(" ", 1) for line in body.splitlines()
                   if line and not line.startswith("#"))
    m = mntr(corrald)
    for name in ("znode_count", "watch_count", "ephemerals_count", "global_sessions"):
        assert samples[name] == m["zk_" + name], name
    assert samples["corral_txns_committed_total"] == m["corral_txns_committed"]
    assert samples["updatelatency_count"] == m["zk_cnt_updatelatency"]
    assert samples["corral_http_refused_total"] == m["corral_http_refused"] == "1"
    assert int(samples["corral_http_requests_total"]) >= 2


# ---- the AdminServer's commands against ZooKeeper's ----

def shape(v):
    """A JSON value's type structure: dicts by key, lists by their first element."""
    if isinstance(v, dict):
        # keys that are ids or paths (watches, voting_view) are data, not names
        return {("<id>" if k.isdigit() or k.startswith("/") else k): shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__


def same_state(srv):
    zk = KazooClient(hosts=srv.hosts)
    zk.start()
    zk.ensure_path("/a/b")
    zk.create("/e", b"x", ephemeral=True)
    zk.get("/a", watch=lambda e: None)
    zk.set("/a", b"y")
    zk.get("/a", watch=lambda e: None)
    return zk


def test_commands_have_zookeepers_fields_and_types(corrald):
    tmp = tempfile.mkdtemp(prefix="corral-zkadmin-")
    ref = ZooKeeperWithAdmin(tmp).start()
    clients = []
    try:
        wait_for("ZooKeeper's AdminServer", lambda: get(ref.admin_port, "/commands/ruok")[0] == 200)
        clients = [same_state(ref), same_state(corrald)]
        for name in COMMANDS:
            rs, rbody = get(ref.admin_port, f"/commands/{name}")
            gs, gbody = get(corrald.admin_port, f"/commands/{name}")
            assert gs == rs == 200, (name, gs, gbody, rs)
            want, got = json.loads(rbody), json.loads(gbody)
            for k in DIFFERENCES.get(name, ()):
                want.pop(k, None)
            assert shape(got) == shape(want), (name, gbody, rbody)
        want = json.loads(get(ref.admin_port, "/commands/monitor")[1])
        got = json.loads(get(corrald.admin_port, "/commands/monitor")[1])
        for k in MONITOR_KEYS:
            assert k in got, k
            assert type(got[k]) is type(want[k]), (k, got[k], want[k])
        assert got["znode_count"] == int(mntr(corrald)["zk_znode_count"])
    finally:
        for zk in clients:
            zk.stop()
            zk.close()
        ref.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_whitelist_holds_and_bad_requests_are_refused(make_server):
    admin_port = free_port()
    srv = make_server(admin={"listen": f"127.0.0.1:{admin_port}"})	# default words
    for name in ("stat_reset", "srst", "connection_stat_reset", "connections", "dump"):
        status, body = get(admin_port, f"/commands/{name}")	# words not in the default list
        assert status == 403 and "whitelist" in json.loads(body)["error"], (name, body)
    assert get(admin_port, "/commands/ruok")[0] == 200
    assert get(admin_port, "/commands/nonsense")[0] == 404
    assert get(admin_port, "/elsewhere")[0] == 404
    req = urllib.request.Request(f"http://127.0.0.1:{admin_port}/commands/ruok", data=b"x",
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405
    assert srv.proc.poll() is None


def get_as(port, path, authorization):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_state_changing_commands_need_all_on_the_root(corrald):
    from kazoo.security import make_digest_acl
    port = corrald.admin_port
    # "/" open to anyone (the default ACL): anyone may reset, as in ZooKeeper 3.9
    assert get_as(port, "/commands/stat_reset", None)[0] == 200
    zk = KazooClient(hosts=corrald.hosts, auth_data=[("digest", "admin:secret")])
    zk.start()
    zk.set_acls("/", [make_digest_acl("admin", "secret", all=True)])
    for i in range(5):
        zk.exists("/")
    zk.stop()
    zk.close()
    assert int(mntr(corrald)["zk_packets_received"]) >= 5
    for auth in (None, "digest admin:wrong", "digest nobody:secret", "garbage", "digest "):
        status, body = get_as(port, "/commands/stat_reset", auth)
        assert status == 403 and "Authorization" in body["error"], (auth, status, body)
        status, _ = get_as(port, "/commands/connection_stat_reset", auth)
        assert status == 403, auth
    status, body = get_as(port, "/commands/stat_reset", "digest admin:secret")
    assert status == 200 and body["error"] is None and body["command"] == "stat_reset", body
    assert int(mntr(corrald)["zk_packets_received"]) <= 1	# the mntr itself
    assert get_as(port, "/commands/crst", "digest admin:secret")[0] == 200
    status, body = get_as(port, "/commands/snapshot", "digest admin:secret")
    assert status == 501, body			# not there, but only after authentication
    assert get_as(port, "/commands/snapshot", None)[0] == 403


# ---- hostile HTTP clients ----

def test_slowloris_holds_at_most_the_limit_and_times_out(corrald):
    pid = corrald.proc.pid
    get(corrald.admin_port, "/metrics")
    rss0, fds0 = rss_kib(pid), open_fds(pid)
    socks = []
    for _ in range(200):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", corrald.admin_port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            s.close()
    try:
        for i in range(6):		# a header byte now and then, never the end
            for s in socks:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            kazoo_round_trip(corrald, f"/during-slowloris-{i}")
            # the limit per address (16), and a few of corrald's own (kazoo's
            # connection, a log segment) at most
            assert open_fds(pid) <= fds0 + 16 + 8, open_fds(pid)
        assert rss_kib(pid) < rss0 + 32 * 1024
        # those past the limits were closed at once; the ones held are the
        # ones the endpoint took
        held = [s for s in socks if not closed_now(s)]
        assert 1 <= len(held) <= 16, len(held)
        # they stop sending but stay open: admin.timeout_ms (2 s here) closes
        # every one of them, and the endpoint serves again
        wait_for("the held slowloris sockets to be closed by the timeout",
                 lambda: all(closed_now(s) for s in held))
        wait_for("/metrics after the slowloris sockets idled",
                 lambda: get(corrald.admin_port, "/metrics", timeout=2)[0] == 200)
    finally:
        for s in socks:
            s.close()


def test_huge_header_is_refused_without_growing(corrald):
    pid = corrald.proc.pid
    rss0 = rss_kib(pid)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", corrald.admin_port), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                for _ in range(256):
                    s.sendall(b"a" * 4096)	# 1 MiB of one header
            except OSError:
                pass			# closed on us: refused
            try:
                answer = s.recv(4096)
            except OSError:
                answer = b""
            assert answer == b"" or answer.split(b" ")[1] in (b"431", b"413", b"400"), answer
    assert rss_kib(pid) < rss0 + 16 * 1024
    kazoo_round_trip(corrald, "/after-huge-header")
    assert get(corrald.admin_port, "/metrics")[0] == 200


def test_garbage_request_line_is_refused_and_costs_nothing(corrald):
    for junk in (b"\x00\xff\xfe garbage \x01\r\n\r\n", b"GET\r\n\r\n", b"HELLO / SPDY/9\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", corrald.admin_port), timeout=10) as s:
            s.sendall(junk)
            try:
                answer = s.recv(4096)
            except OSError:
                answer = b""
            assert answer == b"" or answer.startswith(b"HTTP/1.") and b" 400 " in answer[:20] \
                or b" 505 " in answer[:20] or b" 501 " in answer[:20], (junk, answer)
    assert get(corrald.admin_port, "/commands/ruok")[0] == 200
    kazoo_round_trip(corrald, "/after-garbage")


def test_thousands_of_connections_stay_bounded(corrald):
    pid = corrald.proc.pid
    rss0, fds0 = rss_kib(pid), open_fds(pid)
    socks = []
    try:
        for _ in range(3000):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", corrald.admin_port))
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                continue
            socks.append(s)
        kazoo_round_trip(corrald, "/during-many")
        # all from one address: its limit (16); the rest closed at accept
        assert open_fds(pid) <= fds0 + 16 + 8, open_fds(pid)
        assert rss_kib(pid) < rss0 + 32 * 1024
    finally:
        for s in socks:
            s.close()
    wait_for("/metrics after the flood", lambda: get(corrald.admin_port, "/metrics")[0] == 200)
    kazoo_round_trip(corrald, "/after-many")


def test_an_answer_past_max_output_bytes_is_refused_not_built(make_server):
    admin_port = free_port()
    srv = make_server(client={"four_letter_words": ALL_WORDS, "max_output_bytes": 65536},
                      admin={"listen": f"127.0.0.1:{admin_port}"})
    zk = KazooClient(hosts=srv.hosts)
    zk.start()
    try:
        zk.create("/w")
        for i in range(300):		# 300 watched paths of 250 bytes: past 64 KiB of JSON
            path = f"/w/{i:03d}" + "x" * 246
            zk.create(path)
            zk.get(path, watch=lambda e: None)
        status, body = get(admin_port, "/commands/watches_by_path")
        assert status == 503 and "max_output_bytes" in body, (status, body[:200])
        status, body = get(admin_port, "/commands/watch_summary")
        assert status == 200 and json.loads(body)["num_paths"] == 300
        assert zk.exists("/w")
    finally:
        zk.stop()
        zk.close()
