//! SASL DIGEST-MD5 authentication (opcode 102) with users from a JAAS file.
//!
//! Twin of ZooKeeper's `ZooKeeperServer.processSasl`, `SaslServerCallbackHandler`,
//! `SASLAuthenticationProvider` and the JDK's DIGEST-MD5 `SaslServer` (RFC 2831):
//!
//! - **Users** come from the JAAS file named by `java.security.auth.login.config`: every
//!   option `user_<name>="<password>"` of every login module in the `Server` section
//!   (ZooKeeper reads the section named by `zookeeper.sasl.serverconfig`, default `Server`,
//!   and does not look at the module's class name). See [`SaslUsers::parse_jaas`].
//! - **Exchange**: the client's first token is empty and is answered with a challenge
//!   `realm="zk-sasl-md5",nonce="…",charset=utf-8,algorithm=md5-sess` (the JDK server's form
//!   for ZooKeeper's protocol `zookeeper` and server name `zk-sasl-md5`; it omits `qop`, which
//!   RFC 2831 then defaults to `auth`, the only protection offered). The client's
//!   digest-response is verified and answered with `rspauth=…`; the connection then gains
//!   `sasl:<username>`.
//! - **Replies** echo the request's xid with zxid 0. Any failure is answered with
//!   AuthFailed (-115) and a null token, and the connection closes, as ZooKeeper does unless
//!   `zookeeper.allowSaslFailedClients` is set.
//!
//! Why hand-written: no maintained Rust crate implements the DIGEST-MD5 *server*. `rsasl`
//! (client and server) has no DIGEST-MD5 mechanism at all (checked: 2.3.1 offers SCRAM,
//! PLAIN, LOGIN, GSSAPI, OAUTHBEARER, XOAUTH2, ANONYMOUS, EXTERNAL). The mechanism is small:
//! one challenge, one MD5 digest to check, one to send back.
//!
//! Deviations: no integrity or confidentiality layer (`auth-int`, `auth-conf`; ZooKeeper
//! offers `auth` only by default too); the authorization id (`authzid`) enters the digest
//! but the identity is always the authenticated user name, which is what ZooKeeper's
//! callback ends up using for a DIGEST-MD5 name; `zookeeper.superUser` and
//! `zookeeper.SASLAuthenticationProvider.superPassword` are not read; `${property}` expansion
//! in the JAAS file is not done; without a JAAS file (or without its `Server` section) every
//! SASL request fails with AuthFailed, where ZooKeeper answers with an empty token.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use thiserror::Error;
use warren_proto::records::{ReplyHeader, SetSaslResponse};
use warren_proto::response::encode_reply;
use warren_proto::{ErrorCode, Id, Record, Xid, Zxid};

/// The JAAS section ZooKeeper reads by default (`zookeeper.sasl.serverconfig`).
pub const DEFAULT_SECTION: &str = "Server";
/// The realm and server name ZooKeeper gives the DIGEST-MD5 server.
pub const REALM: &str = "zk-sasl-md5";
/// The SASL protocol (service) name ZooKeeper uses.
pub const SERVICE: &str = "zookeeper";

/// A JAAS file that cannot be used.
#[derive(Debug, Error)]
pub enum JaasError {
    /// The file could not be read.
    #[error("cannot read JAAS file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not follow the JAAS syntax.
    #[error("JAAS file {}: line {line}: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the problem.
        line: usize,
        /// What was expected.
        reason: String,
    },
}

/// The DIGEST-MD5 users (`user_<name>="<password>"`) of the JAAS `Server` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaslUsers {
    passwords: BTreeMap<String, String>,
}

impl SaslUsers {
    /// Reads the JAAS file at `path` and takes the users of `section`. `Ok(None)` when the
    /// file has no such section: ZooKeeper then starts without SASL.
    pub fn load(path: &Path, section: &str) -> Result<Option<SaslUsers>, JaasError> {
        let text = std::fs::read_to_string(path).map_err(|source| JaasError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_jaas(&text, section).map_err(|(line, reason)| JaasError::Syntax {
            path: path.to_path_buf(),
            line,
            reason,
        })
    }

    /// Parses JAAS text (`Name { Module Flag key="value" ...; ... };` with `//`, `/* */`
    /// comments) and takes the `user_` options of every module in `section`. The error is
    /// `(line, reason)`.
    pub fn parse_jaas(text: &str, section: &str) -> Result<Option<SaslUsers>, (usize, String)> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, at: 0 };
        let mut found: Option<SaslUsers> = None;
        while !p.done() {
            let (name, options) = p.entry()?;
            if name != section {
                continue;
            }
            let users = found.get_or_insert_with(SaslUsers::default);
            for (key, value) in options {
                if let Some(user) = key.strip_prefix("user_") {
                    users.passwords.insert(user.to_owned(), value);
                }
            }
        }
        Ok(found)
    }

    /// The password of `user`, if it is a known user.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.passwords.get(user).map(String::as_str)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    /// True when the section names no user.
    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// JAAS syntax, as `sun.security.provider.ConfigFile` reads it with a `StreamTokenizer`.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, (usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let start = line;
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                if i >= chars.len() {
                    return Err((start, "unterminated /* comment".into()));
                }
                i += 1;
            }
            '{' | '}' | ';' | '=' => out.push((line, Tok::Punct(c))),
            '"' | '\'' => {
                let (s, next, lines) =
                    quoted(&chars, i + 1, c).ok_or((line, "unterminated string".to_string()))?;
                out.push((line, Tok::Quoted(s)));
                line += lines;
                i = next;
                continue;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"{};=\"'".contains(chars[i])
                {
                    i += 1;
                }
                out.push((line, Tok::Word(chars[start..i].iter().collect())));
                continue;
            }
        }
        i += 1;
    }
    Ok(out)
}

/// A quoted string from `start` (after the quote): its value, the index after the closing
/// quote, and the newlines inside. Backslash escapes as Java's `StreamTokenizer`.
fn quoted(chars: &[char], start: usize, quote: char) -> Option<(String, usize, usize)> {
    let (mut s, mut i, mut lines) = (String::new(), start, 0);
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Some((s, i + 1, lines));
        }
        if c == '\\' {
            i += 1;
            let e = *chars.get(i)?;
            s.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'b' => '\u{8}',
                'f' => '\u{c}',
                other => other,
            });
        } else {
            lines += usize::from(c == '\n');
            s.push(c);
        }
        i += 1;
    }
    None
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    at: usize,
}

type Options = Vec<(String, String)>;

impl Parser {
    fn done(&self) -> bool {
        self.at >= self.tokens.len()
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.at)
            .or(self.tokens.last())
            .map_or(1, |t| t.0)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.at).map(|t| t.1.clone());
        self.at += 1;
        t
    }

    fn peek_is(&self, c: char) -> bool {
        matches!(self.tokens.get(self.at), Some((_, Tok::Punct(p))) if *p == c)
    }

    fn expect(&mut self, c: char) -> Result<(), (usize, String)> {
        let line = self.line();
        match self.next() {
            Some(Tok::Punct(p)) if p == c => Ok(()),
            other => Err((line, format!("expected '{c}', found {}", describe(&other)))),
        }
    }

    fn text(&mut self, what: &str) -> Result<String, (usize, String)> {
        let line = self.line();
        match self.next() {
            Some(Tok::Word(s) | Tok::Quoted(s)) => Ok(s),
            other => Err((line, format!("expected {what}, found {}", describe(&other)))),
        }
    }

    /// `Name { (Module Flag (key = value)* ;)* } ;` → the name and all options.
    fn entry(&mut self) -> Result<(String, Options), (usize, String)> {
        let name = self.text("a section name")?;
        self.expect('{')?;
        let mut options = Vec::new();
        while !self.peek_is('}') {
            self.text("a login module class")?;
            let line = self.line();
            let flag = self.text("a control flag")?;
            if !["required", "requisite", "sufficient", "optional"]
                .iter()
                .any(|f| flag.eq_ignore_ascii_case(f))
            {
                return Err((line, format!("invalid control flag {flag:?}")));
            }
            while !self.peek_is(';') {
                let key = self.text("an option name or ';'")?;
                self.expect('=')?;
                let value = self.text("an option value")?;
                options.push((key, value));
            }
            self.expect(';')?;
        }
        self.expect('}')?;
        self.expect(';')?;
        Ok((name, options))
    }
}

fn describe(t: &Option<Tok>) -> String {
    match t {
        None => "the end of the file".into(),
        Some(Tok::Punct(c)) => format!("'{c}'"),
        Some(Tok::Word(w)) => format!("{w:?}"),
        Some(Tok::Quoted(q)) => format!("\"{q}\""),
    }
}

// ---------------------------------------------------------------------------------------
// The DIGEST-MD5 server (RFC 2831, `qop=auth`, `algorithm=md5-sess`).

/// Why a DIGEST-MD5 exchange failed. Every one ends the connection with AuthFailed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaslError {
    /// The server has no JAAS users.
    #[error("SASL is not configured (no JAAS Server section)")]
    NotConfigured,
    /// A token arrived out of turn (a non-empty first token, or after completion).
    #[error("unexpected SASL token: {0}")]
    OutOfTurn(&'static str),
    /// The digest-response is malformed or does not match the challenge.
    #[error("malformed digest-response: {0}")]
    Malformed(String),
    /// The user is unknown.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The response digest is wrong (wrong password).
    #[error("wrong password for user {0:?}")]
    BadDigest(String),
}

/// What one step of the exchange produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this token and wait for the client's next one.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send `token` (the `rspauth`).
    Complete {
        /// The final server token.
        token: Vec<u8>,
        /// The authenticated user name.
        user: String,
    },
}

enum State {
    Start,
    Challenged { nonce: String },
    Done,
}

/// One connection's DIGEST-MD5 server.
pub struct DigestMd5Server {
    users: Option<Arc<SaslUsers>>,
    state: State,
}

impl DigestMd5Server {
    /// A server for one connection; `users` is `None` when SASL is not configured.
    pub fn new(users: Option<Arc<SaslUsers>>) -> Self {
        DigestMd5Server {
            users,
            state: State::Start,
        }
    }

    /// Evaluates the client's token, as `SaslServer.evaluateResponse`.
    pub fn step(&mut self, token: &[u8]) -> Result<SaslStep, SaslError> {
        let users = self.users.clone().ok_or(SaslError::NotConfigured)?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start if token.is_empty() => {
                let nonce = new_nonce();
                let challenge =
                    format!("realm=\"{REALM}\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess");
                self.state = State::Challenged { nonce };
                Ok(SaslStep::Challenge(challenge.into_bytes()))
            }
            State::Start => Err(SaslError::OutOfTurn("DIGEST-MD5 takes no initial response")),
            State::Challenged { nonce } => verify(&users, &nonce, token),
            State::Done => Err(SaslError::OutOfTurn("authentication already complete")),
        }
    }
}

/// 30 random bytes in base64 (40 characters), as the JDK's `generateNonce`.
fn new_nonce() -> String {
    let mut bytes = [0u8; 30];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Checks a digest-response against `nonce` and the users; on success, the `rspauth`.
fn verify(users: &SaslUsers, nonce: &str, token: &[u8]) -> Result<SaslStep, SaslError> {
    let bad = |s: &str| SaslError::Malformed(s.to_owned());
    let utf8 = parse_directives(token, false)
        .ok_or_else(|| bad("unparsable"))?
        .get("charset")
        .map(|c| c.eq_ignore_ascii_case("utf-8"));
    if utf8 == Some(false) {
        return Err(bad("charset must be utf-8"));
    }
    let d = parse_directives(token, utf8 == Some(true)).ok_or_else(|| bad("unparsable"))?;
    let get = |k: &str| d.get(k).map(String::as_str);
    let need = |k: &'static str| get(k).ok_or_else(|| SaslError::Malformed(format!("no {k}")));
    let user = need("username")?;
    if need("nonce")? != nonce {
        return Err(bad("nonce does not match the challenge"));
    }
    let cnonce = need("cnonce")?;
    let nc = need("nc")?;
    if u32::from_str_radix(nc, 16) != Ok(1) {
        return Err(bad("nonce-count must be 00000001"));
    }
    let qop = get("qop").unwrap_or("auth");
    if qop != "auth" {
        return Err(bad("only qop=auth is offered"));
    }
    let realm = get("realm").unwrap_or("");
    if !realm.is_empty() && realm != REALM {
        return Err(SaslError::Malformed(format!("unknown realm {realm:?}")));
    }
    let uri = need("digest-uri")?;
    if !digest_uri_ok(uri) {
        return Err(SaslError::Malformed(format!(
            "digest-uri {uri:?} is not {SERVICE}/{REALM}"
        )));
    }
    let password = users
        .password(user)
        .ok_or_else(|| SaslError::UnknownUser(user.to_owned()))?;
    let utf8 = utf8 == Some(true);
    let creds = Credentials {
        user,
        realm,
        password,
        utf8,
    };
    let ha1 = ha1(&creds, nonce, cnonce, get("authzid"));
    let expected = kd(&ha1, nonce, nc, cnonce, qop, &format!("AUTHENTICATE:{uri}"));
    let response = need("response")?.to_ascii_lowercase();
    if !constant_time_eq(expected.as_bytes(), response.as_bytes()) {
        return Err(SaslError::BadDigest(user.to_owned()));
    }
    let rspauth = kd(&ha1, nonce, nc, cnonce, qop, &format!(":{uri}"));
    Ok(SaslStep::Complete {
        token: format!("rspauth={rspauth}").into_bytes(),
        user: user.to_owned(),
    })
}

/// `serv-type/host[/serv-name]` must name ZooKeeper's service and server name.
fn digest_uri_ok(uri: &str) -> bool {
    let mut parts = uri.split('/');
    parts.next() == Some(SERVICE)
        && parts.next().is_some_and(|h| h.eq_ignore_ascii_case(REALM))
        && parts.nth(1).is_none()
}

struct Credentials<'a> {
    user: &'a str,
    realm: &'a str,
    password: &'a str,
    utf8: bool,
}

/// RFC 2831 §2.1.2.1: with `charset=utf-8`, strings that fit ISO 8859-1 are hashed in
/// ISO 8859-1 and others in UTF-8; without it, everything is ISO 8859-1.
fn hash_bytes(s: &str, utf8: bool) -> Vec<u8> {
    if utf8 && s.chars().any(|c| u32::from(c) > 0xFF) {
        return s.as_bytes().to_vec();
    }
    s.chars().map(|c| u32::from(c) as u8).collect()
}

/// `H(A1)` for md5-sess: `H( H(user:realm:password) : nonce : cnonce [: authzid] )`.
fn ha1(c: &Credentials<'_>, nonce: &str, cnonce: &str, authzid: Option<&str>) -> [u8; 16] {
    let mut inner = Md5::new();
    inner.update(hash_bytes(c.user, c.utf8));
    inner.update(b":");
    inner.update(hash_bytes(c.realm, c.utf8));
    inner.update(b":");
    inner.update(hash_bytes(c.password, c.utf8));
    let mut outer = Md5::new();
    outer.update(inner.finalize());
    outer.update(format!(":{nonce}:{cnonce}"));
    if let Some(z) = authzid {
        outer.update(b":");
        outer.update(z.as_bytes());
    }
    outer.finalize().into()
}

/// `HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2))))`.
fn kd(ha1: &[u8; 16], nonce: &str, nc: &str, cnonce: &str, qop: &str, a2: &str) -> String {
    let ha2 = hex::encode(Md5::digest(a2.as_bytes()));
    let text = format!("{}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}", hex::encode(ha1));
    hex::encode(Md5::digest(text.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses `key=value,key="quoted value",...` (RFC 2831 §7.1: `\` escapes inside quotes,
/// empty list elements allowed). Values are decoded as UTF-8 when `utf8`, else ISO 8859-1.
/// Keys are lower-cased. `None` on a syntax error or a repeated key.
pub fn parse_directives(token: &[u8], utf8: bool) -> Option<BTreeMap<String, String>> {
    let text: String = if utf8 {
        String::from_utf8(token.to_vec()).ok()?
    } else {
        token.iter().map(|&b| char::from(b)).collect()
    };
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=')?;
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
            value = value.trim_end().to_owned();
        }
        if out.insert(key.to_ascii_lowercase(), value).is_some() {
            return None;
        }
    }
}

/// The answer to one `sasl` request, ready for the connection.
#[derive(Debug)]
pub struct SaslAnswer {
    /// The reply frame: `ReplyHeader{xid, 0, err}` and `SetSASLResponse{token}`.
    pub frame: Vec<u8>,
    /// The identity gained (`sasl:<user>`) when the exchange completed.
    pub identity: Option<Id>,
    /// Authentication failed: the connection must close after the frame.
    pub failed: bool,
}

/// Runs one step of `server` for a request with `xid` and `token`, as
/// `ZooKeeperServer.processSasl`: success replies echo the xid with zxid 0; a failure
/// replies AuthFailed with a null token.
pub fn answer(server: &mut DigestMd5Server, xid: Xid, token: &[u8]) -> SaslAnswer {
    let ok = |token: Vec<u8>| {
        encode_reply(
            &ReplyHeader::new(xid, Zxid(0), ErrorCode::Ok),
            Some(&SetSaslResponse { token }),
        )
    };
    match server.step(token) {
        Ok(SaslStep::Challenge(t)) => SaslAnswer {
            frame: ok(t),
            identity: None,
            failed: false,
        },
        Ok(SaslStep::Complete { token, user }) => {
            tracing::info!(user, "SASL authenticated");
            SaslAnswer {
                frame: ok(token),
                identity: Some(Id::new("sasl", user)),
                failed: false,
            }
        }
        Err(e) => {
            tracing::info!(error = %e, "SASL authentication failed");
            SaslAnswer {
                frame: auth_failed_frame(xid),
                identity: None,
                failed: true,
            }
        }
    }
}

/// `ReplyHeader{xid, 0, AuthFailed}` followed by `SetSASLResponse{null}` (buffer length -1).
fn auth_failed_frame(xid: Xid) -> Vec<u8> {
    warren_proto::frame::encode_frame(|w| {
        ReplyHeader::new(xid, Zxid(0), ErrorCode::AuthFailed).encode(w);
        w.int(-1);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2831_example_digest_and_rspauth() {
        // RFC 2831 §4, the IMAP example.
        let c = Credentials {
            user: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            utf8: false,
        };
        let (nonce, cnonce) = ("OA6MG9tEQGm2hh", "OA6MHXh6VqTrRk");
        let h = ha1(&c, nonce, cnonce, None);
        let uri = "imap/elwood.innosoft.com";
        let response = kd(
            &h,
            nonce,
            "00000001",
            cnonce,
            "auth",
            &format!("AUTHENTICATE:{uri}"),
        );
        assert_eq!(response, "d388dad90d4bbd760a152321f2143af7");
        let rspauth = kd(&h, nonce, "00000001", cnonce, "auth", &format!(":{uri}"));
        assert_eq!(rspauth, "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn jaas_server_section_users() {
        let text = r#"
            // the server's users
            Server {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                user_super="adminsecret"
                user_bob="bob\"secret";   /* a quote inside */
            };
            Client {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                username="bob" password="x";
            };
        "#;
        let users = SaslUsers::parse_jaas(text, "Server").unwrap().unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.password("bob"), Some("bob\"secret"));
        assert_eq!(users.password("super"), Some("adminsecret"));
        assert_eq!(SaslUsers::parse_jaas(text, "Other").unwrap(), None);
        let client = SaslUsers::parse_jaas(text, "Client").unwrap().unwrap();
        assert!(client.is_empty());
    }

    #[test]
    fn jaas_syntax_errors_name_the_line() {
        let text = "Server {\n  Module required\n  user_a=\"x\"\n};\n";
        let (line, reason) = SaslUsers::parse_jaas(text, "Server").unwrap_err();
        assert_eq!(line, 4, "{reason}");
        let bad_flag = "Server { M sometimes; };";
        assert!(SaslUsers::parse_jaas(bad_flag, "Server").is_err());
    }

    #[test]
    fn directives_parse_quotes_and_escapes() {
        let d = parse_directives(br#"a=1, b="x,\"y" ,,c=plain"#, false).unwrap();
        assert_eq!(d["a"], "1");
        assert_eq!(d["b"], "x,\"y");
        assert_eq!(d["c"], "plain");
        assert!(parse_directives(b"a=1,a=2", false).is_none());
        assert!(parse_directives(b"a=\"open", false).is_none());
    }

    fn users() -> Arc<SaslUsers> {
        let text = r#"Server { M required user_bob="bobsecret"; };"#;
        Arc::new(SaslUsers::parse_jaas(text, "Server").unwrap().unwrap())
    }

    /// A client response to `challenge` for `user`/`password`, as a DIGEST-MD5 client builds it.
    fn client_response(challenge: &[u8], user: &str, password: &str) -> (String, String) {
        let d = parse_directives(challenge, true).unwrap();
        let nonce = &d["nonce"];
        let c = Credentials {
            user,
            realm: REALM,
            password,
            utf8: true,
        };
        let uri = "zookeeper/zk-sasl-md5";
        let h = ha1(&c, nonce, "cn0nce", None);
        let response = kd(
            &h,
            nonce,
            "00000001",
            "cn0nce",
            "auth",
            &format!("AUTHENTICATE:{uri}"),
        );
        let rspauth = kd(&h, nonce, "00000001", "cn0nce", "auth", &format!(":{uri}"));
        let token = format!(
            r#"charset=utf-8,username="{user}",realm="{REALM}",nonce="{nonce}",nc=00000001,cnonce="cn0nce",digest-uri="{uri}",maxbuf=65536,response={response},qop=auth"#
        );
        (token, rspauth)
    }

    #[test]
    fn exchange_succeeds_and_fails_like_the_jdk_server() {
        let mut s = DigestMd5Server::new(Some(users()));
        let SaslStep::Challenge(ch) = s.step(b"").unwrap() else {
            panic!("a challenge first")
        };
        let text = String::from_utf8(ch.clone()).unwrap();
        assert!(text.starts_with("realm=\"zk-sasl-md5\",nonce=\""), "{text}");
        assert!(
            text.ends_with("\",charset=utf-8,algorithm=md5-sess"),
            "{text}"
        );
        let (token, rspauth) = client_response(&ch, "bob", "bobsecret");
        let done = s.step(token.as_bytes()).unwrap();
        assert_eq!(
            done,
            SaslStep::Complete {
                token: format!("rspauth={rspauth}").into_bytes(),
                user: "bob".into()
            }
        );
        assert!(matches!(s.step(b""), Err(SaslError::OutOfTurn(_))));

        let mut s = DigestMd5Server::new(Some(users()));
        let SaslStep::Challenge(ch) = s.step(b"").unwrap() else {
            panic!("a challenge first")
        };
        let (token, _) = client_response(&ch, "bob", "wrong");
        assert_eq!(
            s.step(token.as_bytes()),
            Err(SaslError::BadDigest("bob".into()))
        );

        let mut s = DigestMd5Server::new(Some(users()));
        assert!(matches!(s.step(b"x"), Err(SaslError::OutOfTurn(_))));
        let mut s = DigestMd5Server::new(None);
        assert_eq!(s.step(b""), Err(SaslError::NotConfigured));
    }
}
