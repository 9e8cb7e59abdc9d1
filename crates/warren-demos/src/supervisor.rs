//! The coordinator's side of a demo: participant processes and their event lines.
//!
//! Each participant is this same program run as `demo-participant ROLE ...` (see
//! [`Launcher`]), with stdout piped: one JSON object a line, read by one task per child into
//! a bounded channel (a participant that outruns the coordinator blocks on its pipe, it is
//! never dropped). stderr is inherited, so a participant's warnings reach the person.
//!
//! Stopping is by pid only: SIGTERM to each live child, a bounded wait, then SIGKILL. The
//! lines a child wrote before it died are still read (the pipe keeps them), so a killed
//! participant's last events are in the log.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How long participants get to stop after SIGTERM before they are killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Lines in flight from all participants to the coordinator.
const LINES_IN_FLIGHT_MAX: usize = 4096;

/// How to start a participant: a program and the arguments before the role.
#[derive(Clone, Debug)]
pub struct Launcher {
    program: PathBuf,
    leading_args: Vec<OsString>,
}

impl Launcher {
    /// `program leading_args... ROLE ARGS...`.
    pub fn new(program: impl Into<PathBuf>, leading_args: &[&str]) -> Launcher {
        Launcher {
            program: program.into(),
            leading_args: leading_args.iter().map(OsString::from).collect(),
        }
    }

    /// This running program's `demo-participant` subcommand.
    pub fn this_program() -> anyhow::Result<Launcher> {
        let exe = std::env::current_exe().context("finding this program's path")?;
        Ok(Launcher::new(exe, &["demo-participant"]))
    }
}

/// One line a participant wrote, as the coordinator received it.
#[derive(Clone, Debug)]
pub struct Line {
    /// The participant's name.
    pub who: String,
    /// When the coordinator read it (for people only: never compared across processes).
    pub at: Duration,
    /// The event: a JSON object with an `ev` field, or `{"ev": "text", "line": ...}`.
    pub value: serde_json::Value,
}

enum Msg {
    Line(Line),
    Eof(String),
}

/// Why a wait of the coordinator ended without its event.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Stopped by a signal.
    #[error("stopped by a signal")]
    Interrupted,
    /// The bound passed first.
    #[error("timed out waiting for {0}")]
    TimedOut(String),
}

struct Running {
    child: Child,
    pid: i32,
    eof: bool,
    exited: bool,
    killed: bool,
    /// How it ended, once reaped: `None` while running.
    status: Option<String>,
    /// True if it ended cleanly (exit 0 on its own or after SIGTERM).
    clean: bool,
}

/// The participants of one demo run and everything they said.
pub struct Supervisor {
    launcher: Launcher,
    children: BTreeMap<String, Running>,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    lines: Vec<Line>,
    stop: watch::Receiver<bool>,
    started: Instant,
}

impl Supervisor {
    /// A supervisor that starts participants with `launcher` and gives up its waits once
    /// `stop` turns true.
    pub fn new(launcher: Launcher, stop: watch::Receiver<bool>) -> Supervisor {
        let (tx, rx) = mpsc::channel(LINES_IN_FLIGHT_MAX);
        Supervisor {
            launcher,
            children: BTreeMap::new(),
            tx,
            rx,
            lines: Vec::new(),
            stop,
            started: Instant::now(),
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Starts participant `name` playing `role` with `args`.
    pub fn spawn(&mut self, name: &str, role: &str, args: &[String]) -> anyhow::Result<()> {
        let mut child = Command::new(&self.launcher.program)
            .args(&self.launcher.leading_args)
            .arg(role)
            .args(args)
            .env("WARREN_LOG", participant_log_filter())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting participant {name}"))?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .context("a just-spawned child has a pid")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (tx, who, started) = (self.tx.clone(), name.to_owned(), self.started);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"ev": "text", "line": line}));
                let at = started.elapsed();
                let line = Line {
                    who: who.clone(),
                    at,
                    value,
                };
                if tx.send(Msg::Line(line)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Msg::Eof(who)).await;
        });
        self.children.insert(
            name.to_owned(),
            Running {
                child,
                pid,
                eof: false,
                exited: false,
                killed: false,
                status: None,
                clean: false,
            },
        );
        Ok(())
    }

    /// Kills participant `name` with SIGKILL (the demo's fault injection).
    pub fn kill(&mut self, name: &str) {
        if let Some(r) = self.children.get_mut(name) {
            r.killed = true;
            let _ = kill(Pid::from_raw(r.pid), Signal::SIGKILL);
        }
    }

    /// Sends SIGTERM to participant `name`.
    pub fn terminate(&mut self, name: &str) {
        if let Some(r) = self.children.get_mut(name).filter(|r| !r.exited) {
            let _ = kill(Pid::from_raw(r.pid), Signal::SIGTERM);
        }
    }

    /// The participants killed with [`Supervisor::kill`].
    pub fn killed(&self) -> Vec<String> {
        let killed = self.children.iter().filter(|(_, r)| r.killed);
        killed.map(|(n, _)| n.clone()).collect()
    }

    /// Every line received so far, in the order received.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Every line that decodes as an `E`, with its participant, in the order received.
    pub fn events<E: DeserializeOwned>(&self) -> Vec<(String, E)> {
        self.lines
            .iter()
            .filter_map(|l| Some((l.who.clone(), serde_json::from_value(l.value.clone()).ok()?)))
            .collect()
    }

    /// Waits (at most `bound`) for the next line for which `f` says `Some`, looking only at
    /// lines that arrive from now on.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        bound: Duration,
        mut f: impl FnMut(&Line) -> Option<T>,
    ) -> Result<T, WaitError> {
        let deadline = Instant::now() + bound;
        loop {
            match self.next(deadline, what).await? {
                Msg::Line(line) => {
                    let found = f(&line);
                    self.lines.push(line);
                    if let Some(t) = found {
                        return Ok(t);
                    }
                }
                Msg::Eof(who) => self.mark_eof(&who),
            }
        }
    }

    /// Waits (at most `bound`) until every participant in `names` has ended on its own.
    pub async fn wait_exited(
        &mut self,
        names: &[String],
        bound: Duration,
    ) -> Result<(), WaitError> {
        let deadline = Instant::now() + bound;
        let what = format!("{} to finish", names.join(", "));
        while names
            .iter()
            .any(|n| self.children.get(n).is_some_and(|r| !r.eof))
        {
            match self.next(deadline, &what).await? {
                Msg::Line(line) => self.lines.push(line),
                Msg::Eof(who) => self.mark_eof(&who),
            }
        }
        for n in names {
            self.reap(n, deadline).await;
        }
        Ok(())
    }

    /// Stops every participant still running: SIGTERM, up to [`STOP_GRACE`] for them to
    /// end, then SIGKILL; reads every line they wrote meanwhile.
    pub async fn shutdown(&mut self) {
        let live: Vec<String> = self
            .children
            .iter()
            .filter(|(_, r)| !r.eof)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &live {
            self.terminate(n);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.children.values().any(|r| !r.eof) {
            let msg = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            match msg {
                Ok(Some(Msg::Line(line))) => self.lines.push(line),
                Ok(Some(Msg::Eof(who))) => self.mark_eof(&who),
                Ok(None) | Err(_) => break,
            }
        }
        let names: Vec<String> = self.children.keys().cloned().collect();
        for n in &names {
            self.reap(n, deadline).await;
        }
        // Whatever the killed ones wrote before dying.
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Line(line) => self.lines.push(line),
                Msg::Eof(who) => self.mark_eof(&who),
            }
        }
    }

    fn mark_eof(&mut self, who: &str) {
        if let Some(r) = self.children.get_mut(who) {
            r.eof = true;
        }
    }

    /// Waits for `name` to exit until `deadline`, then kills it.
    async fn reap(&mut self, name: &str, deadline: Instant) {
        let Some(r) = self.children.get_mut(name) else {
            return;
        };
        if r.exited {
            return;
        }
        match tokio::time::timeout_at(deadline, r.child.wait()).await {
            Ok(Ok(status)) => {
                r.clean = status.success();
                r.status = Some(status.to_string());
            }
            Ok(Err(e)) => r.status = Some(format!("cannot wait: {e}")),
            Err(_) => {
                tracing::warn!(participant = name, "did not stop in time; killing it");
                let _ = kill(Pid::from_raw(r.pid), Signal::SIGKILL);
                let _ = tokio::time::timeout(STOP_GRACE, r.child.wait()).await;
                r.status = Some("killed after the grace period".into());
            }
        }
        r.exited = true;
    }

    /// Participants that did not stop cleanly (exit 0 on their own or on SIGTERM), other
    /// than those the demo killed on purpose, with how they ended.
    pub fn unclean(&self) -> Vec<String> {
        self.children
            .iter()
            .filter(|(_, r)| !r.killed && !r.clean)
            .map(|(n, r)| {
                let how = r.status.as_deref().unwrap_or("still running");
                format!("{n} did not stop cleanly ({how})")
            })
            .collect()
    }

    async fn next(&mut self, deadline: Instant, what: &str) -> Result<Msg, WaitError> {
        if *self.stop.borrow() {
            return Err(WaitError::Interrupted);
        }
        tokio::select! {
            msg = self.rx.recv() => {
                Ok(msg.expect("the supervisor holds a sender, so the channel stays open"))
            }
            _ = self.stop.wait_for(|s| *s) => Err(WaitError::Interrupted),
            _ = tokio::time::sleep_until(deadline) => Err(WaitError::TimedOut(what.to_owned())),
        }
    }
}

/// The participants' trace filter: `WARREN_LOG` if set, else warnings. warren-recipes'
/// `Lock` reports "lock lost" when its own release deletes the node before the lock marks
/// itself released (a race in the recipe's release), so that one module is quieted.
fn participant_log_filter() -> String {
    std::env::var("WARREN_LOG").unwrap_or_else(|_| "warn,warren_recipes::lock=error".into())
}

/// Where a coordinator's run ended: finished, or why not.
#[derive(Debug, Default)]
pub struct Ending {
    /// Set if the run was stopped by a signal.
    pub interrupted: bool,
    /// Set if a wait timed out or the run failed.
    pub failure: Option<String>,
    /// Participants that did not stop cleanly.
    pub unclean: Vec<String>,
}

impl Ending {
    /// The ending of a run that returned `r`, once `sup` has shut down.
    pub fn of(r: anyhow::Result<()>, sup: &Supervisor) -> Ending {
        let mut ending = Ending {
            unclean: sup.unclean(),
            ..Ending::default()
        };
        if let Err(e) = r {
            match e.downcast_ref::<WaitError>() {
                Some(WaitError::Interrupted) => ending.interrupted = true,
                _ => ending.failure = Some(format!("{e:#}")),
            }
        }
        ending
    }

    /// True if the run went to its end.
    pub fn finished(&self) -> bool {
        !self.interrupted && self.failure.is_none()
    }

    /// The failure as a violation, if any.
    pub fn violations(&self) -> Vec<String> {
        let failure = self.failure.iter();
        let mut out: Vec<String> = failure
            .map(|f| format!("the run did not finish: {f}"))
            .collect();
        out.extend(self.unclean.iter().cloned());
        out
    }
}
