//! The participant's side of a demo: event lines on stdout, stop on a signal, a connection.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::watch;
use warren_recipes::{ConnectOptions, Connection};

/// Writes `event` as one JSON line on stdout and flushes it, so the coordinator has it
/// before this process does anything that another process can see. A closed stdout (the
/// coordinator is gone) is ignored: the participant still stops on its signal.
pub fn emit<E>(event: &E)
where
    E: Serialize,
{
    let line = serde_json::to_string(event).expect("demo events always serialize");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A receiver that turns true on the first SIGTERM or SIGINT. Needs a tokio runtime.
pub fn stop_on_signals() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(true);
        // Stay subscribed, so later signals do not kill the process mid-cleanup.
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    });
    Ok(rx)
}

/// Resolves once `stop` is true (at once if it already is).
pub async fn stopped(stop: &watch::Receiver<bool>) {
    let mut stop = stop.clone();
    // The sender lives in the signal task for the life of the process.
    let _ = stop.wait_for(|s| *s).await;
}

/// Connects to `server` with `session_timeout`.
pub async fn connect(server: &str, session_timeout: Duration) -> anyhow::Result<Connection> {
    let options = ConnectOptions {
        session_timeout,
        ..ConnectOptions::default()
    };
    let conn = tokio::time::timeout(
        Duration::from_secs(30),
        Connection::connect(server, options),
    )
    .await
    .with_context(|| format!("cannot connect to {server} within 30 s"))?
    .with_context(|| format!("cannot connect to {server}"))?;
    Ok(conn)
}

/// The session timeout the server granted to `conn`, in milliseconds.
pub fn granted_timeout_ms(conn: &Connection) -> u64 {
    conn.client()
        .map(|c| u64::try_from(c.session_timeout().as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A seeded random source for `name` in `round` of a run seeded with `seed`: the same three
/// always give the same choices, whichever process asks.
pub fn seeded(seed: u64, name: &str, round: u64) -> fastrand::Rng {
    // FNV-1a over the name, then the round: stable across builds (unlike `DefaultHasher`).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(round.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    fastrand::Rng::with_seed(seed ^ h)
}

/// A unique base path for one run of `demo` under `/warren-demos`.
pub fn run_base(demo: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("/warren-demos/{demo}-{ms}-{}", std::process::id())
}
