"""Ensemble peers authenticated by a shared secret (ensemble.secret_file,
replication/peer_auth.h): an ensemble whose secret comes from systemd's
credentials directory forms and replicates; a stranger on a peer port that
speaks the old, unauthenticated protocol, or the handshake with a wrong
secret, is refused with one log line and moves no server's term, leader or
commit index; a member started with a wrong secret cannot join nor disturb
the leader; a secret file others may read is refused at start, naming the
file and the key; during a rolling enablement (ensemble.peer_auth:
optional) members with and without the secret form one ensemble.

The stranger's side of the handshake is tests/lib/peerauth.py."""
import os
import time

from ensembles import Member
from harness import EXIT_CONFIG, merge, run_corrald, wait_until
from peerauth import (PeerConnection, cluster_tag, raft_view, refusals, request_vote_frame,
                      settled_view)

SECRET = b"the ensemble's secret, 32 bytes."
WRONG = b"another ensemble's secret, wrong"


def secret_file(tmp_path, name, data=SECRET, mode=0o600):
    path = tmp_path / name
    path.write_bytes(data + b"\n")
    os.chmod(path, mode)
    return str(path)


def test_an_ensemble_with_a_secret_from_the_credentials_directory_forms_and_replicates(
        ensemble, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    # systemd keeps the directory for the service: the file's own mode does not matter there
    secret_file(creds, "peer-secret", mode=0o644)
    c = ensemble(3, config={"ensemble": {"secret_file": "credential:peer-secret"}}, start=False)
    for s in c:
        s.extra_env = {"CREDENTIALS_DIRECTORY": str(creds)}
    c.first_leader = c.start()
    zk = ensemble.kazoo(c.hosts(only=[c.followers()[0]]))
    for i in range(20):
        zk.create(f"/n{i}", b"v%d" % i)
    state = c.wait_converged()
    assert state["/n19"][0] == b"v19"
    for s in c:
        assert "peer connections authenticate with the secret of credential:peer-secret " \
               "(required)" in s.log(), s.log()
        assert not refusals(s), refusals(s)


def test_a_stranger_on_the_peer_port_is_refused_and_moves_nothing(ensemble, tmp_path):
    path = secret_file(tmp_path, "secret")
    c = ensemble(3, config={"ensemble": {"secret_file": path}})
    lid = c.first_leader
    zk = ensemble.kazoo(c.hosts())
    zk.create("/before", b"x")
    c.wait_converged()
    before = settled_view(c, c.ids)
    tag = cluster_tag(c.name)
    term = int(before[lid][0])
    vote = request_vote_frame(tag, 9, term=term + 1000, last_index=10 ** 12, last_term=term + 1000)
    for sid in c.ids:
        # the old protocol: a RequestVote that would win any election
        s = PeerConnection("127.0.0.1", c[sid].peer_port)
        s.send(vote)
        assert s.closed_by_server(), f"server {sid} kept an unauthenticated connection open"
        s.close()
        # the handshake with a wrong secret: the server's proof is of another
        # secret, and our forged answer is refused
        s = PeerConnection("127.0.0.1", c[sid].peer_port)
        assert s.authenticate(tag, 9, sid, WRONG) is False
        s.send(b"CRPR" + bytes(4) + os.urandom(32) + vote)
        assert s.closed_by_server(), f"server {sid} kept a connection with a wrong proof open"
        s.close()
    for sid in c.ids:
        wait_until(lambda: len(refusals(c[sid])) == 2, 10,
                   what=f"server {sid}'s two refusals logged",
                   detail=lambda: c[sid].log())
        lines = refusals(c[sid])
        assert "does not authenticate" in lines[0], lines
        assert "does not prove the ensemble's secret" in lines[1], lines
        assert c[sid].mntr()["corral_peer_auth_refused"] == "2"
    # nothing moved: over two election timeouts, the same term, leader and
    # commit index everywhere (a stranger's vote heard would have raised the term)
    end = time.monotonic() + 2 * c.election_timeout_ms / 1000
    while time.monotonic() < end:
        assert raft_view(c, c.ids) == before, (before, raft_view(c, c.ids))
    # a holder of the secret is heard only as the server it proved to be
    follower = c.followers(lid)[0]
    s = PeerConnection("127.0.0.1", c[follower].peer_port)
    assert s.authenticate(tag, 9, follower, SECRET) is True
    s.send(request_vote_frame(tag, lid, term=term + 1000, last_index=10 ** 12,
                              last_term=term + 1000))
    assert s.closed_by_server()
    s.close()
    assert f"a frame from server {lid} on the connection that authenticated server 9" \
        in c[follower].log()
    assert raft_view(c, c.ids) == before
    zk.create("/after", b"y")
    assert c.wait_converged()["/after"][0] == b"y"


def test_a_member_with_a_wrong_secret_cannot_join_nor_disturb_the_leader(ensemble, tmp_path):
    path = secret_file(tmp_path, "secret")
    wrong = secret_file(tmp_path, "wrong", data=WRONG)
    c = ensemble(3, config={"ensemble": {"secret_file": path}})
    lid = c.first_leader
    odd = c.followers()[0]
    rest = [sid for sid in c.ids if sid != odd]
    c[odd].stop()
    m = c[odd]
    m.config_dict = lambda: merge(Member.config_dict(m), {"ensemble": {"secret_file": wrong}})
    m.start()
    zk = ensemble.kazoo(c.hosts(only=rest))
    zk.create("/while", b"w")
    before = settled_view(c, rest)
    # the leader's connections to it are refused both ways, and it stands
    # for election again and again: no one hears it
    wait_until(lambda: f"peer {odd} at {c[odd].peer_addr} refused: it does not prove the "
               "ensemble's secret" in c[lid].log(), 20,
               what="the leader's refusal of the member with the wrong secret")
    end = time.monotonic() + 3 * c.election_timeout_ms / 1000
    while time.monotonic() < end:
        assert raft_view(c, rest) == before, (before, raft_view(c, rest))
        assert c[odd].mntr().get("corral_leader_id") != str(lid)
    assert "does not prove the ensemble's secret" in c[odd].log(), c[odd].log()
    assert c[odd].mntr().get("zk_server_state") != "follower"
    zk.create("/still", b"s")


def test_a_secret_file_others_may_read_is_refused_at_start(tmp_path):
    path = secret_file(tmp_path, "secret", mode=0o644)
    conf = tmp_path / "corral.yaml"
    conf.write_text(f"data_dir: {tmp_path}/data\nensemble:\n  id: 1\n  secret_file: {path}\n"
                    "  members:\n    - {id: 1, client: '127.0.0.1:2181', peer: '127.0.0.1:2888'}\n")
    r = run_corrald(["--check-config", "-c", str(conf)])
    assert r.returncode == EXIT_CONFIG, (r.returncode, r.stdout, r.stderr)
    out = r.stdout + r.stderr
    assert f"{conf}:4: ensemble.secret_file: {path} holds a secret and its group or others " \
           "may read it (mode 0644)" in out, out
    # a credential's name needs the credentials directory
    conf.write_text(conf.read_text().replace(path, "credential:peer"))
    r = run_corrald(["--check-config", "-c", str(conf)])
    assert r.returncode == EXIT_CONFIG
    assert "ensemble.secret_file: 'credential:peer' names a systemd credential, and " \
           "$CREDENTIALS_DIRECTORY is not set" in r.stdout + r.stderr, r.stdout + r.stderr
    os.chmod(path, 0o600)
    os.rename(path, tmp_path / "peer")
    r = run_corrald(["--check-config", "-c", str(conf)],
                    env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr


def test_members_with_and_without_the_secret_form_one_ensemble_while_it_is_optional(
        ensemble, tmp_path):
    path = secret_file(tmp_path, "secret")
    c = ensemble(3, start=False)
    for sid in (1, 2):
        m = c[sid]
        m.config_dict = (lambda m=m: merge(Member.config_dict(m), {
            "ensemble": {"secret_file": path, "peer_auth": "optional"}}))
    c.first_leader = c.start()
    zk = ensemble.kazoo(c.hosts(only=[3]))
    zk.create("/mixed", b"m")
    assert c.wait_converged()["/mixed"][0] == b"m"
    assert "no ensemble.secret_file: peer connections are not authenticated" in c[3].log()
