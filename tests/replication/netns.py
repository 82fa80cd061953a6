"""A private network of Linux network namespaces, for the partition tests.

One `Network` of N servers is built from scratch with iproute2 and exists
only while the test runs:

    root namespace: the test process (kazoo clients, four-letter words)
      crp<tag>  10.77.K.254/24            <- one veth; the only thing added to
        |                                    the root namespace
    corral-<pid>-<hex>-sw  "the switch": br0, a Linux bridge (no STP)
        | p1 ... pN  (veths, ports of br0)
    corral-<pid>-<hex>-1 ... -N  one per server: eth0 10.77.K.i/24, lo up

K is picked so that 10.77.K.0/24 overlaps no route or address the root
namespace already has. The server namespaces have no route but their /24 and
no link but their veth to the switch, so nothing a server sends can leave the
switch; the root namespace gets one connected route, 10.77.K.0/24 on crp<tag>
(IPv6 off on it), and loses it when the network is destroyed. Servers run as
`ip netns exec corral-...-i corrald -c CONFIG`, client and peer addresses on
10.77.K.i (ports are per namespace, so every server can use the same ones).

Where the test clients run (the brief offered two ways): the test process
itself reaches every server through its root-namespace leg (10.77.K.254 on
the switch), so clients are ordinary in-process kazoo objects: exceptions
are Python exceptions, threads share one Recorder, and call/return times are
taken on one clock next to the call, not across a pipe to a helper process
in another namespace. A partition never cuts that leg: the client side of
every server stays reachable, so a test can send a write to a server that is
cut off from its peers and watch it not succeed (that is the point).

How a partition is made (what this machine has): no nft or iptables program
is installed, and this kernel has neither tc's gact (`action drop`) nor
flower, so neither a firewall rule nor a tc filter can drop packets. Taking a
veth down cuts a server from everyone, the test client included, and cannot
make a 2/3 split on one bridge. Blackhole or unreachable routes fail
connect() at once (EINVAL, EHOSTUNREACH) instead of losing packets. What is
used: to cut servers a and b apart, each gets a permanent neighbour (ARP)
entry for the other's address with a MAC address no interface has
(DEAD_MAC). Their packets to each other still leave through eth0, the bridge
floods them as unknown unicast, and every port drops them (not its address):
the packets are lost in the switch, both directions, and the senders see
exactly what a partition shows, silence (SYNs and retransmissions time out).
Any subset of pairs can be cut, so any split is possible, and the root leg
is untouched. Healing deletes those entries; the next packet ARPs again.

Teardown (`destroy`) deletes the root veth and every namespace (servers must
be killed first: a namespace lives as long as a process in it).
`sweep_stale()` deletes what a killed earlier run left: namespaces named
corral-<pid>-<hex>-* whose <pid> is no longer alive (and the corrald
processes still inside them).
"""
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess

IP = shutil.which("ip") or "/usr/sbin/ip"
DEAD_MAC = "02:00:00:c0:ff:ee"	# locally administered; no interface has it
SUBNET_PREFIX = "10.77"
HOST_OCTET = 254
LOCK_PATH = "/run/lock/corral-netns.lock"
NS_RE = re.compile(r"^corral-(\d+)-([0-9a-f]{4})-(sw|\d+)$")


class IpError(RuntimeError):
    pass


def ip(*args, ns=None, check=True, timeout=30):
    """Runs `ip [-n NS] ARGS...`; raises IpError with the command and its
    stderr when it fails and check is set. Returns stdout."""
    argv = [IP] + (["-n", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise IpError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _namespaces():
    out = ip("-j", "netns", "list", check=False).strip()
    if not out:
        return []
    try:
        return [e["name"] for e in json.loads(out)]
    except ValueError:
        return [line.split()[0] for line in out.splitlines() if line.strip()]


def unavailable_reason():
    """None when this process can build a Network, else why not (for
    pytest.skip): not root, no ip command, or the kernel refuses
    namespaces, bridges or veths."""
    if os.geteuid() != 0:
        return f"network namespaces need root (this process runs as uid {os.geteuid()})"
    if not os.path.exists(IP):
        return "no ip command (iproute2) on this machine"
    probe = f"corral-{os.getpid()}-{secrets.token_hex(2)}-sw"
    try:
        ip("netns", "add", probe)
    except (IpError, OSError) as e:
        return f"cannot create a network namespace: {e}"
    try:
        ip("link", "add", "br0", "type", "bridge", ns=probe)
        ip("link", "add", "pa", "type", "veth", "peer", "name", "pb", ns=probe)
        ip("link", "set", "pa", "master", "br0", ns=probe)
    except IpError as e:
        return f"cannot build a bridge and veths in a namespace: {e}"
    finally:
        ip("netns", "del", probe, check=False)
    return None


def sweep_stale():
    """Deletes the namespaces of earlier runs whose test process is gone
    (killed before its teardown), first killing the corrald processes left
    in them. Returns the names deleted."""
    gone = []
    for name in _namespaces():
        m = NS_RE.match(name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        for pid in ip("netns", "pids", name, check=False).split():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
                if comm == "corrald":
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        ip("netns", "del", name, check=False)
        gone.append(name)
    return gone


def _root_networks():
    """Every IPv4 network the root namespace routes or has an address in
    (default routes aside)."""
    nets = []
    for r in json.loads(ip("-4", "-j", "route", "show", "table", "all") or "[]"):
        dst = r.get("dst")
        if dst and dst != "default":
            try:
                nets.append(ipaddress.ip_network(dst, strict=False))
            except ValueError:
                pass
    for link in json.loads(ip("-4", "-j", "addr", "show") or "[]"):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a.get('prefixlen', 32)}",
                                             strict=False))
    return nets


class Network:
    """size server namespaces on one switch, plus the root namespace's leg.
    Servers are numbered 1..size, like the ensemble's ids."""

    def __init__(self, size):
        assert 1 <= size <= 250
        self.size = size
        self.tag = secrets.token_hex(2)
        self.prefix = f"corral-{os.getpid()}-{self.tag}"
        self.switch = f"{self.prefix}-sw"
        self.host_if = f"crp{os.getpid() % 10000:04d}{self.tag}"[:15]
        self.subnet = None	# 10.77.K
        self.created = []	# namespaces made so far (for destroy)
        self.host_if_made = False
        self._cuts = set()	# frozenset({a, b}) pairs cut apart

    # names and addresses

    def ns(self, i):
        return f"{self.prefix}-{i}"

    def addr(self, i):
        return f"{self.subnet}.{i}"

    @property
    def host_addr(self):
        return f"{self.subnet}.{HOST_OCTET}"

    def exec_argv(self, i, argv):
        """The argv that runs argv inside server i's namespace."""
        return [IP, "netns", "exec", self.ns(i)] + list(argv)

    # building and tearing down

    def create(self):
        """Builds the whole network; on any failure tears down what was
        built and raises."""
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def _add_ns(self, name):
        ip("netns", "add", name)
        self.created.append(name)
        ip("link", "set", "lo", "up", ns=name)

    def _create(self):
        self._add_ns(self.switch)
        ip("link", "add", "br0", "type", "bridge", "stp_state", "0", ns=self.switch)
        ip("link", "set", "br0", "up", ns=self.switch)
        for i in range(1, self.size + 1):
            ns = self.ns(i)
            self._add_ns(ns)
            ip("link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", ns,
               ns=self.switch)
            ip("link", "set", f"p{i}", "master", "br0", "up", ns=self.switch)
            ip("link", "set", "eth0", "up", ns=ns)
        # The subnet: chosen, and the root leg given its address, under a
        # lock, so that two runs at once cannot take the same one.
        os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
        with open(LOCK_PATH, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            taken = _root_networks()
            free = [k for k in range(1, 255)
                    if not any(n.overlaps(ipaddress.ip_network(f"{SUBNET_PREFIX}.{k}.0/24"))
                               for n in taken)]
            if not free:
                raise IpError(f"no free {SUBNET_PREFIX}.K.0/24 in the root namespace")
            self.subnet = f"{SUBNET_PREFIX}.{secrets.choice(free)}"
            ip("link", "add", self.host_if, "type", "veth", "peer", "name", "host",
               "netns", self.switch)
            self.host_if_made = True
            try:
                with open(f"/proc/sys/net/ipv6/conf/{self.host_if}/disable_ipv6", "w") as f:
                    f.write("1")
            except OSError:
                pass
            ip("addr", "add", f"{self.host_addr}/24", "dev", self.host_if)
        ip("link", "set", "host", "master", "br0", "up", ns=self.switch)
        ip("link", "set", self.host_if, "up")
        for i in range(1, self.size + 1):
            ip("addr", "add", f"{self.addr(i)}/24", "dev", "eth0", ns=self.ns(i))

    def destroy(self):
        """Deletes the root veth and every namespace made. Returns a list of
        what could not be deleted (empty when all went)."""
        problems = []
        if self.host_if_made:
            r = subprocess.run([IP, "link", "del", self.host_if], capture_output=True, text=True)
            if r.returncode != 0 and "Cannot find device" not in r.stderr:
                problems.append(f"ip link del {self.host_if}: {r.stderr.strip()}")
            self.host_if_made = False
        for name in reversed(self.created):
            pids = ip("netns", "pids", name, check=False).split()
            if pids:
                problems.append(f"namespace {name} still has processes {pids}")
            r = subprocess.run([IP, "netns", "del", name], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"ip netns del {name}: {r.stderr.strip()}")
        self.created = []
        left = [n for n in _namespaces() if n.startswith(self.prefix + "-")]
        if left:
            problems.append(f"namespaces left: {left}")
        if os.path.exists(f"/sys/class/net/{self.host_if}"):
            problems.append(f"link {self.host_if} left in the root namespace")
        return problems

    # partitions

    def _set_cut(self, a, b, cut):
        for x, y in ((a, b), (b, a)):
            if cut:
                ip("neigh", "replace", self.addr(y), "lladdr", DEAD_MAC, "dev", "eth0",
                   "nud", "permanent", ns=self.ns(x))
            else:
                r = subprocess.run([IP, "-n", self.ns(x), "neigh", "del", self.addr(y), "dev",
                                    "eth0"], capture_output=True, text=True)
                if r.returncode != 0 and "No such file or directory" not in r.stderr:
                    raise IpError(f"neigh del {self.addr(y)} in {self.ns(x)}: {r.stderr}")

    def cut(self, a, b):
        """Loses every packet between servers a and b, both ways."""
        assert a != b
        pair = frozenset((a, b))
        if pair not in self._cuts:
            self._set_cut(a, b, True)
            self._cuts.add(pair)

    def partition(self, *groups):
        """Cuts every pair of servers that are not in the same group; the
        groups must name every server once. Cuts made before stay."""
        named = [s for g in groups for s in g]
        assert sorted(named) == list(range(1, self.size + 1)), f"groups {groups} must cover 1..{self.size}"
        for gi, g in enumerate(groups):
            for h in groups[gi + 1:]:
                for a in g:
                    for b in h:
                        self.cut(a, b)

    def isolate(self, i):
        """Cuts server i from every other server (not from the test's clients)."""
        self.partition([i], [s for s in range(1, self.size + 1) if s != i])

    def heal(self):
        """Undoes every cut."""
        for pair in list(self._cuts):
            a, b = sorted(pair)
            self._set_cut(a, b, False)
            self._cuts.discard(pair)

    @property
    def cuts(self):
        return sorted(tuple(sorted(p)) for p in self._cuts)

    def describe(self):
        """The network's state as text, for a failure report."""
        lines = [f"network {self.prefix}: subnet {self.subnet}.0/24, root leg {self.host_if} "
                 f"{self.host_addr}, cut pairs {self.cuts}"]
        for i in range(1, self.size + 1):
            if self.ns(i) in self.created:
                neigh = ip("neigh", "show", "dev", "eth0", ns=self.ns(i), check=False).strip()
                lines.append(f"  server {i} ({self.ns(i)}, {self.addr(i)}) neighbours: "
                             + ("; ".join(neigh.splitlines()) or "none"))
        return "\n".join(lines)

