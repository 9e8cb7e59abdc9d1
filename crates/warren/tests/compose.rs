//! `warren compose` for real: a three-server ensemble of the image FROM scratch on the local
//! Docker engine, the leader's container killed, the service going on; then the killed
//! server back, and the whole ensemble recreated on the data it left on the host.
//!
//! Ignored by `cargo nextest run`: it needs Docker and the image, which `make compose-test`
//! builds (`docker/build-image.sh`) before running this test alone; `make verify` (and so
//! CI) runs that target. `WARREN_IMAGE` names the image (default `warren:latest`),
//! `WARREN_COMPOSE` the compose command (default `docker-compose` if installed, else
//! `docker compose`).
//!
//! The ensemble runs under a project name of its own, its client ports are the free ones
//! `warren compose` picks, and `docker-compose down -v` runs when the test ends, pass or fail
//! (after printing the containers' logs on failure).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{WARREN, four_letter_word};
use zookeeper_client::{Acls, Client, CreateMode, Error};

/// Bound on the ensemble becoming healthy after `up`, and on a new leader after the kill.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on one client call, or on a client getting a session.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on a write that is retried across the failover.
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// Writes before and after the kill.
const WRITES: usize = 10;

/// Runs a command and returns its output, panicking with its stderr if it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The compose command: `WARREN_COMPOSE`, else docker-compose if it runs, else `docker
/// compose`.
fn compose_command() -> Vec<String> {
    if let Ok(cmd) = std::env::var("WARREN_COMPOSE") {
        return cmd.split_whitespace().map(str::to_string).collect();
    }
    let v1 = Command::new("docker-compose").arg("version").output();
    if v1.is_ok_and(|o| o.status.success()) {
        vec!["docker-compose".into()]
    } else {
        vec!["docker".into(), "compose".into()]
    }
}

/// A running compose project; `down -v` on drop, with the logs first if the test failed.
struct Ensemble {
    compose: Vec<String>,
    file: PathBuf,
    project: String,
}

impl Ensemble {
    /// Runs `compose -p PROJECT -f FILE <args>`.
    fn compose(&self, args: &[&str]) -> Output {
        let file = self.file.to_str().expect("utf-8 temp path");
        let mut all = self.compose[1..]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>();
        all.extend(["-p", &self.project, "-f", file]);
        all.extend(args);
        run(&self.compose[0], &all)
    }

    /// The container id of service `warren<id>`.
    fn container(&self, id: u8) -> String {
        let c = stdout(&self.compose(&["ps", "-q", &format!("warren{id}")]));
        assert!(!c.is_empty(), "no container for warren{id}");
        c
    }

    /// `docker inspect --format FORMAT` of service `warren<id>`'s container.
    fn inspect(&self, id: u8, format: &str) -> String {
        stdout(&run(
            "docker",
            &["inspect", "--format", format, &self.container(id)],
        ))
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        let file = self.file.to_str().expect("utf-8 temp path").to_string();
        let base = |extra: &[&str]| {
            let mut c = Command::new(&self.compose[0]);
            c.args(&self.compose[1..])
                .args(["-p", &self.project, "-f", &file])
                .args(extra);
            c
        };
        if std::thread::panicking()
            && let Ok(out) = base(&["logs", "--no-color", "--tail", "200"]).output()
        {
            eprintln!(
                "== logs of project {}:\n{}",
                self.project,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        match base(&["down", "-v", "--timeout", "5"]).output() {
            Ok(out) if out.status.success() => eprintln!("project {} is down", self.project),
            Ok(out) => eprintln!(
                "down -v of project {} failed: {}",
                self.project,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("down -v of project {}: {e}", self.project),
        }
    }
}

/// The `Mode:` a server on host port `port` reports in `srvr`, if it answers one.
fn mode(port: u16) -> Option<String> {
    let reply = four_letter_word(port, "srvr").ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_string)
}

/// Whether the server on host port `port` holds a connection of `session` (4lw `cons`).
fn holds_session(port: u16, session: i64) -> bool {
    four_letter_word(port, "cons").is_ok_and(|c| c.contains(&format!("sid=0x{session:x},")))
}

/// A client of the whole connect string whose connection happens to be on the server at
/// `port` (the client picks a server at random: new clients are made until one lands there).
async fn client_on(connect_string: &str, port: u16) -> Client {
    for _ in 0..30 {
        let client = connect(connect_string).await;
        if holds_session(port, client.session_id().0) {
            return client;
        }
    }
    panic!("30 clients of {connect_string} and none connected to port {port}");
}

/// Waits until `check` returns `Some`, or panics with `what` after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            eprintln!("{what}: after {:.1?}", start.elapsed());
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

async fn connect(hosts: &str) -> Client {
    let connecting = Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .with_connection_timeout(Duration::from_secs(3))
        .connect(hosts);
    tokio::time::timeout(CLIENT_TIMEOUT, connecting)
        .await
        .unwrap_or_else(|_| panic!("no session with {hosts} within {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("connecting to {hosts}: {e}"))
}

async fn call<T>(what: &str, f: impl Future<Output = Result<T, Error>>) -> T {
    tokio::time::timeout(CLIENT_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Creates `path` with `data`, retrying while the client fails over. A create that failed
/// with ConnectionLoss may have been applied, so NodeExists on a retry is success only if the
/// node holds this very data.
async fn create_through_failover(client: &Client, path: &str, data: &[u8], mode: CreateMode) {
    let start = Instant::now();
    let mut retried = false;
    loop {
        let attempt = client.create(path, data, &mode.with_acls(Acls::anyone_all()));
        match tokio::time::timeout(CLIENT_TIMEOUT, attempt).await {
            Ok(Ok(_)) => return,
            Ok(Err(Error::NodeExists)) if retried => {
                let (found, _) = call(&format!("read back {path}"), client.get_data(path)).await;
                assert_eq!(found, data, "{path} exists with other data");
                return;
            }
            Ok(Err(e)) if transient(&e) => {
                eprintln!("create {path}: {e}, retrying");
            }
            Ok(Err(e)) => panic!("create {path}: {e}"),
            Err(_) => eprintln!("create {path}: no answer within {CLIENT_TIMEOUT:?}, retrying"),
        }
        retried = true;
        assert!(
            start.elapsed() < RETRY_TIMEOUT,
            "create {path}: still failing after {RETRY_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Errors a client sees while its server goes away and it moves to another.
fn transient(e: &Error) -> bool {
    matches!(e, Error::ConnectionLoss | Error::Timeout)
}

fn project_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("warren-compose-test-{}-{nanos}", std::process::id())
}

/// Runs `warren compose` into `dir` and returns the compose file and the connect string.
fn write_ensemble(dir: &Path, image: &str) -> (PathBuf, String) {
    let dir_arg = dir.to_str().expect("utf-8 temp path");
    let out = run(
        WARREN,
        &[
            "compose",
            "--servers",
            "3",
            "--dir",
            dir_arg,
            "--image",
            image,
        ],
    );
    let text = stdout(&out);
    let connect = text
        .lines()
        .find_map(|l| l.strip_prefix("connect string: "))
        .unwrap_or_else(|| panic!("no connect string in:\n{text}"))
        .to_string();
    (dir.join("docker-compose.yml"), connect)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker and the warren image: run by `make compose-test` (part of `make verify`)"]
async fn compose_ensemble_survives_killing_the_leader_container() {
    let image = std::env::var("WARREN_IMAGE").unwrap_or_else(|_| "warren:latest".into());
    let compose = compose_command();
    eprintln!("image {image}, compose command {compose:?}");
    // Without the image, `up` would try to pull it (and there is no registry): say so here.
    run(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", &image],
    );

    // Phase 1: `warren compose` writes the files; the compose tool must accept them.
    let tmp = tempfile::tempdir().expect("temp dir");
    let (file, connect_string) = write_ensemble(&tmp.path().join("ensemble"), &image);
    let ports: Vec<u16> = connect_string
        .split(',')
        .map(|hp| {
            hp.rsplit_once(':')
                .expect("host:port")
                .1
                .parse()
                .expect("port")
        })
        .collect();
    assert_eq!(ports.len(), 3, "{connect_string}");
    let ensemble = Ensemble {
        compose,
        file,
        project: project_name(),
    };
    ensemble.compose(&["config", "-q"]);

    // Phase 2: up; every container turns healthy (its own `warren healthcheck` passes) and
    // every server answers on its published port, exactly one as the leader.
    let started = Instant::now();
    ensemble.compose(&["up", "-d"]);
    eprintln!("up -d took {:.1?}", started.elapsed());
    wait_for("all three containers healthy", SETTLE_TIMEOUT, || {
        (1..=3)
            .all(|id| ensemble.inspect(id, "{{.State.Health.Status}}") == "healthy")
            .then_some(())
    });
    let modes = wait_for(
        "a leader and two followers on the published ports",
        SETTLE_TIMEOUT,
        || {
            let modes: Vec<String> = ports.iter().filter_map(|&p| mode(p)).collect();
            let leaders = modes.iter().filter(|m| *m == "leader").count();
            let followers = modes.iter().filter(|m| *m == "follower").count();
            (leaders == 1 && followers == 2).then_some(modes)
        },
    );
    let leader_index = modes.iter().position(|m| m == "leader").expect("a leader");
    let leader_id = u8::try_from(leader_index + 1).expect("small id");
    eprintln!("modes {modes:?}: warren{leader_id} leads");

    // Phase 3: a client of the whole connect string, connected to the leader (so that the
    // kill moves its session), writes; an ephemeral node lives as long as its session; the
    // writes are visible on every server.
    let client = client_on(&connect_string, ports[leader_index]).await;
    let session = client.session_id();
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    call(
        "create /compose",
        client.create("/compose", b"", &persistent),
    )
    .await;
    for i in 0..WRITES {
        let path = format!("/compose/before-{i}");
        call(
            &path,
            client.create(&path, format!("b{i}").as_bytes(), &persistent),
        )
        .await;
    }
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    call(
        "create /compose/owner",
        client.create("/compose/owner", b"", &ephemeral),
    )
    .await;
    for &port in &ports {
        let one = connect(&format!("127.0.0.1:{port}")).await;
        call("sync", one.sync("/compose")).await;
        let (data, _) = call(
            "read",
            one.get_data(&format!("/compose/before-{}", WRITES - 1)),
        )
        .await;
        assert_eq!(data, format!("b{}", WRITES - 1).as_bytes(), "port {port}");
    }

    // Phase 4: SIGKILL the leader's container; it stays down (no restart policy).
    let killed = Instant::now();
    run("docker", &["kill", &ensemble.container(leader_id)]);
    assert_eq!(ensemble.inspect(leader_id, "{{.State.Running}}"), "false");
    let dead_port = ports[leader_index];
    let survivors: Vec<u16> = ports.iter().copied().filter(|&p| p != dead_port).collect();

    // Phase 5: the two others elect a leader, and the same session goes on writing: every
    // write after the kill is acknowledged (retried while the client moves off the dead
    // server to a survivor).
    let new_modes = wait_for("a new leader among the survivors", SETTLE_TIMEOUT, || {
        let modes: Vec<String> = survivors.iter().filter_map(|&p| mode(p)).collect();
        (modes.len() == 2 && modes.contains(&"leader".to_string())).then_some(modes)
    });
    eprintln!("survivors' modes {new_modes:?}");
    assert_eq!(mode(dead_port), None, "the killed server still answers");
    for i in 0..WRITES {
        let path = format!("/compose/after-{i}");
        create_through_failover(
            &client,
            &path,
            format!("a{i}").as_bytes(),
            CreateMode::Persistent,
        )
        .await;
    }
    eprintln!(
        "{WRITES} writes acknowledged {:.1?} after the kill",
        killed.elapsed()
    );

    // Phase 6: a new client on the survivors alone reads everything written before and after
    // the kill, and the first session's ephemeral node is still there, owned by it.
    let survivors_string = survivors
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let reader = connect(&survivors_string).await;
    call("sync", reader.sync("/compose")).await;
    read_all(&reader).await;
    let (_, owner) = call("read /compose/owner", reader.get_data("/compose/owner")).await;
    assert_eq!(owner.ephemeral_owner, session.0, "the ephemeral's owner");
    let (children, _) = call("children", reader.get_children("/compose")).await;
    assert_eq!(children.len(), 2 * WRITES + 1, "{children:?}");
    drop(reader);
    drop(client);

    // Phase 7: the killed server, started again on its data, rejoins as a follower and
    // serves everything, the writes it missed included.
    ensemble.compose(&["start", &format!("warren{leader_id}")]);
    wait_for("the restarted server following", SETTLE_TIMEOUT, || {
        (mode(dead_port)? == "follower").then_some(())
    });
    let rejoined = connect(&format!("127.0.0.1:{dead_port}")).await;
    call("sync", rejoined.sync("/compose")).await;
    read_all(&rejoined).await;
    drop(rejoined);

    // Phase 8: the data lives on the host: after `down` and `up` (new containers, the same
    // directories) the ensemble serves every write again.
    ensemble.compose(&["down", "--timeout", "10"]);
    ensemble.compose(&["up", "-d"]);
    wait_for("a leader after down and up", SETTLE_TIMEOUT, || {
        let modes: Vec<String> = ports.iter().filter_map(|&p| mode(p)).collect();
        (modes.len() == 3 && modes.contains(&"leader".to_string())).then_some(())
    });
    let reader = connect(&connect_string).await;
    call("sync", reader.sync("/compose")).await;
    read_all(&reader).await;
    drop(reader);
    drop(ensemble);
}

/// Reads every write of phases 3 and 5 through `client` and checks its data.
async fn read_all(client: &Client) {
    for (prefix, tag) in [("before", "b"), ("after", "a")] {
        for i in 0..WRITES {
            let path = format!("/compose/{prefix}-{i}");
            let (data, _) = call(&path, client.get_data(&path)).await;
            assert_eq!(data, format!("{tag}{i}").as_bytes(), "{path}");
        }
    }
}
