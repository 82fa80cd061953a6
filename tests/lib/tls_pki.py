"""Certificates for the TLS tests, made with the openssl command line: a CA,
a server certificate (localhost, 127.0.0.1) and client certificates it
signs, and a second CA whose certificates the server must refuse. Each is
a PEM certificate and an unencrypted key (P-256), in one directory.

    pki = Pki(directory)
    pki.issue("client1", "/C=DE/O=Corral Test/CN=client one")
    pki.cert("client1"), pki.key("client1"), pki.ca_file()

Subjects are given in openssl's "/type=value" form; dn(name) says the
subject as Java's X500Principal.getName() writes it (RFC 2253), which is
the identity ZooKeeper's x509 scheme gives the client.
"""
import os
import subprocess


def _run(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    def __init__(self, directory):
        self.dir = os.path.abspath(str(directory))
        os.makedirs(self.dir, exist_ok=True)
        self.subjects = {}
        self.make_ca("ca", "/O=Corral Test/CN=Corral Test CA")

    def path(self, name, ext):
        return os.path.join(self.dir, f"{name}.{ext}")

    def cert(self, name):
        return self.path(name, "pem")

    def key(self, name):
        return self.path(name, "key")

    def ca_file(self, ca="ca"):
        return self.cert(ca)

    def make_ca(self, name, subject, days=30):
        """A self-signed CA."""
        _run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", self.key(name), "-out", self.cert(name), "-days", str(days),
              "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)
        self.subjects[name] = subject
        return self

    def issue(self, name, subject, ca="ca", days=30, server=False, peer_hosts=None):
        """A certificate signed by ca: a server's (SAN localhost and
        127.0.0.1), an ensemble member's (peer_hosts: its SAN, IP addresses
        or DNS names; for both TLS roles) or a client's. days=-1 makes one
        that has expired. Keys are written 0600 (corrald refuses others)."""
        ext = self.path(name, "ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if peer_hosts:
                san = ",".join(("IP:" if h[0].isdigit() or ":" in h else "DNS:") + h
                               for h in peer_hosts)
                f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n")
            elif server:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n")
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        _run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", self.key(name), "-out", self.path(name, "csr"), "-subj", subject], self.dir)
        _run(["x509", "-req", "-in", self.path(name, "csr"), "-CA", self.cert(ca),
              "-CAkey", self.key(ca), "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
              "-out", self.cert(name), "-days", str(days), "-extfile", ext], self.dir)
        os.chmod(self.key(name), 0o600)
        self.subjects[name] = subject
        return self

    def dn(self, name):
        """The subject in RFC 2253 form, as openssl prints it (for the
        plain subjects the tests use, Java writes the same)."""
        out = subprocess.run(["openssl", "x509", "-in", self.cert(name), "-noout", "-subject",
                              "-nameopt", "RFC2253"], check=True, capture_output=True,
                             text=True, timeout=60).stdout.strip()
        return out[len("subject="):]

    def keystore(self, name, password="changeit"):
        """A PKCS#12 keystore of the certificate and key (for ZooKeeper)."""
        path = self.path(name, "p12")
        _run(["pkcs12", "-export", "-in", self.cert(name), "-inkey", self.key(name),
              "-out", path, "-passout", f"pass:{password}", "-name", name], self.dir)
        return path

    def truststore(self, ca="ca", password="changeit"):
        """A PKCS#12 truststore of the CA's certificate (for ZooKeeper)."""
        path = self.path(f"{ca}-trust", "p12")
        subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", ca, "-file",
                        self.cert(ca), "-keystore", path, "-storetype", "PKCS12",
                        "-storepass", password], check=True, capture_output=True, timeout=120)
        return path


def peer_tls_wanted():
    """Whether the environment asks ensembles for mutual TLS between peers
    (CORRAL_PEER_TLS=1: meson's replication-*-tls suites)."""
    return os.environ.get("CORRAL_PEER_TLS") == "1"


def member_peer_tls(pki, sid, host):
    """ensemble.tls of member sid whose peer host is `host`: a certificate
    of pki's CA naming it (and localhost), made on first use."""
    name = f"s{sid}-peer"
    if name not in pki.subjects:
        pki.issue(name, f"/O=Corral Test/CN=server {sid}", peer_hosts=[host, "localhost"])
    return peer_tls_config(pki, name)


def peer_tls_config(pki, name, mode=None):
    """The ensemble.tls section of a member whose certificate is `name`."""
    out = {"certificate": pki.cert(name), "private_key": pki.key(name), "ca": pki.ca_file()}
    if mode:
        out["mode"] = mode
    return out


def standard(directory):
    """The set the TLS tests use: ca, server, client1, client2, an expired
    client (expired), and another CA (rogue-ca) with a client (rogue)."""
    pki = Pki(directory)
    pki.issue("server", "/O=Corral Test/CN=localhost", server=True)
    pki.issue("client1", "/C=DE/O=Corral Test/OU=Tests/CN=client one")
    pki.issue("client2", "/C=DE/O=Corral Test/OU=Tests/CN=client two")
    pki.issue("expired", "/C=DE/O=Corral Test/CN=client expired", days=-1)
    pki.make_ca("rogue-ca", "/O=Rogue/CN=Rogue CA")
    pki.issue("rogue", "/C=DE/O=Corral Test/OU=Tests/CN=client one", ca="rogue-ca")
    return pki
