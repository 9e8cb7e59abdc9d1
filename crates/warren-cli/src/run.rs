//! Running one [`Op`] in a [`Session`]: the commands' behaviour and output.

use std::io::{IsTerminal as _, Read as _, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use zookeeper_client::{self as zk, Acl, Acls, AddWatchMode, CreateMode, EventType, SessionState};

use crate::commands::*;
use crate::error::{Access, CliError, ErrorKind, Result};
use crate::format::{acl_lines, human_bytes, parse_acl, stat_lines};
use crate::session::Session;
use crate::subtree::{
    self, REQUEST_HEADER_BYTES, WriteOp, create_record_bytes, multi_bytes, plan_batches,
    read_nodes, run_batches, walk_paths,
};

/// Where a command writes: its output, and whether progress bars may be drawn.
pub struct Out<'a> {
    /// Command output (stdout).
    pub out: &'a mut dyn Write,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
}

impl Out<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .and_then(|()| self.out.flush())
            .map_err(|e| CliError::local(Path::new("standard output"), &e))
    }

    fn line(&mut self, text: &str) -> Result<()> {
        self.write(format!("{text}\n").as_bytes())
    }

    fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if !self.progress || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len).with_message(what.to_owned());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar
    }

    fn bytes_bar(&self, len: u64, what: &str) -> ProgressBar {
        let bar = self.bar(len, what);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar
    }
}

/// Notes for the user that are not the command's output (stderr).
fn note(text: &str) {
    eprintln!("warren: {text}");
}

/// Runs `op`.
pub async fn run(session: &Session, op: &Op, out: &mut Out<'_>) -> Result<()> {
    let c = session.client();
    match op {
        Op::Ls(a) => ls(c, a, out).await,
        Op::Get(a) => get(c, a, out).await,
        Op::Set(a) => set(session, a, out).await,
        Op::Create(a) => create(session, a, out).await,
        Op::Rm(a) => rm(session, a, out).await,
        Op::Mv(a) => mv(session, a, out).await,
        Op::Cp(a) => cp(session, a, out).await,
        Op::Stat(a) => {
            let stat = c
                .check_stat(&a.path)
                .await
                .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))?
                .ok_or_else(|| CliError::from_zk(zk::Error::NoNode, Access::Read, &a.path))?;
            out.write(stat_lines(&stat).as_bytes())
        }
        Op::Watch(a) => watch(c, a, out).await,
        Op::Sync(a) => {
            c.sync(&a.path)
                .await
                .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))?;
            out.line("Sync is OK")
        }
        Op::GetAcl(a) => {
            let (acl, _) = c
                .get_acl(&a.path)
                .await
                .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))?;
            out.write(acl_lines(&acl).as_bytes())
        }
        Op::SetAcl(a) => setacl(session, a, out).await,
        Op::Upload(a) => upload(session, a, out).await,
        Op::Download(a) => download(c, a, out).await,
        Op::Tree(a) => tree(c, a, out).await,
    }
}

async fn ls(c: &zk::Client, a: &LsArgs, out: &mut Out<'_>) -> Result<()> {
    if a.recursive {
        for p in walk_paths(c, &a.path).await? {
            out.line(&p)?;
        }
        return Ok(());
    }
    let (mut kids, stat) = c
        .get_children(&a.path)
        .await
        .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))?;
    kids.sort();
    out.line(&format!("[{}]", kids.join(", ")))?;
    if a.stat {
        out.write(stat_lines(&stat).as_bytes())?;
    }
    Ok(())
}

async fn get(c: &zk::Client, a: &GetArgs, out: &mut Out<'_>) -> Result<()> {
    let (mut data, stat) = c
        .get_data(&a.path)
        .await
        .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))?;
    data.push(b'\n');
    out.write(&data)?;
    if a.stat {
        out.write(stat_lines(&stat).as_bytes())?;
    }
    Ok(())
}

/// Bytes of a `SetDataRequest` frame (header, path, data, version).
fn set_data_bytes(path: &str, data_len: usize) -> usize {
    REQUEST_HEADER_BYTES + 4 + path.len() + 4 + data_len + 4
}

async fn set_data(
    session: &Session,
    path: &str,
    data: &[u8],
    version: Option<i32>,
) -> Result<zk::Stat> {
    session.check_fits(set_data_bytes(path, data.len()), || {
        format!(
            "setting {} of data on {path}",
            human_bytes(data.len() as u64)
        )
    })?;
    match session.client().set_data(path, data, version).await {
        Ok(stat) => Ok(stat),
        Err(zk::Error::BadVersion) => {
            Err(session.version_changed(path, version.unwrap_or(-1)).await)
        }
        Err(e) => Err(CliError::from_zk(e, Access::Write, path)),
    }
}

async fn set(session: &Session, a: &SetArgs, out: &mut Out<'_>) -> Result<()> {
    let stat = set_data(session, &a.path, a.data.as_bytes(), a.version).await?;
    if a.stat {
        out.write(stat_lines(&stat).as_bytes())?;
    }
    Ok(())
}

fn open_acl() -> Vec<Acl> {
    Acls::anyone_all().to_vec()
}

async fn create(session: &Session, a: &CreateArgs, out: &mut Out<'_>) -> Result<()> {
    let acl = match &a.acl {
        Some(text) => parse_acl(text)?,
        None => open_acl(),
    };
    let mode = match (a.ephemeral, a.sequential, a.container) {
        (_, _, true) => CreateMode::Container,
        (true, true, _) => CreateMode::EphemeralSequential,
        (true, false, _) => CreateMode::Ephemeral,
        (false, true, _) => CreateMode::PersistentSequential,
        (false, false, _) => CreateMode::Persistent,
    };
    let data = a.data.as_deref().unwrap_or("").as_bytes();
    let mut options = mode.with_acls(Acls::new(&acl));
    if let Some(ms) = a.ttl {
        options = options.with_ttl(Duration::from_millis(ms));
    }
    let bytes = REQUEST_HEADER_BYTES + create_record_bytes(&a.path, data.len(), &acl) + 8;
    session.check_fits(bytes, || {
        format!(
            "creating {} with {} of data",
            a.path,
            human_bytes(data.len() as u64)
        )
    })?;
    let (_, seq) = session
        .client()
        .create(&a.path, data, &options)
        .await
        .map_err(|e| CliError::from_zk(e, Access::Create, &a.path))?;
    if a.sequential {
        out.line(&format!("Created {}{seq}", a.path))
    } else {
        out.line(&format!("Created {}", a.path))
    }
}

async fn rm(session: &Session, a: &RmArgs, out: &mut Out<'_>) -> Result<()> {
    let c = session.client();
    if !a.recursive {
        return match c.delete(&a.path, a.version).await {
            Err(zk::Error::BadVersion) => Err(session
                .version_changed(&a.path, a.version.unwrap_or(-1))
                .await),
            r => r.map_err(|e| CliError::from_zk(e, Access::Delete, &a.path)),
        };
    }
    let paths = walk_paths(c, &a.path).await?;
    if a.path == "/" {
        return Err(CliError::usage(
            "refusing to delete / (the root cannot be deleted)",
        ));
    }
    let ops: Vec<WriteOp> = paths
        .into_iter()
        .rev()
        .map(|path| WriteOp::Delete { path, version: -1 })
        .collect();
    let batches = plan_batches(&ops, &session.limits());
    let bar = out.bar(ops.len() as u64, "deleting");
    run_batches(c, &ops, &batches, &bar, true).await?;
    bar.finish_and_clear();
    Ok(())
}

/// Checks a copy or move: the destination is not inside the source, nor the root.
fn check_copy_paths(src: &str, dst: &str) -> Result<()> {
    if dst == "/" || src == "/" {
        return Err(CliError::usage(
            "the root cannot be copied or moved, nor replaced",
        ));
    }
    if dst == src || dst.starts_with(&format!("{src}/")) {
        return Err(CliError::usage(format!("{dst} is inside {src}")));
    }
    Ok(())
}

/// The creates that copy `nodes` (read under `src`) to `dst`.
fn copy_ops(nodes: &[subtree::Node], src: &str, dst: &str) -> Vec<WriteOp> {
    nodes
        .iter()
        .map(|n| WriteOp::Create {
            path: format!("{dst}{}", &n.path[src.len()..]),
            data: n.data.clone(),
            acl: n.acl.clone(),
        })
        .collect()
}

async fn read_tree(
    session: &Session,
    src: &str,
    recursive: bool,
    out: &Out<'_>,
) -> Result<Vec<subtree::Node>> {
    let c = session.client();
    let paths = if recursive {
        walk_paths(c, src).await?
    } else {
        vec![src.to_owned()]
    };
    let bar = out.bar(paths.len() as u64, "reading");
    let nodes = read_nodes(c, paths, &bar).await?;
    bar.finish_and_clear();
    if nodes.is_empty() {
        return Err(CliError::from_zk(zk::Error::NoNode, Access::Read, src));
    }
    Ok(nodes)
}

async fn cp(session: &Session, a: &CpArgs, out: &mut Out<'_>) -> Result<()> {
    check_copy_paths(&a.src, &a.dst)?;
    let nodes = read_tree(session, &a.src, a.recursive, out).await?;
    if !a.recursive && nodes[0].stat.num_children > 0 {
        note(&format!(
            "copying {} without its children (use cp -r)",
            a.src
        ));
    }
    let ops = copy_ops(&nodes, &a.src, &a.dst);
    let batches = plan_batches(&ops, &session.limits());
    let bar = out.bar(ops.len() as u64, "copying");
    run_batches(session.client(), &ops, &batches, &bar, false).await?;
    bar.finish_and_clear();
    Ok(())
}

async fn mv(session: &Session, a: &MvArgs, out: &mut Out<'_>) -> Result<()> {
    check_copy_paths(&a.src, &a.dst)?;
    let nodes = read_tree(session, &a.src, true, out).await?;
    let mut ops = copy_ops(&nodes, &a.src, &a.dst);
    // Children before parents, each at the version read, so a change made after the read
    // fails the move instead of being lost.
    ops.extend(nodes.iter().rev().map(|n| WriteOp::Delete {
        path: n.path.clone(),
        version: n.stat.version,
    }));
    let limits = session.limits();
    let batches = plan_batches(&ops, &limits);
    let c = session.client();
    if batches.len() <= 1 {
        return subtree::commit(c, &ops).await.map_err(|e| match e {
            (i, zk::Error::BadVersion) => CliError::new(
                ErrorKind::BadVersion,
                format!("{} changed while moving; nothing was moved", ops[i].path()),
            ),
            (i, zk::Error::NotEmpty) => CliError::new(
                ErrorKind::NotEmpty,
                format!(
                    "a child was added under {} while moving; nothing was moved",
                    ops[i].path()
                ),
            ),
            e => subtree::multi_error(&ops, e),
        });
    }
    let why = format!(
        "{} ({} znodes) needs a {}-byte multi, over the server's limit of {limits}",
        a.src,
        nodes.len(),
        multi_bytes(&ops)
    );
    if a.atomic {
        return Err(CliError::new(
            ErrorKind::TooLarge,
            format!("cannot move atomically: {why}"),
        ));
    }
    note(&format!(
        "{why}; moving in {} steps instead: copy to {}, then delete {} (not atomic: a failure \
         midway leaves both)",
        batches.len(),
        a.dst,
        a.src
    ));
    // Batches run in order and every create precedes every delete, so the source is
    // deleted only once the whole copy exists.
    let bar = out.bar(ops.len() as u64, "moving");
    run_batches(c, &ops, &batches, &bar, false).await?;
    bar.finish_and_clear();
    Ok(())
}

async fn setacl(session: &Session, a: &SetAclArgs, out: &mut Out<'_>) -> Result<()> {
    let acl = parse_acl(&a.acl)?;
    let stat = match session.client().set_acl(&a.path, &acl, a.version).await {
        Ok(stat) => stat,
        Err(zk::Error::BadVersion) => {
            let (_, stat) = session
                .client()
                .get_acl(&a.path)
                .await
                .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))?;
            return Err(CliError::new(
                ErrorKind::BadVersion,
                format!(
                    "version changed: expected ACL version {}, node is at {} ({})",
                    a.version.unwrap_or(-1),
                    stat.aversion,
                    a.path
                ),
            ));
        }
        Err(e) => return Err(CliError::from_zk(e, Access::Admin, &a.path)),
    };
    if a.stat {
        out.write(stat_lines(&stat).as_bytes())?;
    }
    Ok(())
}

fn read_local(file: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let r = if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut data).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut data).map(|_| ()))
    };
    r.map_err(|e| CliError::local(file, &e))?;
    Ok(data)
}

async fn upload(session: &Session, a: &UploadArgs, out: &mut Out<'_>) -> Result<()> {
    let data = read_local(&a.file)?;
    let c = session.client();
    let acl = open_acl();
    // The larger of the two requests it may take (create for a new node, else setData)
    // must fit before anything is sent.
    let bytes = (REQUEST_HEADER_BYTES + create_record_bytes(&a.path, data.len(), &acl))
        .max(set_data_bytes(&a.path, data.len()));
    let limits = session.limits();
    if bytes > limits.packet_bytes_max as usize {
        let overhead = bytes - data.len();
        return Err(CliError::new(
            ErrorKind::TooLarge,
            format!(
                "{} is {} bytes, too large for one znode: the server's packet limit is {limits}, \
                 so at most {} bytes of data fit in a write to {}; nothing was sent",
                a.file.display(),
                data.len(),
                (limits.packet_bytes_max as usize).saturating_sub(overhead),
                a.path
            ),
        ));
    }
    let bar = out.bytes_bar(data.len() as u64, "uploading");
    let r = match c.set_data(&a.path, &data, None).await {
        Err(zk::Error::NoNode) => c
            .create(
                &a.path,
                &data,
                &CreateMode::Persistent.with_acls(Acls::new(&acl)),
            )
            .await
            .map(|_| ())
            .map_err(|e| CliError::from_zk(e, Access::Create, &a.path)),
        r => r
            .map(|_| ())
            .map_err(|e| CliError::from_zk(e, Access::Write, &a.path)),
    };
    bar.set_position(data.len() as u64);
    bar.finish_and_clear();
    r?;
    note(&format!(
        "uploaded {} to {}",
        human_bytes(data.len() as u64),
        a.path
    ));
    Ok(())
}

async fn download(c: &zk::Client, a: &DownloadArgs, out: &mut Out<'_>) -> Result<()> {
    let bar = out.bytes_bar(0, "downloading");
    let (data, _) = c
        .get_data(&a.path)
        .await
        .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))?;
    bar.set_length(data.len() as u64);
    bar.set_position(data.len() as u64);
    bar.finish_and_clear();
    if a.file == Path::new("-") {
        return out.write(&data);
    }
    write_atomically(&a.file, &data)?;
    note(&format!(
        "downloaded {} to {}",
        human_bytes(data.len() as u64),
        a.file.display()
    ));
    Ok(())
}

/// Writes `data` to a temporary file beside `file`, then renames it over `file`, so a
/// failure never leaves half a file.
fn write_atomically(file: &Path, data: &[u8]) -> Result<()> {
    let name = file
        .file_name()
        .ok_or_else(|| CliError::usage(format!("{} is not a file name", file.display())))?;
    let tmp = file.with_file_name(format!(".{}.warren-tmp", name.to_string_lossy()));
    let r = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::local(file, &e));
    }
    Ok(())
}

async fn tree(c: &zk::Client, a: &TreeArgs, out: &mut Out<'_>) -> Result<()> {
    let paths = walk_paths(c, &a.path).await?;
    let mut text = String::new();
    let root_depth = depth(&a.path);
    text.push_str(&paths[0]);
    text.push('\n');
    let mut last_child: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    // Paths come parents first with siblings sorted, so the last one seen per parent is
    // its last child.
    for p in &paths[1..] {
        last_child.insert(parent_of(p), p);
    }
    // `last[d]`: whether the ancestor at depth d + 1 is the last of its siblings, to know
    // which vertical bars continue below it.
    let mut last: Vec<bool> = Vec::new();
    for p in &paths[1..] {
        let d = depth(p) - root_depth;
        let is_last = last_child.get(parent_of(p)) == Some(&p.as_str());
        last.truncate(d - 1);
        for &l in &last {
            text.push_str(if l { "    " } else { "│   " });
        }
        text.push_str(if is_last { "└── " } else { "├── " });
        text.push_str(&p[p.rfind('/').expect("a child path has a slash") + 1..]);
        text.push('\n');
        last.push(is_last);
    }
    out.write(text.as_bytes())
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn depth(path: &str) -> usize {
    if path == "/" {
        0
    } else {
        path.matches('/').count()
    }
}

async fn watch(c: &zk::Client, a: &WatchArgs, out: &mut Out<'_>) -> Result<()> {
    let mode = if a.recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let add = || async {
        c.watch(&a.path, mode)
            .await
            .map_err(|e| CliError::from_zk(e, Access::Read, &a.path))
    };
    let mut watcher = add().await?;
    note(&format!(
        "watching {} ({}); Ctrl-C to stop",
        a.path,
        if a.recursive {
            "persistent recursive"
        } else {
            "persistent"
        }
    ));
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut disconnected = false;
    loop {
        let event = tokio::select! {
            e = watcher.changed() => e,
            _ = &mut stop => return Ok(()),
        };
        out.line(&format!(
            "WatchedEvent state:{} type:{} path:{} zxid:{}",
            event.session_state,
            event_name(event.event_type),
            event.path,
            event.zxid
        ))?;
        match event.session_state {
            SessionState::Disconnected => disconnected = true,
            SessionState::SyncConnected
                if event.event_type == EventType::Session && disconnected =>
            {
                // zookeeper-client 0.11.2 does not re-send persistent watches after a
                // reconnect, so add it again; events while disconnected may be missed.
                disconnected = false;
                watcher = add().await?;
                note(
                    "reconnected; watch added again (changes while disconnected are not reported)",
                );
            }
            s if s.is_terminated() => {
                return Err(CliError::new(
                    ErrorKind::Connection,
                    format!("session ended: {s}"),
                ));
            }
            _ => {}
        }
    }
}

fn event_name(t: EventType) -> &'static str {
    match t {
        EventType::Session => "None",
        EventType::NodeCreated => "NodeCreated",
        EventType::NodeDeleted => "NodeDeleted",
        EventType::NodeDataChanged => "NodeDataChanged",
        EventType::NodeChildrenChanged => "NodeChildrenChanged",
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
