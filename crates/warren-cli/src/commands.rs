//! The commands, as clap parses them: [`Op`] is one command with its arguments, the same
//! in `warren <command>` and inside `warren shell`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// One CLI command.
#[derive(Subcommand, Clone, Debug)]
pub enum Op {
    /// List a znode's children (`-R`: every descendant's path).
    Ls(LsArgs),
    /// Print a znode's data (`-s`: and its stat).
    Get(GetArgs),
    /// Set a znode's data.
    Set(SetArgs),
    /// Create a znode (`-e` ephemeral, `-s` sequential, `-c` container, `-t` TTL).
    Create(CreateArgs),
    /// Delete a znode (`-r`: with everything under it).
    #[command(visible_alias = "delete")]
    Rm(RmArgs),
    /// Move a znode and its subtree: copy then delete, in one multi when it fits.
    Mv(MvArgs),
    /// Copy a znode's data and ACL (`-r`: with its subtree).
    Cp(CpArgs),
    /// Print a znode's stat.
    Stat(PathArg),
    /// Print events on a znode until Ctrl-C (`-R`: on its whole subtree).
    Watch(WatchArgs),
    /// Wait until the server is up to date with the leader for a path.
    Sync(PathArg),
    /// Print a znode's ACL.
    #[command(name = "getacl", visible_alias = "getAcl")]
    GetAcl(PathArg),
    /// Set a znode's ACL (`scheme:id:perms,...`, perms from `cdrwa`).
    #[command(name = "setacl", visible_alias = "setAcl")]
    SetAcl(SetAclArgs),
    /// Store a local file's bytes in a znode (created if missing).
    Upload(UploadArgs),
    /// Write a znode's data to a local file (`-` for standard output).
    Download(DownloadArgs),
    /// Draw the tree under a znode.
    Tree(TreeArgs),
}

/// A single path.
#[derive(Args, Clone, Debug)]
pub struct PathArg {
    /// The znode.
    pub path: String,
}

/// `ls`.
#[derive(Args, Clone, Debug)]
pub struct LsArgs {
    /// List every descendant, one path a line.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Print the znode's stat after its children.
    #[arg(short = 's', long)]
    pub stat: bool,
    /// The znode.
    #[arg(default_value = "/")]
    pub path: String,
}

/// `get`.
#[derive(Args, Clone, Debug)]
pub struct GetArgs {
    /// Print the stat after the data.
    #[arg(short = 's', long)]
    pub stat: bool,
    /// The znode.
    pub path: String,
}

/// `set`.
#[derive(Args, Clone, Debug)]
pub struct SetArgs {
    /// Print the new stat.
    #[arg(short = 's', long)]
    pub stat: bool,
    /// Only if the znode is at this version.
    #[arg(short = 'v', long, allow_negative_numbers = true)]
    pub version: Option<i32>,
    /// The znode.
    pub path: String,
    /// The new data (UTF-8 text; use `upload` for files).
    pub data: String,
}

/// `create`.
#[derive(Args, Clone, Debug)]
pub struct CreateArgs {
    /// Ephemeral: deleted when this session ends.
    #[arg(short = 'e', long)]
    pub ephemeral: bool,
    /// Sequential: a ten-digit counter is appended to the name.
    #[arg(short = 's', long)]
    pub sequential: bool,
    /// Container: deleted by the server once its last child is gone.
    #[arg(short = 'c', long, conflicts_with_all = ["ephemeral", "sequential", "ttl"])]
    pub container: bool,
    /// TTL in milliseconds: deleted once unchanged and childless for that long.
    #[arg(short = 't', long, value_name = "MS", conflicts_with = "ephemeral")]
    pub ttl: Option<u64>,
    /// The znode.
    pub path: String,
    /// Its data.
    pub data: Option<String>,
    /// Its ACL, `scheme:id:perms,...` [default: world:anyone:cdrwa]
    pub acl: Option<String>,
}

/// `rm`.
#[derive(Args, Clone, Debug)]
pub struct RmArgs {
    /// Delete the znode's whole subtree too.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Only if the znode is at this version.
    #[arg(
        short = 'v',
        long,
        conflicts_with = "recursive",
        allow_negative_numbers = true
    )]
    pub version: Option<i32>,
    /// The znode.
    pub path: String,
}

/// `mv`.
#[derive(Args, Clone, Debug)]
pub struct MvArgs {
    /// Refuse, rather than move in several steps, when the subtree does not fit one multi.
    #[arg(long)]
    pub atomic: bool,
    /// The znode to move.
    pub src: String,
    /// Its new path (must not exist).
    pub dst: String,
}

/// `cp`.
#[derive(Args, Clone, Debug)]
pub struct CpArgs {
    /// Copy the whole subtree.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// The znode to copy.
    pub src: String,
    /// The copy's path (must not exist).
    pub dst: String,
}

/// `watch`.
#[derive(Args, Clone, Debug)]
pub struct WatchArgs {
    /// A persistent recursive watch: events on every descendant too.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// The znode (it need not exist yet).
    pub path: String,
}

/// `setacl`.
#[derive(Args, Clone, Debug)]
pub struct SetAclArgs {
    /// Only if the ACL is at this version.
    #[arg(short = 'v', long, allow_negative_numbers = true)]
    pub version: Option<i32>,
    /// Print the new stat.
    #[arg(short = 's', long)]
    pub stat: bool,
    /// The znode.
    pub path: String,
    /// The ACL, `scheme:id:perms,...`, e.g. `world:anyone:r,digest:bob:<hash>:cdrwa`.
    pub acl: String,
}

/// `upload`.
#[derive(Args, Clone, Debug)]
pub struct UploadArgs {
    /// The local file (`-` for standard input).
    pub file: PathBuf,
    /// The znode (created if missing, its data replaced otherwise).
    pub path: String,
}

/// `download`.
#[derive(Args, Clone, Debug)]
pub struct DownloadArgs {
    /// The znode.
    pub path: String,
    /// The local file (`-` for standard output); replaced whole.
    pub file: PathBuf,
}

/// `tree`.
#[derive(Args, Clone, Debug)]
pub struct TreeArgs {
    /// The znode at the top.
    #[arg(default_value = "/")]
    pub path: String,
}
