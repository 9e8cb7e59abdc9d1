use super::*;

fn all_words() -> ServerConfig {
    ServerConfig {
        four_letter_words: vec!["*".to_string()],
        data_dir: "/var/lib/warren".into(),
        ..ServerConfig::default()
    }
}

fn connection(remote: &str, session_id: i64) -> ConnectionStats {
    ConnectionStats {
        remote: remote.parse().unwrap(),
        interest_ops: 1,
        queued: 0,
        received: 5,
        sent: 4,
        session_id,
        last_operation: "GETD".to_string(),
        established_ms: 1_700_000_000_000,
        session_timeout_ms: 30_000,
        last_cxid: 3,
        last_zxid: 0x10,
        last_response_ms: 1_700_000_000_500,
        last_latency_ms: 1,
        latency_ms_min: 0,
        latency_ms_avg: 1,
        latency_ms_max: 2,
        expires_at_ms: 1_700_000_030_000,
    }
}

fn stats() -> ServerStats {
    ServerStats {
        version: "3.9.3-warren-0.1.0".to_string(),
        latency_ms_min: 0,
        latency_ms_avg: 0.5,
        latency_ms_max: 3,
        packets_received: 12,
        packets_sent: 11,
        outstanding_requests: 0,
        last_zxid: 0x1_0000_002a,
        node_count: 6,
        watch_count: 3,
        ephemerals_count: 1,
        approximate_data_size: 42,
        global_sessions: 2,
        uptime_ms: 5000,
        connections: vec![
            connection("127.0.0.1:40002", 0x2),
            connection("127.0.0.1:40001", 0x1000001),
        ],
        watches: vec![
            WatchEntry {
                session_id: 0x2,
                path: "/b".into(),
            },
            WatchEntry {
                session_id: 0x1000001,
                path: "/a".into(),
            },
            WatchEntry {
                session_id: 0x2,
                path: "/a".into(),
            },
            WatchEntry {
                session_id: 0x2,
                path: "/a".into(),
            },
        ],
        sessions: vec![
            SessionStats {
                session_id: 0x2,
                expires_at_ms: 30_000,
                ephemerals: vec![],
            },
            SessionStats {
                session_id: 0x1000001,
                expires_at_ms: 30_000,
                ephemerals: vec!["/e2".into(), "/e1".into()],
            },
            SessionStats {
                session_id: 0x3,
                expires_at_ms: 0,
                ephemerals: vec![],
            },
        ],
        data_dir_bytes: 1024,
        log_dir_bytes: 2048,
        ..ServerStats::default()
    }
}

#[test]
fn ruok_has_no_newline() {
    assert_eq!(answer("ruok", &all_words(), &stats()), "imok");
}

#[test]
fn words_outside_the_whitelist_answer_zookeepers_line() {
    let config = ServerConfig::default();
    assert_eq!(
        answer("ruok", &config, &stats()),
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        answer("mntr", &config, &stats()),
        "mntr is not executed because it is not in the whitelist.\n"
    );
    // srvr is always on.
    assert!(answer("srvr", &config, &stats()).starts_with("Zookeeper version: "));
    // Not a four-letter word at all: nothing to say.
    assert_eq!(answer("xyzw", &all_words(), &stats()), "");
}

#[test]
fn srvr_matches_zookeeper() {
    let expected = "Zookeeper version: 3.9.3-warren-0.1.0\n\
                    Latency min/avg/max: 0/0.5/3\n\
                    Received: 12\n\
                    Sent: 11\n\
                    Connections: 2\n\
                    Outstanding: 0\n\
                    Zxid: 0x10000002a\n\
                    Mode: standalone\n\
                    Node count: 6\n";
    assert_eq!(answer("srvr", &all_words(), &stats()), expected);
}

#[test]
fn stat_lists_clients_briefly() {
    let expected = "Zookeeper version: 3.9.3-warren-0.1.0\n\
                    Clients:\n \
                    /127.0.0.1:40001[1](queued=0,recved=5,sent=4)\n \
                    /127.0.0.1:40002[1](queued=0,recved=5,sent=4)\n\
                    \n\
                    Latency min/avg/max: 0/0.5/3\n\
                    Received: 12\n\
                    Sent: 11\n\
                    Connections: 2\n\
                    Outstanding: 0\n\
                    Zxid: 0x10000002a\n\
                    Mode: standalone\n\
                    Node count: 6\n";
    assert_eq!(answer("stat", &all_words(), &stats()), expected);
}

#[test]
fn srvr_for_leader_and_read_only() {
    let mut s = stats();
    s.mode = ServerMode::Leader;
    s.latency_ms_avg = 0.0;
    let text = answer("srvr", &all_words(), &s);
    assert!(text.contains("Latency min/avg/max: 0/0.0/3\n"), "{text}");
    assert!(text.ends_with("Mode: leader\nNode count: 6\nProposal sizes last/min/max: -1/-1/-1\n"));

    s.mode = ServerMode::ReadOnly;
    let text = answer("srvr", &all_words(), &s);
    assert!(text.starts_with(
        "Zookeeper version: 3.9.3-warren-0.1.0\nREAD-ONLY mode; serving only read-only clients\n"
    ));
    assert!(text.contains("Mode: read-only\n"));
    assert_eq!(answer("isro", &all_words(), &s), "ro");
    s.mode = ServerMode::Follower;
    assert_eq!(answer("isro", &all_words(), &s), "rw");
    s.cut_off = true;
    assert_eq!(answer("isro", &all_words(), &s), "null");
}

#[test]
fn cons_prints_full_connection_details() {
    let mut s = stats();
    s.connections[0].last_cxid = -1;
    s.connections[0].last_zxid = -1;
    s.connections.push(connection("[::1]:40003", 0));
    s.connections[2].interest_ops = 0;
    let expected = " /127.0.0.1:40001[1](queued=0,recved=5,sent=4,sid=0x1000001,lop=GETD,\
                    est=1700000000000,to=30000,lcxid=0x3,lzxid=0x10,lresp=1700000000500,llat=1,\
                    minlat=0,avglat=1,maxlat=2)\n \
                    /127.0.0.1:40002[1](queued=0,recved=5,sent=4,sid=0x2,lop=GETD,\
                    est=1700000000000,to=30000,lzxid=0xffffffffffffffff,lresp=1700000000500,\
                    llat=1,minlat=0,avglat=1,maxlat=2)\n \
                    /[0:0:0:0:0:0:0:1]:40003[0](queued=0,recved=5,sent=4)\n\
                    \n";
    assert_eq!(answer("cons", &all_words(), &s), expected);
}

#[test]
fn watch_listings() {
    let config = all_words();
    assert_eq!(
        answer("wchs", &config, &stats()),
        "2 connections watching 2 paths\nTotal watches:3\n"
    );
    assert_eq!(
        answer("wchc", &config, &stats()),
        "0x2\n\t/a\n\t/b\n0x1000001\n\t/a\n\n"
    );
    assert_eq!(
        answer("wchp", &config, &stats()),
        "/a\n\t0x2\n\t0x1000001\n/b\n\t0x2\n\n"
    );
    let empty = ServerStats::default();
    assert_eq!(
        answer("wchs", &config, &empty),
        "0 connections watching 0 paths\nTotal watches:0\n"
    );
    assert_eq!(answer("wchc", &config, &empty), "\n");
}

#[test]
fn dump_lists_sessions_ephemerals_and_connections() {
    let expected = "SessionTracker dump:\n\
                    Session Sets (2)/(3):\n\
                    1 expire at Thu Jan 01 00:00:00 UTC 1970:\n\
                    \t0x3\n\
                    2 expire at Thu Jan 01 00:00:30 UTC 1970:\n\
                    \t0x1000001\n\
                    \t0x2\n\
                    ephemeral nodes dump:\n\
                    Sessions with Ephemerals (1):\n\
                    0x1000001:\n\
                    \t/e1\n\
                    \t/e2\n\
                    Connections dump:\n\
                    Connections Sets (1)/(2):\n\
                    2 expire at Tue Nov 14 22:13:50 UTC 2023:\n\
                    \tip: /127.0.0.1:40001 sessionId: 0x1000001\n\
                    \tip: /127.0.0.1:40002 sessionId: 0x2\n";
    assert_eq!(answer("dump", &all_words(), &stats()), expected);
}

#[test]
fn dirs_and_resets() {
    let config = all_words();
    assert_eq!(
        answer("dirs", &config, &stats()),
        "datadir_size: 1024\nlogdir_size: 2048\n"
    );
    assert_eq!(
        answer("crst", &config, &stats()),
        "Connection stats reset.\n"
    );
    assert_eq!(answer("srst", &config, &stats()), "Server stats reset.\n");
    assert_eq!(answer("gtmk", &config, &stats()), "306");
    let mut s = stats();
    s.trace_mask = 0;
    assert_eq!(answer("stmk", &config, &s), "0");
    s.digests = vec![(0x1f, 12345), (0x20, -7)];
    assert_eq!(answer("hash", &config, &s), "1f: 12345\n20: -7\n");
}

#[test]
fn mntr_standalone() {
    let mut s = stats();
    s.open_file_descriptor_count = Some(40);
    s.max_file_descriptor_count = Some(1024);
    let expected = "zk_version\t3.9.3-warren-0.1.0\n\
                    zk_server_state\tstandalone\n\
                    zk_avg_latency\t0.5\n\
                    zk_max_latency\t3\n\
                    zk_min_latency\t0\n\
                    zk_packets_received\t12\n\
                    zk_packets_sent\t11\n\
                    zk_num_alive_connections\t2\n\
                    zk_outstanding_requests\t0\n\
                    zk_uptime\t5000\n\
                    zk_znode_count\t6\n\
                    zk_watch_count\t3\n\
                    zk_ephemerals_count\t1\n\
                    zk_approximate_data_size\t42\n\
                    zk_global_sessions\t2\n\
                    zk_local_sessions\t0\n\
                    zk_open_file_descriptor_count\t40\n\
                    zk_max_file_descriptor_count\t1024\n\
                    zk_connection_drop_probability\t0.0\n\
                    zk_last_client_response_size\t-1\n\
                    zk_max_client_response_size\t-1\n\
                    zk_min_client_response_size\t-1\n\
                    zk_outstanding_tls_handshake\t0\n\
                    zk_auth_failed_count\t0\n\
                    zk_non_mtls_remote_conn_count\t0\n\
                    zk_non_mtls_local_conn_count\t0\n";
    assert_eq!(answer("mntr", &all_words(), &s), expected);
}

#[test]
fn mntr_leader_adds_quorum_gauges() {
    let mut s = stats();
    s.mode = ServerMode::Leader;
    s.quorum = Some(QuorumStats {
        peer_state: "leading - broadcast".into(),
        quorum_size: 3,
        leader: Some(LeaderStats {
            learners: 2,
            synced_followers: 2,
            leader_uptime_ms: 100,
            proposal_bytes_last: 10,
            proposal_bytes_min: 5,
            proposal_bytes_max: 20,
            ..LeaderStats::default()
        }),
    });
    let text = answer("mntr", &all_words(), &s);
    assert!(text.starts_with(
        "zk_version\t3.9.3-warren-0.1.0\nzk_server_state\tleader\n\
         zk_peer_state\tleading - broadcast\nzk_avg_latency\t0.5\n"
    ));
    assert!(text.ends_with(
        "zk_quorum_size\t3\nzk_learners\t2\nzk_synced_followers\t2\n\
         zk_synced_non_voting_followers\t0\nzk_synced_observers\t0\nzk_pending_syncs\t0\n\
         zk_leader_uptime\t100\nzk_last_proposal_size\t10\nzk_max_proposal_size\t20\n\
         zk_min_proposal_size\t5\n"
    ));
    // Every line is key\tvalue, as scrapers expect.
    assert!(
        text.lines()
            .all(|l| l.starts_with("zk_") && l.split('\t').count() == 2)
    );
    assert!(answer("srvr", &all_words(), &s).ends_with("Proposal sizes last/min/max: 10/5/20\n"));
}

#[test]
fn conf_prints_zookeepers_lines_then_limits() {
    let mut config = all_words();
    config.data_log_dir = Some("/var/log/warren".into());
    let text = answer("conf", &config, &stats());
    let zookeeper_part = "clientPort=2181\n\
                          secureClientPort=-1\n\
                          dataDir=/var/lib/warren\n\
                          dataDirSize=1024\n\
                          dataLogDir=/var/log/warren\n\
                          dataLogSize=2048\n\
                          tickTime=3000\n\
                          maxClientCnxns=60\n\
                          minSessionTimeout=6000\n\
                          maxSessionTimeout=60000\n\
                          clientPortListenBacklog=1024\n\
                          serverId=0\n";
    assert_eq!(
        text,
        format!("{zookeeper_part}{}", config.limits.render_conf())
    );
}

#[test]
fn conf_in_an_ensemble_ends_with_membership() {
    let mut config = all_words();
    config.servers = vec![
        crate::config::ServerSpec {
            id: 1,
            host: "zk1".into(),
            peer_port: 2888,
            election_port: 3888,
            role: crate::config::PeerRole::Participant,
            client_address: None,
            client_port: None,
        },
        crate::config::ServerSpec {
            id: 2,
            host: "zk2".into(),
            peer_port: 2889,
            election_port: 3889,
            role: crate::config::PeerRole::Observer,
            client_address: Some("0.0.0.0".into()),
            client_port: Some(2181),
        },
    ];
    config.my_id = Some(2);
    let mut s = stats();
    s.mode = ServerMode::Follower;
    s.server_id = 2;
    s.client_port = Some(40000);
    let text = answer("conf", &config, &s);
    assert!(text.starts_with("clientPort=40000\n"));
    assert!(text.contains("\nserverId=2\n"));
    assert!(text.ends_with(
        "listen_backlog_max=1024\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\nelectionPort=3889\n\
         quorumPort=2889\npeerType=1\nmembership: \nserver.1=zk1:2888:3888:participant\n\
         server.2=zk2:2889:3889:observer;0.0.0.0:2181\nversion=0"
    ));
    // Once /zookeeper/config is written (by the leader, or a reconfig), conf prints it.
    s.membership = Some("server.1=zk1:2888:3888:participant;0.0.0.0:2181\nversion=1f".into());
    let text = answer("conf", &config, &s);
    assert!(text.ends_with(
        "peerType=1\nmembership: \nserver.1=zk1:2888:3888:participant;0.0.0.0:2181\nversion=1f"
    ));
}

#[test]
fn envi_is_parsed_by_kazoo() {
    let mut s = stats();
    s.environment = EnvironmentInfo {
        host_name: Some("box".into()),
        os_name: Some("linux".into()),
        memory_bytes_free_max_total: Some((3 << 20, 8 << 20, 5 << 20)),
        extra: vec![("warren.raft".into(), "openraft".into())],
        ..EnvironmentInfo::default()
    };
    let text = answer(
        "envi",
        &ServerConfig::default(),
        &ServerStats {
            serving: false,
            ..s.clone()
        },
    );
    assert!(text.contains("envi is not executed"), "{text}");
    let text = answer(
        "envi",
        &all_words(),
        &ServerStats {
            serving: false,
            ..s
        },
    );
    let expected = "Environment:\n\
                    zookeeper.version=3.9.3-warren-0.1.0\n\
                    host.name=box\n\
                    java.version=<NA>\n\
                    java.vendor=<NA>\n\
                    java.home=<NA>\n\
                    java.class.path=<NA>\n\
                    java.library.path=<NA>\n\
                    java.io.tmpdir=<NA>\n\
                    java.compiler=<NA>\n\
                    os.name=linux\n\
                    os.arch=<NA>\n\
                    os.version=<NA>\n\
                    user.name=<NA>\n\
                    user.home=<NA>\n\
                    user.dir=<NA>\n\
                    os.memory.free=3MB\n\
                    os.memory.max=8MB\n\
                    os.memory.total=5MB\n\
                    warren.raft=openraft\n";
    assert_eq!(text, expected);
    // kazoo: ENVI_VERSION = re.compile(r"([\d\.]*).*") on the zookeeper.version value,
    // then a tuple of ints; it must come out as (3, 9, 3).
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("zookeeper.version="))
        .unwrap();
    let digits: String = value
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version: Vec<u32> = digits.split('.').map(|d| d.parse().unwrap()).collect();
    assert_eq!(version, [3, 9, 3]);
}

#[test]
fn not_serving_answers() {
    let s = ServerStats {
        serving: false,
        ..stats()
    };
    let config = all_words();
    assert_eq!(answer("ruok", &config, &s), "imok");
    assert_eq!(answer("isro", &config, &s), "null");
    assert_eq!(answer("hash", &config, &s), NOT_SERVING);
    for word in [
        "srvr", "stat", "conf", "cons", "crst", "srst", "dirs", "dump", "wchs", "wchc", "wchp",
        "mntr",
    ] {
        assert_eq!(
            answer(word, &config, &s),
            format!("{NOT_SERVING}\n"),
            "{word}"
        );
    }
}

#[test]
fn version_and_prefix_helpers() {
    assert_eq!(
        full_version(),
        format!("3.9.3-warren-{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(word_from_prefix(*b"ruok"), Some("ruok"));
    assert_eq!(word_from_prefix(*b"mntr"), Some("mntr"));
    assert_eq!(word_from_prefix([0, 0, 0, 44]), None);
    assert_eq!(last_op_name(4), "GETD");
    assert_eq!(last_op_name(12), "GETC");
    assert_eq!(last_op_name(100), "NA");
}

#[test]
fn cons_and_stat_match_a_zookeeper_3_8_capture() {
    // Captured from Apache ZooKeeper 3.8.0 (Debian) with two kazoo sessions and the asking
    // connection; ZooKeeper printed them in hash order, we sort by address.
    let mut first = connection("127.0.0.1:39546", 0x1000010f3950001);
    (first.received, first.sent, first.last_operation) = (4, 4, "GETC".into());
    (first.established_ms, first.session_timeout_ms) = (1795368039437, 10_000);
    (first.last_cxid, first.last_zxid, first.last_response_ms) = (3, 5, 1121061);
    (
        first.last_latency_ms,
        first.latency_ms_min,
        first.latency_ms_avg,
    ) = (2, 0, 1);
    first.latency_ms_max = 2;
    let mut second = connection("127.0.0.1:39544", 0x1000010f3950000);
    (second.received, second.sent, second.last_operation) = (5, 5, "GETD".into());
    (second.established_ms, second.session_timeout_ms) = (1795368039383, 10_000);
    (second.last_cxid, second.last_zxid, second.last_response_ms) = (4, 5, 1121052);
    (
        second.last_latency_ms,
        second.latency_ms_min,
        second.latency_ms_avg,
    ) = (2, 0, 10);
    second.latency_ms_max = 26;
    let mut asking = connection("127.0.0.1:33766", 0);
    (asking.interest_ops, asking.received, asking.sent) = (0, 1, 0);
    let s = ServerStats {
        version: "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC".into(),
        connections: vec![first, asking, second],
        latency_ms_min: 0,
        latency_ms_avg: 59.0 / 9.0,
        latency_ms_max: 26,
        packets_received: 21,
        packets_sent: 22,
        last_zxid: 5,
        node_count: 8,
        ..ServerStats::default()
    };
    let cons = " /127.0.0.1:33766[0](queued=0,recved=1,sent=0)\n \
                /127.0.0.1:39544[1](queued=0,recved=5,sent=5,sid=0x1000010f3950000,lop=GETD,\
                est=1795368039383,to=10000,lcxid=0x4,lzxid=0x5,lresp=1121052,llat=2,minlat=0,\
                avglat=10,maxlat=26)\n \
                /127.0.0.1:39546[1](queued=0,recved=4,sent=4,sid=0x1000010f3950001,lop=GETC,\
                est=1795368039437,to=10000,lcxid=0x3,lzxid=0x5,lresp=1121061,llat=2,minlat=0,\
                avglat=1,maxlat=2)\n\n";
    assert_eq!(answer("cons", &all_words(), &s), cons);
    let stat = "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\n\
                Clients:\n \
                /127.0.0.1:33766[0](queued=0,recved=1,sent=0)\n \
                /127.0.0.1:39544[1](queued=0,recved=5,sent=5)\n \
                /127.0.0.1:39546[1](queued=0,recved=4,sent=4)\n\
                \n\
                Latency min/avg/max: 0/6.5556/26\n\
                Received: 21\n\
                Sent: 22\n\
                Connections: 3\n\
                Outstanding: 0\n\
                Zxid: 0x5\n\
                Mode: standalone\n\
                Node count: 8\n";
    assert_eq!(answer("stat", &all_words(), &s), stat);
    assert!(answer("mntr", &all_words(), &s).contains("\nzk_avg_latency\t6.5556\n"));
}

#[test]
fn java_number_and_date_formats() {
    assert_eq!(java_average(59.0 / 9.0), "6.5556");
    assert_eq!(java_average(7.0 / 5.0), "1.4");
    assert_eq!(java_average(211.0 / 3.0), "70.3333");
    assert_eq!(java_average(3.0), "3.0");
    assert_eq!(java_average(33.0 / 32.0), "1.0313");
    assert_eq!(java_double(0.0), "0.0");
    assert_eq!(java_double(2.0), "2.0");
    assert_eq!(java_double(1.0 / 3.0), "0.3333333333333333");
    assert_eq!(java_double(12_345_678.0), "1.2345678E7");
    assert_eq!(java_double(1e7), "1.0E7");
    assert_eq!(java_double(0.0001), "1.0E-4");
    assert_eq!(java_double(0.001), "0.001");
    assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    assert_eq!(java_date(-1000), "Wed Dec 31 23:59:59 UTC 1969");
    assert_eq!(java_date(1_709_251_199_999), "Thu Feb 29 23:59:59 UTC 2024");
}
