//! Every workload of `warren bench` against an in-process warren server: each run of a fixed
//! op count must complete every op without error and leave no znode behind.

use std::time::Duration;

use clap::Parser;
use warren_bench::BenchArgs;
use warren_bench::conn::Connection;
use warren_proto::records::{
    ExistsRequest, GetAllChildrenNumberRequest, GetAllChildrenNumberResponse,
};
use warren_proto::request::Request;
use warren_proto::{ErrorCode, Reader, Record};
use warren_server::config::{ConfigOverrides, ServerConfig};
use warren_server::server::Server;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn args(server: &str, extra: &[&str]) -> BenchArgs {
    let mut argv = vec!["bench", "--server", server, "--warmup", "0s", "-q"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).expect("valid arguments").args
}

async fn exists(server: &str, path: &str) -> ErrorCode {
    let mut c = Connection::connect(server, 10_000, Duration::from_secs(10))
        .await
        .unwrap();
    let r = c
        .call(&Request::Exists(ExistsRequest {
            path: path.to_owned(),
            watch: false,
        }))
        .await
        .unwrap();
    r.header.err
}

async fn descendants(server: &str, path: &str) -> i32 {
    let mut c = Connection::connect(server, 10_000, Duration::from_secs(10))
        .await
        .unwrap();
    let r = c
        .call(&Request::GetAllChildrenNumber(
            GetAllChildrenNumberRequest {
                path: path.to_owned(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(r.header.err, ErrorCode::Ok);
    GetAllChildrenNumberResponse::decode(&mut Reader::new(&r.body))
        .unwrap()
        .total_number
}

#[test]
fn every_workload_completes_its_ops_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = ServerConfig::load(ConfigOverrides {
        client_port: Some(0),
        client_port_address: Some("127.0.0.1".to_owned()),
        data_dir: Some(dir.path().to_path_buf()),
        ..ConfigOverrides::default()
    })
    .unwrap()
    .0;
    let server = rt.block_on(Server::start(cfg)).unwrap();
    let addr = server.local_addr().to_string();

    // Each pipelined, paired and cycling workload: a fixed count, all answered without error.
    let runs: &[(&str, &[&str], u64)] = &[
        ("create", &[], 300),
        ("set", &[], 300),
        ("get", &[], 300),
        ("exists", &[], 300),
        ("children", &["--children", "20"], 300),
        ("mixed", &["--read-ratio", "0.5"], 300),
        ("multi", &["--multi-ops", "5"], 300),
        ("watch", &[], 100),
        ("session", &[], 50),
        ("get", &["--rate", "2000"], 200),
    ];
    for (workload, extra, ops) in runs {
        let ops_arg = ops.to_string();
        let mut argv = vec![
            "--workload",
            workload,
            "--ops",
            &ops_arg,
            "--sessions",
            "4",
            "--depth",
            "4",
            "--keys",
            "50",
        ];
        argv.extend_from_slice(extra);
        let a = args(&addr, &argv);
        let report = rt.block_on(warren_bench::run(a)).unwrap();
        assert_eq!(report.errors, 0, "{workload}: {:?}", report.errors_by_kind);
        assert_eq!(report.ops, *ops, "{workload}: every op counted once");
        assert!(report.latency.max_ms >= report.latency.p50_ms);
        // Teardown removed the run's directory.
        assert_eq!(rt.block_on(exists(&addr, &report.base)), ErrorCode::NoNode);
    }

    // --trace: a monotonic zero, then one line per measured op (start <= sent <= done, in
    // start order), paced and closed loop alike.
    let traces = tempfile::tempdir().unwrap();
    for paced in [true, false] {
        let path = traces.path().join(format!("trace-{paced}.txt"));
        let path_arg = path.to_str().unwrap().to_owned();
        let mut argv = vec![
            "--workload",
            "set",
            "--ops",
            "200",
            "--sessions",
            "4",
            "--depth",
            "4",
            "--trace",
            &path_arg,
        ];
        if paced {
            argv.extend_from_slice(&["--rate", "2000"]);
        }
        let report = rt.block_on(warren_bench::run(args(&addr, &argv))).unwrap();
        assert_eq!(report.errors, 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let zero = lines.next().unwrap().strip_prefix("# monotonic ").unwrap();
        assert!(zero.parse::<f64>().unwrap() > 0.0, "{zero}");
        let ops: Vec<[u64; 3]> = lines
            .map(|l| {
                let v: Vec<u64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
                [v[0], v[1], v[2]]
            })
            .collect();
        assert_eq!(ops.len(), 200, "paced {paced}: one line per measured op");
        assert_eq!(ops[0][0], 0, "times count from the first op's start");
        for w in ops.windows(2) {
            assert!(w[0][0] <= w[1][0], "in start order: {w:?}");
        }
        for o in &ops {
            assert!(o[0] <= o[1] && o[1] <= o[2], "start <= sent <= done: {o:?}");
        }
        if paced {
            // 200 ops at 2000/s are due over about 0.1 s.
            let last_due = ops[199][0];
            assert!((90_000..=110_000).contains(&last_due), "{last_due}");
        }
    }

    // load counts znodes in --ops and keeps them; ready then finds its prefix.
    let a = args(
        &addr,
        &[
            "--workload",
            "load",
            "--ops",
            "1000",
            "--multi-ops",
            "10",
            "--prefix",
            "/loaded",
        ],
    );
    let report = rt.block_on(warren_bench::run(a)).unwrap();
    assert_eq!(report.errors, 0);
    assert_eq!(report.ops, 100, "1000 znodes in multis of 10");
    assert_eq!(
        rt.block_on(exists(&addr, "/loaded/load-0")),
        ErrorCode::NoNode
    );
    assert_eq!(rt.block_on(exists(&addr, &report.base)), ErrorCode::Ok);
    assert_eq!(
        rt.block_on(descendants(&addr, &report.base)),
        1000 + 16,
        "1000 znodes and one directory for each of the 16 sessions"
    );

    rt.block_on(server.shutdown(Duration::from_secs(2)));
}

#[test]
fn an_unreachable_server_is_an_error_not_a_hang() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = args(&format!("127.0.0.1:{port}"), &["--workload", "get"]);
    let err = rt.block_on(warren_bench::run(a)).unwrap_err();
    assert!(format!("{err:#}").contains("refused"), "{err:#}");
}
