//! The `warren server` process as an operator meets it: defaults, signals, zoo.cfg, and what
//! it does with a damaged data directory. Each test runs the real binary on a temp directory
//! and a free port (never 2181), with every wait bounded.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{EXIT_TIMEOUT, ServerProcess, four_letter_word, free_port};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn connect(addr: &str) -> Client {
    let connecting = Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .with_connection_timeout(Duration::from_secs(2))
        .with_fail_eagerly()
        .connect(addr);
    tokio::time::timeout(CLIENT_TIMEOUT, connecting)
        .await
        .unwrap_or_else(|_| panic!("no session with {addr} within {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
}

/// Awaits a client call with a bound, panicking with `what` on error or timeout.
async fn call<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, zookeeper_client::Error>>,
) -> T {
    tokio::time::timeout(CLIENT_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The value of `key=value` in a `conf` reply.
fn conf_value<'a>(conf: &'a str, key: &str) -> Option<&'a str> {
    conf.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Waits for a server that should refuse to start; returns its output.
fn expect_start_failure(server: &mut ServerProcess) -> String {
    let status = server.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "warren still running {EXIT_TIMEOUT:?} after start; expected it to refuse; log:\n{}",
            server.log()
        )
    });
    let log = server.log();
    assert!(
        !status.success() && status.code().is_some(),
        "warren should exit non-zero (not by a signal), got {status}; log:\n{log}"
    );
    log
}

/// Writes `count` znodes `/<prefix>-<n>` with `bytes` bytes of data each, acknowledged.
async fn write_znodes(addr: &str, prefix: &str, count: usize, bytes: usize) {
    let client = connect(addr).await;
    let data = vec![b'x'; bytes];
    for n in 0..count {
        let path = format!("/{prefix}-{n}");
        call(&path, client.create(&path, &data, &persistent())).await;
    }
}

/// The files in `dir` whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

fn flip_byte(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).expect("read the file to damage");
    let at = usize::try_from(offset).expect("offset fits usize");
    bytes[at] ^= 0x5A;
    std::fs::write(file, bytes).expect("write the damaged file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_keep_data_in_warren_data_of_the_working_directory() {
    // Everything at its default but the port: 2181 is not bound here (it may be taken, and
    // real clients' tests expect it free), so `--client-port 0` lets the OS pick one and the
    // server's `serving local_addr=` line says which. `conf` (enabled by -D) shows the rest.
    let cwd = tempfile::tempdir().expect("temp dir");
    let log_path = cwd.path().join("server.log");
    let args = [
        "server",
        "--client-port",
        "0",
        "-D",
        "4lw.commands.whitelist=conf,srvr",
    ];
    let mut server = ServerProcess::spawn(&args, cwd.path(), &log_path, 0);
    let addr = server.wait_serving_addr();
    server.wait_ready();
    let port = server.port;
    assert!(
        addr.ip().is_unspecified(),
        "listens on {addr}, not on all addresses"
    );

    // The data directory appears in the working directory, with its version marker and log.
    let data = cwd.path().join("warren-data");
    assert!(
        data.join("VERSION").is_file(),
        "no {}/VERSION",
        data.display()
    );
    assert!(data.join("log").is_dir(), "no {}/log", data.display());

    // `conf` reports ZooKeeper's defaults for what was not set.
    let conf = four_letter_word(port, "conf").expect("conf");
    let data_dir = conf_value(&conf, "dataDir").expect("conf has dataDir");
    assert!(data_dir.ends_with("warren-data"), "dataDir={data_dir}");
    assert_eq!(conf_value(&conf, "tickTime"), Some("3000"), "{conf}");
    assert_eq!(conf_value(&conf, "maxClientCnxns"), Some("60"), "{conf}");

    // It serves clients, and a write lands in ./warren-data's log.
    let client = connect(&server.connect_string()).await;
    call("create /d", client.create("/d", b"1", &persistent())).await;
    let segments = files_ending(&data.join("log"), ".seg");
    assert!(
        !segments.is_empty(),
        "no log segment under {}",
        data.display()
    );
    drop(client);
    tokio::task::block_in_place(|| server.stop_gracefully());
}

#[test]
fn conf_reports_the_bound_client_port() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    let args = [
        "server",
        "--client-port",
        "0",
        "--data-dir",
        data_arg,
        "-D",
        "4lw.commands.whitelist=conf,srvr",
    ];
    let mut server = ServerProcess::spawn(&args, tmp.path(), &tmp.path().join("s.log"), 0);
    let port = server.wait_serving_addr().port();
    server.wait_ready();
    let conf = four_letter_word(port, "conf").expect("conf");
    assert_eq!(
        conf_value(&conf, "clientPort"),
        Some(port.to_string().as_str()),
        "{conf}"
    );
    server.stop_gracefully();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_clients_connected_exits_zero_and_keeps_data() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let mut server = ServerProcess::server(&data, free_port(), &tmp.path().join("a.log"), &[]);
    server.wait_ready();

    // Two sessions write and stay connected through the signal.
    let addr = server.connect_string();
    let a = connect(&addr).await;
    let b = connect(&addr).await;
    call("create /term", a.create("/term", b"a", &persistent())).await;
    call("setData /term", b.set_data("/term", b"b", None)).await;
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let (_, n) = call("create /term/s-", a.create("/term/s-", b"", &seq)).await;

    // SIGTERM: a clean exit with status 0, bounded by EXIT_TIMEOUT.
    let took = tokio::task::block_in_place(|| server.stop_gracefully());
    println!("process: SIGTERM with 2 sessions connected: exit 0 after {took:?}");
    drop((a, b));

    // A restart on the same data directory has everything acknowledged before.
    let mut again = ServerProcess::server(&data, free_port(), &tmp.path().join("b.log"), &[]);
    again.wait_ready();
    let c = connect(&again.connect_string()).await;
    let (value, _) = call("get /term", c.get_data("/term")).await;
    assert_eq!(value, b"b");
    let children = call("children /term", c.list_children("/term")).await;
    assert_eq!(children, vec![format!("s-{n}")]);
    drop(c);
    tokio::task::block_in_place(|| again.stop_gracefully());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_a_snapshot_of_every_write_for_the_next_start() {
    // Fewer writes than snapCount (default 100,000), so no snapshot is taken while they run,
    // but more than the shutdown's threshold (1,000 log entries).
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let snapshots = data.join("snapshots");
    let count = 1_200;
    populate(
        &data,
        &tmp.path().join("a.log"),
        &[],
        count,
        10,
        Stop::Sigterm,
    )
    .await;
    let log = std::fs::read_to_string(tmp.path().join("a.log")).expect("server log");
    assert!(
        log.contains("snapshot saved for the next start"),
        "no shutdown snapshot in the log:\n{log}"
    );
    let saved = files_ending(&snapshots, ".snap");
    assert_eq!(saved.len(), 1, "snapshot files: {saved:?}");

    // The restart reads it (the log after it holds nothing to replay) and has every znode.
    let mut again = ServerProcess::server(&data, free_port(), &tmp.path().join("b.log"), &[]);
    again.wait_ready();
    let c = connect(&again.connect_string()).await;
    let children = call("children /", c.list_children("/")).await;
    assert_eq!(
        children.iter().filter(|n| n.starts_with("z-")).count(),
        count
    );
    drop(c);
    tokio::task::block_in_place(|| again.stop_gracefully());
    // Nothing new was written: the second shutdown takes no snapshot of its own.
    assert_eq!(files_ending(&snapshots, ".snap"), saved);
}

/// Writes `<dir>/zoo.cfg` setting every key the tests check, `tickTime` as given.
fn write_zoo_cfg(dir: &Path, port: u16, tick_time: &str, extra: &str) -> PathBuf {
    let path = dir.join("zoo.cfg");
    let text = format!(
        "# a ZooKeeper zoo.cfg\n\
         tickTime={tick_time}\n\
         dataDir={}\n\
         clientPort={port}\n\
         maxClientCnxns=2\n\
         4lw.commands.whitelist=conf, ruok,srvr\n\
         {extra}",
        dir.join("zk-data").display()
    );
    std::fs::write(&path, text).expect("write zoo.cfg");
    path
}

fn spawn_with_config(dir: &Path, cfg: &Path, port: u16) -> ServerProcess {
    let cfg = cfg.to_str().expect("utf-8 path");
    // The working directory is a sibling, so a default ./warren-data would show up apart.
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).expect("mkdir cwd");
    ServerProcess::spawn(
        &["server", "--config", cfg],
        &cwd,
        &dir.join("server.log"),
        port,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_cfg_configures_the_server() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let cfg = write_zoo_cfg(tmp.path(), port, "2500", "");
    let mut server = spawn_with_config(tmp.path(), &cfg, port);
    server.wait_ready();

    // clientPort and dataDir: it answers on the port and keeps its data where the file says.
    assert!(tmp.path().join("zk-data").join("VERSION").is_file());
    assert!(!tmp.path().join("cwd").join("warren-data").exists());

    // tickTime and maxClientCnxns, as `conf` reports them.
    let conf = four_letter_word(port, "conf").expect("conf");
    assert_eq!(conf_value(&conf, "tickTime"), Some("2500"), "{conf}");
    assert_eq!(conf_value(&conf, "maxClientCnxns"), Some("2"), "{conf}");
    let data_dir = conf_value(&conf, "dataDir").expect("conf has dataDir");
    assert!(data_dir.ends_with("zk-data"), "dataDir={data_dir}");

    // 4lw.commands.whitelist: ruok is answered, stat is not.
    assert_eq!(four_letter_word(port, "ruok").expect("ruok"), "imok");
    let stat = four_letter_word(port, "stat").expect("stat");
    assert!(
        stat.contains("not in the whitelist"),
        "stat answered: {stat:?}"
    );

    // maxClientCnxns=2: with two sessions open, a third connection is closed unanswered.
    let addr = server.connect_string();
    let a = connect(&addr).await;
    let b = connect(&addr).await;
    call("create /cfg", a.create("/cfg", b"", &persistent())).await;
    let third = four_letter_word(port, "ruok").unwrap_or_default();
    assert_eq!(third, "", "a third connection from 127.0.0.1 was served");
    drop((a, b));
    tokio::task::block_in_place(|| server.stop_gracefully());
}

#[test]
fn zoo_cfg_unknown_key_only_warns() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let cfg = write_zoo_cfg(tmp.path(), port, "2500", "warrenNoSuchKey=1\n");
    let mut server = spawn_with_config(tmp.path(), &cfg, port);
    server.wait_ready();
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("warrenNoSuchKey")),
        "no warning naming the unknown key; log:\n{log}"
    );
    server.stop_gracefully();
}

#[test]
fn zoo_cfg_bad_value_stops_start_up_naming_the_key() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let cfg = write_zoo_cfg(tmp.path(), port, "abc", "");
    let mut server = spawn_with_config(tmp.path(), &cfg, port);
    let log = expect_start_failure(&mut server);
    let report = error_report(&log);
    assert!(
        report.contains("tickTime") && report.contains("abc"),
        "the error does not name the key and value; log:\n{log}"
    );
    assert!(
        four_letter_word(port, "srvr").is_err(),
        "something answers on the port"
    );
}

/// How a test stops the server after writing.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Sigterm,
    Sigkill,
}

/// Starts a server on `data`, writes `count` znodes of `bytes` bytes through it (each one
/// acknowledged), then stops it.
async fn populate(data: &Path, log: &Path, extra: &[&str], count: usize, bytes: usize, stop: Stop) {
    let mut server = ServerProcess::server(data, free_port(), log, extra);
    server.wait_ready();
    write_znodes(&server.connect_string(), "z", count, bytes).await;
    match stop {
        Stop::Sigterm => {
            tokio::task::block_in_place(|| server.stop_gracefully());
        }
        Stop::Sigkill => tokio::task::block_in_place(|| server.kill_9()),
    }
}

/// What `main` printed when it gave up: the `Error:` line and its causes, the end of the log.
fn error_report(log: &str) -> &str {
    log.find("Error: ").map_or("", |at| &log[at..])
}

/// The offset the error report gives for `file` (`... in <file> at offset N ...`), if any.
fn reported_offset(log: &str, file: &Path) -> Option<u64> {
    let report = error_report(log);
    let rest = &report[report.find(file.to_string_lossy().as_ref())?..];
    let rest = &rest[rest.find("offset ")? + "offset ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_log_segment_stops_start_up_naming_file_and_offset() {
    // Enough log that a byte flipped in the first quarter lies far more than one group-commit
    // batch (8 MiB) before the end, so it cannot be mistaken for a torn write.
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    populate(
        &data,
        &tmp.path().join("a.log"),
        &[],
        32,
        512 * 1024,
        Stop::Sigterm,
    )
    .await;
    let segments = files_ending(&data.join("log"), ".seg");
    let segment = segments.last().expect("a log segment").clone();
    let len = std::fs::metadata(&segment).expect("stat").len();
    assert!(len > 12 << 20, "log segment only {len} bytes");
    let flipped = len / 4;
    flip_byte(&segment, flipped);

    let mut server = ServerProcess::server(&data, free_port(), &tmp.path().join("b.log"), &[]);
    let log = expect_start_failure(&mut server);
    let offset = reported_offset(&log, &segment).unwrap_or_else(|| {
        panic!(
            "no message names {} with an offset:\n{log}",
            segment.display()
        )
    });
    assert!(
        offset <= flipped && flipped - offset < 1 << 20,
        "reported offset {offset}, flipped byte {flipped}"
    );
    println!(
        "process: flipped byte {flipped} of {len}; refused at offset {offset}: {}",
        log.lines().last().unwrap_or_default()
    );
}

/// A small log (every record within the last group-commit window, so the torn-write rule alone
/// cannot tell a flipped byte from a torn tail), a byte flipped in its middle: every record
/// was acknowledged, so none of them is a torn write, and cutting them loses acknowledged
/// writes. The server must refuse to start, name the damage, and leave the file as it was.
async fn flipped_byte_in_small_log(stop: Stop) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    populate(&data, &tmp.path().join("a.log"), &[], 50, 100, stop).await;
    let segment = files_ending(&data.join("log"), ".seg")
        .pop()
        .expect("a log segment");
    let len = std::fs::metadata(&segment).expect("stat").len();
    let flipped = len / 2;
    flip_byte(&segment, flipped);
    let damaged = std::fs::read(&segment).expect("read segment");

    let mut server = ServerProcess::server(&data, free_port(), &tmp.path().join("b.log"), &[]);
    if server.wait_ready_or_exit().is_ok() {
        // It started: show what an acknowledged-write check would see.
        let client = connect(&server.connect_string()).await;
        let present = call("children /", client.list_children("/")).await;
        let present = present.iter().filter(|c| c.starts_with("z-")).count();
        panic!(
            "after {stop:?} and a flipped byte at {flipped} of {len}, warren started and \
             serves {present} of 50 acknowledged znodes; log:\n{}",
            server.log()
        );
    }
    let log = expect_start_failure(&mut server);
    let offset = reported_offset(&log, &segment).unwrap_or_else(|| {
        panic!(
            "the error does not name {} with an offset:\n{log}",
            segment.display()
        )
    });
    assert!(
        offset <= flipped,
        "reported offset {offset}, flipped byte {flipped}"
    );
    let after = std::fs::read(&segment).expect("read segment");
    assert!(
        after == damaged,
        "the refused start changed the segment ({} bytes before, {} after)",
        damaged.len(),
        after.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_small_log_after_sigterm_stops_start_up_naming_file_and_offset() {
    flipped_byte_in_small_log(Stop::Sigterm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_small_log_after_sigkill_stops_start_up_naming_file_and_offset() {
    flipped_byte_in_small_log(Stop::Sigkill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_snapshot_stops_start_up_naming_file_and_offset() {
    // A small snapCount makes the server snapshot while the znodes are written.
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let extra = ["-D", "snapCount=20"];
    populate(
        &data,
        &tmp.path().join("a.log"),
        &extra,
        60,
        100,
        Stop::Sigterm,
    )
    .await;
    let snapshot = files_ending(&data.join("snapshots"), ".snap")
        .pop()
        .expect("a snapshot after 60 writes with snapCount=20");
    let len = std::fs::metadata(&snapshot).expect("stat").len();
    let file = std::fs::File::options()
        .write(true)
        .open(&snapshot)
        .expect("open snapshot");
    file.set_len(len / 2).expect("truncate snapshot");
    drop(file);

    let mut server = ServerProcess::server(&data, free_port(), &tmp.path().join("b.log"), &extra);
    let log = expect_start_failure(&mut server);
    assert!(
        reported_offset(&log, &snapshot).is_some(),
        "no message names {} with an offset:\n{log}",
        snapshot.display()
    );
}
