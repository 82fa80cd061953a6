"""Mutual TLS between ensemble members (ensemble.tls, ZooKeeper's sslQuorum;
replication/peer_transport.h): members on 127.0.0.1, .2 and .3, each with a
certificate of the ensemble's CA naming its own peer host, form an ensemble
and replicate; a peer connection with a certificate of another CA, one
naming another member, none, plaintext on the TLS port, or a handshake left
unfinished is refused with one log line and moves no server's term, leader
or commit index; a member whose certificate names another member is
refused by the others (hostname verification) and disturbs no one; a
private key others may read is refused at start; a running plaintext
ensemble moves to TLS one server at a time (mode optional, then required)
under a writer, losing no acknowledged write.

The certificates are tests/lib/tls_pki.py's; the stranger's frames are
tests/lib/peerauth.py's."""
import socket
import ssl
import threading
import time

from ensembles import Member
from harness import EXIT_CONFIG, merge, run_corrald, wait_until
from peerauth import cluster_tag, raft_view, refusals, request_vote_frame, settled_view
from tls_pki import Pki, peer_tls_config



def member_hosts(c):
    """Each member on a loopback address of its own: its certificate can
    name it alone."""
    for s in c:
        s.peer_host = f"127.0.0.{s.id}"


def make_pki(tmp_path, c):
    pki = Pki(tmp_path / "pki")
    for s in c:
        pki.issue(f"s{s.id}", f"/O=Corral Test/CN=server {s.id}", peer_hosts=[s.peer_host])
    return pki


def use_tls(c, pki, mode=None, cert_of=None):
    """Every member (or those in cert_of: id -> certificate name) configured
    with ensemble.tls."""
    for s in c:
        name = (cert_of or {}).get(s.id, f"s{s.id}")
        s.config_dict = (lambda s=s, name=name: merge(Member.config_dict(s), {
            "ensemble": {"tls": peer_tls_config(pki, name, mode)}}))


def tls_ensemble(ensemble, tmp_path):
    c = ensemble(3, start=False)
    member_hosts(c)
    pki = make_pki(tmp_path, c)
    use_tls(c, pki)
    c.first_leader = c.start()
    return c, pki


def closed_after(sock, data, timeout=15.0):
    """Sends data (if any), then whether the server closes the connection
    within timeout (an alert, a reset or the end)."""
    sock.settimeout(timeout)
    try:
        if data:
            sock.sendall(data)
        while sock.recv(4096):
            pass
        return True
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def tls_stranger(member, pki=None, cert=None):
    """A TLS connection to member's peer port presenting pki's certificate
    `cert` (or none). It does not check the server: the test is what the
    server does with us."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(pki.cert(cert), pki.key(cert))
    raw = socket.create_connection((member.peer_host, member.peer_port), 10)
    s = ctx.wrap_socket(raw, do_handshake_on_connect=False)
    try:
        s.do_handshake()   # TLS 1.3: the server's verdict on us comes after
    except (ssl.SSLError, ConnectionResetError):
        pass
    return s


def test_an_ensemble_with_mutual_tls_serves_and_replicates(ensemble, tmp_path):
    c, _ = tls_ensemble(ensemble, tmp_path)
    lid = c.first_leader
    writer, reader = c.followers(lid)
    zk = ensemble.kazoo(c.hosts(only=[writer]))
    for i in range(20):
        zk.create(f"/n{i}", b"v%d" % i)
    zr = ensemble.kazoo(c.hosts(only=[reader]))
    zr.sync("/")
    assert zr.get("/n19")[0] == b"v19"
    assert c.wait_converged()["/n19"][0] == b"v19"
    for s in c:
        assert "peer connections are mutual TLS (required)" in s.log(), s.log()
        assert not refusals(s), refusals(s)
        assert s.mntr()["corral_peer_tls_refused"] == "0"


def test_each_refused_peer_connection_costs_one_line_and_moves_nothing(ensemble, tmp_path):
    c, pki = tls_ensemble(ensemble, tmp_path)
    lid = c.first_leader
    zk = ensemble.kazoo(c.hosts())
    zk.create("/before", b"x")
    c.wait_converged()
    before = settled_view(c, c.ids)
    tag = cluster_tag(c.name)
    term = int(before[lid][0])
    target = c[c.followers(lid)[0]]
    other = next(s for s in c if s.id not in (target.id, lid))
    pki.make_ca("rogue-ca", "/O=Rogue/CN=Rogue CA")
    pki.issue("rogue", "/O=Rogue/CN=server", ca="rogue-ca", peer_hosts=[other.peer_host])

    def vote(sender):   # a RequestVote that would win any election it reached
        return request_vote_frame(tag, sender, term=term + 1000, last_index=10 ** 12,
                                  last_term=term + 1000)
    def plain():
        return socket.create_connection((target.peer_host, target.peer_port), 10)
    # each connection made when its turn comes
    cases = [
        ("a certificate of another CA", lambda: tls_stranger(target, pki, "rogue"),
         vote(other.id), "client certificate: unable to get local issuer certificate"),
        # the CA's certificate of `other`, used for the frames of the leader
        ("a certificate naming another member", lambda: tls_stranger(target, pki, f"s{other.id}"),
         vote(lid), f"its certificate does not name server {lid}"),
        ("no certificate", lambda: tls_stranger(target), vote(other.id),
         "peer did not return a certificate"),
        ("plaintext", plain, vote(other.id),
         "it does not speak TLS (ensemble.tls.mode is required here)"),
        ("a handshake left unfinished", plain, b"\x16\x03\x01",
         "it did not finish its TLS handshake in 5000 ms"),
    ]
    for n, (what, connect, data, line) in enumerate(cases, 1):
        sock = connect()
        assert closed_after(sock, data), f"{what}: the connection was kept open"
        sock.close()
        wait_until(lambda: len(refusals(target)) == n, 10, what=f"the refusal of {what} logged",
                   detail=lambda: target.log())
        assert line in refusals(target)[-1], (what, refusals(target))
    assert target.mntr()["corral_peer_tls_refused"] == str(len(cases))
    # nothing moved: over two election timeouts, the same term, leader and
    # commit index everywhere (a stranger's vote heard would raise the term)
    end = time.monotonic() + 2 * c.election_timeout_ms / 1000
    while time.monotonic() < end:
        assert raft_view(c, c.ids) == before, (before, raft_view(c, c.ids))
    zk.create("/after", b"y")
    assert c.wait_converged()["/after"][0] == b"y"


def test_a_member_whose_certificate_names_another_is_refused_and_disturbs_no_one(
        ensemble, tmp_path):
    c, pki = tls_ensemble(ensemble, tmp_path)
    lid = c.first_leader
    odd, named = c.followers(lid)
    rest = [lid, named]
    c[odd].stop()
    use_tls(c, pki, cert_of={odd: f"s{named}"})
    c[odd].start()
    zk = ensemble.kazoo(c.hosts(only=rest))
    zk.create("/while", b"w")
    before = settled_view(c, rest)
    # the leader dials it and finds a certificate for another address ...
    wait_until(lambda: f"peer {odd} at {c[odd].peer_addr} refused: TLS handshake failed: "
               "server certificate: IP address mismatch" in c[lid].log(), 20,
               what="the leader's refusal of the member with another's certificate",
               detail=lambda: c[lid].log())
    # ... and the frames it sends under that certificate are not heard
    wait_until(lambda: any(f"its certificate does not name server {odd}" in ln
                           for sid in rest for ln in refusals(c[sid])), 20,
               what="a refusal of its frames")
    end = time.monotonic() + 3 * c.election_timeout_ms / 1000
    while time.monotonic() < end:
        assert raft_view(c, rest) == before, (before, raft_view(c, rest))
    assert c[odd].mntr().get("zk_server_state") != "follower"
    zk.create("/still", b"s")


def test_a_private_key_others_may_read_and_a_missing_ca_are_refused_at_start(tmp_path):
    pki = Pki(tmp_path / "pki")
    pki.issue("s1", "/CN=server 1", peer_hosts=["127.0.0.1"])
    conf = tmp_path / "corral.yaml"
    base = (f"data_dir: {tmp_path}/data\nensemble:\n  id: 1\n"
            "  members:\n    - {id: 1, client: '127.0.0.1:2181', peer: '127.0.0.1:2888'}\n"
            f"  tls:\n    certificate: {pki.cert('s1')}\n    private_key: {pki.key('s1')}\n")
    conf.write_text(base + f"    ca: {pki.ca_file()}\n")
    r = run_corrald(["--check-config", "-c", str(conf)])
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "pki" / "s1.key").chmod(0o640)
    r = run_corrald(["--check-config", "-c", str(conf)])
    assert r.returncode == EXIT_CONFIG
    assert f"ensemble.tls.private_key: {pki.key('s1')} holds a secret and its group or " \
           "others may read it (mode 0640)" in r.stdout + r.stderr, r.stdout + r.stderr
    (tmp_path / "pki" / "s1.key").chmod(0o600)
    conf.write_text(base)
    r = run_corrald(["--check-config", "-c", str(conf)])
    assert r.returncode == EXIT_CONFIG
    assert "ensemble.tls.ca: missing: the peers' TLS needs certificate, private_key and ca" \
        in r.stdout + r.stderr, r.stdout + r.stderr


class Writer(threading.Thread):
    """Creates /w/N for N = 0, 1, ... through every server until stopped;
    `acked` holds the paths whose create was answered."""

    def __init__(self, zk):
        super().__init__(daemon=True)
        self.zk = zk
        self.acked = []
        self.errors = 0
        self.done = threading.Event()

    def run(self):
        i = 0
        while not self.done.is_set():
            path = f"/w/{i}"
            i += 1
            try:
                self.zk.create(path, b"%d" % i)
                self.acked.append(path)
            except Exception:
                self.errors += 1
                self.done.wait(0.05)   # the writer's pace while a server restarts

    def progressed(self, past, timeout=60):
        wait_until(lambda: len(self.acked) > past, timeout,
                   what=f"a write acknowledged after the first {past}")


def test_a_plaintext_ensemble_moves_to_tls_one_server_at_a_time_under_writes(
        ensemble, tmp_path):
    c = ensemble(3, start=False)
    member_hosts(c)
    pki = make_pki(tmp_path, c)
    c.first_leader = c.start()
    zk = ensemble.kazoo(c.hosts())
    zk.create("/w")
    w = Writer(zk)
    w.start()
    try:
        w.progressed(10)
        modes = {}
        for step in ("optional", "required"):
            for s in c:
                s.stop()
                modes[s.id] = step
                s.config_dict = (lambda s=s: merge(Member.config_dict(s), {
                    "ensemble": {"tls": peer_tls_config(pki, f"s{s.id}", modes[s.id])}}))
                s.start()
                # the quorum stays: one leader all agree on, and writes go on
                c.wait_for_leader(30)
                w.progressed(len(w.acked))
        assert any("closed the connection at our TLS handshake: connecting without "
                   "(ensemble.tls.mode: optional)" in text
                   for s in c for text in s.logs())
    finally:
        w.done.set()
        w.join(30)
    state = c.wait_converged()
    lost = [p for p in w.acked if p not in state]
    assert not lost, f"{len(lost)} acknowledged writes lost: {lost[:10]}"
    for s in c:
        assert "peer connections are mutual TLS (required)" in s.log(), s.log()
        assert s.mntr()["corral_peer_tls_refused"] == "0"
