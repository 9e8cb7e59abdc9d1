//! The `warren` command line against any ZooKeeper-compatible server: `warren ls`, `get`,
//! `set`, `create`, `rm`, `mv`, `cp`, `stat`, `watch`, `sync`, `getacl`, `setacl`, `upload`,
//! `download`, `tree`, and `warren shell`, an interactive shell with the same commands.
//!
//! The `warren` binary flattens [`Command`] into its own subcommands and calls [`main`].
//! The CLI talks through the independent `zookeeper-client` crate (pinned like the
//! recipes'), never through warren's server crates, so it works against Apache ZooKeeper
//! too.
//!
//! # Layout
//!
//! | module | what |
//! |---|---|
//! | [`commands`] | [`Op`]: the commands and their arguments, as clap parses them |
//! | [`config`] | [`ConnArgs`]: `--server`, `--auth`, the environment and `cli.toml` |
//! | [`session`] | [`Session`]: connecting (with the cause of a failure), the server's limits |
//! | [`run`] | running one [`Op`]: behaviour and zkCli-like output |
//! | [`subtree`] | walking a subtree; creates and deletes in `multi` batches under the limit |
//! | [`format`](mod@format) | stat, date and ACL text as zkCli prints and reads them |
//! | [`shell`] | the interactive (or piped) shell: rustyline, history, path completion |
//! | [`error`] | [`CliError`]: failures in words, one exit code per kind |
//!
//! # How a command flows
//!
//! `warren get /a` → clap → [`main`] resolves the connection ([`ConnArgs::resolve`]),
//! connects ([`Session::connect`]; failing eagerly, with the cause found by a TCP probe),
//! runs the [`Op`] ([`run::run`]), closes the session (so an ephemeral node goes at once)
//! and exits with the code of the error's kind:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | other failure |
//! | 2 | usage: bad arguments, path or ACL |
//! | 3 | no such node |
//! | 4 | node already exists |
//! | 5 | not authorised, or authentication failed |
//! | 6 | node not empty |
//! | 7 | version changed |
//! | 8 | cannot connect, connection lost, session expired |
//! | 9 | request over the server's packet limit (refused before sending) |
//! | 10 | local file error |
//!
//! # Invariants
//!
//! - **Nothing oversized is sent.** A write whose request may exceed the server's packet
//!   limit (`--packet-limit`, else the server's `conf`, else jute.maxbuffer's 0xfffff) is
//!   refused before sending, naming the limit: a server closes the connection on such a
//!   frame, which would read as a connection failure.
//! - **`mv` is atomic when it can be.** Copy and delete go in one `multi`, deletes at the
//!   versions read, when the whole subtree fits one request; otherwise the CLI says so and
//!   moves in several `multi`s (copy first, then delete), or refuses with `--atomic`.
//! - **Output is zkCli's** where zkCli has a format (`ls`, `stat` field names, `getAcl`,
//!   `Created /path`, `Sync is OK`); progress bars and notes go to stderr, bars only to a
//!   terminal.

pub mod commands;
pub mod config;
pub mod error;
pub mod format;
pub mod run;
pub mod session;
pub mod shell;
pub mod subtree;

use clap::{Args, Subcommand};

pub use commands::Op;
pub use config::ConnArgs;
pub use error::{CliError, ErrorKind};
pub use session::Session;

/// A command with the connection options (`--server`, `--auth`, ...) beside its own.
#[derive(Args, Clone, Debug)]
pub struct Remote<T>
where
    T: Args,
{
    /// Where to connect and as whom.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The command's own arguments.
    #[command(flatten)]
    pub args: T,
}

/// The client commands of the `warren` binary (flattened into its subcommands).
#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// List a znode's children (`-R`: every descendant's path).
    Ls(Remote<commands::LsArgs>),
    /// Print a znode's data (`-s`: and its stat).
    Get(Remote<commands::GetArgs>),
    /// Set a znode's data.
    Set(Remote<commands::SetArgs>),
    /// Create a znode (`-e` ephemeral, `-s` sequential, `-c` container, `-t` TTL).
    Create(Remote<commands::CreateArgs>),
    /// Delete a znode (`-r`: with everything under it).
    #[command(visible_alias = "delete")]
    Rm(Remote<commands::RmArgs>),
    /// Move a znode and its subtree: copy then delete, in one multi when it fits.
    Mv(Remote<commands::MvArgs>),
    /// Copy a znode's data and ACL (`-r`: with its subtree).
    Cp(Remote<commands::CpArgs>),
    /// Print a znode's stat.
    Stat(Remote<commands::PathArg>),
    /// Print events on a znode until Ctrl-C (`-R`: on its whole subtree).
    Watch(Remote<commands::WatchArgs>),
    /// Wait until the server is up to date with the leader for a path.
    Sync(Remote<commands::PathArg>),
    /// Print a znode's ACL.
    #[command(name = "getacl", visible_alias = "getAcl")]
    GetAcl(Remote<commands::PathArg>),
    /// Set a znode's ACL (`scheme:id:perms,...`, perms from `cdrwa`).
    #[command(name = "setacl", visible_alias = "setAcl")]
    SetAcl(Remote<commands::SetAclArgs>),
    /// Store a local file's bytes in a znode (refused if over the server's packet limit).
    Upload(Remote<commands::UploadArgs>),
    /// Write a znode's data to a local file.
    Download(Remote<commands::DownloadArgs>),
    /// Draw the tree under a znode.
    Tree(Remote<commands::TreeArgs>),
    /// An interactive shell with history and path completion (reads commands from stdin
    /// when it is not a terminal).
    Shell(ConnArgs),
}

impl Command {
    /// The connection options and, unless this is `shell`, the operation.
    pub fn split(self) -> (ConnArgs, Option<Op>) {
        use Command as C;
        match self {
            C::Ls(r) => (r.conn, Some(Op::Ls(r.args))),
            C::Get(r) => (r.conn, Some(Op::Get(r.args))),
            C::Set(r) => (r.conn, Some(Op::Set(r.args))),
            C::Create(r) => (r.conn, Some(Op::Create(r.args))),
            C::Rm(r) => (r.conn, Some(Op::Rm(r.args))),
            C::Mv(r) => (r.conn, Some(Op::Mv(r.args))),
            C::Cp(r) => (r.conn, Some(Op::Cp(r.args))),
            C::Stat(r) => (r.conn, Some(Op::Stat(r.args))),
            C::Watch(r) => (r.conn, Some(Op::Watch(r.args))),
            C::Sync(r) => (r.conn, Some(Op::Sync(r.args))),
            C::GetAcl(r) => (r.conn, Some(Op::GetAcl(r.args))),
            C::SetAcl(r) => (r.conn, Some(Op::SetAcl(r.args))),
            C::Upload(r) => (r.conn, Some(Op::Upload(r.args))),
            C::Download(r) => (r.conn, Some(Op::Download(r.args))),
            C::Tree(r) => (r.conn, Some(Op::Tree(r.args))),
            C::Shell(conn) => (conn, None),
        }
    }
}

/// Runs a client command; returns the process exit code (errors already printed).
pub fn run_command(cmd: Command) -> i32 {
    let (conn, op) = cmd.split();
    match execute(conn, op) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warren: {e}");
            e.exit_code()
        }
    }
}

fn execute(conn: ConnArgs, op: Option<Op>) -> Result<i32, CliError> {
    let cfg = conn.resolve()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(ErrorKind::Other, format!("cannot start the runtime: {e}")))?;
    let session = rt.block_on(Session::connect(&cfg))?;
    let result = match op {
        Some(op) => {
            let mut stdout = std::io::stdout();
            let mut out = run::Out {
                out: &mut stdout,
                progress: true,
            };
            rt.block_on(run::run(&session, &op, &mut out)).map(|()| 0)
        }
        None => Ok(shell::shell(&rt, &session, &cfg.server)),
    };
    rt.block_on(session.close());
    result
}

/// The `warren` binary's entry for client commands: runs `cmd` and exits with its code.
pub fn main(cmd: Command) -> anyhow::Result<()> {
    match run_command(cmd) {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}
