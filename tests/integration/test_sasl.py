"""SASL on the client port (auth.sasl), the sasl ACL scheme and enforced
authentication (auth.enforce), with kazoo's DIGEST-MD5 (sasl_options,
Debian's python3-pure-sasl) and the raw client of tests/lib/jute.py.

With CORRAL_TEST_TARGET=zookeeper the same tests run against Apache
ZooKeeper 3.8 configured alike: a JAAS Server section with
DigestLoginModule's user_NAME="password" entries, the SASL authentication
provider, zookeeper.superUser and zookeeper.enforce.auth.*. What ZooKeeper
does not have (corral's log lines, its config checks) is corral_only.
"""
import logging
import os
import shutil
import subprocess
import tempfile

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import InvalidACLError, NoAuthError
from kazoo.protocol.states import KazooState, KeeperState
from kazoo.security import OPEN_ACL_UNSAFE, make_acl

import conftest
import harness
import jute
import kdc

logging.getLogger("kazoo").setLevel(logging.CRITICAL)

USERS = {"bob": "bob's secret", "carol": "c4r0l", "alice": "the super one"}
SESSIONCLOSEDREQUIRESASLAUTH = -124


def zookeeper_sasl(tmp, enforce):
    """Apache ZooKeeper with DIGEST-MD5 users in a JAAS file, as corrald's
    auth.sasl.users_file gives them."""
    jaas = os.path.join(tmp, "jaas.conf")
    entries = "".join(f'    user_{u}="{p}"\n' for u, p in USERS.items())
    with open(jaas, "w") as f:
        f.write("Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                + entries + ";\n};\n")
    system = {"java.security.auth.login.config": jaas,
              "zookeeper.authProvider.sasl":
              "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
              "zookeeper.superUser": "alice"}
    if enforce:
        system.update({"zookeeper.enforce.auth.enabled": "true",
                       "zookeeper.enforce.auth.schemes": "sasl"})
    srv = harness.ZooKeeper(tmp, system=system, properties={
        "tickTime": 200, "minSessionTimeout": 1000, "maxSessionTimeout": 60000})
    srv.target = "zookeeper"
    return srv


@pytest.fixture
def make_sasl_server():
    """make(enforce=False, **overrides): a started server that knows the
    users of USERS by DIGEST-MD5, alice its super user."""
    made = []

    def make(enforce=False, **overrides):
        tmp = tempfile.mkdtemp(prefix="corral-sasl-")
        if conftest.TARGET == "zookeeper":
            srv = zookeeper_sasl(tmp, enforce)
        else:
            users = os.path.join(tmp, "sasl-users")
            fd = os.open(users, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("# name: password\n" + "".join(f"{u}: {p}\n" for u, p in USERS.items()))
            auth = {"sasl": {"users_file": users, "super_user": "alice"}}
            if enforce:
                auth["enforce"] = {"enabled": True, "schemes": "sasl"}
            srv = conftest.Server(tmp, harness.merge({"auth": auth}, overrides))
        made.append(srv)
        return srv.start(timeout=60)

    yield make
    for srv in made:
        srv.stop()
    bad = [s for s in made if s.target == "corrald" and s.sanitizer_reports()]
    for srv in made:
        if srv not in bad:
            shutil.rmtree(srv.tmp, ignore_errors=True)
    assert not bad, "sanitizer reports:\n" + "\n".join(s.log_text()[-4000:] for s in bad)


def sasl_kazoo(srv, user, password=None, states=None):
    zk = KazooClient(hosts=srv.hosts, timeout=10,
                     sasl_options={"mechanism": "DIGEST-MD5", "username": user,
                                   "password": USERS[user] if password is None else password},
                     connection_retry={"max_tries": 3, "delay": 0.1},
                     command_retry={"max_tries": 0})
    if states is not None:
        zk.add_listener(states.append)
    zk.start(timeout=20)
    return zk


def stop(*clients):
    for zk in clients:
        zk.stop()
        zk.close()


def test_digest_md5_user_is_allowed_by_its_sasl_acl_and_another_user_is_denied(make_sasl_server):
    srv = make_sasl_server()
    bob, carol, alice = (sasl_kazoo(srv, u) for u in ("bob", "carol", "alice"))
    anonymous = harness.make_kazoo(srv.hosts)
    anonymous.start(timeout=20)
    try:
        bob.create("/bobs", b"mine", acl=[make_acl("sasl", "bob", all=True)])
        assert bob.get("/bobs")[0] == b"mine"
        bob.set("/bobs", b"still mine")
        for other in (carol, anonymous):
            with pytest.raises(NoAuthError):
                other.get("/bobs")
            with pytest.raises(NoAuthError):
                other.set("/bobs", b"theirs")
        # "auth" in an ACL becomes the session's sasl identity
        bob.create("/bobs-auth", b"", acl=[make_acl("auth", "", all=True)])
        assert bob.get_acls("/bobs-auth")[0] == [make_acl("sasl", "bob", all=True)]
        with pytest.raises(NoAuthError):
            carol.get("/bobs-auth")
        # zookeeper.superUser / auth.sasl.super_user passes every check
        assert alice.get("/bobs")[0] == b"still mine"
        alice.delete("/bobs-auth")
    finally:
        stop(bob, carol, alice, anonymous)


def test_sasl_acl_ids_are_checked_as_kerberos_names(make_sasl_server):
    srv = make_sasl_server()
    bob = sasl_kazoo(srv, "bob")
    try:
        for good in ("bob", "svc/host.example.com@EXAMPLE.COM", "bob@EXAMPLE.COM"):
            bob.create("/ok-" + good.replace("/", "_"), b"", acl=[make_acl("sasl", good, all=True)])
        for bad in ("a@b@c", "svc/h/x@R", "svc/host@R/x"):
            with pytest.raises(InvalidACLError):
                bob.create("/bad", b"", acl=[make_acl("sasl", bad, all=True)])
    finally:
        stop(bob)


def test_wrong_password_is_refused_and_other_clients_are_unaffected(make_sasl_server):
    srv = make_sasl_server()
    bob = sasl_kazoo(srv, "bob")
    states = []
    wrong = None
    try:
        bob.create("/before", b"1")
        try:
            wrong = sasl_kazoo(srv, "carol", password="not carol's", states=states)
        except Exception:
            pass        # kazoo may give up in start() or just after it
        harness.wait_until(lambda: KazooState.LOST in states or
                           (wrong and wrong.client_state == KeeperState.AUTH_FAILED), 20,
                           what="the client with a wrong password to be refused")
        assert bob.connected
        bob.set("/before", b"2")
        assert bob.get("/before")[0] == b"2"
        if srv.target == "corrald":
            refused = [l for l in srv.log().splitlines()
                       if "SASL authentication failed" in l and not l.startswith("<7>")]
            assert len(refused) == 1, refused
            assert "closing" in refused[0]
            assert int(srv.mntr()["zk_auth_failed_count"]) >= 1
    finally:
        stop(bob, *([wrong] if wrong else []))


def test_enforced_auth_refuses_an_unauthenticated_session_and_serves_an_authenticated_one(
        make_sasl_server):
    srv = make_sasl_server(enforce=True)
    raw = jute.Client(srv.port)
    try:
        raw.handshake()
        raw.request("getData", jute.path_watch_body("/"))
        xid, zxid, err, _ = raw.reply()
        # ZooKeeper 3.8's AuthenticationHelper: SESSIONCLOSEDREQUIRESASLAUTH,
        # zxid 0, and the connection closes.
        assert (err, zxid) == (SESSIONCLOSEDREQUIRESASLAUTH, 0)
        assert raw.closed_by_server(timeout=10)
    finally:
        raw.close()
    bob = sasl_kazoo(srv, "bob")
    try:
        bob.create("/enforced", b"in")
        assert bob.get("/enforced")[0] == b"in"
        assert bob.get_acls("/enforced")[0] == OPEN_ACL_UNSAFE
    finally:
        stop(bob)
    if srv.target == "corrald":
        # one line for the refused connection (the readiness probe's
        # closeSession, refused too, has its own)
        refused = [l for l in srv.log().splitlines() if "getData without authenticating" in l]
        assert len(refused) == 1, refused


def test_enforced_auth_lets_auth_and_sasl_through_before_authenticating(make_sasl_server):
    """An unauthenticated connection may still send auth (digest here: it
    is not among the enforced schemes, so getData is refused after it)."""
    srv = make_sasl_server(enforce=True)
    raw = jute.Client(srv.port)
    try:
        raw.handshake()
        raw.request("auth", jute.Writer().int(0).ustring("digest").buffer(b"u:p").bytes(), xid=-4)
        xid, _, err, _ = raw.reply()
        assert (xid, err) == (-4, 0)
        raw.request("exists", jute.path_watch_body("/"))
        _, _, err, _ = raw.reply()
        assert err == SESSIONCLOSEDREQUIRESASLAUTH
        assert raw.closed_by_server(timeout=10)
    finally:
        raw.close()


@pytest.mark.corral_only
def test_users_file_readable_by_others_is_refused(tmp_path):
    users = tmp_path / "users"
    users.write_text("bob: secret\n")
    users.chmod(0o644)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}/data\nclient: {{listen: ['127.0.0.1:1']}}\n"
                   f"auth:\n  sasl:\n    users_file: {users}\n")
    r = harness.run_corrald(["--check-config", "-c", str(cfg)])
    assert r.returncode != 0
    assert "auth.sasl.users_file" in r.stderr
    users.chmod(0o600)
    users.write_text("bob: secret\nno password here\n")
    r = harness.run_corrald(["--check-config", "-c", str(cfg)])
    assert r.returncode != 0
    assert ":2: " in r.stderr and "auth.sasl.users_file" in r.stderr, r.stderr


# ---------------------------------------------------------------- Kerberos

CLIENT_PRINCIPAL = "client/host.example"


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    """A KDC of the test's own (tests/lib/kdc.py): the server's principal
    zookeeper/localhost in a keytab, a client principal with a ticket in a
    credentials cache of its own."""
    if not kdc.available():
        pytest.fail("krb5-kdc is not installed (scripts/deps.sh test)")
    d = tmp_path_factory.mktemp("kdc")
    k = kdc.Kdc(d).start()
    k.server_keytab = k.add_principal("zookeeper/localhost", str(d / "server.keytab"))
    k.client_keytab = k.add_principal(CLIENT_PRINCIPAL, str(d / "client.keytab"))
    k.ccache = k.kinit(CLIENT_PRINCIPAL, k.client_keytab, str(d / "ccache"))
    yield k
    k.stop()


def zookeeper_kerberos(tmp, realm, remove_host, remove_realm):
    jaas = os.path.join(tmp, "jaas.conf")
    with open(jaas, "w") as f:
        f.write("Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n"
                f'  useKeyTab=true keyTab="{realm.server_keytab}" storeKey=true\n'
                f'  useTicketCache=false principal="zookeeper/localhost@{realm.realm}";\n}};\n')
    system = {"java.security.auth.login.config": jaas,
              "java.security.krb5.conf": realm.krb5_conf,
              "zookeeper.authProvider.sasl":
              "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
              "zookeeper.kerberos.removeHostFromPrincipal": str(remove_host).lower(),
              "zookeeper.kerberos.removeRealmFromPrincipal": str(remove_realm).lower()}
    srv = harness.ZooKeeper(tmp, system=system, properties={
        "tickTime": 200, "minSessionTimeout": 1000, "maxSessionTimeout": 60000})
    srv.target = "zookeeper"
    return srv


@pytest.fixture
def make_kerberos_server(realm, monkeypatch):
    """make(remove_host=False, remove_realm=False): a started server that
    accepts GSSAPI for zookeeper/localhost; this process's Kerberos (kazoo's
    GSSAPI through python3-kerberos) uses the realm's krb5.conf and the
    client's ticket."""
    monkeypatch.setenv("KRB5_CONFIG", realm.krb5_conf)
    monkeypatch.setenv("KRB5CCNAME", "FILE:" + realm.ccache)
    made = []

    def make(remove_host=False, remove_realm=False):
        tmp = tempfile.mkdtemp(prefix="corral-krb-")
        if conftest.TARGET == "zookeeper":
            srv = zookeeper_kerberos(tmp, realm, remove_host, remove_realm)
        else:
            srv = conftest.Server(tmp, {"auth": {"sasl": {
                "keytab": realm.server_keytab, "principal": "zookeeper/localhost",
                "remove_host_from_principal": remove_host,
                "remove_realm_from_principal": remove_realm}}})
        made.append(srv)
        return srv.start(env=realm.env(), timeout=60)

    yield make
    for srv in made:
        srv.stop()
    bad = [s for s in made if s.target == "corrald" and s.sanitizer_reports()]
    for srv in made:
        if srv not in bad:
            shutil.rmtree(srv.tmp, ignore_errors=True)
    assert not bad, "sanitizer reports:\n" + "\n".join(s.log_text()[-4000:] for s in bad)


def gssapi_kazoo(srv):
    # localhost: the service principal is zookeeper/<the host the client dials>
    zk = KazooClient(hosts=f"localhost:{srv.port}", timeout=10,
                     sasl_options={"mechanism": "GSSAPI"},
                     connection_retry={"max_tries": 3, "delay": 0.1},
                     command_retry={"max_tries": 0})
    zk.start(timeout=20)
    return zk


def test_gssapi_client_is_named_by_its_whole_principal(make_kerberos_server, realm):
    srv = make_kerberos_server()
    zk = gssapi_kazoo(srv)
    anonymous = harness.make_kazoo(srv.hosts)
    anonymous.start(timeout=20)
    try:
        whole = f"{CLIENT_PRINCIPAL}@{realm.realm}"
        zk.create("/krb", b"k", acl=[make_acl("auth", "", all=True)])
        assert zk.get_acls("/krb")[0] == [make_acl("sasl", whole, all=True)]
        assert zk.get("/krb")[0] == b"k"
        with pytest.raises(NoAuthError):
            anonymous.get("/krb")
    finally:
        stop(zk, anonymous)


def test_gssapi_name_without_host_and_realm(make_kerberos_server):
    srv = make_kerberos_server(remove_host=True, remove_realm=True)
    zk = gssapi_kazoo(srv)
    try:
        zk.create("/short", b"", acl=[make_acl("auth", "", all=True)])
        assert zk.get_acls("/short")[0] == [make_acl("sasl", "client", all=True)]
    finally:
        stop(zk)


@pytest.mark.corral_only
def test_a_followers_sasl_identity_reaches_the_leader(tmp_path):
    """Writes through a follower are checked by the leader with the
    session's identities as forwarded: the sasl one among them."""
    import ensembles
    users = tmp_path / "sasl-users"
    users.write_text("".join(f"{u}: {p}\n" for u, p in USERS.items()))
    users.chmod(0o600)
    cluster = ensembles.Cluster(tmp_path / "ensemble", 3,
                                config={"auth": {"sasl": {"users_file": str(users)}}})
    leader = cluster.start()
    follower = cluster[cluster.followers(leader)[0]]
    bob = sasl_kazoo(follower, "bob")
    carol = sasl_kazoo(follower, "carol")
    try:
        # "auth" is expanded by the leader: only the forwarded sasl id can fill it
        bob.create("/fw", b"1", acl=[make_acl("auth", "", all=True)])
        assert bob.get_acls("/fw")[0] == [make_acl("sasl", "bob", all=True)]
        bob.set("/fw", b"2")
        with pytest.raises(NoAuthError):
            carol.set("/fw", b"3")
        assert bob.get("/fw")[0] == b"2"
    finally:
        stop(bob, carol)
        cluster.stop_all()
    assert not cluster.sanitizer_reports()


def java_cli(srv, user, *command):
    """ZooKeeper's Java client (ZooKeeperMain, what zkCli.sh runs) with a
    JAAS Client section: DigestLoginModule, user's name and password."""
    jaas = tempfile.NamedTemporaryFile("w", suffix=".jaas", delete=False)
    with jaas:
        jaas.write("Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                   f'  username="{user}" password="{USERS[user]}";\n}};\n')
    try:
        argv = ([os.environ.get("JAVA", "java"), "-Xmx128m", "-cp",
                 harness.ZK_CLASSPATH + ":" + harness.ZK_LOG_JAR,
                 f"-Djava.security.auth.login.config={jaas.name}",
                 "org.apache.zookeeper.ZooKeeperMain", "-server", f"127.0.0.1:{srv.port}"]
                + list(command))
        r = subprocess.run(argv, capture_output=True, text=True, timeout=90)
        return r.stdout + r.stderr
    finally:
        os.unlink(jaas.name)


def test_the_java_client_with_a_jaas_digest_login(make_sasl_server):
    srv = make_sasl_server()
    out = java_cli(srv, "bob", "create", "/java-sasl", "hello", "sasl:bob:cdrwa")
    assert "Created /java-sasl" in out, out
    assert "hello" in java_cli(srv, "bob", "get", "/java-sasl").splitlines()
    who = java_cli(srv, "bob", "whoami")
    assert "sasl: bob" in who, who
    denied = java_cli(srv, "carol", "get", "/java-sasl")
    assert "Insufficient permission" in denied or "NoAuth" in denied, denied


def test_an_authorization_id_does_not_change_who_the_client_is(make_sasl_server):
    """A client authenticated as bob that asks to act as alice (the super
    user) is bob: the identity is the authenticated one, as ZooKeeper's
    SaslServerCallbackHandler makes it."""
    srv = make_sasl_server()
    alice = sasl_kazoo(srv, "alice")
    zk = KazooClient(hosts=srv.hosts, timeout=10,
                     sasl_options={"mechanism": "DIGEST-MD5", "username": "bob",
                                   "password": USERS["bob"], "authorization_id": "alice"},
                     connection_retry={"max_tries": 3, "delay": 0.1},
                     command_retry={"max_tries": 0})
    try:
        alice.create("/alices", b"", acl=[make_acl("sasl", "alice", all=True)])
        zk.start(timeout=20)
        with pytest.raises(NoAuthError):
            zk.get("/alices")
        zk.create("/as-bob", b"", acl=[make_acl("auth", "", all=True)])
        assert zk.get_acls("/as-bob")[0] == [make_acl("sasl", "bob", all=True)]
    finally:
        stop(alice, zk)


def test_a_gssapi_client_of_a_server_without_kerberos_is_refused(make_sasl_server, realm,
                                                                  monkeypatch):
    monkeypatch.setenv("KRB5_CONFIG", realm.krb5_conf)
    monkeypatch.setenv("KRB5CCNAME", "FILE:" + realm.ccache)
    srv = make_sasl_server()
    bob = sasl_kazoo(srv, "bob")
    states = []
    zk = KazooClient(hosts=f"localhost:{srv.port}", timeout=10,
                     sasl_options={"mechanism": "GSSAPI"},
                     connection_retry={"max_tries": 3, "delay": 0.1},
                     command_retry={"max_tries": 0})
    zk.add_listener(states.append)
    try:
        try:
            zk.start(timeout=10)
        except Exception:
            pass
        harness.wait_until(lambda: KazooState.LOST in states or
                           zk.client_state == KeeperState.AUTH_FAILED, 20,
                           what="the GSSAPI client to be refused")
        bob.create("/still-served", b"")
        if srv.target == "corrald":
            refused = [l for l in srv.log().splitlines()
                       if "SASL authentication failed: GSSAPI is not configured" in l]
            assert len(refused) == 1, refused
    finally:
        stop(bob, zk)


def test_the_sasl_scheme_is_unknown_where_sasl_is_not_configured(make_server):
    """ZooKeeper knows the sasl scheme only with SASLAuthenticationProvider
    configured; corrald only with a SASL mechanism (auth.sasl)."""
    srv = make_server()
    zk = harness.make_kazoo(srv.hosts)
    zk.start(timeout=20)
    try:
        with pytest.raises(InvalidACLError):
            zk.create("/nosasl", b"", acl=[make_acl("sasl", "bob", all=True)])
        zk.create("/nosasl", b"")
        with pytest.raises(InvalidACLError):
            zk.set_acls("/nosasl", [make_acl("sasl", "bob", all=True)])
    finally:
        stop(zk)


def test_a_connection_closed_mid_exchange_leaves_nothing_behind(make_sasl_server):
    """A DIGEST-MD5 exchange begun (the challenge sent) and abandoned: the
    server serves on, and its exchange goes with the connection (the
    sanitizer's leak check at the server's exit says so)."""
    srv = make_sasl_server()
    for _ in range(3):
        raw = jute.Client(srv.port)
        raw.handshake()
        raw.request("sasl", jute.Writer().buffer(b"").bytes())
        _, _, err, body = raw.reply()
        assert err == 0 and b"nonce=" in body
        raw.close()
    bob = sasl_kazoo(srv, "bob")
    try:
        bob.ensure_path("/served")
    finally:
        stop(bob)
