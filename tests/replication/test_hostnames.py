"""Members named by host names: a 3-server ensemble whose client and peer
addresses in corral.yaml are names (s1.corral.test ...), mapped to 127.0.0.x
by a hosts file of the test's own. Each corrald runs in a mount namespace of
its own where that file is bind-mounted on /etc/hosts, so the test can remap
a name by rewriting it, as DNS changes when a Kubernetes pod moves.

- The ensemble elects a leader and replicates, every member listening on
  the address its name has.
- A member whose address changes is followed: server 3 is stopped, its name
  is remapped to another address, it starts again there, and the others,
  which look a peer's name up again for every connection they make, reach
  it at the new address: it catches up and takes part.
"""
import os
import shutil

import pytest

import harness
from harness import free_ports, make_kazoo, stop_kazoo, wait_until

pytestmark = pytest.mark.corral_only

DOMAIN = "corral.test"


def need_mount_namespaces():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private /etc/hosts")


class Named(harness.Corrald):
    """A member whose addresses are names; it sees `hosts` as /etc/hosts."""

    def __init__(self, workdir, sid, hosts_path, config, ip, client_port):
        super().__init__(workdir, name=f"s{sid}", config=config, host=ip, port=client_port,
                         argv_prefix=["unshare", "--mount", "--propagation", "private",
                                      "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
                                      hosts_path])
        self.id = sid

    def config_dict(self):
        return harness.merge({"data_dir": self.data_dir, "log_level": "info"}, self.config)


def write_hosts(path, names):
    # rewritten in place: the bind mounts see the same file
    with open(path, "r+" if os.path.exists(path) else "w") as f:
        f.seek(0)
        f.truncate()
        f.write("127.0.0.1 localhost\n")
        for name, ip in names.items():
            f.write(f"{ip} {name}\n")


def leader_of(servers):
    modes = {}
    for s in servers:
        try:
            modes[s.id] = s.mntr().get("zk_server_state")
        except OSError:
            return None
    leaders = [i for i, m in modes.items() if m == "leader"]
    return leaders[0] if len(leaders) == 1 and all(m in ("leader", "follower")
                                                   for m in modes.values()) else None


def test_members_named_by_host_names_replicate_and_follow_a_changed_address(tmp_path):
    need_mount_namespaces()
    hosts_path = str(tmp_path / "hosts")
    ips = {1: "127.0.0.11", 2: "127.0.0.12", 3: "127.0.0.13"}
    names = {sid: f"s{sid}.{DOMAIN}" for sid in ips}
    write_hosts(hosts_path, {names[i]: ips[i] for i in ips})
    ports = free_ports(6)
    client = {i: ports[2 * i - 2] for i in ips}
    peer = {i: ports[2 * i - 1] for i in ips}
    members = [{"id": i, "client": f"{names[i]}:{client[i]}", "peer": f"{names[i]}:{peer[i]}"}
               for i in ips]
    servers = [Named(tmp_path, i, hosts_path,
                     {"session": {"max_timeout_ms": 60000},
                      "ensemble": {"id": i, "election_timeout_ms": 1000, "members": members}},
                     ips[i], client[i]) for i in ips]
    clients = []
    try:
        for s in servers:
            s.spawn()
        for s in servers:
            s.wait_ready(60)
        lid = wait_until(lambda: leader_of(servers), 60, what="a leader")
        # each listens where its name points (client.listen comes from its member)
        assert all(f"serving clients on {ips[s.id]}:{client[s.id]}" in s.log() for s in servers)

        zk = make_kazoo(",".join(s.hosts for s in servers if s.id != 3 or lid == 3))
        clients.append(zk)
        zk.start(30)
        zk.create("/named", b"before the move")

        # a follower moves: stopped, its name remapped, started at the new address
        mid = next(i for i in (3, 2, 1) if i != lid)
        moved = servers[mid - 1]
        assert moved.stop() == 0
        ips[mid] = f"127.0.0.{20 + mid}"
        write_hosts(hosts_path, {names[i]: ips[i] for i in ips})
        moved.host = ips[mid]
        zk.set("/named", b"while it moved")
        moved.start(timeout=60)
        assert f"serving clients on {ips[mid]}:{client[mid]}" in moved.log()
        zk.set("/named", b"after the move")

        # it hears the leader again (the leader found it at its new address)
        # and has every write
        def caught_up():
            try:
                z = make_kazoo(moved.hosts)
                try:
                    z.start(5)
                    z.sync("/")
                    return z.get("/named")[0] == b"after the move"
                finally:
                    stop_kazoo([z])
            except Exception:
                return False
        wait_until(caught_up, 60, interval=0.5, what="the moved server to catch up")
        # and it counts in the quorum: with the third server stopped, the
        # leader and the moved one still commit
        other = next(s for s in servers if s.id not in (lid, mid))
        other.stop()
        zk.set("/named", b"a quorum with the moved server")
        assert zk.get("/named")[0] == b"a quorum with the moved server"
        wait_until(lambda: leader_of([servers[lid - 1], moved]) == lid, 30,
                   what="the leader to keep leading with the moved server")
    finally:
        stop_kazoo(clients, raise_stuck=False)
        bad = []
        for s in servers:
            rc = s.stop()
            if rc not in (0, None):
                bad.append(f"s{s.id} exited {rc}:\n{harness.tail(s.log(), 3000)}")
            bad.extend(s.sanitizer_reports())
        assert not bad, "\n".join(bad)
