"""A small stand-in for systemd's file descriptor store, for tests and the
blackout benchmark outside a container (tests/service/test_fdstore.py
proves the same under the real systemd).

FakeFdStore binds a notification socket ($NOTIFY_SOCKET) and, in a thread,
does what systemd's service manager does with what arrives on it:
FDSTORE=1 + FDNAME= keeps the descriptors (one already kept is not kept
twice), FDSTOREREMOVE=1 + FDNAME= closes and forgets them, BARRIER=1
closes the descriptor it came with (which is what sd_notify_barrier()
waits for); READY=1 and the rest are recorded. spawn() starts a program
the way systemd starts a service with a store: the kept descriptors as
3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, and
CORRAL_FDSTORE_MAX as corral.service sets it.
"""
import array
import os
import socket
import subprocess
import threading


class FakeFdStore:
    def __init__(self, workdir, max_fds=4200):
        self.path = os.path.join(str(workdir), "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.max_fds = max_fds
        self.kept = []          # (name, fd)
        self.messages = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(253 * 4))
            except OSError:
                return
            fds = array.array("i")
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            self._handle(data.decode(errors="replace"), list(fds))

    def _same(self, a, b):
        sa, sb = os.fstat(a), os.fstat(b)
        return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)

    def _handle(self, text, fds):
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        with self.lock:
            self.messages.append(text)
            if fields.get("FDSTORE") == "1":
                name = fields.get("FDNAME", "stored")
                for fd in fds:
                    if len(self.kept) >= self.max_fds or \
                            any(self._same(fd, k) for _, k in self.kept):
                        os.close(fd)
                    else:
                        self.kept.append((name, fd))
                return
            if fields.get("FDSTOREREMOVE") == "1":
                name = fields.get("FDNAME")
                for n, fd in [k for k in self.kept if k[0] == name]:
                    os.close(fd)
                    self.kept.remove((n, fd))
            for fd in fds:          # BARRIER=1's pipe, or anything unasked for
                os.close(fd)

    def names(self):
        with self.lock:
            return [n for n, _ in self.kept]

    def spawn(self, argv, env, stdout):
        """Starts argv with the kept descriptors, as systemd starts a service."""
        with self.lock:
            kept = list(self.kept)
        env = dict(env, NOTIFY_SOCKET=self.path, CORRAL_FDSTORE_MAX=str(self.max_fds))
        if kept:
            env["LISTEN_FDS"] = str(len(kept))
            env["LISTEN_FDNAMES"] = ":".join(n for n, _ in kept)
        high = [fd for _, fd in kept]

        def place():
            moved = [os.dup(fd) for fd in high]     # above 3 + len, then in place
            for i, fd in enumerate(moved):
                os.dup2(fd, 3 + i)
            for fd in moved:
                if fd >= 3 + len(moved):
                    os.close(fd)
        # LISTEN_PID is the service's own pid: the shell's, which exec keeps.
        wrapper = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"]
        return subprocess.Popen(wrapper + list(argv) if kept else list(argv), env=env,
                                stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=subprocess.STDOUT, preexec_fn=place if kept else None,
                                close_fds=not kept)

    def close(self):
        self.stopped = True
        self.sock.close()
        with self.lock:
            for _, fd in self.kept:
                os.close(fd)
            self.kept = []
