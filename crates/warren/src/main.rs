//! The warren binary: `warren server` runs a ZooKeeper-compatible server.
//!
//! With no arguments it listens on port 2181 with its data in `./warren-data`. A ZooKeeper
//! `zoo.cfg` (`--config`) and flags configure it; flags win over the file. SIGTERM and SIGINT
//! stop it gracefully and it exits 0.

mod cluster;
mod compose;

/// jemalloc instead of glibc's malloc: glibc's allocator took ~18% of the server's CPU on a
/// create-heavy load (`_int_malloc`, `malloc_consolidate`, `_int_free`; perf, see
/// bench/RESULTS.md), mostly short-lived per-request buffers freed on another thread.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use warren_server::config::{ConfigOverrides, ServerConfig};
use warren_server::server::Server;

#[derive(Parser)]
#[command(
    name = "warren",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server (standalone unless the config lists server.N lines).
    Server(ServerArgs),
    /// Measure a ZooKeeper-compatible server under load (`warren bench --help`).
    Bench(warren_bench::BenchArgs),
    /// Run a local ensemble of N servers (separate processes) until Ctrl-C.
    Cluster(cluster::ClusterArgs),
    /// Write a docker-compose file for an N-server ensemble (`warren compose --help`).
    Compose(compose::ComposeArgs),
    /// Exit 0 if a server is serving (it answers `srvr` with its mode); for healthchecks.
    Healthcheck(compose::HealthArgs),
    /// Run a demo, each participant its own process (`warren demo --help`).
    Demo(warren_demos::DemoArgs),
    /// One participant of a demo, started by `warren demo`.
    #[command(hide = true)]
    DemoParticipant(warren_demos::ParticipantArgs),
    #[command(flatten)]
    Client(warren_cli::Command),
}

#[derive(Args)]
struct ServerArgs {
    /// A ZooKeeper zoo.cfg to read.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Client port (zoo.cfg `clientPort`; default 2181; 0 picks a free port).
    #[arg(long, value_name = "PORT")]
    client_port: Option<u16>,
    /// Address to listen on (zoo.cfg `clientPortAddress`; default all).
    #[arg(long, value_name = "ADDR")]
    client_port_address: Option<String>,
    /// Data directory (zoo.cfg `dataDir`; default ./warren-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Directory for the log, if apart from the data (zoo.cfg `dataLogDir`).
    #[arg(long, value_name = "DIR")]
    data_log_dir: Option<PathBuf>,
    /// Tick in milliseconds (zoo.cfg `tickTime`).
    #[arg(long, value_name = "MS")]
    tick_time: Option<u32>,
    /// This server's id in an ensemble (else the `myid` file).
    #[arg(long, value_name = "N")]
    id: Option<u8>,
    /// Any zoo.cfg key or ZooKeeper system property, as `key=value` (repeatable).
    #[arg(long = "set", short = 'D', value_name = "KEY=VALUE")]
    properties: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            // The client crate's own connection traces would repeat the CLI's messages.
            tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,openraft=warn,zookeeper_client=error")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => run_server(args),
        Command::Bench(args) => warren_bench::main(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Compose(args) => compose::run(args),
        Command::Healthcheck(args) => compose::healthcheck(args),
        Command::Demo(args) => warren_demos::main(args),
        Command::DemoParticipant(args) => warren_demos::participant_main(args),
        Command::Client(cmd) => warren_cli::main(cmd),
    }
}

fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let mut properties = Vec::new();
    for p in &args.properties {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--set {p}: expected KEY=VALUE"))?;
        properties.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let overrides = ConfigOverrides {
        config_file: args.config,
        client_port: args.client_port,
        client_port_address: args.client_port_address,
        data_dir: args.data_dir,
        data_log_dir: args.data_log_dir,
        tick_time_ms: args.tick_time,
        my_id: args.id,
        properties,
        ..ConfigOverrides::default()
    };
    let (cfg, warnings) = ServerConfig::load(overrides).context("configuration")?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = Server::start(cfg).await?;
        wait_for_signal().await?;
        tracing::info!("shutting down");
        server.shutdown(Duration::from_secs(5)).await;
        anyhow::Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
