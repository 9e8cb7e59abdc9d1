//! `warren shell`: zkCli's interactive shell, with line editing, history and tab completion
//! of znode paths (rustyline), running the same [`Op`]s as the one-shot commands.
//!
//! When standard input is not a terminal the shell reads commands one a line, prints no
//! prompt, and exits with the code of the last command that failed (0 if none did), so a
//! script can be piped in. Blank lines and lines starting with `#` are skipped.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use tokio::runtime::Runtime;
use zookeeper_client as zk;

use crate::commands::Op;
use crate::error::{CliError, Result};
use crate::run::{Out, run};
use crate::session::Session;

/// One line of shell input.
#[derive(Parser, Debug)]
#[command(
    name = "",
    no_binary_name = true,
    disable_version_flag = true,
    help_template = "{subcommands}\n  quit       Leave the shell (also: exit, Ctrl-D)"
)]
struct ShellLine {
    #[command(subcommand)]
    op: Op,
}

/// How long tab completion may wait for the server.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the shell until `quit`, end of input or Ctrl-D; returns the exit code.
pub fn shell(rt: &Runtime, session: &Session, servers: &str) -> i32 {
    if std::io::stdin().is_terminal() {
        interactive(rt, session, servers)
    } else {
        scripted(rt, session)
    }
}

fn scripted(rt: &Runtime, session: &Session) -> i32 {
    let mut status = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match execute(rt, session, &line, false) {
            Step::Quit => break,
            Step::Done(0) => {}
            Step::Done(code) => status = code,
        }
    }
    status
}

fn interactive(rt: &Runtime, session: &Session, servers: &str) -> i32 {
    let helper = PathCompleter {
        client: session.client().clone(),
        rt: rt.handle().clone(),
    };
    let mut editor: Editor<PathCompleter, DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warren: cannot start line editing ({e}); reading plain lines");
            return scripted(rt, session);
        }
    };
    editor.set_helper(Some(helper));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("Connected to {servers}. Type help for the commands, quit to leave.");
    let mut n = 0;
    loop {
        let state = session.client().state();
        let prompt = format!("[warren: {servers}({state}) {n}] ");
        match editor.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    n += 1;
                }
                if let Step::Quit = execute(rt, session, &line, true) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("warren: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(h);
    }
    0
}

/// `~/.config/warren/history` (beside the config file).
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("warren").join("history"))
}

enum Step {
    Quit,
    Done(i32),
}

fn execute(rt: &Runtime, session: &Session, line: &str, progress: bool) -> Step {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Step::Done(0);
    }
    let words = match split_words(line) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("warren: {e}");
            return Step::Done(e.exit_code());
        }
    };
    if matches!(words[0].as_str(), "quit" | "exit") {
        return Step::Quit;
    }
    let op = match ShellLine::try_parse_from(&words) {
        Ok(l) => l.op,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return Step::Done(code);
        }
    };
    let mut stdout = std::io::stdout();
    let mut out = Out {
        out: &mut stdout,
        progress,
    };
    match rt.block_on(run(session, &op, &mut out)) {
        Ok(()) => Step::Done(0),
        Err(e) => {
            eprintln!("warren: {e}");
            Step::Done(e.exit_code())
        }
    }
}

/// Splits a line into words as a POSIX shell would for simple cases: blanks separate,
/// `'...'` is literal, `"..."` allows `\"` and `\\`, a backslash outside quotes escapes
/// the next character.
pub fn split_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(CliError::usage("unterminated ' quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(CliError::usage("unterminated \" quote")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(CliError::usage("unterminated \" quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The shell's commands, for completing the first word.
const COMMANDS: &[&str] = &[
    "cp", "create", "delete", "download", "get", "getacl", "help", "ls", "mv", "quit", "rm", "set",
    "setacl", "stat", "sync", "tree", "upload", "watch",
];

/// Completes command names and znode paths (listing the parent on the server).
struct PathCompleter {
    client: zk::Client,
    rt: tokio::runtime::Handle,
}

impl PathCompleter {
    fn children(&self, dir: &str) -> Vec<String> {
        let list = self.client.list_children(dir);
        let r = self
            .rt
            .block_on(async { tokio::time::timeout(COMPLETION_TIMEOUT, list).await });
        match r {
            Ok(Ok(mut kids)) => {
                kids.sort();
                kids
            }
            _ => Vec::new(),
        }
    }
}

impl Completer for PathCompleter {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        if start == 0 {
            let found = COMMANDS
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| Pair {
                    display: (*c).to_owned(),
                    replacement: format!("{c} "),
                })
                .collect();
            return Ok((0, found));
        }
        if !word.starts_with('/') {
            return Ok((pos, Vec::new()));
        }
        let slash = word.rfind('/').expect("the word starts with a slash");
        let (dir, prefix) = (&word[..slash.max(1)], &word[slash + 1..]);
        let base = &word[..=slash];
        let found = self
            .children(dir)
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .map(|k| Pair {
                replacement: format!("{base}{k}"),
                display: k,
            })
            .collect();
        Ok((start, found))
    }
}

impl Hinter for PathCompleter {
    type Hint = String;
}

impl Highlighter for PathCompleter {}

impl Validator for PathCompleter {}

impl Helper for PathCompleter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words("set /a 'hello world'").unwrap(),
            ["set", "/a", "hello world"]
        );
        assert_eq!(
            split_words(r#"set /a "say \"hi\"""#).unwrap(),
            ["set", "/a", "say \"hi\""]
        );
        assert_eq!(
            split_words(r"create /a\ b ''").unwrap(),
            ["create", "/a b", ""]
        );
        assert!(split_words("get 'open").is_err());
    }

    #[test]
    fn a_shell_line_parses_as_a_command() {
        let l = ShellLine::try_parse_from(["create", "-e", "-s", "/a", "x"]).unwrap();
        assert!(matches!(l.op, Op::Create(ref a) if a.ephemeral && a.sequential && a.path == "/a"));
        let l = ShellLine::try_parse_from(["getAcl", "/a"]).unwrap();
        assert!(matches!(l.op, Op::GetAcl(_)));
    }
}
