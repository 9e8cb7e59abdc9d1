//! Running system tools (`ip`, `iptables`, `kill`) with a bound on how long they may take.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one tool invocation may take before it is killed and reported.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `program args`, waiting at most [`TOOL_TIMEOUT`]; its stdout on success, else a
/// message with the command line, status and stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    run_for(program, args, TOOL_TIMEOUT)
}

/// Runs `program args`, waiting at most `limit`; see [`run`].
pub fn run_for(program: &str, args: &[&str], limit: Duration) -> Result<String, String> {
    let line = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{line}`: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("`{line}`: {e}"))? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`{line}` still running after {limit:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if status.success() {
        Ok(out)
    } else {
        Err(format!("`{line}` failed ({status}): {}", err.trim()))
    }
}

/// Sends a signal (`STOP`, `CONT`, `KILL`) to one process by pid, with the `kill` tool
/// (the workspace forbids `unsafe`, so no libc).
pub fn signal(pid: u32, sig: &str) -> Result<(), String> {
    run("kill", &[&format!("-{sig}"), &pid.to_string()]).map(|_| ())
}
