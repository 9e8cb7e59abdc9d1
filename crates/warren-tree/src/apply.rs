//! `DataTree::apply`: ZooKeeper's write rules. Twin of `PrepRequestProcessor.pRequest2Txn`
//! (the checks, in ZooKeeper's order, so the same request fails with the same code) fused
//! with `DataTree.processTxn` (the changes): warren decides at apply, not before the log.

use warren_proto::{Acl, CreateMode, ErrorCode, EventType, Id, Stat, Zxid, perms};

use crate::acl;
use crate::command::{Applied, Command, Op, Outcome, Trigger};
use crate::node::{CONTAINER_OWNER, Node, NodeKind, TTL_MAX_MS};
use crate::path;
use crate::tree::{DataTree, Session, Undo, ttl_expired};

/// What every op of one command shares.
struct Ctx<'a> {
    session: i64,
    auth: &'a [Id],
    zxid: i64,
    time_ms: i64,
}

/// Where an op records its changes: undo records and watch triggers.
#[derive(Default)]
struct Effects {
    undo: Vec<Undo>,
    triggers: Vec<Trigger>,
}

impl Effects {
    fn trigger(&mut self, path: &str, event: EventType) {
        self.triggers.push(Trigger {
            path: path.to_owned(),
            event,
        });
    }
}

type OpResult = Result<Outcome, ErrorCode>;

impl DataTree {
    /// Applies one committed command: takes the next zxid (failed commands too), checks and
    /// performs the op, and returns the outcome and the watch triggers (none on failure).
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        self.zxid += 1;
        let ctx = Ctx {
            session: cmd.session.0,
            auth: &cmd.auth,
            zxid: self.zxid,
            time_ms: cmd.time_ms,
        };
        let mut fx = Effects::default();
        let outcome = self.apply_op(&ctx, &cmd.op, &mut fx);
        #[cfg(debug_assertions)]
        self.debug_check_touched(&fx.undo);
        let failed = matches!(outcome, Outcome::Error(_) | Outcome::MultiFailed(_));
        let triggers = if failed { Vec::new() } else { fx.triggers };
        Applied {
            zxid: Zxid(self.zxid),
            outcome,
            triggers,
        }
    }

    fn apply_op(&mut self, ctx: &Ctx<'_>, op: &Op, fx: &mut Effects) -> Outcome {
        let needs_session = !matches!(
            op,
            Op::CreateSession { .. }
                | Op::DeleteContainer { .. }
                | Op::DeleteTtl { .. }
                | Op::Refused { .. }
                | Op::SetConfig { .. }
        );
        if needs_session && !self.sessions.contains_key(&ctx.session) {
            return Outcome::Error(ErrorCode::SessionExpired);
        }
        match op {
            Op::CreateSession {
                timeout_ms,
                password,
            } => {
                self.sessions.entry(ctx.session).or_insert_with(|| Session {
                    timeout_ms: *timeout_ms,
                    password: *password,
                    ephemerals: Default::default(),
                });
                Outcome::Done
            }
            Op::CloseSession => {
                self.close_session(ctx, fx);
                Outcome::Done
            }
            Op::Multi(ops) => self.apply_multi(ctx, ops, fx),
            single => match self.apply_single(ctx, single, fx) {
                Ok(outcome) => outcome,
                Err(code) => {
                    // Checks precede changes, so there is nothing to undo; replay anyway so
                    // that a future op which fails late still leaves no trace.
                    self.rollback(std::mem::take(&mut fx.undo));
                    Outcome::Error(code)
                }
            },
        }
    }

    fn apply_single(&mut self, ctx: &Ctx<'_>, op: &Op, fx: &mut Effects) -> OpResult {
        match op {
            Op::Create {
                path,
                data,
                acl,
                mode,
                ttl_ms,
            } => self.apply_create(ctx, path, data.as_deref(), acl, *mode, *ttl_ms, fx),
            Op::Delete { path, version } => self.apply_delete(ctx, path, *version, fx),
            Op::SetData {
                path,
                data,
                version,
            } => self.apply_set_data(ctx, path, data.as_deref(), *version, fx),
            Op::SetAcl { path, acl, version } => self.apply_set_acl(ctx, path, acl, *version, fx),
            Op::Check { path, version } => self.apply_check(ctx, path, *version),
            Op::DeleteContainer { path } => self.apply_delete_swept(ctx, path, false, fx),
            Op::DeleteTtl { path } => self.apply_delete_swept(ctx, path, true, fx),
            Op::Refused { code } => Err(*code),
            Op::Reconfig {
                from_config,
                malformed,
                joining,
                leaving,
                new_members,
                initial,
            } => {
                let (mut current, version) = crate::config::parse_config(&self.config_data());
                if current.is_empty() {
                    current = initial.iter().map(|s| (s.id, s.clone())).collect();
                }
                if *from_config != -1 && *from_config != version {
                    return Err(ErrorCode::BadVersion);
                }
                if *malformed {
                    return Err(ErrorCode::BadArguments);
                }
                let next =
                    crate::config::next_config(&current, joining, leaving, new_members.as_deref());
                if next.values().filter(|s| s.is_participant()).count() < 2 {
                    return Err(ErrorCode::BadArguments);
                }
                self.write_config(ctx, next.values(), true, fx)
            }
            Op::SetConfig { servers } => {
                if !self.config_data().is_empty() {
                    return Err(ErrorCode::NodeExists);
                }
                self.write_config(ctx, servers, false, fx)
            }
            Op::CreateSession { .. } | Op::CloseSession | Op::Multi(_) => {
                Err(ErrorCode::MarshallingError)
            }
        }
    }

    /// All or nothing against the state as the earlier ops left it; ZooKeeper's per-op
    /// codes on failure. A sub-op of a kind multi cannot carry fails the whole request
    /// with MarshallingError, as ZooKeeper's `MultiOperationRecord` decoding does.
    fn apply_multi(&mut self, ctx: &Ctx<'_>, ops: &[Op], fx: &mut Effects) -> Outcome {
        let allowed = |op: &Op| {
            matches!(
                op,
                Op::Create { .. }
                    | Op::Delete { .. }
                    | Op::SetData { .. }
                    | Op::Check { .. }
                    | Op::Refused { .. }
            )
        };
        if !ops.iter().all(allowed) {
            return Outcome::Error(ErrorCode::MarshallingError);
        }
        let mut outcomes = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.apply_single(ctx, op, fx) {
                Ok(o) => outcomes.push(o),
                Err(code) => {
                    self.rollback(std::mem::take(&mut fx.undo));
                    fx.triggers.clear();
                    let mut codes = vec![ErrorCode::Ok; i];
                    codes.push(code);
                    codes.resize(ops.len(), ErrorCode::RuntimeInconsistency);
                    return Outcome::MultiFailed(codes);
                }
            }
        }
        Outcome::Multi(outcomes)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_create(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
        fx: &mut Effects,
    ) -> OpResult {
        // EphemeralType.validateTTL.
        let ttl_ok = if mode.is_ttl() {
            ttl_ms > 0 && ttl_ms <= TTL_MAX_MS
        } else {
            ttl_ms < 0
        };
        if !ttl_ok {
            return Err(ErrorCode::BadArguments);
        }
        let parent = path::parent_of(path).ok_or(ErrorCode::BadArguments)?;
        let acl = acl::fixup(acl, ctx.auth)?;
        let p = self.node(parent).ok_or(ErrorCode::NoNode)?;
        if !acl::check(self.acls.get(p.acl()), perms::CREATE, ctx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let full = if mode.is_sequential() {
            format!("{path}{:010}", p.cversion())
        } else {
            path.to_owned()
        };
        if !path::is_valid_path(&full) {
            return Err(ErrorCode::BadArguments);
        }
        if self.node(&full).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(p.kind(), NodeKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let owner = match mode {
            CreateMode::Container => CONTAINER_OWNER,
            m if m.is_ttl() => NodeKind::Ttl(ttl_ms).owner(),
            m if m.is_ephemeral() => ctx.session,
            _ => 0,
        };
        let cversion = p.cversion().wrapping_add(1);
        let acl = self.acls.intern(&acl);
        let node = Node::new(&full, ctx.zxid, ctx.time_ms, owner, acl, data);
        let stat = node.stat();
        fx.undo
            .extend(self.add_child(parent, cversion, ctx.zxid, node));
        fx.trigger(&full, EventType::NodeCreated);
        fx.trigger(parent, EventType::NodeChildrenChanged);
        Ok(Outcome::Created { path: full, stat })
    }

    fn apply_delete(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        version: i32,
        fx: &mut Effects,
    ) -> OpResult {
        let parent = parent_for_delete(path)?;
        let p = self.node(parent).ok_or(ErrorCode::NoNode)?;
        if !acl::check(self.acls.get(p.acl()), perms::DELETE, ctx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let n = self.nodes.get(path.as_bytes()).ok_or(ErrorCode::NoNode)?;
        check_version(n.version(), version)?;
        if n.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.delete_node(ctx, path, fx);
        Ok(Outcome::Done)
    }

    /// DeleteContainer / DeleteTtl: ZooKeeper's `deleteContainer` checks (special path,
    /// NoNode, NotEmpty, BadVersion for a node of the wrong kind), plus the sweep's own
    /// condition re-checked now (BadVersion if it no longer holds).
    fn apply_delete_swept(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        ttl: bool,
        fx: &mut Effects,
    ) -> OpResult {
        parent_for_delete(path)?;
        let n = self.nodes.get(path.as_bytes()).ok_or(ErrorCode::NoNode)?;
        if n.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let qualifies = if ttl {
            ttl_expired(n, ctx.time_ms)
        } else {
            n.kind() == NodeKind::Container && n.cversion() > 0
        };
        if !qualifies {
            return Err(ErrorCode::BadVersion);
        }
        self.delete_node(ctx, path, fx);
        Ok(Outcome::Done)
    }

    fn apply_set_data(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        fx: &mut Effects,
    ) -> OpResult {
        if !path::is_valid_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let n = self.node(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(self.acls.get(n.acl()), perms::WRITE, ctx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        check_version(n.version(), version)?;
        let (new, next_version) = (n.with_data(data), n.version().wrapping_add(1));
        Ok(Outcome::Stat(self.put_new_data(
            ctx,
            path,
            new,
            next_version,
            fx,
        )))
    }

    /// Puts `new` (the node at `path` with its new data) in place as a data change of this
    /// command: data version `version`, mtime and mzxid of the command, an undo record and
    /// a NodeDataChanged trigger. Returns the new Stat.
    fn put_new_data(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        mut new: Node,
        version: i32,
        fx: &mut Effects,
    ) -> Stat {
        new.set_version(version);
        new.set_mtime(ctx.time_ms);
        new.set_mzxid(ctx.zxid);
        let stat = new.stat();
        let old = self.replace(path, Some(new));
        fx.undo.push(Undo::Node(path.into(), old));
        fx.trigger(path, EventType::NodeDataChanged);
        stat
    }

    fn config_data(&self) -> Vec<u8> {
        self.node(crate::config::CONFIG_PATH)
            .and_then(|n| n.data().map(<[u8]>::to_vec))
            .unwrap_or_default()
    }

    /// Writes `/zookeeper/config` as ZooKeeper's reconfig txn does (a setData with version
    /// -1, so the data version reads -1); `check_acl`: WRITE is needed (a client's reconfig).
    fn write_config<'a>(
        &mut self,
        ctx: &Ctx<'_>,
        servers: impl IntoIterator<Item = &'a crate::config::ConfigServer>,
        check_acl: bool,
        fx: &mut Effects,
    ) -> OpResult {
        let path = crate::config::CONFIG_PATH;
        let n = self.node(path).ok_or(ErrorCode::NoNode)?;
        if check_acl && !acl::check(self.acls.get(n.acl()), perms::WRITE, ctx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let data = crate::config::render_config(servers, ctx.zxid);
        let new = n.with_data(Some(&data));
        let stat = self.put_new_data(ctx, path, new, -1, fx);
        Ok(Outcome::Data { data, stat })
    }

    fn apply_set_acl(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        acl: &[Acl],
        version: i32,
        fx: &mut Effects,
    ) -> OpResult {
        if !path::is_valid_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fixup(acl, ctx.auth)?;
        let n = self.node(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(self.acls.get(n.acl()), perms::ADMIN, ctx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        check_version(n.aversion(), version)?;
        let mut new = n.clone();
        new.set_aversion(n.aversion().wrapping_add(1));
        new.set_acl(self.acls.intern(&acl));
        let stat = new.stat();
        let old = self.replace(path, Some(new));
        fx.undo.push(Undo::Node(path.into(), old));
        Ok(Outcome::Stat(stat))
    }

    fn apply_check(&mut self, ctx: &Ctx<'_>, path: &str, version: i32) -> OpResult {
        if !path::is_valid_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let n = self.node(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(self.acls.get(n.acl()), perms::READ, ctx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        check_version(n.version(), version)?;
        Ok(Outcome::Done)
    }

    /// Deletes the session's ephemerals in path order, then the session.
    fn close_session(&mut self, ctx: &Ctx<'_>, fx: &mut Effects) {
        let paths: Vec<Box<str>> = match self.sessions.get(&ctx.session) {
            Some(s) => s.ephemerals.iter().cloned().collect(),
            None => return,
        };
        for p in paths {
            self.delete_node(ctx, &p, fx);
        }
        self.sessions.remove(&ctx.session);
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves to this zxid (its stored cversion
    /// does not change: it counts creations), then the node goes.
    fn delete_node(&mut self, ctx: &Ctx<'_>, path: &str, fx: &mut Effects) {
        let parent = path::parent_of(path).expect("an existing non-root node has a parent");
        fx.undo.extend(self.remove_child(parent, path, ctx.zxid));
        fx.trigger(path, EventType::NodeDeleted);
        fx.trigger(parent, EventType::NodeChildrenChanged);
    }

    /// After each apply in debug builds: every node touched has `num_children` equal to
    /// its real number of children, and so has its parent.
    #[cfg(debug_assertions)]
    fn debug_check_touched(&self, undo: &[Undo]) {
        for u in undo {
            let p = match u {
                Undo::Node(p, _) | Undo::ChildMeta(p, _, _) => &**p,
            };
            for q in [Some(p), path::parent_of(p)].into_iter().flatten() {
                if let Some(n) = self.node(q) {
                    let real = self.child_names(q).count();
                    assert_eq!(n.num_children() as usize, real, "num_children of {q}");
                }
            }
        }
    }
}

/// `getParentPathAndValidate`: BadArguments without a `/`, with a NUL, or for a special path.
fn parent_for_delete(path: &str) -> Result<&str, ErrorCode> {
    if path::is_special(path) {
        return Err(ErrorCode::BadArguments);
    }
    path::parent_of(path).ok_or(ErrorCode::BadArguments)
}

/// `checkAndIncVersion`: -1 matches any version.
fn check_version(current: i32, expected: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != current {
        Err(ErrorCode::BadVersion)
    } else {
        Ok(())
    }
}
