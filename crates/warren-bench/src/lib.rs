//! warren-bench: `warren bench`, a load generator for any ZooKeeper-compatible server.
//!
//! It speaks the client protocol itself (warren-proto's codec over tokio TCP), so the same
//! run measures warren and Apache ZooKeeper alike, and it pipelines: every session keeps
//! `--depth` requests in flight, or sends at a fixed `--rate` (open loop) for latency
//! comparisons at equal offered load.
//!
//! # Layout
//! - [`args`]: the command line ([`BenchArgs`], [`Workload`]).
//! - [`conn`]: a pipelined client connection (handshake, queued requests, in-order replies).
//! - [`workload`]: the run's znodes (setup, teardown) and each session's request generator.
//! - [`runner`]: phases, session tasks (pipelined, watch pairs, connect/close cycles),
//!   pacing, the progress line.
//! - [`stats`]: latency histograms (HdrHistogram, µs) and error counts, merged into a
//!   [`Report`] printed as a table or JSON.
//!
//! # How a run flows
//! 1. Setup on one admin session: `<prefix>/<workload>-<pid>` and what the workload needs.
//! 2. `--sessions` tasks start; for `--warmup` their results are not recorded, then the
//!    measure phase runs for `--duration` (or until `--ops` op units were sent and answered).
//! 3. Stop: sessions stop sending, drain what is in flight (not recorded) and close.
//! 4. Teardown deletes the run's znodes (not for `load` or with `--keep`), then the report.
//!
//! # What is measured
//! Latency is from the op's start (its send, or with `--rate` its scheduled time, so
//! queueing in a server that falls behind is charged to it) to its reply (for `watch`, to the
//! notification at the other session). Only ops sent and answered in the measure phase count.
//! Errors are counted by kind: ZooKeeper codes by name (`NoNode`), `conn:*` for connection
//! faults (the session then reconnects after 100 ms).

pub mod args;
pub mod conn;
pub mod runner;
pub mod stats;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use warren_proto::ErrorCode;
use warren_proto::records::GetDataRequest;
use warren_proto::request::Request;

pub use args::{BenchArgs, Workload};
pub use stats::{Report, Stats};

use conn::Connection;
use runner::{Control, Ctx, Phase, SessionResult};
use workload::Layout;

/// Runs `warren bench` with `args` on a runtime of its own and prints the result.
pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if args.workload == Workload::Ready {
            return ready(&args).await;
        }
        let report = run(args.clone()).await?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.table());
        }
        Ok(())
    })
}

/// Runs one benchmark: setup, warm-up, measure, teardown.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let layout = Arc::new(Layout::new(&args));
    let first = args.server_for(0);
    let mut admin = Connection::connect(first, args.session_timeout_ms, args.reply_timeout)
        .await
        .with_context(|| format!("connecting to {first}"))?;
    workload::setup(&mut admin, &args, &layout)
        .await
        .context("setup")?;
    // With no warm-up the sessions measure from their first op: a warm-up phase of zero
    // still lasted until the main task woke (a timer tick), and a `load --warmup 0s` then
    // created uncounted znodes.
    let (ctl, phase_tx) = Control::new(args.ops, !args.warmup.is_zero());
    let ctl = Arc::new(ctl);
    let ctx = Ctx {
        args: Arc::new(args.clone()),
        layout: layout.clone(),
        ctl: ctl.clone(),
    };
    let (progress_stop, progress_rx) = tokio::sync::oneshot::channel();
    let progress = (!args.quiet).then(|| tokio::spawn(runner::progress(ctl.clone(), progress_rx)));
    let mut started = Instant::now();
    let (pacer, paces) = match args.rate {
        Some(rate) => {
            let (pacer, paces) = runner::Pacer::start(rate, args.sessions)?;
            (Some(pacer), paces)
        }
        None => (None, Vec::new()),
    };
    let tasks = spawn_sessions(&ctx, paces);
    if !args.warmup.is_zero() {
        tokio::time::sleep(args.warmup).await;
        started = Instant::now();
        phase_tx.send_replace(Phase::Measure);
    }
    let mut results = Vec::with_capacity(tasks.len());
    let elapsed = if args.ops.is_some() {
        for t in tasks {
            results.push(t.await?);
        }
        let last = results.iter().filter_map(|r| r.last_completion).max();
        last.map_or(Duration::ZERO, |l| l - started)
    } else {
        tokio::time::sleep(args.duration).await;
        phase_tx.send_replace(Phase::Stop);
        let elapsed = started.elapsed();
        for t in tasks {
            results.push(t.await?);
        }
        elapsed
    };
    phase_tx.send_replace(Phase::Stop);
    drop(pacer);
    let _ = progress_stop.send(());
    if let Some(p) = progress {
        let _ = p.await;
    }
    let mut stats = Stats::default();
    for r in &results {
        stats.merge(&r.stats);
    }
    if let Some(path) = &args.trace {
        write_trace(path, &results).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.workload != Workload::Load && !args.keep {
        workload::delete_tree(&mut admin, &layout.base)
            .await
            .context("teardown")?;
    }
    let _ = admin.close().await;
    Ok(Report::new(&args, layout.base.clone(), &stats, elapsed))
}

/// Writes the `--trace` file: every session's measured ops, by start time.
fn write_trace(path: &std::path::Path, results: &[SessionResult]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut ops: Vec<runner::OpTimes> = results
        .iter()
        .flat_map(|r| r.trace.iter().copied())
        .collect();
    ops.sort_by_key(|o| o.start);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    if let Some(zero) = ops.first().map(|o| o.start) {
        // CLOCK_MONOTONIC now, less the time since `zero` (tokio's clock is that clock).
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
        let mono = Duration::from(now).saturating_sub(zero.elapsed());
        writeln!(
            out,
            "# monotonic {}.{:09}",
            mono.as_secs(),
            mono.subsec_nanos()
        )?;
        let us = |t: Instant| (t - zero).as_micros();
        for o in &ops {
            writeln!(out, "{} {} {}", us(o.start), us(o.sent), us(o.done))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Starts the sessions; `paces` gives each pipelined session its due times under `--rate`
/// (empty when the run is not paced).
fn spawn_sessions(
    ctx: &Ctx,
    paces: Vec<runner::Pace>,
) -> Vec<tokio::task::JoinHandle<SessionResult>> {
    let args = &ctx.args;
    match args.workload {
        Workload::Watch => (0..args.sessions / 2)
            .map(|i| tokio::spawn(runner::run_watch_pair(ctx.clone(), i)))
            .collect(),
        Workload::Session => (0..args.sessions)
            .map(|i| tokio::spawn(runner::run_session_cycles(ctx.clone(), i)))
            .collect(),
        _ => {
            let mut paces = paces.into_iter();
            (0..args.sessions)
                .map(|i| tokio::spawn(runner::run_session(ctx.clone(), i, paces.next())))
                .collect()
        }
    }
}

/// `--workload ready`: polls until a getData of `--prefix` succeeds (every 5 ms, for at most
/// `--duration`) and prints the wait in milliseconds.
async fn ready(args: &BenchArgs) -> anyhow::Result<()> {
    let began = Instant::now();
    let deadline = began + args.duration;
    let get = Request::GetData(GetDataRequest {
        path: args.prefix.clone(),
        watch: false,
    });
    let attempts = async {
        loop {
            let probe = async {
                let mut c = Connection::connect(
                    args.server_for(0),
                    args.session_timeout_ms,
                    args.reply_timeout,
                )
                .await?;
                let r = c.call(&get).await?;
                let _ = c.close().await;
                Ok::<_, conn::ConnError>(r.header.err)
            };
            match probe.await {
                Ok(ErrorCode::Ok) => return,
                Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout_at(deadline, attempts)
        .await
        .with_context(|| format!("{} did not serve {} in time", args.server, args.prefix))?;
    let ms = began.elapsed().as_secs_f64() * 1000.0;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "server": args.server, "ready_ms": ms })
        );
    } else {
        println!("ready after {ms:.1} ms");
    }
    Ok(())
}
