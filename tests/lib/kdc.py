"""A Kerberos realm of the test's own: MIT krb5's KDC (Debian's krb5-kdc)
on 127.0.0.1 with a free port, its database, principals and keytabs made
by kdb5_util and kadmin.local in a directory, and the krb5.conf a client
or server of the test points KRB5_CONFIG at. Nothing of the system's
Kerberos configuration is read or changed."""
import os
import shutil
import socket
import subprocess

import harness

KDC_BIN = "/usr/sbin/krb5kdc"


def available():
    return all(shutil.which(p) or os.path.exists(p)
               for p in (KDC_BIN, "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local"))


class Kdc:
    def __init__(self, directory, realm="CORRAL.TEST"):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.realm = realm
        self.port = harness.free_port()
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        self.proc = None
        with open(self.krb5_conf, "w") as f:
            f.write(f"[libdefaults]\n default_realm = {realm}\n dns_lookup_kdc = false\n"
                    " dns_lookup_realm = false\n rdns = false\n"
                    " dns_canonicalize_hostname = false\n udp_preference_limit = 1\n"
                    f"[realms]\n {realm} = {{\n  kdc = 127.0.0.1:{self.port}\n }}\n")
        with open(self.kdc_conf, "w") as f:
            f.write(f"[kdcdefaults]\n kdc_ports = {self.port}\n kdc_tcp_ports = {self.port}\n"
                    f"[realms]\n {realm} = {{\n  database_name = {self.dir}/principal\n"
                    f"  key_stash_file = {self.dir}/stash\n  acl_file = {self.dir}/kadm5.acl\n"
                    f"  kdc_ports = {self.port}\n  kdc_tcp_ports = {self.port}\n }}\n"
                    f"[logging]\n kdc = FILE:{self.dir}/kdc.log\n")
        open(os.path.join(self.dir, "kadm5.acl"), "w").close()

    def env(self, extra=None):
        env = {"KRB5_CONFIG": self.krb5_conf, "KRB5_KDC_PROFILE": self.kdc_conf}
        env.update(extra or {})
        return env

    def _run(self, argv):
        env = dict(os.environ, **self.env())
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]}: {r.returncode}: {r.stderr or r.stdout}")
        return r

    def start(self):
        self._run(["/usr/sbin/kdb5_util", "create", "-s", "-r", self.realm, "-P", "master-pw"])
        env = dict(os.environ, **self.env())
        self.log = open(os.path.join(self.dir, "krb5kdc.out"), "w")
        self.proc = subprocess.Popen([KDC_BIN, "-n", "-r", self.realm], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        harness.wait_until(lambda: self._listening() or self.proc.poll() is not None,
                           20, what="the KDC to listen")
        if self.proc.poll() is not None:
            raise RuntimeError("krb5kdc exited: " + open(self.log.name).read())
        return self

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def add_principal(self, name, keytab=None):
        """A principal with a random key, and a keytab (mode 0600) holding it."""
        self._run(["/usr/sbin/kadmin.local", "-r", self.realm, "-q", f"addprinc -randkey {name}"])
        if keytab:
            self._run(["/usr/sbin/kadmin.local", "-r", self.realm, "-q",
                       f"ktadd -k {keytab} {name}"])
            os.chmod(keytab, 0o600)
        return keytab

    def kinit(self, name, keytab, ccache):
        self._run(["kinit", "-k", "-t", keytab, "-c", ccache, name])
        return ccache

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc:
            self.log.close()
