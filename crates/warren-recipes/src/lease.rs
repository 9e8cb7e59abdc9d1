//! `NonBlockingLease` and `MultiNonBlockingLease`: kazoo's time-bounded leases.
//!
//! Twin: `kazoo/recipe/lease.py`. Layout: a kazoo [`Lock`] at `/path` serialises the
//! claimants; `/path/lease_holder` holds the lease as kazoo's JSON, byte for byte what
//! Python's `json.dumps` writes:
//!
//! ```text
//! {"version": 1, "holder": "<identifier>", "end": "2024-05-01T12:00:00"}
//! ```
//!
//! `end` is UTC in `%Y-%m-%dT%H:%M:%S`. As kazoo warns, the lease trusts the claimants'
//! clocks to roughly agree. A multi-lease tries `/path/0`, `/path/1`, ... in turn.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::path::{PERSISTENT, ensure_path, join};

const LEASE_VERSION: i64 = 1;

/// kazoo's `NonBlockingLease`: obtained or not, at once.
#[derive(Debug)]
pub struct NonBlockingLease {
    obtained: bool,
}

impl NonBlockingLease {
    /// Tries to obtain (or renew, for the same `identifier`) the lease at `path` for
    /// `duration` from now.
    pub async fn obtain(
        conn: &Connection,
        path: &str,
        duration: Duration,
        identifier: &str,
    ) -> Result<NonBlockingLease> {
        NonBlockingLease::obtain_at(conn, path, duration, identifier, SystemTime::now()).await
    }

    /// [`NonBlockingLease::obtain`] with the clock reading `now` (kazoo's `utcnow`, for
    /// tests).
    pub async fn obtain_at(
        conn: &Connection,
        path: &str,
        duration: Duration,
        identifier: &str,
        now: SystemTime,
    ) -> Result<NonBlockingLease> {
        conn.retry(|c| async move { ensure_path(&c, path).await })
            .await?;
        let lock = Lock::new(conn, path, identifier);
        match lock.acquire().await {
            Ok(()) => {}
            Err(Error::Cancelled) => return Ok(NonBlockingLease { obtained: false }),
            Err(e) => return Err(e),
        }
        let r = claim(conn, path, duration, identifier, now).await;
        lock.release().await?;
        Ok(NonBlockingLease { obtained: r? })
    }

    /// True if the lease was obtained (kazoo's `bool(lease)`).
    pub fn obtained(&self) -> bool {
        self.obtained
    }
}

/// Under the lock: takes the lease if it is free, expired, or already ours.
async fn claim(
    conn: &Connection,
    path: &str,
    duration: Duration,
    ident: &str,
    now: SystemTime,
) -> Result<bool> {
    let holder_path = join(path, "lease_holder");
    let now_s = unix_seconds(now);
    conn.retry(|c| {
        let holder_path = holder_path.clone();
        async move {
            match c.get_data(&holder_path).await {
                Ok((raw, _)) => {
                    let Some(lease) = decode(&raw) else {
                        return Ok(false);
                    };
                    if lease.version != LEASE_VERSION {
                        // Needs an upgrade: let someone else take it.
                        return Ok(false);
                    }
                    let Some(end) = parse_utc(&lease.end) else {
                        return Ok(false);
                    };
                    if lease.holder != ident && now_s < end {
                        return Ok(false);
                    }
                    match c.delete(&holder_path, None).await {
                        Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
            let end = format_utc(now_s + duration.as_secs() as i64);
            let data = encode(ident, &end);
            match c.create(&holder_path, data.as_bytes(), &PERSISTENT).await {
                Ok(_) => Ok(true),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await
}

/// kazoo's `MultiNonBlockingLease`: one of `count` leases under `path`.
#[derive(Debug)]
pub struct MultiNonBlockingLease {
    obtained: Option<usize>,
}

impl MultiNonBlockingLease {
    /// Tries `path/0` .. `path/<count-1>` in turn, stopping at the first obtained.
    pub async fn obtain(
        conn: &Connection,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: &str,
    ) -> Result<MultiNonBlockingLease> {
        MultiNonBlockingLease::obtain_at(conn, count, path, duration, identifier, SystemTime::now())
            .await
    }

    /// [`MultiNonBlockingLease::obtain`] with the clock reading `now`.
    pub async fn obtain_at(
        conn: &Connection,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: &str,
        now: SystemTime,
    ) -> Result<MultiNonBlockingLease> {
        for n in 0..count {
            let one = join(path, &n.to_string());
            if NonBlockingLease::obtain_at(conn, &one, duration, identifier, now)
                .await?
                .obtained()
            {
                return Ok(MultiNonBlockingLease { obtained: Some(n) });
            }
        }
        Ok(MultiNonBlockingLease { obtained: None })
    }

    /// True if one of the leases was obtained.
    pub fn obtained(&self) -> bool {
        self.obtained.is_some()
    }

    /// Which lease was obtained.
    pub fn index(&self) -> Option<usize> {
        self.obtained
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of days since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix seconds as `%Y-%m-%dT%H:%M:%S` (UTC).
pub(crate) fn format_utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `%Y-%m-%dT%H:%M:%S` (UTC) as Unix seconds.
pub(crate) fn parse_utc(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let ok = (1..=12).contains(&mo) && (1..=31).contains(&da) && h < 24 && mi < 60 && se < 61;
    ok.then(|| days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se)
}

/// The lease as kazoo stores it.
#[derive(Debug, PartialEq, Eq)]
struct Lease {
    version: i64,
    holder: String,
    end: String,
}

/// `json.dumps({"version": 1, "holder": ident, "end": end})`, as Python writes it (`", "`
/// and `": "` separators, non-ASCII escaped as `\uXXXX`).
fn encode(ident: &str, end: &str) -> String {
    format!(
        "{{\"version\": {LEASE_VERSION}, \"holder\": {}, \"end\": {}}}",
        json_string(ident),
        json_string(end)
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads kazoo's lease JSON: a flat object of strings and integers.
fn decode(raw: &[u8]) -> Option<Lease> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut p = JsonCursor {
        s: text.trim().chars().collect(),
        i: 0,
    };
    p.expect('{')?;
    let (mut version, mut holder, mut end) = (None, None, None);
    loop {
        p.skip_ws();
        if p.peek()? == '}' {
            break;
        }
        let key = p.string()?;
        p.skip_ws();
        p.expect(':')?;
        p.skip_ws();
        match (key.as_str(), p.peek()?) {
            ("version", _) => version = Some(p.integer()?),
            ("holder", _) => holder = Some(p.string()?),
            ("end", _) => end = Some(p.string()?),
            (_, '"') => {
                p.string()?;
            }
            _ => {
                p.integer()?;
            }
        }
        p.skip_ws();
        match p.next()? {
            ',' => continue,
            '}' => break,
            _ => return None,
        }
    }
    Some(Lease {
        version: version?,
        holder: holder?,
        end: end?,
    })
}

struct JsonCursor {
    s: Vec<char>,
    i: usize,
}

impl JsonCursor {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: char) -> Option<()> {
        (self.next()? == c).then_some(())
    }
    fn integer(&mut self) -> Option<i64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c == '-' || c.is_ascii_digit()) {
            self.i += 1;
        }
        self.s[start..self.i]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }
    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            v = v * 16 + self.next()?.to_digit(16)?;
        }
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Some(out),
                '\\' => match self.next()? {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hi = self.hex4()?;
                        let code = if (0xd800..0xdc00).contains(&hi) {
                            self.expect('\\')?;
                            self.expect('u')?;
                            let lo = self.hex4()?;
                            0x10000 + ((hi - 0xd800) << 10) + (lo.checked_sub(0xdc00)?)
                        } else {
                            hi
                        };
                        out.push(char::from_u32(code)?);
                    }
                    c => out.push(c),
                },
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_match_python() {
        // datetime(2024, 2, 29, 23, 59, 58).timestamp() in UTC.
        assert_eq!(format_utc(1_709_251_198), "2024-02-29T23:59:58");
        assert_eq!(parse_utc("2024-02-29T23:59:58"), Some(1_709_251_198));
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        for secs in [-86_401, 951_782_400, 4_102_444_800, 1_234_567_890] {
            assert_eq!(parse_utc(&format_utc(secs)), Some(secs));
        }
        assert_eq!(parse_utc("2024-13-01T00:00:00"), None);
    }

    #[test]
    fn json_matches_python_dumps() {
        // json.dumps({"version": 1, "holder": "h\u00e9 \"x\"", "end": "E"})
        assert_eq!(
            encode("h\u{e9} \"x\"", "E"),
            r#"{"version": 1, "holder": "h\u00e9 \"x\"", "end": "E"}"#
        );
        let lease = decode(encode("h\u{e9}\u{1f600}", "E").as_bytes()).unwrap();
        assert_eq!(lease.holder, "h\u{e9}\u{1f600}");
        assert_eq!(lease.version, 1);
        assert!(
            decode(b"{\"version\": 2, \"extra\": \"x\", \"holder\": \"a\", \"end\": \"e\"}")
                .is_some()
        );
        assert!(decode(b"not json").is_none());
    }
}
