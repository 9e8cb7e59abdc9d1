#!/usr/bin/env python3
"""Run Apache ZooKeeper (Debian's `zookeeper` package, 3.8) on ports of our choosing.

Apache ZooKeeper is the reference that warren is compared against: the kazoo adapter
(`tests/kazoo/`) runs the same client test suite against both. This module has no
dependencies beyond the standard library so that any test harness can import it:

- `zoo_cfg(...)` writes a zoo.cfg; the same generator serves warren's ensembles
  (`warren server --config zoo.cfg --id N`), so both servers read the same file format.
- `classpath()` finds the ZooKeeper jars (ZOOKEEPER_CLASSPATH overrides the search).
- `java_argv(...)` is the command line that starts one ZooKeeper server.

Run as a script it starts one server in the foreground (exec, so the pid is Java's):

    python3 tests/zk/zkrun.py --client-port 31000 --data-dir /tmp/zk1
"""

import argparse
import glob
import os
import sys
from collections import namedtuple

# One member of an ensemble: ZooKeeper's `server.N=host:quorumPort:electionPort;clientPort`.
Peer = namedtuple("Peer", "server_id host quorum_port election_port client_port")

# The kazoo test suite logs in as super:test (kazoo/testing/harness.py) for reconfig.
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="

# kazoo's SASL tests (kazoo/tests/test_sasl.py) log in with these DIGEST-MD5 users.
JAAS_SERVER_SECTION = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
"""

# Where Debian's package and the upstream tarball put their jars.
_SEARCH = [
    "/usr/share/java/zookeeper.jar",  # Debian: its manifest's Class-Path names every dependency
    "/usr/share/zookeeper/zookeeper-*.jar",  # upstream binary tarball unpacked here
    "/usr/share/zookeeper/lib/*.jar",
]
# Jars that Debian's zookeeper.jar manifest leaves out: Netty's codec and resolver (needed
# by the Netty connection factory, which TLS requires) and an SLF4J binding so that the
# server's log reaches stderr instead of nowhere. Each is added only if present.
_DEBIAN_EXTRAS = [
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
    "/usr/share/java/slf4j-simple.jar",
]


def classpath():
    """The Java classpath of an installed ZooKeeper; raises if none is installed."""
    if os.environ.get("ZOOKEEPER_CLASSPATH"):
        return os.environ["ZOOKEEPER_CLASSPATH"]
    jars = []
    for pattern in _SEARCH:
        jars.extend(sorted(glob.glob(pattern)))
    if not jars:
        raise RuntimeError(
            "Apache ZooKeeper is not installed: `apt-get install -y zookeeper` "
            "(or set ZOOKEEPER_CLASSPATH)"
        )
    jars.extend(p for p in _DEBIAN_EXTRAS if os.path.exists(p))
    return os.pathsep.join(jars)


def zoo_cfg(data_dir, client_port, peers=(), secure_client_port=None, extra=()):
    """The text of a zoo.cfg for one server.

    `peers` lists every member of the ensemble (this server included); leave it empty
    for a standalone server. Keys are ZooKeeper's own, so warren's config reader and
    ZooKeeper's QuorumPeerConfig read the same file.
    """
    lines = [
        "tickTime=2000",
        "initLimit=10",
        "syncLimit=5",
        "dataDir=%s" % data_dir,
        "clientPort=%d" % client_port,
        "clientPortAddress=127.0.0.1",
        "maxClientCnxns=0",
        "4lw.commands.whitelist=*",
        # Jetty's admin server would take port 8080: never a fixed port in tests.
        "admin.enableServer=false",
    ]
    if secure_client_port is not None:
        lines.append("secureClientPort=%d" % secure_client_port)
    for p in peers:
        lines.append(
            "server.%d=%s:%d:%d;%s:%d"
            % (p.server_id, p.host, p.quorum_port, p.election_port, p.host, p.client_port)
        )
    lines.extend(extra)
    return "\n".join(lines) + "\n"


def java_argv(config_path, jaas_path=None, ensemble=False):
    """The command line that starts one ZooKeeper server on `config_path`."""
    main = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
    if not ensemble:
        main = "org.apache.zookeeper.server.ZooKeeperServerMain"
    argv = [
        os.environ.get("JAVA", "java"),
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",  # start fast; the tests are short
        "-Djava.awt.headless=true",
        "-Dfile.encoding=UTF-8",  # kazoo's digest credentials are UTF-8
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dzookeeper.extendedTypesEnabled=true",  # TTL nodes
        "-Dzookeeper.DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST,
        "-Dreadonlymode.enabled=true",
        "-Dzookeeper.authProvider.sasl="
        "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
    ]
    if jaas_path:
        argv.append("-Djava.security.auth.login.config=" + jaas_path)
    argv += ["-cp", classpath(), main, config_path]
    return argv


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client-port", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--config", help="an existing zoo.cfg (ensembles)")
    args = parser.parse_args()
    ensemble = False
    if args.config:
        config_path = args.config
        with open(config_path) as f:
            ensemble = any(line.startswith("server.") for line in f)
    else:
        if args.client_port is None or args.data_dir is None:
            parser.error("give --client-port and --data-dir, or --config")
        os.makedirs(args.data_dir, exist_ok=True)
        config_path = os.path.join(args.data_dir, "zoo.cfg")
        with open(config_path, "w") as f:
            f.write(zoo_cfg(os.path.abspath(args.data_dir), args.client_port))
    argv = java_argv(config_path, ensemble=ensemble)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
