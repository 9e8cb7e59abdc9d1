//! `reconfig` against an ensemble of real `warren server` processes: a fourth server process
//! joins as a participant through a follower and serves, a fifth as an observer; one leaves;
//! every server shows the same `/zookeeper/config`; bad versions, bad arguments and missing
//! rights are refused.
//! Each server runs from its own zoo.cfg on free ports (never 2181); every wait is bounded.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{ServerProcess, four_letter_word, free_port};
use zookeeper_client::{Acls, Client, CreateMode, EnsembleUpdate, Error};

/// How long the ensemble may take to elect, replicate or change its membership.
const SETTLE: Duration = Duration::from_secs(40);

/// The super digest of `super:test` (kazoo's harness uses the same).
const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

struct Member {
    id: u8,
    dir: PathBuf,
    client_port: u16,
    line: String,
}

fn member(root: &Path, id: u8) -> Member {
    member_as(root, id, "participant")
}

fn member_as(root: &Path, id: u8, role: &str) -> Member {
    let client_port = free_port();
    let dir = root.join(format!("server{id}"));
    std::fs::create_dir_all(dir.join("data")).expect("server dir");
    let line = format!(
        "server.{id}=127.0.0.1:{}:{}:{role};127.0.0.1:{client_port}",
        free_port(),
        free_port()
    );
    Member {
        id,
        dir,
        client_port,
        line,
    }
}

/// Writes `m`'s zoo.cfg listing `members` and starts it.
fn start(m: &Member, members: &[&Member]) -> ServerProcess {
    let mut cfg = format!(
        "tickTime=500\ndataDir={}\nreconfigEnabled=true\n4lw.commands.whitelist=*\n",
        m.dir.join("data").display()
    );
    for other in members {
        cfg.push_str(&other.line);
        cfg.push('\n');
    }
    let path = m.dir.join("zoo.cfg");
    std::fs::write(&path, cfg).expect("write zoo.cfg");
    std::fs::write(m.dir.join("data/myid"), format!("{}\n", m.id)).expect("write myid");
    let id = m.id.to_string();
    let cfg_arg = path.to_str().expect("utf-8 path");
    let super_digest = format!("zookeeper.DigestAuthenticationProvider.superDigest={SUPER_DIGEST}");
    let args = [
        "server",
        "--config",
        cfg_arg,
        "--id",
        &id,
        "--set",
        &super_digest,
    ];
    ServerProcess::spawn(&args, &m.dir, &m.dir.join("server.log"), m.client_port)
}

/// Polls `f` every 100 ms until it returns `Some`, panicking with `what` after [`SETTLE`].
async fn eventually<T, F>(what: &str, mut f: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {SETTLE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn try_connect(port: u16, as_super: bool) -> Option<Client> {
    let mut connector = Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .with_connection_timeout(Duration::from_secs(2))
        .with_fail_eagerly();
    if as_super {
        connector = connector.with_auth("digest", b"super:test");
    }
    let addr = format!("127.0.0.1:{port}");
    tokio::time::timeout(Duration::from_secs(5), connector.connect(&addr))
        .await
        .ok()?
        .ok()
}

async fn connect(port: u16, as_super: bool) -> Client {
    eventually("a session", || try_connect(port, as_super)).await
}

/// The `/zookeeper/config` of the server on `port`, as text.
async fn config_of(port: u16) -> Option<String> {
    let client = try_connect(port, false).await?;
    let (data, _) = client.get_config().await.ok()?;
    String::from_utf8(data).ok()
}

/// The config version (`version=<hex>`, the last line).
fn version_of(config: &str) -> i64 {
    let last = config.lines().last().expect("a version line");
    let hex = last
        .strip_prefix("version=")
        .expect("the last line is version=");
    i64::from_str_radix(hex, 16).expect("a hex version")
}

async fn reconfig(
    client: &Client,
    joining: &[&str],
    leaving: &[&str],
    from: Option<i64>,
) -> Result<String, Error> {
    let joinings: Vec<&str> = joining.to_vec();
    let leavings: Vec<&str> = leaving.to_vec();
    let update = EnsembleUpdate::Incremental {
        joinings: joinings.iter().copied(),
        leavings: leavings.iter().copied(),
    };
    let (data, _) = tokio::time::timeout(SETTLE, client.update_ensemble(update, from))
        .await
        .expect("a reconfig answer in time")?;
    Ok(String::from_utf8(data).expect("utf-8 config"))
}

/// Waits until every server on `ports` shows `want` as its `/zookeeper/config`.
async fn same_config_everywhere(ports: &[u16], want: &str) {
    for port in ports {
        eventually("the same /zookeeper/config on every server", || async {
            (config_of(*port).await.as_deref() == Some(want)).then_some(())
        })
        .await;
    }
}

fn srvr_mode(port: u16) -> Option<String> {
    let reply = four_letter_word(port, "srvr").ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_join_and_one_leaves_through_reconfig() {
    let root = tempfile::tempdir().expect("temp dir");
    let m: Vec<Member> = (1..=4).map(|id| member(root.path(), id)).collect();
    let first3 = [&m[0], &m[1], &m[2]];

    // Phase 1: three servers; the leader writes zoo.cfg's members into /zookeeper/config,
    // and every server shows them.
    let mut procs: Vec<ServerProcess> = first3.iter().map(|x| start(x, &first3)).collect();
    for p in &mut procs {
        p.wait_ready();
    }
    let ports: Vec<u16> = first3.iter().map(|x| x.client_port).collect();
    let initial = eventually("the initial configuration", || async {
        config_of(ports[0])
            .await
            .filter(|c| c.contains("server.3="))
    })
    .await;
    for x in &first3 {
        assert!(initial.contains(&x.line), "{} in {initial}", x.line);
    }
    same_config_everywhere(&ports, &initial).await;
    let version = version_of(&initial);

    // Phase 2: refusals. Without the super user: NoAuth; a version that is not the current
    // one: BadVersion; text that is no server line: BadArguments. Nothing changes.
    let follower = eventually("a follower", || async {
        ports
            .iter()
            .copied()
            .find(|p| srvr_mode(*p).as_deref() == Some("follower"))
    })
    .await;
    let plain = connect(follower, false).await;
    let admin = connect(follower, true).await;
    let joiner = m[3].line.as_str();
    assert_eq!(
        reconfig(&plain, &[joiner], &[], None).await,
        Err(Error::NoAuth)
    );
    assert_eq!(
        reconfig(&admin, &[joiner], &[], Some(version + 1)).await,
        Err(Error::BadVersion)
    );
    let bad = reconfig(&admin, &["some thing"], &[], None).await;
    assert!(matches!(bad, Err(Error::BadArguments(_))), "{bad:?}");
    assert_eq!(config_of(ports[0]).await.as_deref(), Some(initial.as_str()));

    // Phase 3: a fourth server process starts (its zoo.cfg lists all four) and joins as a
    // participant through a follower; the reply is the new configuration.
    let all4 = [&m[0], &m[1], &m[2], &m[3]];
    let mut fourth = start(&m[3], &all4);
    fourth.wait_ready();
    let joined = reconfig(&admin, &[joiner], &[], Some(version))
        .await
        .expect("reconfig adds server 4");
    assert!(joined.contains(joiner), "{joiner} in {joined}");
    assert!(version_of(&joined) > version);
    let mut ports4 = ports.clone();
    ports4.push(m[3].client_port);
    same_config_everywhere(&ports4, &joined).await;
    for port in &ports4 {
        let conf = four_letter_word(*port, "conf").expect("conf answers");
        assert!(
            conf.ends_with(&format!("membership: \n{joined}")),
            "conf on {port} prints the new membership:\n{conf}"
        );
    }

    // Phase 4: server 4 follows, votes (quorum of four on the leader) and serves writes that
    // every other server sees; data from before it joined is there too.
    eventually("server 4 follows", || async {
        (srvr_mode(m[3].client_port).as_deref() == Some("follower")).then_some(())
    })
    .await;
    let on_four = connect(m[3].client_port, false).await;
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    eventually("a write through server 4", || async {
        match on_four.create("/joined", b"4", &open).await {
            Ok(_) | Err(Error::NodeExists) => Some(()),
            Err(_) => None,
        }
    })
    .await;
    let on_one = connect(ports[0], false).await;
    eventually("server 1 sees the write", || async {
        on_one.get_data("/joined").await.ok().map(|_| ())
    })
    .await;
    eventually("a leader with four voters", || async {
        ports4.iter().copied().find(|p| {
            four_letter_word(*p, "mntr").is_ok_and(|r| {
                r.contains("zk_server_state\tleader") && r.contains("zk_quorum_size\t4")
            })
        })
    })
    .await;

    // Phase 5: a fifth server process joins as an observer: it follows without voting (the
    // quorum stays four) and serves the replicated data.
    let observer = member_as(root.path(), 5, "observer");
    let all5 = [&m[0], &m[1], &m[2], &m[3], &observer];
    let mut fifth = start(&observer, &all5);
    fifth.wait_ready();
    let with_observer = reconfig(&admin, &[observer.line.as_str()], &[], None)
        .await
        .expect("reconfig adds observer 5");
    assert!(with_observer.contains(&observer.line), "{with_observer}");
    eventually("server 5 observes", || async {
        (srvr_mode(observer.client_port).as_deref() == Some("observer")).then_some(())
    })
    .await;
    let on_five = connect(observer.client_port, false).await;
    eventually("server 5 serves the replicated data", || async {
        on_five.get_data("/joined").await.ok().map(|_| ())
    })
    .await;
    ports4.push(observer.client_port);
    same_config_everywhere(&ports4, &with_observer).await;
    eventually("observers do not vote", || async {
        ports4.iter().copied().find(|p| {
            four_letter_word(*p, "mntr").is_ok_and(|r| {
                r.contains("zk_server_state\tleader") && r.contains("zk_quorum_size\t4")
            })
        })
    })
    .await;

    // Phase 6: server 3 leaves; every remaining server shows the configuration without it,
    // the leader's quorum is three again, and with server 3 stopped writes still commit.
    let left = reconfig(&admin, &[], &["3"], None)
        .await
        .expect("reconfig removes server 3");
    assert!(!left.contains("server.3="), "server.3 gone from {left}");
    let remaining = [ports[0], ports[1], m[3].client_port, observer.client_port];
    same_config_everywhere(&remaining, &left).await;
    eventually("the leader's quorum shrinks to three", || async {
        remaining[..3].iter().copied().find(|p| {
            four_letter_word(*p, "mntr").is_ok_and(|r| {
                r.contains("zk_server_state\tleader") && r.contains("zk_quorum_size\t3")
            })
        })
    })
    .await;
    drop(procs.remove(2));
    eventually("a write after server 3 left", || async {
        match on_four.create("/after-leave", b"", &open).await {
            Ok(_) | Err(Error::NodeExists) => Some(()),
            Err(_) => None,
        }
    })
    .await;
}
