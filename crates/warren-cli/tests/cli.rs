//! The `warren` binary's client commands against an in-process warren server: output,
//! error messages and exit codes, transfers, the packet limit, `watch` and the shell.

mod support;

use support::{Spawned, TestServer, noise, write_file};

#[test]
fn commands_print_like_zkcli() {
    let s = TestServer::start(&[]);

    // Writes report what they made, as zkCli does.
    assert_eq!(
        s.warren(&["create", "/app", "hello"]).ok(),
        "Created /app\n"
    );
    assert_eq!(
        s.warren(&["create", "/app/b", "x"]).ok(),
        "Created /app/b\n"
    );
    assert_eq!(
        s.warren(&["create", "-s", "/app/seq-", ""]).ok(),
        "Created /app/seq-0000000001\n"
    );
    assert_eq!(s.warren(&["create", "-c", "/box"]).ok(), "Created /box\n");
    assert_eq!(
        s.warren(&["create", "-t", "60000", "/ttl"]).ok(),
        "Created /ttl\n"
    );

    // Reads print data, children and stats with zkCli's names.
    assert_eq!(s.warren(&["get", "/app"]).ok(), "hello\n");
    assert_eq!(s.warren(&["ls", "/app"]).ok(), "[b, seq-0000000001]\n");
    let stat = s.warren(&["stat", "/app"]).ok().to_owned();
    for field in [
        "cZxid = 0x",
        "ctime = ",
        "mZxid = 0x",
        "mtime = ",
        "pZxid = 0x",
        "cversion = 2",
        "dataVersion = 0",
        "aclVersion = 0",
        "ephemeralOwner = 0x0",
        "dataLength = 5",
        "numChildren = 2",
    ] {
        assert!(stat.contains(field), "{field} in {stat}");
    }
    assert!(
        s.warren(&["get", "-s", "/app"])
            .ok()
            .starts_with("hello\ncZxid = 0x")
    );
    assert!(
        s.warren(&["ls", "-s", "/app"])
            .ok()
            .contains("numChildren = 2")
    );
    assert!(s.warren(&["stat", "/box"]).ok().contains("numChildren = 0"));

    // set changes the data and version; -s prints the new stat.
    s.warren(&["set", "/app", "world"]).ok();
    let out = s
        .warren(&["set", "-s", "-v", "1", "/app", "again"])
        .ok()
        .to_owned();
    assert!(out.contains("dataVersion = 2"), "{out}");
    assert_eq!(s.warren(&["get", "/app"]).ok(), "again\n");

    // ls -R and tree walk the whole subtree, parents first, children sorted.
    assert_eq!(
        s.warren(&["ls", "-R", "/app"]).ok(),
        "/app\n/app/b\n/app/seq-0000000001\n"
    );
    s.warren(&["create", "/app/b/c"]).ok();
    assert_eq!(
        s.warren(&["tree", "/app"]).ok(),
        "/app\n├── b\n│   └── c\n└── seq-0000000001\n"
    );
    assert_eq!(s.warren(&["sync", "/app"]).ok(), "Sync is OK\n");

    // rm deletes one node; rm -r a subtree; `delete` is zkCli's name for rm.
    s.warren(&["delete", "/app/seq-0000000001"]).ok();
    s.warren(&["rm", "-r", "/app"]).ok();
    s.warren(&["get", "/app"]).fails(3, "no such node: /app");
}

#[test]
fn errors_say_the_cause_and_exit_with_its_code() {
    let s = TestServer::start(&[]);
    s.warren(&["create", "/a", "x"]).ok();
    s.warren(&["create", "/a/b"]).ok();

    // Each kind of failure has its words and its exit code.
    s.warren(&["get", "/a/nope"])
        .fails(3, "no such node: /a/nope");
    s.warren(&["create", "/a"])
        .fails(4, "node already exists: /a");
    s.warren(&["rm", "/a"])
        .fails(6, "node not empty: /a (use rm -r)");
    s.warren(&["set", "-v", "3", "/a", "y"])
        .fails(7, "version changed: expected 3, node is at 0 (/a)");
    s.warren(&["rm", "-v", "5", "/a/b"])
        .fails(7, "version changed: expected 5, node is at 0 (/a/b)");
    s.warren(&["setacl", "/a", "world:anyone:xyz"]).fails(
        2,
        "bad ACL entry \"world:anyone:xyz\": expected scheme:id:perms, perms from cdrwa",
    );
    s.warren(&["rm", "-r", "/"])
        .fails(2, "refusing to delete / (the root cannot be deleted)");
    s.warren(&["mv", "/a", "/a/b/c"])
        .fails(2, "/a/b/c is inside /a");
    s.warren(&["create", "/a/b/e", "-e"]).ok();
    assert_eq!(s.warren(&["frobnicate"]).code, 2, "clap's usage error");

    // A server that is not there: the cause, in words.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let server = addr.to_string();
    s.warren(&["ls", "--server", &server, "/"]).fails(
        8,
        &format!("cannot connect to {server}: connection refused"),
    );

    // Nothing changed by the failures.
    assert_eq!(s.warren(&["get", "/a"]).ok(), "x\n");
}

#[test]
fn credentials_come_from_the_flag_the_environment_or_the_config_file() {
    let s = TestServer::start(&[]);
    s.warren(&["create", "/secret", "s3"]).ok();
    // `auth::cdrwa` grants everything to the identity of the caller (digest bob).
    s.warren(&["setacl", "--auth", "bob:pw", "/secret", "auth::cdrwa"])
        .ok();
    let acl = s
        .warren(&["getacl", "--auth", "bob:pw", "/secret"])
        .ok()
        .to_owned();
    assert!(
        acl.starts_with("'digest,'bob:") && acl.ends_with(": cdrwa\n"),
        "{acl}"
    );

    // Without credentials the read is refused in words.
    s.warren(&["get", "/secret"])
        .fails(5, "not authorised to read /secret");
    s.warren(&["set", "/secret", "x"])
        .fails(5, "not authorised to write /secret");
    s.warren(&["get", "--auth", "eve:pw", "/secret"])
        .fails(5, "not authorised to read /secret");

    // The flag, WARREN_AUTH and the config file each authenticate.
    assert_eq!(
        s.warren(&["get", "--auth", "bob:pw", "/secret"]).ok(),
        "s3\n"
    );
    let mut cmd = s.command(&["get", "/secret"]);
    let out = cmd.env("WARREN_AUTH", "bob:pw").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "s3\n");
    let conf = s.file("cli.toml");
    write_file(
        &conf,
        format!("server = \"{}\"\nauth = \"bob:pw\"\n", s.addr).as_bytes(),
    );
    let mut cmd = s.command(&["get", "/secret"]);
    let out = cmd
        .env_remove("WARREN_SERVER")
        .env("WARREN_CONFIG", &conf)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "s3\n", "{out:?}");

    // The default config file is read too, and the flag wins over it.
    let home_conf = s.dir.path().join("home/.config/warren");
    std::fs::create_dir_all(&home_conf).unwrap();
    write_file(&home_conf.join("cli.toml"), b"auth = \"eve:pw\"\n");
    s.warren(&["get", "/secret"])
        .fails(5, "not authorised to read /secret");
    assert_eq!(
        s.warren(&["get", "--auth", "bob:pw", "/secret"]).ok(),
        "s3\n"
    );
    write_file(&home_conf.join("cli.toml"), b"servers = \"typo\"\n");
    assert_eq!(s.warren(&["get", "/secret"]).code, 2);
}

#[test]
fn acls_are_read_and_set_with_versions() {
    let s = TestServer::start(&[]);
    s.warren(&["create", "/n", "d", "world:anyone:cdrwa"]).ok();
    assert_eq!(
        s.warren(&["getAcl", "/n"]).ok(),
        "'world,'anyone\n: cdrwa\n"
    );
    let out = s
        .warren(&["setacl", "-s", "/n", "world:anyone:rw,ip:127.0.0.1:a"])
        .ok()
        .to_owned();
    assert!(out.contains("aclVersion = 1"), "{out}");
    assert_eq!(
        s.warren(&["getacl", "/n"]).ok(),
        "'world,'anyone\n: rw\n'ip,'127.0.0.1\n: a\n"
    );
    s.warren(&["setacl", "-v", "0", "/n", "world:anyone:r"])
        .fails(
            7,
            "version changed: expected ACL version 0, node is at 1 (/n)",
        );
    // Without the create permission a child is refused.
    s.warren(&["create", "/n/kid"])
        .fails(5, "not authorised to create /n/kid");
}

fn build_tree(s: &TestServer, root: &str, n: usize) {
    s.warren(&["create", root, "root-data"]).ok();
    let mut script = String::new();
    for i in 0..n {
        script.push_str(&format!(
            "create {root}/k{i} data-{i}\ncreate {root}/k{i}/leaf leaf-{i}\n"
        ));
    }
    let run = s.warren_stdin(&["shell"], &script);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn cp_mv_and_rm_work_on_subtrees() {
    let s = TestServer::start(&[]);
    build_tree(&s, "/src", 5);
    let before = s.warren(&["ls", "-R", "/src"]).ok().to_owned();

    // cp copies one node (saying the children stay), cp -r the subtree with data.
    let one = s.warren(&["cp", "/src", "/single"]);
    assert!(one.stderr.contains("without its children"), "{one:?}");
    assert_eq!(s.warren(&["ls", "/single"]).ok(), "[]\n");
    s.warren(&["cp", "-r", "/src", "/copy"]).ok();
    assert_eq!(
        s.warren(&["ls", "-R", "/copy"]).ok(),
        before.replace("/src", "/copy")
    );
    assert_eq!(s.warren(&["get", "/copy/k3/leaf"]).ok(), "leaf-3\n");
    s.warren(&["cp", "-r", "/src", "/copy"])
        .fails(4, "node already exists: /copy");

    // mv of a subtree that fits one multi: atomic, silent.
    let mv = s.warren(&["mv", "/copy", "/moved"]);
    assert_eq!(mv.code, 0, "{mv:?}");
    assert_eq!(mv.stderr, "");
    assert_eq!(
        s.warren(&["ls", "-R", "/moved"]).ok(),
        before.replace("/src", "/moved")
    );
    s.warren(&["stat", "/copy"]).fails(3, "no such node: /copy");

    // Over the packet limit: --atomic refuses and changes nothing ...
    let refused = s.warren(&["mv", "--atomic", "--packet-limit", "200", "/moved", "/m2"]);
    assert_eq!(refused.code, 9, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("cannot move atomically: /moved (11 znodes)"),
        "{refused:?}"
    );
    assert!(
        refused
            .stderr
            .contains("over the server's limit of 200 bytes (--packet-limit)")
    );
    s.warren(&["stat", "/m2"]).fails(3, "no such node: /m2");

    // ... and without it the move happens in steps, said on stderr.
    let steps = s.warren(&["mv", "--packet-limit", "200", "/moved", "/m2"]);
    assert_eq!(steps.code, 0, "{steps:?}");
    assert!(
        steps
            .stderr
            .contains("steps instead: copy to /m2, then delete /moved"),
        "{steps:?}"
    );
    assert_eq!(
        s.warren(&["ls", "-R", "/m2"]).ok(),
        before.replace("/src", "/m2")
    );
    assert_eq!(s.warren(&["get", "/m2/k4/leaf"]).ok(), "leaf-4\n");
    s.warren(&["stat", "/moved"])
        .fails(3, "no such node: /moved");

    // rm -r in small batches too.
    s.warren(&["rm", "-r", "--packet-limit", "100", "/m2"]).ok();
    s.warren(&["stat", "/m2"]).fails(3, "no such node: /m2");
    s.warren(&["rm", "-r", "/src"]).ok();
    assert_eq!(s.warren(&["ls", "/"]).ok(), "[single, zookeeper]\n");
}

#[test]
fn upload_and_download_round_trip_bytes() {
    let s = TestServer::start(&[]);
    let bytes = noise(700_000, 7);
    let local = s.file("in.bin");
    write_file(&local, &bytes);

    // A new znode is created, an existing one replaced; download writes the same bytes.
    let up = s.warren(&["upload", local.to_str().unwrap(), "/blob"]);
    assert_eq!(up.code, 0, "{up:?}");
    let back = s.file("out.bin");
    s.warren(&["download", "/blob", back.to_str().unwrap()])
        .ok();
    assert!(
        std::fs::read(&back).unwrap() == bytes,
        "downloaded bytes differ"
    );
    write_file(&local, b"short");
    s.warren(&["upload", local.to_str().unwrap(), "/blob"]).ok();
    let out = s.warren(&["download", "/blob", "-"]);
    assert_eq!(out.raw_stdout, b"short");

    // `-` reads standard input.
    let piped = s.warren_stdin(&["upload", "-", "/piped"], "from stdin");
    assert_eq!(piped.code, 0, "{piped:?}");
    assert_eq!(s.warren(&["get", "/piped"]).ok(), "from stdin\n");

    // Local and remote failures name what failed.
    s.warren(&["upload", "no-such-file", "/x"])
        .fails(10, "no-such-file: no such file or directory");
    s.warren(&["download", "/nope", back.to_str().unwrap()])
        .fails(3, "no such node: /nope");
}

#[test]
fn a_file_over_the_packet_limit_is_refused_before_sending() {
    // A server with a small jute.maxbuffer, which the CLI reads from `conf`.
    let s = TestServer::start(&[("jute.maxbuffer", "100000")]);
    assert!(
        s.four_letter_word("conf")
            .contains("packet_bytes_max=100000")
    );
    let big = s.file("big.bin");
    write_file(&big, &noise(150_000, 1));
    let run = s.warren(&["upload", big.to_str().unwrap(), "/big"]);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        run.stderr.contains(
            "big.bin is 150000 bytes, too large for one znode: the server's packet limit is \
             100000 bytes (the server's conf), so at most"
        ),
        "{run:?}"
    );
    assert!(run.stderr.contains("nothing was sent"));
    s.warren(&["stat", "/big"]).fails(3, "no such node: /big");

    // The session is fine and a file that fits goes through; --packet-limit overrides.
    write_file(&big, &noise(90_000, 2));
    s.warren(&["upload", big.to_str().unwrap(), "/big"]).ok();
    let run = s.warren(&[
        "upload",
        "--packet-limit",
        "50000",
        big.to_str().unwrap(),
        "/big",
    ]);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        run.stderr.contains("50000 bytes (--packet-limit)"),
        "{run:?}"
    );

    // set with too much data is refused the same way.
    let data = "x".repeat(120_000);
    let run = s.warren(&["set", "/big", &data]);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        run.stderr
            .contains("over the server's packet limit of 100000 bytes"),
        "{run:?}"
    );
}

#[test]
fn watch_prints_events_until_stopped() {
    let s = TestServer::start(&[]);
    s.warren(&["create", "/w", "0"]).ok();

    // A persistent watch on one node reports its data changes and its children.
    let watch = Spawned::spawn(s.command(&["watch", "/w"]));
    Spawned::expect_line(&watch.stderr, "watching /w (persistent)");
    s.warren(&["set", "/w", "1"]).ok();
    let line = Spawned::expect_line(&watch.stdout, "NodeDataChanged");
    assert!(
        line.starts_with("WatchedEvent state:SyncConnected type:NodeDataChanged path:/w zxid:"),
        "{line}"
    );
    s.warren(&["create", "/w/kid"]).ok();
    Spawned::expect_line(&watch.stdout, "type:NodeChildrenChanged path:/w ");
    drop(watch);

    // -R: every descendant, until SIGINT, which ends it cleanly with 0.
    let mut watch = Spawned::spawn(s.command(&["watch", "-R", "/w"]));
    Spawned::expect_line(&watch.stderr, "watching /w (persistent recursive)");
    s.warren(&["create", "/w/kid/grandkid"]).ok();
    Spawned::expect_line(&watch.stdout, "type:NodeCreated path:/w/kid/grandkid ");
    nix_kill_int(watch.child.id());
    let status = watch.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Sends SIGINT (Ctrl-C) with the `kill` command: no unsafe, no extra dependency.
fn nix_kill_int(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn the_shell_reads_commands_from_stdin() {
    let s = TestServer::start(&[]);
    let script = "\
# comments and blank lines are skipped

create /s 'hello world'
get /s
create -e /s/eph
stat /s/eph
ls /s
get /missing
frobnicate
set /s \"say \\\"hi\\\"\"
get /s
quit
get /s
";
    let run = s.warren_stdin(&["shell"], script);
    // Output in order; the ephemeral node is visible inside the shell's session.
    let out = &run.stdout;
    assert!(
        out.starts_with("Created /s\nhello world\nCreated /s/eph\ncZxid = "),
        "{run:?}"
    );
    let owner = out
        .lines()
        .find(|l| l.starts_with("ephemeralOwner = "))
        .unwrap();
    assert_ne!(owner, "ephemeralOwner = 0x0");
    assert!(out.ends_with("[eph]\nsay \"hi\"\n"), "{run:?}");
    // Errors are reported and the shell goes on; it exits with the last error's code.
    assert!(
        run.stderr.contains("warren: no such node: /missing"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{run:?}"
    );
    assert_eq!(run.code, 2);
    // The session closed with the shell, and its ephemeral node went with it.
    s.warren(&["stat", "/s/eph"])
        .fails(3, "no such node: /s/eph");

    // help lists the commands and succeeds.
    let help = s.warren_stdin(&["shell"], "help\n");
    assert_eq!(help.code, 0, "{help:?}");
    for cmd in [
        "ls", "upload", "download", "watch", "setacl", "tree", "quit",
    ] {
        assert!(help.stdout.contains(cmd), "{cmd}: {help:?}");
    }
}
