//! `warren-demo`: the demos without the server (`warren demo` is the same code), so the
//! crate's tests spawn participants of a binary of their own crate.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "warren-demo",
    about = "warren's demos, each participant its own process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a demo (`warren-demo demo --help`).
    Demo(warren_demos::DemoArgs),
    /// One participant of a demo (started by `demo`).
    #[command(hide = true)]
    DemoParticipant(warren_demos::ParticipantArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo(args) => warren_demos::main(args),
        Command::DemoParticipant(args) => warren_demos::participant_main(args),
    }
}
