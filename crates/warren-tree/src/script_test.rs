//! Data-driven scripts: a tiny text DSL drives `DataTree::apply` and checks outcomes,
//! stats, triggers and reads. The scripts live in `testdata/*.zks`; the syntax is at the top
//! of `testdata/basics.zks`.

use warren_proto::{Acl, CreateMode, EventType, Id, SessionId, Stat, Xid, perms};

use crate::{Applied, Command, DataTree, Op, Outcome};

struct Runner {
    tree: DataTree,
    session: i64,
    auth: Vec<Id>,
    time_ms: i64,
    last: Option<Applied>,
    multi: Option<Vec<Op>>,
    name: &'static str,
    line: usize,
}

fn parse_perms(s: &str) -> i32 {
    if let Ok(n) = s.parse() {
        return n;
    }
    s.chars()
        .map(|c| match c {
            'r' => perms::READ,
            'w' => perms::WRITE,
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'a' => perms::ADMIN,
            _ => panic!("bad perm letter {c}"),
        })
        .sum()
}

/// `scheme:id:perms[,...]` (the id may hold colons); `none` is the empty list.
fn parse_acl(s: &str) -> Vec<Acl> {
    if s == "none" {
        return vec![];
    }
    s.split(',')
        .map(|one| {
            let (scheme, rest) = one.split_once(':').expect("scheme:id:perms");
            let (id, p) = rest.rsplit_once(':').expect("scheme:id:perms");
            Acl {
                perms: parse_perms(p),
                id: Id::new(scheme, id),
            }
        })
        .collect()
}

fn fmt_acl(acl: &[Acl]) -> String {
    acl.iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
        .collect::<Vec<_>>()
        .join(",")
}

fn fmt_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Done => "done".into(),
        Outcome::Created { path, .. } => format!("created {path}"),
        Outcome::Stat(_) => "stat".into(),
        Outcome::Data { data, .. } => format!("data {}", String::from_utf8_lossy(data)),
        Outcome::Multi(v) => format!(
            "multi [{}]",
            v.iter().map(fmt_outcome).collect::<Vec<_>>().join(", ")
        ),
        Outcome::MultiFailed(codes) => {
            format!(
                "failed {}",
                codes
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        Outcome::Error(c) => format!("error {c:?}"),
    }
}

fn stat_field(s: &Stat, f: &str) -> i64 {
    match f {
        "czxid" => s.czxid,
        "mzxid" => s.mzxid,
        "pzxid" => s.pzxid,
        "ctime" => s.ctime,
        "mtime" => s.mtime,
        "version" => s.version.into(),
        "cversion" => s.cversion.into(),
        "aversion" => s.aversion.into(),
        "owner" => s.ephemeral_owner,
        "dataLength" => s.data_length.into(),
        "numChildren" => s.num_children.into(),
        _ => panic!("unknown stat field {f}"),
    }
}

fn event_name(e: EventType) -> &'static str {
    match e {
        EventType::NodeCreated => "created",
        EventType::NodeDeleted => "deleted",
        EventType::NodeDataChanged => "changed",
        EventType::NodeChildrenChanged => "children",
        _ => "other",
    }
}

fn data_arg(s: Option<&&str>) -> Vec<u8> {
    match s {
        None | Some(&"-") => vec![],
        Some(d) => d.as_bytes().to_vec(),
    }
}

impl Runner {
    fn fail(&self, msg: String) -> ! {
        panic!("{}:{}: {msg}", self.name, self.line)
    }

    fn op_of(&self, w: &[&str]) -> Option<Op> {
        let kv = |k: &str| w.iter().find_map(|x| x.strip_prefix(k));
        let pos: Vec<&str> = w.iter().copied().filter(|x| !x.contains('=')).collect();
        let int = |i: usize, default: i32| pos.get(i).map_or(default, |v| v.parse().expect("int"));
        Some(match w[0] {
            "create" => {
                let mode = match kv("mode=").unwrap_or("persistent") {
                    "persistent" => CreateMode::Persistent,
                    "seq" => CreateMode::PersistentSequential,
                    "eph" => CreateMode::Ephemeral,
                    "eph-seq" => CreateMode::EphemeralSequential,
                    "container" => CreateMode::Container,
                    "ttl" => CreateMode::PersistentWithTtl,
                    "ttl-seq" => CreateMode::PersistentSequentialWithTtl,
                    m => self.fail(format!("unknown mode {m}")),
                };
                let ttl_ms = kv("ttl=").map_or(Op::NO_TTL, |t| t.parse().expect("ttl"));
                let acl = kv("acl=").map_or_else(Acl::open_unsafe, parse_acl);
                Op::Create {
                    path: pos[1].into(),
                    data: Some(data_arg(pos.get(2))),
                    acl,
                    mode,
                    ttl_ms,
                }
            }
            "delete" => Op::Delete {
                path: pos[1].into(),
                version: int(2, -1),
            },
            "set" => Op::SetData {
                path: pos[1].into(),
                data: Some(data_arg(pos.get(2))),
                version: int(3, -1),
            },
            "setacl" => Op::SetAcl {
                path: pos[1].into(),
                acl: parse_acl(pos[2]),
                version: int(3, -1),
            },
            "check" => Op::Check {
                path: pos[1].into(),
                version: int(2, -1),
            },
            "create-session" => Op::CreateSession {
                timeout_ms: 30000,
                password: [1; 16],
            },
            "close-session" => Op::CloseSession,
            "delete-container" => Op::DeleteContainer {
                path: pos[1].into(),
            },
            "delete-ttl" => Op::DeleteTtl {
                path: pos[1].into(),
            },
            _ => return None,
        })
    }

    fn apply(&mut self, session: i64, op: Op) {
        let cmd = Command {
            origin: 1,
            session: SessionId(session),
            xid: Xid(1),
            time_ms: self.time_ms,
            auth: self.auth.clone(),
            op,
        };
        // Every command goes through its log bytes, as in production.
        let cmd = Command::decode(&cmd.encode()).expect("round trip");
        let before = self.tree.clone();
        let applied = self.tree.apply(&cmd);
        self.tree.check_invariants();
        if matches!(applied.outcome, Outcome::Error(_) | Outcome::MultiFailed(_)) {
            let mut expect = before;
            expect.zxid += 1;
            assert!(
                self.tree == expect,
                "{}:{}: a failed command changed the tree",
                self.name,
                self.line
            );
        }
        self.last = Some(applied);
    }

    fn last(&self) -> &Applied {
        self.last
            .as_ref()
            .unwrap_or_else(|| self.fail("no command yet".into()))
    }

    fn step(&mut self, w: &[&str]) {
        if self.multi.is_some() {
            if w[0] == "end" {
                let ops = self.multi.take().expect("in multi");
                self.apply(self.session, Op::Multi(ops));
                return;
            }
            let op = self
                .op_of(w)
                .unwrap_or_else(|| self.fail(format!("not an op: {}", w[0])));
            self.multi.as_mut().expect("in multi").push(op);
            return;
        }
        if matches!(w[0], "create-session" | "close-session") {
            let id = w[1].parse().expect("session id");
            let op = self.op_of(w).expect("session op");
            self.apply(id, op);
            return;
        }
        if let Some(op) = self.op_of(w) {
            self.apply(self.session, op);
            return;
        }
        let rest = w[1..].join(" ");
        match w[0] {
            "as" => self.session = w[1].parse().expect("session id"),
            "auth" => {
                self.auth = w[1..]
                    .iter()
                    .map(|a| {
                        let (s, i) = a.split_once(':').expect("scheme:id");
                        Id::new(s, i)
                    })
                    .collect()
            }
            "time" => self.time_ms = w[1].parse().expect("time"),
            "multi" => self.multi = Some(Vec::new()),
            "=>" => {
                let got = fmt_outcome(&self.last().outcome);
                if got != rest {
                    self.fail(format!("outcome: expected `{rest}`, got `{got}`"));
                }
            }
            "zxid" => {
                let got = self.last().zxid.0.to_string();
                if got != w[1] {
                    self.fail(format!("zxid: expected {}, got {got}", w[1]));
                }
            }
            "triggers" => {
                let got: Vec<String> = self
                    .last()
                    .triggers
                    .iter()
                    .map(|t| format!("{}:{}", event_name(t.event), t.path))
                    .collect();
                let got = if got.is_empty() {
                    "-".to_owned()
                } else {
                    got.join(" ")
                };
                if got != rest {
                    self.fail(format!("triggers: expected `{rest}`, got `{got}`"));
                }
            }
            "stat" => {
                let s = self
                    .tree
                    .stat(w[1])
                    .unwrap_or_else(|| self.fail(format!("{} missing", w[1])));
                for kv in &w[2..] {
                    let (k, v) = kv.split_once('=').expect("field=value");
                    let want: i64 = v.parse().expect("number");
                    let got = stat_field(&s, k);
                    if got != want {
                        self.fail(format!("stat {} {k}: expected {want}, got {got}", w[1]));
                    }
                }
            }
            "result-stat" => {
                let s = match &self.last().outcome {
                    Outcome::Created { stat, .. } | Outcome::Stat(stat) => *stat,
                    o => self.fail(format!("no stat in {o:?}")),
                };
                for kv in &w[1..] {
                    let (k, v) = kv.split_once('=').expect("field=value");
                    let want: i64 = v.parse().expect("number");
                    if stat_field(&s, k) != want {
                        self.fail(format!(
                            "result stat {k}: expected {want}, got {}",
                            stat_field(&s, k)
                        ));
                    }
                }
            }
            "children" => {
                let got = self
                    .tree
                    .children(w[1])
                    .unwrap_or_else(|| self.fail(format!("{} missing", w[1])));
                let got = if got.is_empty() {
                    "-".to_owned()
                } else {
                    got.join(" ")
                };
                let want = w[2..].join(" ");
                if got != want {
                    self.fail(format!(
                        "children of {}: expected `{want}`, got `{got}`",
                        w[1]
                    ));
                }
            }
            "data" => {
                let (d, _) = self
                    .tree
                    .get_data(w[1])
                    .unwrap_or_else(|| self.fail(format!("{} missing", w[1])));
                let want = data_arg(w.get(2));
                let d = d.unwrap_or_default();
                if d != want.as_slice() {
                    self.fail(format!(
                        "data of {}: got {:?}",
                        w[1],
                        String::from_utf8_lossy(d)
                    ));
                }
            }
            "exists" => {
                if self.tree.stat(w[1]).is_none() {
                    self.fail(format!("{} should exist", w[1]));
                }
            }
            "missing" => {
                if self.tree.stat(w[1]).is_some() {
                    self.fail(format!("{} should be missing", w[1]));
                }
            }
            "acl" => {
                let (a, _) = self
                    .tree
                    .acl(w[1])
                    .unwrap_or_else(|| self.fail(format!("{} missing", w[1])));
                let want = fmt_acl(&parse_acl(w[2]));
                if fmt_acl(a) != want {
                    self.fail(format!(
                        "acl of {}: expected {want}, got {}",
                        w[1],
                        fmt_acl(a)
                    ));
                }
            }
            "can" => {
                let got = match self.tree.check_acl(w[1], parse_perms(w[2]), &self.auth) {
                    Ok(()) => "ok".to_owned(),
                    Err(c) => format!("{c:?}"),
                };
                if got != w[3] {
                    self.fail(format!(
                        "can {} {}: expected {}, got {got}",
                        w[1], w[2], w[3]
                    ));
                }
            }
            "ephemerals" => {
                let prefix = if w[2] == "-" { "" } else { w[2] };
                let got = self
                    .tree
                    .ephemerals(SessionId(w[1].parse().expect("id")), prefix);
                let got = if got.is_empty() {
                    "-".to_owned()
                } else {
                    got.join(" ")
                };
                if got != w[3..].join(" ") {
                    self.fail(format!("ephemerals: got `{got}`"));
                }
            }
            "sessions" => {
                let got: Vec<String> = self
                    .tree
                    .sessions()
                    .map(|(id, _)| id.0.to_string())
                    .collect();
                let got = if got.is_empty() {
                    "-".to_owned()
                } else {
                    got.join(" ")
                };
                if got != rest {
                    self.fail(format!("sessions: got `{got}`"));
                }
            }
            "containers-due" => {
                let got = self.tree.container_sweep();
                let got = if got.is_empty() {
                    "-".to_owned()
                } else {
                    got.join(" ")
                };
                if got != rest {
                    self.fail(format!("container sweep: got `{got}`"));
                }
            }
            "ttl-due" => {
                let got = self.tree.ttl_expired(w[1].parse().expect("now"));
                let got = if got.is_empty() {
                    "-".to_owned()
                } else {
                    got.join(" ")
                };
                if got != w[2..].join(" ") {
                    self.fail(format!("ttl sweep: got `{got}`"));
                }
            }
            "descendants" => {
                let got = self.tree.all_children_number(w[1]);
                if got.map(|n| n.to_string()).unwrap_or("none".into()) != w[2] {
                    self.fail(format!("descendants of {}: got {got:?}", w[1]));
                }
            }
            "counts" => {
                let got = format!(
                    "nodes={} ephemerals={} sessions={}",
                    self.tree.node_count(),
                    self.tree.ephemeral_count(),
                    self.tree.session_count()
                );
                if got != rest {
                    self.fail(format!("counts: got `{got}`"));
                }
            }
            other => self.fail(format!("unknown directive {other}")),
        }
    }
}

/// Runs a script; returns the final tree.
pub(crate) fn run(name: &'static str, script: &str) -> DataTree {
    let mut r = Runner {
        tree: DataTree::new(),
        session: 1,
        auth: vec![],
        time_ms: 1000,
        last: None,
        multi: None,
        name,
        line: 0,
    };
    for (i, line) in script.lines().enumerate() {
        r.line = i + 1;
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        r.step(&w);
    }
    assert!(r.multi.is_none(), "{name}: unterminated multi");
    r.tree
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let tree = run(stringify!($name), include_str!(concat!("../testdata/", stringify!($name), ".zks")));
            // Every script's end state survives a snapshot round trip.
            let back = DataTree::decode_snapshot(&tree.encode_snapshot()).expect("snapshot decodes");
            assert!(back == tree, "snapshot round trip of {}", stringify!($name));
        }
    )*};
}

scripts!(
    basics,
    sequential,
    ephemerals,
    acls,
    multi,
    containers_ttl,
    paths,
    special_nodes
);
