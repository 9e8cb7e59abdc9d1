"""pytest plugin: run kazoo's own test suite against warren (or Apache ZooKeeper).

kazoo's tests get their servers from `kazoo.testing.harness.get_global_cluster()`, which
builds a `ZookeeperCluster` of Java processes. This plugin replaces that function with one
returning a `Cluster` of our own servers, which offers the same surface the tests use:
`cluster[i].address`, `.run()`, `.stop()`, `.reset()`, `cluster.start()`, `.terminate()`,
`.get_logs()` and `.get_ssl_client_configuration()`.

Settings (environment):
- KAZOO_TARGET: `warren` (default) or `zookeeper` (Debian's Apache ZooKeeper 3.8).
- WARREN_BIN: the warren binary (target warren); WARREN_ARGS: extra flags for every
  `warren server` (split like a shell would), e.g. `--set key=value`.
- KAZOO_CLUSTER_SIZE: servers in the cluster (default 1). With more than one, each
  server gets a zoo.cfg with `server.N=` lines: `warren server --config F --id N`.
- KAZOO_EXPECTED_FAILURES: the expected-failures file (default: the target's file here).
  Each listed test is marked xfail(strict=True): it must fail, and one that passes fails
  the run until its line is removed.
- `needs-ensemble.txt` lists tests that stop one server and expect another to serve:
  with one server they are expected failures on every target (xfail, strict).
- Skips: a test may skip only if `expected-skips.txt` lists it; any other skip is turned
  into a failure, so a missing dependency (gevent, eventlet, ...) cannot hide a suite.
- `racy.txt` lists tests that race inside kazoo's own code, whatever the server: each may
  run up to 3 times (pytest-rerunfailures), and the closing line counts the reruns.
- KAZOO_KEEP_WORKDIR=1: keep the servers' directories and logs after the run.

Every server is started with a fresh pid we own, checked with `ruok` -> `imok` on its
client port, and stopped by that pid: SIGTERM, then SIGKILL after STOP_TIMEOUT_S.
"""

import atexit
import base64
import fnmatch
import logging
import os
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "zk"))
import zkrun  # noqa: E402  (tests/zk, found through the path set just above)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
RUOK_TIMEOUT_S = 1.0
LOG_TAIL_LINES = 100


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter_word(port, word, timeout_s=RUOK_TIMEOUT_S):
    """Send a four-letter word to the client port; return the whole answer (bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(word)
        chunks = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


class Server:
    """One server process: ManagedZooKeeper's surface, any target behind it."""

    def __init__(self, cluster, server_id, peer):
        self.cluster = cluster
        self.server_id = server_id
        self.peer = peer
        self.host = "127.0.0.1"
        self.secure_client_port = free_port()
        self.working_path = os.path.join(cluster.workdir, "server%d" % server_id)
        self.process = None

    # -- the surface kazoo's tests use --------------------------------------------------
    @property
    def client_port(self):
        return self.peer.client_port

    @property
    def address(self):
        return "%s:%d" % (self.host, self.client_port)

    @property
    def secure_address(self):
        return "%s:%d" % (self.host, self.secure_client_port)

    @property
    def running(self):
        return self.process is not None

    def run(self):
        """Start the server (keeping its data) and wait until it answers `ruok`."""
        if self.running:
            return
        self.spawn()
        self.wait_ready()

    def stop(self):
        """Stop the server by its pid, keeping its data."""
        if not self.running:
            return
        proc, self.process = self.process, None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)

    def reset(self):
        """Stop the server and wipe its data."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.working_path, ignore_errors=True)

    def get_logs(self, num_lines=LOG_TAIL_LINES):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.readlines()[-num_lines:]
        except OSError:
            return []

    # -- ours ---------------------------------------------------------------------------
    @property
    def data_dir(self):
        return os.path.join(self.working_path, "data")

    @property
    def log_path(self):
        return os.path.join(self.working_path, "server.log")

    def write_file(self, name, text):
        path = os.path.join(self.working_path, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def spawn(self):
        """Start the process without waiting for it to answer."""
        os.makedirs(self.data_dir, exist_ok=True)
        argv = self.cluster.target.argv(self)
        with open(self.log_path, "ab") as log:
            log.write(("--- start: %s\n" % " ".join(argv)).encode())
            log.flush()
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self):
        """Poll `ruok` until `imok`, failing fast if the process exits."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(
                    "server %d exited with %s before answering ruok; log tail:\n%s"
                    % (self.server_id, code, "".join(self.get_logs(30)))
                )
            try:
                if four_letter_word(self.client_port, b"ruok") == b"imok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            "server %d did not answer ruok on port %d within %.0f s; log tail:\n%s"
            % (self.server_id, self.client_port, START_TIMEOUT_S, "".join(self.get_logs(30)))
        )


def _pem(kind, der):
    body = base64.encodebytes(der).decode("ascii")
    return "-----BEGIN %s-----\n%s-----END %s-----\n" % (kind, body, kind)


class WarrenTarget:
    """`warren server`: flags for one server, a zoo.cfg for an ensemble."""

    name = "warren"

    def __init__(self):
        self.bin = os.environ.get("WARREN_BIN", "")
        if not (self.bin and os.access(self.bin, os.X_OK)):
            raise pytest.UsageError(
                "WARREN_BIN=%r is not an executable warren binary" % self.bin
            )
        self.extra_args = shlex.split(os.environ.get("WARREN_ARGS", ""))

    # The settings kazoo's own harness gives ZooKeeper (kazoo/testing/harness.py and
    # common.py), as warren flags: every four-letter word, the super digest of "super:test",
    # no per-IP connection bound, a 2 s tick, read-only mode (-Dreadonlymode.enabled=true)
    # and reconfig (a standalone server still answers ReconfigDisabled, as ZooKeeper's).
    HARNESS_SETTINGS = [
        "4lw.commands.whitelist=*",
        "readonlymode.enabled=true",
        "reconfigEnabled=true",
        "zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
        "maxClientCnxns=0",
        "tickTime=2000",
    ]

    def settings(self, server):
        """HARNESS_SETTINGS plus, as kazoo's harness gives ZooKeeper, a TLS client port with
        its key and trust stores (as PEM files, which warren reads where ZooKeeper reads
        JKS) and the JAAS file of its SASL users."""
        tls = server.cluster.pem_files(server.working_path)
        jaas = server.write_file("jaas.conf", zkrun.JAAS_SERVER_SECTION)
        settings = self.HARNESS_SETTINGS + [
            "secureClientPort=%d" % server.secure_client_port,
            "ssl.keyStore.location=" + tls["keystore"],
            "ssl.trustStore.location=" + tls["truststore"],
            "java.security.auth.login.config=" + jaas,
        ]
        args = []
        for kv in settings:
            args += ["--set", kv]
        return args

    def argv(self, server):
        if server.cluster.size == 1:
            return [self.bin, "server", "--client-port", str(server.client_port),
                    "--data-dir", server.data_dir] + self.settings(server) + self.extra_args
        config = server.write_file(
            "zoo.cfg", zkrun.zoo_cfg(server.data_dir, server.client_port, server.cluster.peers)
        )
        server.write_file("data/myid", "%d\n" % server.server_id)
        return [self.bin, "server", "--config", config,
                "--id", str(server.server_id)] + self.settings(server) + self.extra_args


class ZooKeeperTarget:
    """Apache ZooKeeper from Debian's package, configured as kazoo's harness does."""

    name = "zookeeper"

    def __init__(self):
        try:
            zkrun.classpath()
        except RuntimeError as e:
            raise pytest.UsageError(str(e))

    def argv(self, server):
        cluster = server.cluster
        ssl = cluster.ssl_files(server.working_path)
        # kazoo's read-only test sets this before its cluster starts, as kazoo's harness reads it.
        local_sessions = os.environ.get("ZOOKEEPER_LOCAL_SESSION_RO", "false")
        extra = [
            "reconfigEnabled=true",
            "localSessionsEnabled=" + local_sessions,
            "localSessionsUpgradingEnabled=" + local_sessions,
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            "ssl.keyStore.location=" + ssl["keystore"],
            "ssl.keyStore.password=apassword",
            "ssl.trustStore.location=" + ssl["truststore"],
            "ssl.trustStore.password=apassword",
        ]
        peers = cluster.peers if cluster.size > 1 else ()
        config = server.write_file(
            "zoo.cfg",
            zkrun.zoo_cfg(server.data_dir, server.client_port, peers,
                          server.secure_client_port, extra),
        )
        server.write_file("data/myid", "%d\n" % server.server_id)
        jaas = server.write_file("jaas.conf", zkrun.JAAS_SERVER_SECTION)
        return zkrun.java_argv(config, jaas_path=jaas, ensemble=cluster.size > 1)


class Cluster:
    """kazoo's ZookeeperCluster surface over `Server`s of one target."""

    def __init__(self, target, size):
        self.target = target
        self.size = size
        self.workdir = tempfile.mkdtemp(prefix="warren-kazoo-%s-" % target.name)
        self.peers = [
            zkrun.Peer(i, "127.0.0.1", free_port(), free_port(), free_port())
            for i in range(1, size + 1)
        ]
        self._servers = [Server(self, p.server_id, p) for p in self.peers]
        self._ssl = None

    def __getitem__(self, k):
        return self._servers[k]

    def __iter__(self):
        return iter(self._servers)

    def start(self):
        # Spawn every server before waiting on any: an ensemble answers only with a quorum.
        spawned = [s for s in reversed(self._servers) if not s.running]
        for server in spawned:
            server.spawn()
        for server in spawned:
            server.wait_ready()

    def stop(self):
        for server in self._servers:
            server.stop()

    def terminate(self):
        for server in self._servers:
            server.destroy()

    def reset(self):
        for server in self._servers:
            server.reset()

    def get_logs(self):
        logs = []
        for server in self._servers:
            logs += server.get_logs()
        return logs

    def get_ssl_client_configuration(self):
        conf = self._ssl_configuration()
        return {
            "client_key": conf["client_key_pem"],
            "client_cert": conf["client_cert_pem"],
            "ca_cert": conf["ca_cert_pem"],
        }

    def ssl_files(self, directory):
        """Write the server's Java key and trust stores; return their paths."""
        conf = self._ssl_configuration()
        os.makedirs(directory, exist_ok=True)
        paths = {
            "keystore": os.path.join(directory, "keystore.jks"),
            "truststore": os.path.join(directory, "truststore.jks"),
        }
        for name, path in paths.items():
            conf[name].save(path, "apassword")
        return paths

    def pem_files(self, directory):
        """The same server key, certificate and CA as `ssl_files`, as PEM files (warren's
        key store is a PEM file with the key and its certificate chain)."""
        conf = self._ssl_configuration()
        entry = next(iter(conf["keystore"].private_keys.values()))
        os.makedirs(directory, exist_ok=True)
        keystore = os.path.join(directory, "keystore.pem")
        truststore = os.path.join(directory, "truststore.pem")
        with open(keystore, "w") as f:
            f.write(_pem("PRIVATE KEY", entry.pkey_pkcs8))
            for _, der in entry.cert_chain:
                f.write(_pem("CERTIFICATE", der))
        with open(truststore, "wb") as f:
            f.write(conf["ca_cert_pem"])
        return {"keystore": keystore, "truststore": truststore}

    def _ssl_configuration(self):
        # kazoo's own certificate generator, run on a stand-in for its cluster object.
        if self._ssl is None:
            from kazoo.testing.common import ZookeeperCluster

            holder = types.SimpleNamespace(_ssl_configuration={})
            ZookeeperCluster.perform_ssl_certs_generation(holder)
            self._ssl = holder._ssl_configuration
        return self._ssl

    def remove_workdir(self):
        shutil.rmtree(self.workdir, ignore_errors=True)


# -- the cluster kazoo's tests see ---------------------------------------------------------

_CLUSTER = None


def _make_target():
    name = os.environ.get("KAZOO_TARGET", "warren")
    targets = {"warren": WarrenTarget, "zookeeper": ZooKeeperTarget}
    if name not in targets:
        raise pytest.UsageError("KAZOO_TARGET must be warren or zookeeper, not %r" % name)
    return targets[name]()


def get_global_cluster():
    """Stands in for kazoo.testing.harness.get_global_cluster."""
    return _CLUSTER


def _shutdown():
    # Clients that tests left open would log every reconnect attempt once servers stop.
    logging.disable(logging.CRITICAL)
    if _CLUSTER is not None:
        _CLUSTER.terminate()
        if os.environ.get("KAZOO_KEEP_WORKDIR") != "1":
            _CLUSTER.remove_workdir()


def _raise_interrupt(signum, frame):
    # A SIGTERM to pytest becomes Ctrl-C, so pytest unwinds and our servers are stopped.
    raise KeyboardInterrupt("signal %d" % signum)


# -- expected failures ---------------------------------------------------------------------


def short_id(nodeid):
    """`.../kazoo/tests/test_client.py::TestClient::test_x` -> `test_client.py::TestClient::test_x`."""
    return nodeid.rsplit("/", 1)[-1]


def read_expected_failures(path):
    """Lines `test_file.py::Class::test  # reason`; `*` globs; `#` lines are comments."""
    entries = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            test_id, _, reason = line.partition("#")
            test_id = test_id.strip()
            if not test_id:
                continue
            if not reason.strip():
                raise pytest.UsageError("%s:%d: %s has no '# reason'" % (path, n, test_id))
            entries[test_id] = reason.strip()
    return entries


def pytest_addoption(parser):
    parser.addoption("--kazoo-expected-failures", default=None,
                     help="expected-failures file (default: the target's file)")


def pytest_configure(config):
    global _CLUSTER
    import kazoo.testing.harness as harness

    target = _make_target()
    size = int(os.environ.get("KAZOO_CLUSTER_SIZE", "1"))
    _CLUSTER = Cluster(target, size)
    harness.get_global_cluster = get_global_cluster
    atexit.register(_shutdown)
    signal.signal(signal.SIGTERM, _raise_interrupt)

    default = "expected-failures.txt"
    if target.name != "warren":
        default = "expected-failures.%s.txt" % target.name
    path = (config.getoption("--kazoo-expected-failures")
            or os.environ.get("KAZOO_EXPECTED_FAILURES")
            or os.path.join(HERE, default))
    config._kazoo = types.SimpleNamespace(
        target=target.name, size=size, workdir=_CLUSTER.workdir,
        expected_path=path, expected=read_expected_failures(path),
        skips_path=os.path.join(HERE, "expected-skips.txt"),
    )
    config._kazoo.skips = read_expected_failures(config._kazoo.skips_path)
    config._kazoo.racy_path = os.path.join(HERE, "racy.txt")
    config._kazoo.racy = read_expected_failures(config._kazoo.racy_path)
    if config._kazoo.racy and not config.pluginmanager.hasplugin("rerunfailures"):
        raise pytest.UsageError(
            "%s lists tests to rerun, but pytest-rerunfailures is not installed "
            "(tests/kazoo/setup-venv.sh installs it)" % config._kazoo.racy_path)
    if size == 1:
        ensemble = read_expected_failures(os.path.join(HERE, "needs-ensemble.txt"))
        overlap = set(ensemble) & set(config._kazoo.expected)
        if overlap:
            raise pytest.UsageError("listed twice (needs-ensemble.txt and %s): %s"
                                    % (path, ", ".join(sorted(overlap))))
        config._kazoo.expected.update(ensemble)


def pytest_unconfigure(config):
    _shutdown()


def _match(entries, sid):
    """The reason of the first entry (a test id or glob) matching `sid`, else None."""
    for pattern, reason in entries.items():
        if fnmatch.fnmatchcase(sid, pattern):
            return pattern, reason
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark expected failures xfail(strict) before -k/-m deselect anything."""
    state = config._kazoo
    used = set()
    for item in items:
        sid = short_id(item.nodeid)
        for entries in (state.expected, state.skips, state.racy):
            hit = _match(entries, sid)
            if hit:
                used.add(hit[0])
        hit = _match(state.expected, sid)
        if hit:
            item.add_marker(pytest.mark.xfail(reason=hit[1], strict=True))
        elif _match(state.racy, sid):
            # pytest-rerunfailures: up to 2 reruns, each reported.
            item.add_marker(pytest.mark.flaky(reruns=2))
    # An entry naming no test of a collected file is stale: the lists must stay true.
    files = {short_id(item.nodeid).split("::")[0] for item in items}
    stale = [p for p in list(state.expected) + list(state.skips) + list(state.racy)
             if p not in used and p.split("::")[0] in files]
    if stale:
        raise pytest.UsageError(
            "%s, %s or %s name tests that do not exist:\n  %s"
            % (state.expected_path, state.skips_path, state.racy_path, "\n  ".join(stale))
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip that expected-skips.txt does not list is a failure."""
    report = yield
    state = item.config._kazoo
    if report.skipped and not hasattr(report, "wasxfail"):
        if _match(state.skips, short_id(item.nodeid)) is None:
            report.outcome = "failed"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            report.longrepr = "unexpected skip (not in %s): %s" % (state.skips_path, reason)
    return report


def pytest_report_header(config):
    s = config._kazoo
    return "kazoo adapter: target=%s cluster_size=%d workdir=%s\n  %s: %d entries\n  %s: %d" % (
        s.target, s.size, s.workdir, s.expected_path, len(s.expected),
        s.skips_path, len(s.skips))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One plain closing line: `kazoo: N passed, N failed, N xfailed, N skipped`."""
    stats = terminalreporter.stats

    def count(key):
        return len(stats.get(key, []))

    terminalreporter.write_line(
        "kazoo(%s): %d xfailed (expected failures), %d xpassed"
        % (config._kazoo.target, count("xfailed"), count("xpassed"))
    )
    failed = count("failed") + count("error")
    terminalreporter.write_line(
        "kazoo: %d passed, %d failed, %d skipped, %d rerun (racy.txt)"
        % (count("passed"), failed, count("skipped"), count("rerun"))
    )
