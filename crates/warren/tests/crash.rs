//! Crash test: clients write while `warren server` is SIGKILLed at seeded random moments;
//! after every restart each acknowledged write must be there.
//!
//! The real binary runs on a temp data directory and a fresh free port per run; the clients
//! are `zookeeper-client` (a Rust client nobody here wrote). Several writer tasks, each with
//! its own session and its own directory `/crash/w<i>`, loop over three kinds of write:
//!
//! - plain create `p-<attempt>`,
//! - sequential create with prefix `s-<attempt>-` (the server appends the sequence number),
//! - setData of `value` to `<attempt>`, attempts only growing per writer.
//!
//! A write counts as acknowledged only when the server answered OK. One that failed or was in
//! flight at the kill is unknown: it may or may not be there. After each restart, before any
//! new write, the checker reads every directory and demands:
//!
//! 1. every acknowledged create exists, and nothing exists that was never sent;
//! 2. `value` is at least the last acknowledged value, and a value that was sent;
//! 3. no sequence number was handed out twice, and no sequential create was applied twice;
//! 4. whatever a read saw after a restart is seen after every later restart too (a read is an
//!    acknowledgement as well).
//!
//! The schedule (rounds, load time per round, optional kills during start-up) comes from a
//! seed: `WARREN_CRASH_SEED` or the clock, printed first so a failure can be replayed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{ServerProcess, damage_lines, free_port, torn_tail_cuts};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error};

/// Writer tasks, each with its own session and directory.
const WRITERS: usize = 4;
/// Bound on connecting a client or on one checker read.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the whole check after a restart.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// xorshift64*: a small deterministic PRNG, enough for a fault schedule.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // A zero state would stay zero; mix the seed so nearby seeds diverge.
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15).max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The seed: `WARREN_CRASH_SEED` if set, else from the clock.
fn seed() -> u64 {
    match std::env::var("WARREN_CRASH_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WARREN_CRASH_SEED={s:?} is not a u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64,
    }
}

/// One round of the schedule: optionally a kill during start-up, then load, then a kill.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// SIGKILL this long after spawning, before the server is known to be up (recovery,
    /// election), then start it again.
    early_kill_ms: Option<u64>,
    /// Writers run this long before the SIGKILL.
    load_ms: u64,
}

fn schedule(rng: &mut Rng) -> Vec<Round> {
    let rounds = rng.range(5, 8);
    (0..rounds)
        .map(|_| Round {
            early_kill_ms: (rng.range(0, 3) == 0).then(|| rng.range(0, 60)),
            load_ms: rng.range(100, 700),
        })
        .collect()
}

/// What one writer sent and what the server acknowledged, for its directory.
#[derive(Debug, Default)]
struct History {
    /// The last attempt number used; every write takes the next one.
    attempt: u64,
    plain_sent: BTreeSet<u64>,
    /// Plain creates answered OK, or seen by a read after a restart.
    plain_durable: BTreeSet<u64>,
    seq_sent: BTreeSet<u64>,
    /// attempt -> sequence number, for sequential creates answered OK or seen by a read.
    seq_durable: BTreeMap<u64, i64>,
    /// Values sent by setData (0 is the value the node was created with).
    values_sent: BTreeSet<u64>,
    /// The value `value` must at least have: the last acknowledged or read one.
    value_floor: u64,
    /// Writes answered OK, by kind.
    acked_plain: u64,
    acked_seq: u64,
    acked_set: u64,
    /// Writes whose outcome is unknown (failed with a connection error, or in flight).
    unknown: u64,
    /// Answers that contradict the history (a definite error where none can happen).
    violations: Vec<String>,
}

impl History {
    fn next_attempt(&mut self) -> u64 {
        self.attempt += 1;
        self.attempt
    }
}

type Shared = Arc<Mutex<History>>;

fn lock(h: &Shared) -> std::sync::MutexGuard<'_, History> {
    h.lock()
        .expect("history lock poisoned by a panicking writer")
}

/// A definite protocol answer (the write was refused and did not happen), as opposed to a
/// connection error after which the outcome is unknown. None of these can happen in this
/// workload, so each is a violation.
fn is_definite(e: &Error) -> bool {
    matches!(
        e,
        Error::NoNode
            | Error::NodeExists
            | Error::BadVersion
            | Error::NoAuth
            | Error::NotEmpty
            | Error::InvalidAcl
            | Error::BadArguments(_)
    )
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

fn persistent_sequential() -> CreateOptions<'static> {
    CreateMode::PersistentSequential.with_acls(Acls::anyone_all())
}

async fn connect(addr: &str) -> Client {
    let connecting = Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .with_connection_timeout(Duration::from_secs(2))
        .with_fail_eagerly()
        .connect(addr);
    match tokio::time::timeout(CLIENT_TIMEOUT, connecting).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!("connecting to {addr}: {e}"),
        Err(_) => panic!("connecting to {addr}: no session within {CLIENT_TIMEOUT:?}"),
    }
}

/// Records the outcome of one write: `on_ok` runs only for an OK answer.
fn settle<T>(
    h: &Shared,
    what: &str,
    result: Result<T, Error>,
    on_ok: impl FnOnce(&mut History, T),
) {
    let mut h = lock(h);
    match result {
        Ok(v) => on_ok(&mut h, v),
        Err(e) if is_definite(&e) => h.violations.push(format!("{what}: server answered {e}")),
        Err(_) => h.unknown += 1,
    }
}

/// One writer: loops over the three kinds of write until its task is aborted. The outcome is
/// recorded right after the answer, with no await in between, so an abort leaves the write
/// unknown only if its answer had not been taken.
async fn writer(client: Client, dir: String, h: Shared, mut rng: Rng) {
    loop {
        let attempt = lock(&h).next_attempt();
        let ok = match rng.range(0, 2) {
            0 => {
                lock(&h).plain_sent.insert(attempt);
                let path = format!("{dir}/p-{attempt}");
                let r = client.create(&path, b"", &persistent()).await;
                let ok = r.is_ok();
                settle(&h, &path, r, |h, _| {
                    h.plain_durable.insert(attempt);
                    h.acked_plain += 1;
                });
                ok
            }
            1 => {
                lock(&h).seq_sent.insert(attempt);
                let prefix = format!("{dir}/s-{attempt}-");
                let r = client.create(&prefix, b"", &persistent_sequential()).await;
                let ok = r.is_ok();
                settle(&h, &prefix, r, |h, (_, seq)| {
                    let seq = seq.into_i64();
                    if let Some((a, _)) = h.seq_durable.iter().find(|(_, s)| **s == seq) {
                        let v =
                            format!("{prefix}: sequence number {seq} again (attempt {a} had it)");
                        h.violations.push(v);
                    }
                    h.seq_durable.insert(attempt, seq);
                    h.acked_seq += 1;
                });
                ok
            }
            _ => {
                lock(&h).values_sent.insert(attempt);
                let path = format!("{dir}/value");
                let r = client
                    .set_data(&path, attempt.to_string().as_bytes(), None)
                    .await;
                let ok = r.is_ok();
                settle(&h, &path, r, |h, _| {
                    h.value_floor = h.value_floor.max(attempt);
                    h.acked_set += 1;
                });
                ok
            }
        };
        if !ok {
            // The server is gone (or going): do not spin on a dead connection.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What the checker verified after one restart.
#[derive(Debug, Default, Clone, Copy)]
struct Checked {
    acked_creates: usize,
    values: usize,
}

async fn read<T>(what: &str, f: impl std::future::Future<Output = Result<T, Error>>) -> T {
    match tokio::time::timeout(CLIENT_TIMEOUT, f).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("checker: {what}: {e}"),
        Err(_) => panic!("checker: {what}: no answer within {CLIENT_TIMEOUT:?}"),
    }
}

/// Checks one writer's directory against its history, then folds what was read into the
/// history as durable (it must survive every later crash too).
async fn check_writer(client: &Client, dir: &str, h: &Shared) -> Checked {
    let children = read(dir, client.get_children(dir)).await.0;
    let (data, _) = read(dir, client.get_data(&format!("{dir}/value"))).await;
    let mut h = lock(h);
    let mut failures = Vec::new();
    let mut plain_seen = BTreeSet::new();
    let mut seq_seen: BTreeMap<u64, i64> = BTreeMap::new();
    let mut seq_numbers = BTreeSet::new();
    for child in &children {
        if child == "value" {
            continue;
        }
        if let Some(a) = child.strip_prefix("p-") {
            let a: u64 = a
                .parse()
                .unwrap_or_else(|_| panic!("{dir}/{child}: odd name"));
            if !h.plain_sent.contains(&a) {
                failures.push(format!("{dir}/{child} exists but was never created"));
            }
            plain_seen.insert(a);
        } else if let Some(rest) = child.strip_prefix("s-") {
            let (a, seq) = rest
                .split_once('-')
                .unwrap_or_else(|| panic!("{dir}/{child}: odd name"));
            let a: u64 = a
                .parse()
                .unwrap_or_else(|_| panic!("{dir}/{child}: odd name"));
            let seq: i64 = seq
                .parse()
                .unwrap_or_else(|_| panic!("{dir}/{child}: odd name"));
            if !h.seq_sent.contains(&a) {
                failures.push(format!("{dir}/{child} exists but was never created"));
            }
            if seq_seen.insert(a, seq).is_some() {
                failures.push(format!("{dir}: sequential create s-{a}- applied twice"));
            }
            if !seq_numbers.insert(seq) {
                failures.push(format!("{dir}: sequence number {seq} used twice"));
            }
        } else {
            failures.push(format!("{dir}/{child}: a name no writer uses"));
        }
    }
    for a in &h.plain_durable {
        if !plain_seen.contains(a) {
            failures.push(format!(
                "{dir}/p-{a} was acknowledged (or read) but is gone"
            ));
        }
    }
    for (a, seq) in &h.seq_durable {
        match seq_seen.get(a) {
            Some(s) if s == seq => {}
            Some(s) => failures.push(format!(
                "{dir}/s-{a}-: acknowledged with sequence {seq}, found with {s}"
            )),
            None => failures.push(format!(
                "{dir}/s-{a}-{seq:010} was acknowledged (or read) but is gone"
            )),
        }
    }
    let text = String::from_utf8_lossy(&data);
    let value: u64 = text
        .parse()
        .unwrap_or_else(|_| panic!("{dir}/value holds {text:?}, which no writer sent"));
    if value != 0 && !h.values_sent.contains(&value) {
        failures.push(format!("{dir}/value is {value}, which was never sent"));
    }
    if value < h.value_floor {
        failures.push(format!(
            "{dir}/value is {value}, older than the acknowledged (or read) {}",
            h.value_floor
        ));
    }
    assert!(
        failures.is_empty(),
        "after restart:\n{}",
        failures.join("\n")
    );
    let checked = Checked {
        acked_creates: h.plain_durable.len() + h.seq_durable.len(),
        values: 1,
    };
    h.plain_durable.extend(plain_seen);
    h.seq_durable.extend(seq_seen);
    h.value_floor = value;
    checked
}

/// Starts the server and waits for its port; asserts its log shows a clean recovery.
fn start(data_dir: &Path, log_path: &Path, torn_cuts: &mut usize) -> (ServerProcess, Duration) {
    let mut server = ServerProcess::server(data_dir, free_port(), log_path, &[]);
    let ready = server.wait_ready();
    let log = server.log();
    let damage = damage_lines(&log);
    assert!(
        damage.is_empty(),
        "warren's restart log shows damage:\n{}",
        damage.join("\n")
    );
    *torn_cuts += torn_tail_cuts(&log);
    (server, ready)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let seed = seed();
    println!("crash: seed {seed} (replay with WARREN_CRASH_SEED={seed})");
    eprintln!("crash: seed {seed} (replay with WARREN_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);
    let plan = schedule(&mut rng);
    println!("crash: plan {plan:?}");
    let began = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let data_dir = tmp.path().join("data");
    let histories: Vec<Shared> = (0..WRITERS).map(|_| Shared::default()).collect();
    let dirs: Vec<String> = (0..WRITERS).map(|i| format!("/crash/w{i}")).collect();
    let mut kills = 0usize;
    let mut torn_cuts = 0usize;
    let mut checked_creates = 0usize;
    let mut checked_values = 0usize;
    let mut slowest_ready = Duration::ZERO;

    // Set-up: the directories and value nodes, acknowledged before any crash.
    let log_path = |n: usize| tmp.path().join(format!("server-{n}.log"));
    let mut runs = 0usize;
    let (mut server, ready) = start(&data_dir, &log_path(runs), &mut torn_cuts);
    slowest_ready = slowest_ready.max(ready);
    {
        let client = connect(&server.connect_string()).await;
        read("/crash", client.create("/crash", b"", &persistent())).await;
        for dir in &dirs {
            read(dir, client.create(dir, b"", &persistent())).await;
            let value = format!("{dir}/value");
            read(&value, client.create(&value, b"0", &persistent())).await;
        }
    }

    for (round, step) in plan.iter().enumerate() {
        // Load: every writer on its own session, until the SIGKILL cuts them off mid-flight.
        let addr = server.connect_string();
        let mut tasks = Vec::new();
        for (i, h) in histories.iter().enumerate() {
            let client = connect(&addr).await;
            let rng = Rng::new(seed ^ ((round as u64) << 32) ^ i as u64);
            tasks.push(tokio::spawn(writer(
                client,
                dirs[i].clone(),
                h.clone(),
                rng,
            )));
        }
        tokio::time::sleep(Duration::from_millis(step.load_ms)).await;
        tokio::task::block_in_place(|| server.kill_9());
        kills += 1;
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }

        // A kill during start-up: recovery itself must survive being interrupted.
        runs += 1;
        if let Some(ms) = step.early_kill_ms {
            let mut early = ServerProcess::server(&data_dir, free_port(), &log_path(runs), &[]);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            tokio::task::block_in_place(|| early.kill_9());
            kills += 1;
            let log = early.log();
            let damage = damage_lines(&log);
            assert!(damage.is_empty(), "early run log:\n{}", damage.join("\n"));
            runs += 1;
        }

        // Restart, and check the history before any new write.
        let (restarted, ready) =
            tokio::task::block_in_place(|| start(&data_dir, &log_path(runs), &mut torn_cuts));
        server = restarted;
        slowest_ready = slowest_ready.max(ready);
        let client = connect(&server.connect_string()).await;
        let check = async {
            let mut creates = 0;
            let mut values = 0;
            for (dir, h) in dirs.iter().zip(&histories) {
                let c = check_writer(&client, dir, h).await;
                creates += c.acked_creates;
                values += c.values;
            }
            (creates, values)
        };
        let (creates, values) = tokio::time::timeout(CHECK_TIMEOUT, check)
            .await
            .expect("the check after a restart took too long");
        checked_creates += creates;
        checked_values += values;
        println!(
            "crash: round {round}: load {} ms, early kill {:?}, ready in {ready:?}, \
             checked {creates} creates and {values} values",
            step.load_ms, step.early_kill_ms
        );
        drop(client);
    }

    // The end: a graceful stop after all the crashes still exits 0.
    tokio::task::block_in_place(|| server.stop_gracefully());

    let mut acked = 0;
    let mut unknown = 0;
    for h in &histories {
        let h = lock(h);
        assert!(
            h.violations.is_empty(),
            "definite answers that cannot happen:\n{}",
            h.violations.join("\n")
        );
        acked += h.acked_plain + h.acked_seq + h.acked_set;
        unknown += h.unknown;
    }
    assert!(
        acked > 0,
        "no write was ever acknowledged: the test tested nothing"
    );
    println!(
        "crash: seed {seed}: {kills} kills over {} rounds, {acked} writes acknowledged, \
         {unknown} unknown, {checked_creates} acknowledged creates and {checked_values} values \
         checked after restarts, {torn_cuts} torn tails cut, slowest start {slowest_ready:?}, \
         {:.1} s in all",
        plan.len(),
        began.elapsed().as_secs_f64()
    );
}
