use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("warren-config-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse(text: &str) -> Result<(ServerConfig, Vec<String>), ConfigError> {
    let dir = TempDir::new();
    let path = dir.write("zoo.cfg", text);
    ServerConfig::from_zoo_cfg(&path)
}

fn parse_ok(text: &str) -> ServerConfig {
    let (config, warnings) = parse(text).unwrap();
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    config
}

fn bad_value(text: &str) -> (String, String) {
    match parse(text) {
        Err(ConfigError::BadValue { key, value, .. }) => (key, value),
        other => panic!("expected BadValue for {text:?}, got {other:?}"),
    }
}

#[test]
fn defaults_when_the_file_is_empty() {
    let config = parse_ok("# nothing\n");
    let expected = ServerConfig {
        config_path: config.config_path.clone(),
        ..ServerConfig::default()
    };
    assert_eq!(config, expected);
    assert_eq!(config.tick_time_ms, 3000);
    assert_eq!(config.data_dir, PathBuf::from("./warren-data"));
    assert_eq!(config.client_port, 2181);
    assert_eq!(config.snap_count, 100_000);
    assert_eq!(config.snap_retain_count, 3);
    assert_eq!(config.purge_interval_hours, 0);
    assert_eq!(config.four_letter_words, vec!["srvr".to_string()]);
    assert_eq!(config.limits.session_timeout_ms_min, 6000);
    assert_eq!(config.limits.session_timeout_ms_max, 60_000);
    assert_eq!(config.effective_data_log_dir(), Path::new("./warren-data"));
}

/// One (line, check) per key of the table that sets something; the last test in this file
/// checks that no row is left out.
#[allow(clippy::type_complexity)]
fn key_cases() -> Vec<(&'static str, Box<dyn Fn(&ServerConfig) -> bool>)> {
    vec![
        ("tickTime=2000", Box::new(|c| c.tick_time_ms == 2000)),
        (
            "dataDir=/var/lib/zk",
            Box::new(|c| c.data_dir == Path::new("/var/lib/zk")),
        ),
        (
            "dataLogDir=/log",
            Box::new(|c| c.effective_data_log_dir() == Path::new("/log")),
        ),
        ("clientPort=2281", Box::new(|c| c.client_port == 2281)),
        (
            "clientPortAddress=127.0.0.1",
            Box::new(|c| c.client_port_address.as_deref() == Some("127.0.0.1")),
        ),
        (
            "secureClientPort=2282",
            Box::new(|c| c.secure_client_port == Some(2282)),
        ),
        (
            "secureClientPortAddress=::1",
            Box::new(|c| c.secure_client_port_address.as_deref() == Some("::1")),
        ),
        (
            "maxClientCnxns=0",
            Box::new(|c| c.limits.connections_per_ip_max == 0),
        ),
        (
            "minSessionTimeout=1000",
            Box::new(|c| c.limits.session_timeout_ms_min == 1000),
        ),
        (
            "maxSessionTimeout=90000",
            Box::new(|c| c.limits.session_timeout_ms_max == 90_000),
        ),
        (
            "clientPortListenBacklog=77",
            Box::new(|c| c.limits.listen_backlog_max == 77),
        ),
        ("initLimit=20", Box::new(|c| c.init_limit_ticks == 20)),
        ("syncLimit=7", Box::new(|c| c.sync_limit_ticks == 7)),
        (
            "autopurge.snapRetainCount=5",
            Box::new(|c| c.snap_retain_count == 5),
        ),
        (
            "autopurge.purgeInterval=24",
            Box::new(|c| c.purge_interval_hours == 24),
        ),
        (
            "standaloneEnabled=false",
            Box::new(|c| !c.standalone_enabled),
        ),
        ("reconfigEnabled=true", Box::new(|c| c.reconfig_enabled)),
        (
            "zookeeper.4lw.commands.whitelist=ruok, mntr",
            Box::new(|c| c.four_letter_words == ["ruok", "mntr"]),
        ),
        (
            "readonlymode.enabled=true",
            Box::new(|c| c.read_only_mode_enabled),
        ),
        (
            "zookeeper.extendedTypesEnabled=true",
            Box::new(|c| c.extended_types_enabled),
        ),
        ("zookeeper.skipACL=yes", Box::new(|c| c.skip_acl)),
        (
            "zookeeper.snapCount=5000",
            Box::new(|c| c.snap_count == 5000),
        ),
        (
            "zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            Box::new(|c| c.super_digest.as_deref() == Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")),
        ),
        (
            "java.security.auth.login.config=/etc/jaas.conf",
            Box::new(|c| c.jaas_config_path == Some(PathBuf::from("/etc/jaas.conf"))),
        ),
        (
            "jute.maxbuffer=4194304",
            Box::new(|c| c.limits.packet_bytes_max == 4_194_304),
        ),
        (
            "zookeeper.globalOutstandingLimit=2000",
            Box::new(|c| c.limits.requests_in_flight_max == 2000),
        ),
        (
            "zookeeper.maxCnxns=100",
            Box::new(|c| c.limits.connections_max == 100),
        ),
        (
            "zookeeper.nio.sessionlessCnxnTimeout=3000",
            Box::new(|c| c.limits.handshake_timeout_ms == 3000),
        ),
        (
            "znode.container.checkIntervalMs=1000",
            Box::new(|c| c.container_check_interval_ms == 1000),
        ),
        (
            "znode.container.maxPerMinute=50",
            Box::new(|c| c.limits.container_deletions_per_minute_max == 50),
        ),
        (
            "znode.container.maxNeverUsedIntervalMs=9000",
            Box::new(|c| c.container_max_never_used_interval_ms == 9000),
        ),
        (
            "zookeeper.ssl.keyStore.location=/k.pem",
            Box::new(|c| c.ssl.key_store_location == Some(PathBuf::from("/k.pem"))),
        ),
        (
            "zookeeper.ssl.keyStore.password=s3cret",
            Box::new(|c| c.ssl.key_store_password.as_deref() == Some("s3cret")),
        ),
        (
            "zookeeper.ssl.keyStore.type=PEM",
            Box::new(|c| c.ssl.key_store_type.as_deref() == Some("PEM")),
        ),
        (
            "zookeeper.ssl.trustStore.location=/t.pem",
            Box::new(|c| c.ssl.trust_store_location == Some(PathBuf::from("/t.pem"))),
        ),
        (
            "zookeeper.ssl.trustStore.password=pw",
            Box::new(|c| c.ssl.trust_store_password.as_deref() == Some("pw")),
        ),
        (
            "zookeeper.ssl.trustStore.type=pem",
            Box::new(|c| c.ssl.trust_store_type.as_deref() == Some("pem")),
        ),
        (
            "zookeeper.ssl.clientAuth=Want",
            Box::new(|c| c.ssl.client_auth.as_deref() == Some("want")),
        ),
        (
            "warren.packet_bytes_max=2000000",
            Box::new(|c| c.limits.packet_bytes_max == 2_000_000),
        ),
        (
            "warren.path_bytes_max=1024",
            Box::new(|c| c.limits.path_bytes_max == 1024),
        ),
        (
            "warren.requests_in_flight_max=10",
            Box::new(|c| c.limits.requests_in_flight_max == 10),
        ),
        (
            "warren.requests_in_flight_per_session_max=5",
            Box::new(|c| c.limits.requests_in_flight_per_session_max == 5),
        ),
        (
            "warren.watches_per_session_max=77",
            Box::new(|c| c.limits.watches_per_session_max == 77),
        ),
        (
            "warren.set_watches_paths_max=88",
            Box::new(|c| c.limits.set_watches_paths_max == 88),
        ),
        (
            "warren.multi_ops_max=99",
            Box::new(|c| c.limits.multi_ops_max == 99),
        ),
        (
            "warren.connections_per_ip_max=3",
            Box::new(|c| c.limits.connections_per_ip_max == 3),
        ),
        (
            "warren.connections_max=4",
            Box::new(|c| c.limits.connections_max == 4),
        ),
        (
            "warren.outbox_bytes_max=65536",
            Box::new(|c| c.limits.outbox_bytes_max == 65_536),
        ),
        (
            "warren.handshake_timeout_ms=500",
            Box::new(|c| c.limits.handshake_timeout_ms == 500),
        ),
        (
            "warren.expirations_per_tick_max=12",
            Box::new(|c| c.limits.expirations_per_tick_max == 12),
        ),
        (
            "warren.session_timeout_ms_min=100",
            Box::new(|c| c.limits.session_timeout_ms_min == 100),
        ),
        (
            "warren.session_timeout_ms_max=100000",
            Box::new(|c| c.limits.session_timeout_ms_max == 100_000),
        ),
        (
            "warren.container_deletions_per_minute_max=13",
            Box::new(|c| c.limits.container_deletions_per_minute_max == 13),
        ),
        (
            "warren.listen_backlog_max=14",
            Box::new(|c| c.limits.listen_backlog_max == 14),
        ),
    ]
}

#[test]
fn every_key_sets_its_field() {
    for (line, check) in key_cases() {
        let config = parse_ok(&format!("{line}\n"));
        assert!(check(&config), "{line} did not set its field");
        assert!(
            !check(&ServerConfig::default()),
            "{line}: the test value equals the default, so the check proves nothing"
        );
    }
}

#[test]
fn every_table_row_is_tested() {
    // Each row that sets a field must appear in key_cases under its own name.
    let tested: BTreeSet<String> = key_cases()
        .iter()
        .map(|(line, _)| line.split('=').next().unwrap().to_string())
        .collect();
    let rows: BTreeSet<String> = KEYS
        .iter()
        .filter(|row| matches!(row.kind, Kind::ZooCfg | Kind::Property | Kind::Warren))
        .filter(|row| row.key != "dynamicConfigFile") // tested with a real file below
        .map(|row| row.key.to_string())
        .collect();
    let missing: Vec<&String> = rows.difference(&tested).collect();
    assert!(missing.is_empty(), "untested keys: {missing:?}");
}

#[test]
fn system_properties_match_with_and_without_the_zookeeper_prefix() {
    // ZooKeeper maps an unknown zoo.cfg key k to the system property zookeeper.k.
    let config = parse_ok(
        "4lw.commands.whitelist=*\nextendedTypesEnabled=true\nsnapCount=10\n\
         ssl.keyStore.location=/a.pem\nDigestAuthenticationProvider.superDigest=\
         super:D/InIHSb7yEEbrWz8b9l71RjZJU=\nmaxCnxns=5\n",
    );
    assert_eq!(config.four_letter_words, vec!["*".to_string()]);
    assert!(config.extended_types_enabled);
    assert_eq!(config.snap_count, 10);
    assert_eq!(config.ssl.key_store_location, Some(PathBuf::from("/a.pem")));
    assert!(config.super_digest.is_some());
    assert_eq!(config.limits.connections_max, 5);

    // Properties ZooKeeper reads without the prefix are accepted with it too.
    let config = parse_ok("zookeeper.readonlymode.enabled=true\nzookeeper.jute.maxbuffer=2048\n");
    assert!(config.read_only_mode_enabled);
    assert_eq!(config.limits.packet_bytes_max, 2048);

    // zoo.cfg keys are not system properties: the prefix makes them unknown.
    let (config, warnings) = parse("zookeeper.tickTime=10\n").unwrap();
    assert_eq!(config.tick_time_ms, 3000);
    assert_eq!(warnings, vec!["zookeeper.tickTime: unknown key, ignored"]);
}

#[test]
fn unknown_and_ignored_keys_warn() {
    let (config, warnings) = parse(
        "tickTime=2000\nfrobnicate=1\nelectionAlg=3\nmetricsProvider.className=x\n\
         authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         admin.enableServer=false\nforceSync=no\n",
    )
    .unwrap();
    assert_eq!(config.tick_time_ms, 2000);
    assert_eq!(
        warnings,
        vec![
            "frobnicate: unknown key, ignored",
            "electionAlg: accepted for ZooKeeper compatibility, ignored",
            "metricsProvider.className: accepted for ZooKeeper compatibility, ignored",
            "authProvider.1: accepted for ZooKeeper compatibility, ignored",
            "admin.enableServer: accepted for ZooKeeper compatibility, ignored",
            "forceSync: accepted for ZooKeeper compatibility, ignored",
        ]
    );
}

#[test]
fn duplicates_and_small_retain_counts_warn() {
    let (config, warnings) =
        parse("clientPort=1\nclientPort=2\nautopurge.snapRetainCount=1\n").unwrap();
    assert_eq!(config.client_port, 2);
    assert_eq!(config.snap_retain_count, 3);
    assert_eq!(
        warnings,
        vec![
            "clientPort: set more than once; the last value wins",
            "autopurge.snapRetainCount: 1 is below 3; using 3",
        ]
    );
    let (_, warnings) = parse("4lw.commands.whitelist=ruok,nope\n").unwrap();
    assert_eq!(
        warnings,
        vec!["4lw.commands.whitelist: \"nope\" is not a four-letter word"]
    );
}

#[test]
fn bad_values_name_the_key_and_value() {
    let cases = [
        ("tickTime=0", "tickTime", "0"),
        ("tickTime=abc", "tickTime", "abc"),
        ("clientPort=70000", "clientPort", "70000"),
        ("clientPort=-1", "clientPort", "-1"),
        ("maxClientCnxns=-5", "maxClientCnxns", "-5"),
        ("minSessionTimeout=-2", "minSessionTimeout", "-2"),
        ("maxSessionTimeout=0", "maxSessionTimeout", "0"),
        ("standaloneEnabled=maybe", "standaloneEnabled", "maybe"),
        ("readonlymode.enabled=1", "readonlymode.enabled", "1"),
        ("dataDir=", "dataDir", ""),
        ("jute.maxbuffer=lots", "jute.maxbuffer", "lots"),
        (
            "DigestAuthenticationProvider.superDigest=super:short",
            "DigestAuthenticationProvider.superDigest",
            "super:short",
        ),
        ("ssl.keyStore.type=JKS", "ssl.keyStore.type", "JKS"),
        ("ssl.clientAuth=always", "ssl.clientAuth", "always"),
        ("warren.outbox_bytes_max=0", "warren.outbox_bytes_max", "0"),
        ("server.0=a:1:2", "server.0", "a:1:2"),
        ("server.256=a:1:2", "server.256", "a:1:2"),
        ("server.1=a:1", "server.1", "a:1"),
        ("server.1=a:1:1", "server.1", "a:1:1"),
        ("server.1=a:1:2:voter", "server.1", "a:1:2:voter"),
        ("server.1=a:1:2;x:y", "server.1", "a:1:2;x:y"),
        ("server.1=a:1:2|b:1:2", "server.1", "a:1:2|b:1:2"),
        ("group.1=1:2:3", "group.1", "1:2:3"),
    ];
    for (line, key, value) in cases {
        assert_eq!(
            bad_value(&format!("{line}\n")),
            (key.to_string(), value.to_string()),
            "{line}"
        );
    }
    // The message carries both, for the operator.
    let message = parse("clientPort=x\n").unwrap_err().to_string();
    assert!(
        message.contains("clientPort") && message.contains("\"x\""),
        "{message}"
    );
}

#[test]
fn session_timeouts_follow_the_tick_unless_set() {
    // -1 or absent: 2 × tick and 20 × tick (ZooKeeper's setMinSessionTimeout rule).
    let config = parse_ok("tickTime=2000\n");
    assert_eq!(config.limits.session_timeout_ms_min, 4000);
    assert_eq!(config.limits.session_timeout_ms_max, 40_000);
    let config = parse_ok("tickTime=100\nminSessionTimeout=-1\nmaxSessionTimeout=-1\n");
    assert_eq!(config.limits.session_timeout_ms_min, 200);
    assert_eq!(config.limits.session_timeout_ms_max, 2000);
    // An explicit value wins over the tick.
    let config = parse_ok("tickTime=100\nminSessionTimeout=150\n");
    assert_eq!(config.limits.session_timeout_ms_min, 150);
    assert_eq!(config.limits.session_timeout_ms_max, 2000);
    // min > max is refused, whether written or derived.
    assert!(matches!(
        parse("minSessionTimeout=9000\nmaxSessionTimeout=8000\n"),
        Err(ConfigError::Invalid(_))
    ));
    assert!(matches!(
        parse("tickTime=100\nminSessionTimeout=5000\n"),
        Err(ConfigError::Invalid(_))
    ));
    // A later tick override re-derives the unset bound only.
    let mut config = parse_ok("maxSessionTimeout=100000\n");
    config
        .apply_overrides(ConfigOverrides {
            tick_time_ms: Some(1000),
            ..ConfigOverrides::default()
        })
        .unwrap();
    assert_eq!(config.limits.session_timeout_ms_min, 2000);
    assert_eq!(config.limits.session_timeout_ms_max, 100_000);
}

#[test]
fn java_properties_syntax() {
    let entries = parse_properties(
        "# comment\n! also a comment\n   \n  tickTime = 2000  \nclientPort:2182\n\
         dataDir /var/zk\nkey\\ with\\ space=v\nlong=a,\\\n    b\nunicode=\\u0041\\t\nempty=\n\
         bare\nescaped\\=eq=1\n",
    );
    let expected = [
        ("tickTime", "2000"),
        ("clientPort", "2182"),
        ("dataDir", "/var/zk"),
        ("key with space", "v"),
        ("long", "a,b"),
        ("unicode", "A"),
        ("empty", ""),
        ("bare", ""),
        ("escaped=eq", "1"),
    ];
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn server_lines_are_parsed_and_kept() {
    let dir = TempDir::new();
    dir.write("myid", "2\n");
    let text = format!(
        "dataDir={}\nserver.1=zk1:2888:3888\nserver.2=zk2:2888:3888:participant;2182\n\
         server.3=[::1]:2888:3888:observer;127.0.0.1:2183\n",
        dir.0.display()
    );
    let path = dir.write("zoo.cfg", &text);
    let (config, warnings) = ServerConfig::from_zoo_cfg(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.my_id, Some(2));
    assert_eq!(
        config.servers,
        vec![
            ServerSpec {
                id: 1,
                host: "zk1".into(),
                peer_port: 2888,
                election_port: 3888,
                role: PeerRole::Participant,
                client_address: None,
                client_port: None,
            },
            ServerSpec {
                id: 2,
                host: "zk2".into(),
                peer_port: 2888,
                election_port: 3888,
                role: PeerRole::Participant,
                client_address: Some("0.0.0.0".into()),
                client_port: Some(2182),
            },
            ServerSpec {
                id: 3,
                host: "::1".into(),
                peer_port: 2888,
                election_port: 3888,
                role: PeerRole::Observer,
                client_address: Some("127.0.0.1".into()),
                client_port: Some(2183),
            },
        ]
    );
    // This server's own line supplies the client port (ZooKeeper's setupClientPort).
    assert_eq!(config.client_port, 2182);
    assert_eq!(config.client_port_address, None);
    assert_eq!(
        config.servers[2].to_string(),
        "[::1]:2888:3888:observer;127.0.0.1:2183"
    );
    assert_eq!(config.servers[0].to_string(), "zk1:2888:3888:participant");
}

#[test]
fn ensembles_need_a_matching_myid() {
    let dir = TempDir::new();
    let text = format!(
        "dataDir={}\nserver.1=a:1:2\nserver.2=b:1:2\n",
        dir.0.display()
    );
    let path = dir.write("zoo.cfg", &text);
    assert!(matches!(
        ServerConfig::from_zoo_cfg(&path),
        Err(ConfigError::Invalid(_))
    ));
    dir.write("myid", "7");
    assert!(matches!(
        ServerConfig::from_zoo_cfg(&path),
        Err(ConfigError::Invalid(_))
    ));
    dir.write("myid", "x");
    assert!(matches!(
        ServerConfig::from_zoo_cfg(&path),
        Err(ConfigError::BadValue { .. })
    ));
    dir.write("myid", " 1 \n");
    assert_eq!(ServerConfig::from_zoo_cfg(&path).unwrap().0.my_id, Some(1));
    // `--id` stands for a missing myid file, and this server's line gives its client port.
    std::fs::remove_file(dir.0.join("myid")).unwrap();
    let text = format!(
        "dataDir={}\nserver.1=a:1:2;2201\nserver.2=b:1:2;2202\n",
        dir.0.display()
    );
    let path = dir.write("zoo.cfg", &text);
    let load = |id| {
        ServerConfig::load(ConfigOverrides {
            config_file: Some(path.clone()),
            my_id: id,
            ..ConfigOverrides::default()
        })
    };
    assert!(matches!(load(None), Err(ConfigError::Invalid(_))));
    let (config, _) = load(Some(2)).unwrap();
    assert_eq!((config.my_id, config.client_port), (Some(2), 2202));
    assert!(matches!(load(Some(3)), Err(ConfigError::Invalid(_))));
    dir.write("myid", "1");
    // A clientPort that disagrees with this server's line is refused.
    let text = format!(
        "dataDir={}\nclientPort=1\nserver.1=a:1:2;9\n",
        dir.0.display()
    );
    let path = dir.write("zoo.cfg", &text);
    assert!(matches!(
        ServerConfig::from_zoo_cfg(&path),
        Err(ConfigError::Invalid(_))
    ));
    // TTL nodes put the server id in a byte that 255 would overflow.
    let text = format!(
        "dataDir={}\nextendedTypesEnabled=true\nserver.255=a:1:2\n",
        dir.0.display()
    );
    dir.write("myid", "255");
    let path = dir.write("zoo.cfg", &text);
    assert!(matches!(
        ServerConfig::from_zoo_cfg(&path),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn dynamic_config_file_holds_the_servers() {
    let dir = TempDir::new();
    dir.write("myid", "1");
    let dynamic = dir.write(
        "zoo.cfg.dynamic.100000000",
        "server.1=a:2888:3888\nserver.2=b:2888:3888\nversion=100000000\n",
    );
    let text = format!(
        "dataDir={}\ndynamicConfigFile={}\n",
        dir.0.display(),
        dynamic.display()
    );
    let path = dir.write("zoo.cfg", &text);
    let (config, _) = ServerConfig::from_zoo_cfg(&path).unwrap();
    assert_eq!(config.servers.len(), 2);
    assert_eq!(config.dynamic_config_file, Some(dynamic.clone()));
    // server.N in both places is refused, as ZooKeeper does.
    let text = format!("{text}server.3=c:1:2\n");
    let path = dir.write("zoo.cfg", &text);
    assert!(matches!(
        ServerConfig::from_zoo_cfg(&path),
        Err(ConfigError::Invalid(_))
    ));
    // Other keys do not belong in the dynamic file.
    dir.write("zoo.cfg.dynamic.100000000", "tickTime=5\n");
    let text = format!(
        "dataDir={}\ndynamicConfigFile={}\n",
        dir.0.display(),
        dynamic.display()
    );
    let path = dir.write("zoo.cfg", &text);
    assert!(matches!(
        ServerConfig::from_zoo_cfg(&path),
        Err(ConfigError::BadValue { .. })
    ));
}

#[test]
fn overrides_apply_after_the_file() {
    let dir = TempDir::new();
    let other = TempDir::new();
    other.write("myid", "3");
    let path = dir.write(
        "zoo.cfg",
        "clientPort=2181\ntickTime=2000\nmaxClientCnxns=10\n",
    );
    let (config, warnings) = ServerConfig::load(ConfigOverrides {
        config_file: Some(path.clone()),
        client_port: Some(0),
        client_port_address: Some("127.0.0.1".into()),
        data_dir: Some(other.0.clone()),
        data_log_dir: Some(PathBuf::from("/fast")),
        tick_time_ms: Some(500),
        connections_per_ip_max: Some(0),
        my_id: None,
        properties: vec![
            ("4lw.commands.whitelist".into(), "ruok".into()),
            ("bogus".into(), "1".into()),
        ],
    })
    .unwrap();
    assert_eq!(config.config_path, Some(path));
    assert_eq!(config.client_port, 0);
    assert_eq!(config.client_port_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(config.data_dir, other.0);
    assert_eq!(
        config.my_id,
        Some(3),
        "myid is read from the overriding dataDir"
    );
    assert_eq!(config.effective_data_log_dir(), Path::new("/fast"));
    assert_eq!(config.tick_time_ms, 500);
    assert_eq!(config.limits.session_timeout_ms_min, 1000);
    assert_eq!(config.limits.connections_per_ip_max, 0);
    assert_eq!(config.four_letter_words, vec!["ruok".to_string()]);
    assert_eq!(warnings, vec!["bogus: unknown key, ignored"]);

    // Without a file, load starts from the defaults; a bad override is refused.
    let (config, _) = ServerConfig::load(ConfigOverrides::default()).unwrap();
    assert_eq!(config, ServerConfig::default());
    let mut config = ServerConfig::default();
    let result = config.apply_overrides(ConfigOverrides {
        tick_time_ms: Some(0),
        ..ConfigOverrides::default()
    });
    assert!(matches!(result, Err(ConfigError::BadValue { .. })));
    assert!(matches!(
        config.set("clientPort", "x"),
        Err(ConfigError::BadValue { .. })
    ));
    assert_eq!(config.set("clientPort", "7").unwrap(), None);
    assert_eq!(config.client_port, 7);
}

#[test]
fn four_letter_word_whitelist_rule() {
    let mut config = ServerConfig::default();
    // Default: only srvr.
    assert!(config.four_letter_word_enabled("srvr"));
    assert!(!config.four_letter_word_enabled("ruok"));
    assert!(!config.four_letter_word_enabled("isro"));
    // isro joins when read-only mode is enabled.
    config.read_only_mode_enabled = true;
    assert!(config.four_letter_word_enabled("isro"));
    // srvr stays on even when the list leaves it out.
    config.four_letter_words = vec!["ruok".into()];
    assert!(config.four_letter_word_enabled("ruok"));
    assert!(config.four_letter_word_enabled("srvr"));
    assert!(!config.four_letter_word_enabled("mntr"));
    // * enables every known word, and nothing else.
    config.four_letter_words = vec!["*".into()];
    for word in crate::fourlw::KNOWN_WORDS {
        assert!(config.four_letter_word_enabled(word), "{word}");
    }
    assert!(!config.four_letter_word_enabled("nope"));
}

#[test]
fn missing_file_is_a_read_error() {
    let result = ServerConfig::from_zoo_cfg(Path::new("/nonexistent/warren/zoo.cfg"));
    assert!(matches!(result, Err(ConfigError::Read { .. })));
}

#[test]
fn latin1_files_are_read_as_java_reads_them() {
    let dir = TempDir::new();
    let path = dir.0.join("zoo.cfg");
    std::fs::write(&path, b"dataDir=/data/caf\xe9\n").unwrap();
    let (config, _) = ServerConfig::from_zoo_cfg(&path).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/data/café"));
}
