//! `warren demo NAME`: each recipe at work across real processes.
//!
//! # Layout
//!
//! | module | what |
//! |---|---|
//! | [`supervisor`] | the coordinator's side: spawns participants (this same program's hidden `demo-participant` subcommand), reads their event lines, kills and stops them by pid |
//! | [`participant`] | the participant's side: one JSON event per stdout line, stop on SIGTERM/SIGINT |
//! | [`election`] | workers elect a leader ([`warren_recipes::Election`]) and exchange Lamport-clocked messages through inbox znodes |
//! | [`philosophers`] | dining philosophers, each fork a [`warren_recipes::Lock`] |
//! | [`lottery`] | agencies submit CSV bets in `multi` batches, meet at a [`warren_recipes::DoubleBarrier`], then draw |
//! | [`two_pc`] | two-phase commit of a replicated register, coordinator replaced by election |
//! | [`rudp`] | stop-and-wait reliable delivery over UDP under injected loss and duplication |
//!
//! # How a demo runs
//!
//! ```text
//! warren demo NAME ──spawn──► warren demo-participant NAME-ROLE ... (one process each)
//!        ▲                          │ stdout: {"ev": "...", ...} one JSON object a line
//!        └──────── event lines ─────┘
//! then: a summary a person can read, and the demo's property checked from the merged log
//! ```
//!
//! # Invariants
//!
//! - **One clock per check.** Properties that compare events of different processes order
//!   them by something they share: the server's zxids (philosophers, lottery) or Lamport
//!   clocks carried in the messages (election). Wall-clock times are printed, never
//!   compared across processes.
//! - **Every wait is bounded** and every process is stopped by its pid: SIGTERM, a bounded
//!   wait, then SIGKILL. Participants stop cleanly on SIGTERM and SIGINT (they close their
//!   session, so what they held is released at once).
//! - A participant writes an event line *before* the action it announces can be seen by
//!   another process (a send is logged before the message exists), so a participant killed
//!   mid-way never leaves an effect without its cause in the log.

pub mod election;
pub mod lottery;
pub mod participant;
pub mod philosophers;
pub mod rudp;
pub mod supervisor;
pub mod two_pc;

use std::time::Duration;

use clap::{Args, Subcommand};
use tokio::sync::watch;

pub use supervisor::{Launcher, Supervisor};

/// The default connect string: `WARREN_SERVER` or a local server.
const DEFAULT_SERVER: &str = "127.0.0.1:2181";

/// Arguments of `warren demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// The demo to run.
    #[command(subcommand)]
    pub demo: Demo,
}

/// The demos.
#[derive(Subcommand, Debug, Clone)]
pub enum Demo {
    /// N workers elect a leader and exchange Lamport-clocked messages; the leader is killed.
    Election(election::Opts),
    /// N dining philosophers, each fork a Lock: no deadlock, neighbours never eat at once.
    Philosophers(philosophers::Opts),
    /// N agencies submit CSV bets in batches, wait on a barrier, then the draw.
    Lottery(lottery::Opts),
    /// Two-phase commit of a replicated register; replicas and coordinators can be killed.
    #[command(name = "2pc")]
    TwoPc(two_pc::Opts),
    /// Reliable delivery over UDP (127.0.0.1) under injected loss and duplication.
    Rudp(rudp::Opts),
}

/// Arguments of the hidden `warren demo-participant`: one participant's role.
#[derive(Args, Debug, Clone)]
pub struct ParticipantArgs {
    /// The role to play.
    #[command(subcommand)]
    pub role: Role,
}

/// Every participant role.
#[derive(Subcommand, Debug, Clone)]
pub enum Role {
    /// An election worker.
    ElectionWorker(election::WorkerArgs),
    /// A philosopher.
    Philosopher(philosophers::PhilosopherArgs),
    /// A lottery agency.
    Agency(lottery::AgencyArgs),
    /// A 2pc coordinator candidate.
    TwopcCoordinator(two_pc::CoordinatorArgs),
    /// A 2pc replica.
    TwopcReplica(two_pc::ReplicaArgs),
    /// The rudp receiver.
    RudpReceiver(rudp::ReceiverArgs),
    /// The rudp sender.
    RudpSender(rudp::SenderArgs),
}

/// The server and session settings every ZooKeeper demo shares.
#[derive(Args, Debug, Clone)]
pub struct ServerOpts {
    /// ZooKeeper connect string (`host:port,...`).
    #[arg(long, env = "WARREN_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Session timeout the participants ask for (the server bounds it).
    #[arg(long, default_value_t = 4000, value_name = "MS")]
    pub session_timeout_ms: u64,
    /// Bound on each wait of the coordinator (a failure bound, not a deadline).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub bound_s: u64,
}

impl ServerOpts {
    /// The participants' session timeout.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }

    /// The coordinator's bound on each wait.
    pub fn bound(&self) -> Duration {
        Duration::from_secs(self.bound_s)
    }
}

/// What a demo run found: a summary for people and the property's violations (none when
/// the property held).
#[derive(Debug)]
pub struct Report {
    /// The summary to print.
    pub text: String,
    /// Each way the property failed, in words.
    pub violations: Vec<String>,
    /// True if the run was stopped by a signal before it finished.
    pub interrupted: bool,
}

/// Runs `demo` with participants started by `launcher` until it finishes or `stop` turns
/// true, then stops every participant and checks the property.
pub async fn run(demo: &Demo, launcher: Launcher, stop: watch::Receiver<bool>) -> Report {
    let mut sup = Supervisor::new(launcher, stop);
    match demo {
        Demo::Election(o) => election::coordinate(o, &mut sup).await.report(),
        Demo::Philosophers(o) => philosophers::coordinate(o, &mut sup).await.report(),
        Demo::Lottery(o) => lottery::coordinate(o, &mut sup).await.report(),
        Demo::TwoPc(o) => two_pc::coordinate(o, &mut sup).await.report(),
        Demo::Rudp(o) => rudp::coordinate(o, &mut sup).await.report(),
    }
}

/// `warren demo NAME`: runs the demo with participants of this same program, prints the
/// summary, and fails if the property did not hold.
pub fn main(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let launcher = Launcher::this_program()?;
        let stop = participant::stop_on_signals()?;
        let report = run(&args.demo, launcher, stop).await;
        println!("{}", report.text);
        if report.interrupted {
            println!("(stopped by a signal before the end)");
        }
        if report.violations.is_empty() {
            println!("property: HOLDS");
            Ok(())
        } else {
            for v in &report.violations {
                println!("violation: {v}");
            }
            anyhow::bail!(
                "{} violation(s) of the demo's property",
                report.violations.len()
            )
        }
    })
}

/// `warren demo-participant ROLE`: plays one participant until done or SIGTERM/SIGINT.
pub fn participant_main(args: ParticipantArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let stop = participant::stop_on_signals()?;
        match args.role {
            Role::ElectionWorker(a) => election::worker(a, stop).await,
            Role::Philosopher(a) => philosophers::philosopher(a, stop).await,
            Role::Agency(a) => lottery::agency(a, stop).await,
            Role::TwopcCoordinator(a) => two_pc::coordinator(a, stop).await,
            Role::TwopcReplica(a) => two_pc::replica(a, stop).await,
            Role::RudpReceiver(a) => rudp::receiver(a, stop).await,
            Role::RudpSender(a) => rudp::sender(a, stop).await,
        }
    })
}

/// What each demo's coordinator returns: its summary, turned into a [`Report`].
pub trait Summary: std::fmt::Display {
    /// Each way the property failed.
    fn violations(&self) -> Vec<String>;
    /// True if stopped by a signal.
    fn interrupted(&self) -> bool;
    /// The report of this summary.
    fn report(&self) -> Report {
        Report {
            text: self.to_string(),
            violations: self.violations(),
            interrupted: self.interrupted(),
        }
    }
}
