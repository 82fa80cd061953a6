"""TLS on the client port (client.tls) and the x509 ACL scheme, with kazoo
(use_ssl, certfile, keyfile, ca, verify_certs) and Python's ssl module as
the clients, certificates made by tests/lib/tls_pki.py.

With CORRAL_TEST_TARGET=zookeeper the same tests run against Apache
ZooKeeper 3.8 configured alike: NettyServerCnxnFactory, secureClientPort,
ssl.* from PEM files, the x509 provider and its super user. What ZooKeeper
does not have (the log lines, the handshake deadline, reload) is corral_only.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

import conftest
import curator_java
import harness
import jute
import tls_pki

NETTY_JARS = ["netty-handler", "netty-transport", "netty-buffer", "netty-codec", "netty-common",
              "netty-resolver", "netty-transport-native-epoll",
              "netty-transport-native-unix-common"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = tls_pki.standard(tmp_path_factory.mktemp("pki"))
    p.issue("admin", "/C=DE/O=Corral Test/OU=Admins/CN=admin")
    # A multi-valued RDN, a value with a comma, a type Java has no keyword for.
    p.issue("multi", "/C=DE/O=Corral, Test/CN=multi value+UID=u1/emailAddress=m@example.com")
    return p


# multi's subject as Java's X500Principal.getName() writes it (what
# ZooKeeper calls the client): the RDNs most significant last, the
# attributes of the multi-valued one in their DER (sorted) order, the email
# address as its OID and the hex of its DER value.
MULTI_DN = ("1.2.840.113549.1.9.1=#160d6d406578616d706c652e636f6d,UID=u1+CN=multi value,"
            "O=Corral\\, Test,C=DE")


def zookeeper_tls(tmp, pki, tls_port, client_auth):
    """Apache ZooKeeper with a secure client port, configured as corrald is."""
    keystore = os.path.join(tmp, "server-keystore.pem")
    with open(keystore, "w") as f:
        f.write(open(pki.key("server")).read() + open(pki.cert("server")).read())
    cp = ":".join([harness.ZK_CLASSPATH, harness.ZK_LOG_JAR] +
                  [f"/usr/share/java/{j}.jar" for j in NETTY_JARS])
    props = {"secureClientPort": tls_port, "secureClientPortAddress": "127.0.0.1",
             "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
             "ssl.keyStore.location": keystore, "ssl.keyStore.type": "PEM",
             "ssl.trustStore.location": pki.ca_file(), "ssl.trustStore.type": "PEM",
             "ssl.clientAuth": {"required": "need", "optional": "want"}.get(client_auth, "none"),
             "tickTime": 200, "minSessionTimeout": 1000, "maxSessionTimeout": 60000}
    system = {"zookeeper.authProvider.x509":
              "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
              "zookeeper.X509AuthenticationProvider.superUser": pki.dn("admin")}
    srv = harness.ZooKeeper(tmp, properties=props, system=system, classpath=cp)
    srv.target = "zookeeper"
    return srv


@pytest.fixture
def make_tls_server(pki):
    """make(client_auth=..., **overrides): a server with a TLS port
    (srv.tls_port) whose certificate and key are this server's own copies
    (srv.cert_path, srv.key_path), started; plaintext port as usual."""
    made = []

    def make(client_auth="required", start=True, **overrides):
        tmp = tempfile.mkdtemp(prefix="corral-tls-")
        tls_port = harness.free_port()
        if conftest.TARGET == "zookeeper":
            srv = zookeeper_tls(tmp, pki, tls_port, client_auth)
        else:
            cert, key = os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key")
            shutil.copy(pki.cert("server"), cert)
            shutil.copy(pki.key("server"), key)
            tls = {"listen": [f"127.0.0.1:{tls_port}"], "certificate": cert,
                   "private_key": key, "ca": pki.ca_file(), "client_auth": client_auth}
            config = harness.merge({"client": {"tls": tls},
                                    "auth": {"x509_super_user": pki.dn("admin")}}, overrides)
            srv = conftest.Server(tmp, config)
            srv.cert_path, srv.key_path = cert, key
        srv.tls_port = tls_port
        made.append(srv)
        return srv.start(timeout=60) if start else srv

    yield make
    for srv in made:
        srv.stop()
    bad = [s for s in made if s.target == "corrald" and s.sanitizer_reports()]
    for srv in made:
        if srv not in bad:
            shutil.rmtree(srv.tmp, ignore_errors=True)
    assert not bad, "sanitizer reports:\n" + "\n".join(s.log_text()[-4000:] for s in bad)


def tls_kazoo(srv, pki, name="client1"):
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=f"127.0.0.1:{srv.tls_port}", timeout=10, use_ssl=True,
                     certfile=pki.cert(name) if name else None,
                     keyfile=pki.key(name) if name else None, ca=pki.ca_file(),
                     verify_certs=True, connection_retry={"max_tries": 3, "delay": 0.1},
                     command_retry={"max_tries": 0})
    zk.start(timeout=20)
    return zk


def client_context(pki, name="client1", verify_server=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify_server:
        ctx.load_verify_locations(pki.ca_file())
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if name:
        ctx.load_cert_chain(pki.cert(name), pki.key(name))
    return ctx


def tls_word(srv, pki, word, name="client1"):
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
        with client_context(pki, name).wrap_socket(raw) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ssl.SSLEOFError, ConnectionResetError):
                    break
                if not chunk:
                    break
                out += chunk
    return out.decode()


def closed_by_server(sock, timeout=15, alert_allowed=False):
    """True once the server ends the connection (EOF, reset or a TLS
    alert) within timeout; False if it answers with data or stays open.
    alert_allowed: a raw socket, where a TLS alert comes as data first."""
    sock.settimeout(0.2)
    end = time.monotonic() + timeout
    received = 0
    while time.monotonic() < end:
        try:
            data = sock.recv(4096)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True
        received += len(data)
        if not alert_allowed or received > 64:
            return False
    return False


def lines_about(srv, port):
    """corrald's log lines, above debug, about the client at port."""
    return [line for line in srv.log().splitlines()
            if f"127.0.0.1:{port} " in line and not line.startswith("<7>")]


def test_kazoo_over_tls_does_the_basic_operations(make_tls_server, pki):
    admin = harness.free_port()
    srv = make_tls_server(admin={"listen": f"127.0.0.1:{admin}"})
    zk = tls_kazoo(srv, pki)
    plain = harness.make_kazoo(srv.hosts)
    plain.start(timeout=20)
    try:
        if srv.target == "corrald":     # the AdminServer lists TLS connections apart
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/commands/stats",
                                        timeout=10) as r:
                listed = json.loads(r.read())
            assert (len(listed["connections"]), len(listed["secure_connections"])) == (1, 1)
        events = []
        zk.ensure_path("/tls")
        zk.create("/tls/a", b"one")
        big = os.urandom(300000)            # many TLS records each way
        zk.create("/tls/big", big)
        assert zk.get("/tls/big")[0] == big
        assert zk.get("/tls/a", watch=events.append)[0] == b"one"
        zk.set("/tls/a", b"two")
        harness.wait_until(lambda: events, 10, what="the watch over TLS")
        assert events[0].type == "CHANGED"
        assert sorted(zk.get_children("/tls")) == ["a", "big"]
        assert plain.get("/tls/a")[0] == b"two"         # one tree, both ports
        plain.set("/tls/a", b"three")
        assert zk.get("/tls/a")[0] == b"three"
        zk.delete("/tls", recursive=True)
        assert zk.exists("/tls") is None
    finally:
        harness.stop_kazoo([zk, plain])


def test_x509_acl_allows_the_certificates_dn_and_denies_another(make_tls_server, pki):
    srv = make_tls_server()
    one, two, admin = (tls_kazoo(srv, pki, n) for n in ("client1", "client2", "admin"))
    plain = harness.make_kazoo(srv.hosts)
    plain.start(timeout=20)
    try:
        dn = pki.dn("client1")
        assert dn == "CN=client one,OU=Tests,O=Corral Test,C=DE"
        one.create("/x509", b"secret", acl=[make_acl("x509", dn, all=True)])
        assert one.get("/x509")[0] == b"secret"
        assert one.get_acls("/x509")[0][0].id.id == dn
        for other in (two, plain):
            with pytest.raises(NoAuthError):
                other.get("/x509")
            with pytest.raises(NoAuthError):
                other.set("/x509", b"stolen")
        assert admin.get("/x509")[0] == b"secret"       # auth.x509_super_user
        # "auth" expands to the certificate's identity
        one.create("/auth-acl", b"", acl=[make_acl("auth", "", all=True)])
        assert [(a.id.scheme, a.id.id) for a in one.get_acls("/auth-acl")[0]] == [("x509", dn)]
        with pytest.raises(NoAuthError):
            two.get("/auth-acl")
        one.delete("/x509")
    finally:
        harness.stop_kazoo([one, two, admin, plain])


def test_the_x509_identity_is_the_dn_as_java_writes_it(make_tls_server, pki):
    srv = make_tls_server()
    multi, one = tls_kazoo(srv, pki, "multi"), tls_kazoo(srv, pki, "client1")
    try:
        multi.create("/multi", b"m", acl=[make_acl("x509", MULTI_DN, all=True)])
        assert multi.get("/multi")[0] == b"m"       # only if the DN is exactly this
        with pytest.raises(NoAuthError):
            one.get("/multi")
        multi.create("/multi-auth", b"", acl=[make_acl("auth", "", all=True)])
        assert multi.get_acls("/multi-auth")[0][0].id.id == MULTI_DN
    finally:
        harness.stop_kazoo([multi, one])


def connect_request_frame():
    return jute.frame(jute.connect_request())


def raw_tls_attempt(srv, pki, name, verify_server=True):
    """A TLS connection with name's certificate (None: none) that sends a
    ConnectRequest; returns (closed by the server, local port)."""
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    port = raw.getsockname()[1]
    try:
        try:
            s = client_context(pki, name, verify_server).wrap_socket(raw)
            s.sendall(connect_request_frame())
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True, port
        return closed_by_server(s), port
    finally:
        raw.close()


def raw_attempt(srv, payload):
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    port = raw.getsockname()[1]
    try:
        raw.sendall(payload)
        return closed_by_server(raw, alert_allowed=True), port
    finally:
        raw.close()


@pytest.mark.parametrize("case", ["wrong_ca", "expired", "no_certificate", "plaintext",
                                  "garbage"])
def test_a_refused_client_is_closed_with_one_line_and_others_go_on(make_tls_server, pki, case):
    srv = make_tls_server()
    zk = tls_kazoo(srv, pki)
    try:
        zk.create("/before", b"x")
        if case == "wrong_ca":
            closed, port = raw_tls_attempt(srv, pki, "rogue")
            why = "unable to get local issuer certificate"
        elif case == "expired":
            closed, port = raw_tls_attempt(srv, pki, "expired")
            why = "certificate has expired"
        elif case == "no_certificate":
            closed, port = raw_tls_attempt(srv, pki, None)
            why = "peer did not return a certificate"
        elif case == "plaintext":
            closed, port = raw_attempt(srv, connect_request_frame())
            why = "TLS handshake failed"
        else:
            closed, port = raw_attempt(srv, b"\x16\x03\x01\x00\x05" + os.urandom(4000))
            why = "TLS handshake failed"
        assert closed, f"{case}: the server kept the connection"
        assert zk.get("/before")[0] == b"x"             # the others are unaffected
        zk.set("/before", b"y")
        if srv.target == "corrald":
            harness.wait_until(lambda: lines_about(srv, port), 10, what="the refusal's line")
            lines = lines_about(srv, port)
            assert len(lines) == 1 and why in lines[0], lines
            assert srv.mntr()["corral_bad_input_closed"] == "1"
    finally:
        harness.stop_kazoo([zk])


@pytest.mark.corral_only
def test_a_handshake_held_open_is_closed_at_the_deadline(make_tls_server, pki):
    srv = make_tls_server(client={"handshake_timeout_ms": 1000})
    zk = tls_kazoo(srv, pki)
    # Half a ClientHello: the first bytes of a real one.
    bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(pki).wrap_bio(bio_in, bio_out)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = bio_out.read()
    half = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    silent = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    try:
        half.sendall(hello[:len(hello) // 2])
        # A finished handshake and then nothing, not even a ConnectRequest.
        silent = client_context(pki).wrap_socket(silent)
        ports = [half.getsockname()[1], silent.getsockname()[1]]
        harness.wait_until(lambda: srv.mntr()["zk_outstanding_tls_handshake"] == "1", 5,
                           what="mntr to count the handshake under way")
        assert closed_by_server(half, alert_allowed=True) and closed_by_server(silent)
        assert srv.mntr()["zk_outstanding_tls_handshake"] == "0"
        for port in ports:
            harness.wait_until(lambda: lines_about(srv, port), 10, what="the deadline's line")
            lines = lines_about(srv, port)
            assert len(lines) == 1 and "client.handshake_timeout_ms" in lines[0], lines
        assert zk.get("/")[1].numChildren >= 1
    finally:
        half.close()
        silent.close()
        harness.stop_kazoo([zk])


def peer_subject(srv, pki):
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
        with client_context(pki).wrap_socket(raw) as s:
            return dict(x[0] for x in s.getpeercert()["subject"])


@pytest.mark.corral_only
def test_a_reload_gives_new_connections_the_new_certificate_and_keeps_the_old(
        make_tls_server, pki):
    srv = make_tls_server()
    zk = tls_kazoo(srv, pki)
    states = []
    zk.add_listener(states.append)
    try:
        session = zk.client_id
        zk.create("/r", b"before")
        assert peer_subject(srv, pki)["organizationName"] == "Corral Test"
        renewed = tls_pki.Pki(os.path.join(srv.tmp, "renewed"))
        renewed.make_ca("ca", "/CN=unused")   # the renewed certificate is the test CA's
        shutil.copy(pki.cert("ca"), renewed.cert("ca"))
        shutil.copy(pki.key("ca"), renewed.key("ca"))
        renewed.issue("server", "/O=Corral Test Renewed/CN=localhost", server=True)
        shutil.copy(renewed.cert("server"), srv.cert_path)
        shutil.copy(renewed.key("server"), srv.key_path)
        srv.proc.send_signal(signal.SIGHUP)
        harness.wait_until(
            lambda: peer_subject(srv, pki)["organizationName"] == "Corral Test Renewed", 15,
            what="a new connection to see the new certificate")
        # the old connection goes on, never dropped
        zk.set("/r", b"after")
        assert zk.get("/r")[0] == b"after"
        assert zk.client_id == session and states == []
        # a broken file is refused; the renewed certificate stays
        with open(srv.cert_path, "w") as f:
            f.write("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: "reload: TLS: client.tls.certificate" in srv.log(), 15,
                           what="the refused certificate's line")
        assert peer_subject(srv, pki)["organizationName"] == "Corral Test Renewed"
    finally:
        harness.stop_kazoo([zk])


def test_four_letter_words_on_the_tls_port(make_tls_server, pki):
    srv = make_tls_server()
    assert tls_word(srv, pki, "ruok") == "imok"
    assert tls_word(srv, pki, "srvr").startswith("Zookeeper version: 3.8")
    conf = dict(line.split("=", 1) for line in tls_word(srv, pki, "conf").splitlines()
                if "=" in line)
    assert (conf["clientPort"], conf["secureClientPort"]) == (str(srv.port), str(srv.tls_port))


@pytest.mark.corral_only
def test_tls_only_server_and_optional_client_certificates(make_tls_server, pki):
    srv = make_tls_server(client_auth="optional", start=False, client={"listen": []})
    srv.spawn()

    def ready():
        try:
            return tls_word(srv, pki, "ruok", name=None) == "imok"
        except OSError:
            return False
    harness.wait_until(ready, 60, what="the TLS port to answer ruok")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    anonymous, one = tls_kazoo(srv, pki, None), tls_kazoo(srv, pki, "client1")
    try:
        one.create("/mine", b"", acl=[make_acl("x509", pki.dn("client1"), all=True)])
        with pytest.raises(NoAuthError):
            anonymous.get("/mine")
        closed, port = raw_tls_attempt(srv, pki, "rogue")   # given, it must verify
        assert closed
    finally:
        harness.stop_kazoo([anonymous, one])


@pytest.mark.corral_only
def test_a_tls_port_without_usable_files_is_a_configuration_error(tmp_path, pki):
    base = {"data_dir": str(tmp_path / "data"),
            "client": {"tls": {"listen": ["127.0.0.1:12281"]}}}
    cases = [({}, "client.tls.certificate: needed with client.tls.listen"),
             ({"certificate": pki.cert("server"), "private_key": pki.key("server")},
              "client.tls.ca: needed"),
             ({"certificate": str(tmp_path / "missing.pem"), "private_key": pki.key("server"),
               "ca": pki.ca_file()}, "client.tls.certificate " + str(tmp_path / "missing.pem")),
             ({"certificate": pki.cert("server"), "private_key": pki.key("client1"),
               "ca": pki.ca_file()}, "client.tls.private_key"),
             ({"client_auth": "sometimes"}, "expected none, optional or required")]
    import yaml
    for extra, message in cases:
        cfg = harness.merge(base, {"client": {"tls": extra}})
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        r = harness.run_corrald(["-c", str(path), "--check-config"])
        assert r.returncode == harness.EXIT_CONFIG and message in r.stderr, (extra, r.stderr)


def java_cli(srv, pki, *command):
    """ZooKeeper's Java client (ZooKeeperMain, what zkCli.sh runs) over TLS:
    zookeeper.client.secure with ClientCnxnSocketNetty, PEM key and trust
    stores, client1's certificate."""
    keystore = os.path.join(srv.tmp, "client1-keystore.pem")
    with open(keystore, "w") as f:
        f.write(open(pki.key("client1")).read() + open(pki.cert("client1")).read())
    cp = ":".join([harness.ZK_CLASSPATH, harness.ZK_LOG_JAR] +
                  [f"/usr/share/java/{j}.jar" for j in NETTY_JARS])
    system = {"zookeeper.client.secure": "true",
              "zookeeper.clientCnxnSocket": "org.apache.zookeeper.ClientCnxnSocketNetty",
              "zookeeper.ssl.keyStore.location": keystore, "zookeeper.ssl.keyStore.type": "PEM",
              "zookeeper.ssl.trustStore.location": pki.ca_file(),
              "zookeeper.ssl.trustStore.type": "PEM"}
    argv = ([os.environ.get("JAVA", "java"), "-Xmx128m", "-cp", cp]
            + [f"-D{k}={v}" for k, v in system.items()]
            + ["org.apache.zookeeper.ZooKeeperMain", "-server", f"127.0.0.1:{srv.tls_port}"]
            + list(command))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    return r.stdout + r.stderr


@pytest.mark.skipif(not os.path.exists("/usr/share/java/netty-handler.jar"),
                    reason="Netty (libnetty-java) is not installed")
def test_the_java_client_over_tls(make_tls_server, pki):
    srv = make_tls_server()
    assert "Created /java-tls" in java_cli(srv, pki, "create", "/java-tls", "hello")
    assert "hello" in java_cli(srv, pki, "get", "/java-tls").splitlines()
    who = java_cli(srv, pki, "whoami")
    assert f"x509: {pki.dn('client1')}" in who, who


@pytest.fixture(scope="module")
def curator_classpath(tmp_path_factory):
    return curator_java.compile_scenarios(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "curator",
                     "CuratorScenarios.java"),
        tmp_path_factory.mktemp("curator"),
        extra_jars=[f"/usr/share/java/{j}.jar" for j in NETTY_JARS])


@pytest.mark.parametrize("scenario", ["mutex", "curator_cache", "transaction"])
def test_curator_recipes_over_tls(make_tls_server, pki, curator_classpath, scenario):
    """Curator on the TLS port only (a plaintext client is refused there),
    configured as its users do: the ZooKeeper client's
    zookeeper.client.secure with Netty and PEM stores, client1's
    certificate. The scenarios (an InterProcessMutex losing no update, a
    CuratorCache on a persistent recursive watch, a transaction) check what
    the recipes guarantee, as test_curator.py does in plaintext."""
    srv = make_tls_server()
    keystore = os.path.join(srv.tmp, "client1-keystore.pem")
    with open(keystore, "w") as f:
        f.write(open(pki.key("client1")).read() + open(pki.cert("client1")).read())
    system = {"zookeeper.client.secure": "true",
              "zookeeper.clientCnxnSocket": "org.apache.zookeeper.ClientCnxnSocketNetty",
              "zookeeper.ssl.keyStore.location": keystore, "zookeeper.ssl.keyStore.type": "PEM",
              "zookeeper.ssl.trustStore.location": pki.ca_file(),
              "zookeeper.ssl.trustStore.type": "PEM",
              "org.slf4j.simpleLogger.defaultLogLevel": "warn"}
    p = subprocess.run([os.environ.get("JAVA", "java"), "-cp", curator_classpath]
                       + [f"-D{k}={v}" for k, v in system.items()]
                       + ["CuratorScenarios", f"127.0.0.1:{srv.tls_port}", scenario],
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0 and f"PASS {scenario}" in p.stdout, (
        f"{p.stdout}\n--- stderr ---\n{p.stderr[-6000:]}\n--- server ---\n"
        f"{srv.log_text()[-4000:]}")


@pytest.mark.corral_only
def test_min_protocol_refuses_an_older_client_with_one_line(make_tls_server, pki):
    srv = make_tls_server(client={"tls": {"min_protocol": "TLSv1.3"}})
    ctx = client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    port = raw.getsockname()[1]
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        ctx.wrap_socket(raw)
    raw.close()
    harness.wait_until(lambda: lines_about(srv, port), 10, what="the refusal's line")
    lines = lines_about(srv, port)
    assert len(lines) == 1 and "unsupported protocol" in lines[0], lines
    zk = tls_kazoo(srv, pki)                # TLS 1.3 clients are served
    try:
        assert zk.exists("/") is not None
    finally:
        harness.stop_kazoo([zk])


def test_addauth_x509_succeeds_with_a_certificate_and_fails_without(make_tls_server, pki):
    from kazoo.exceptions import AuthFailedError
    srv = make_tls_server()
    one = tls_kazoo(srv, pki)
    plain = harness.make_kazoo(srv.hosts)
    plain.start(timeout=20)
    try:
        one.add_auth("x509", "")
        assert one.exists("/") is not None
        with pytest.raises(AuthFailedError):
            plain.add_auth("x509", "")
    finally:
        harness.stop_kazoo([one, plain])
