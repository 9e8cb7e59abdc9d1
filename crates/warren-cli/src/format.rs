//! Output as zkCli prints it, and ACL text in and out.
//!
//! Twins: zkCli's `StatPrinter` (`cZxid = 0x…`, dates as Java's `Date.toString()`, here
//! always in UTC) and `AclParser` / `getAcl`'s `'scheme,'id` then `: perms` lines.

use std::fmt::Write as _;

use zookeeper_client::{Acl, AuthId, Permission, Stat};

use crate::error::{CliError, Result};

/// A stat as zkCli prints it, one `name = value` line per field.
pub fn stat_lines(stat: &Stat) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "cZxid = 0x{:x}", stat.czxid);
    let _ = writeln!(out, "ctime = {}", java_date(stat.ctime));
    let _ = writeln!(out, "mZxid = 0x{:x}", stat.mzxid);
    let _ = writeln!(out, "mtime = {}", java_date(stat.mtime));
    let _ = writeln!(out, "pZxid = 0x{:x}", stat.pzxid);
    let _ = writeln!(out, "cversion = {}", stat.cversion);
    let _ = writeln!(out, "dataVersion = {}", stat.version);
    let _ = writeln!(out, "aclVersion = {}", stat.aversion);
    let _ = writeln!(out, "ephemeralOwner = 0x{:x}", stat.ephemeral_owner);
    let _ = writeln!(out, "dataLength = {}", stat.data_length);
    let _ = writeln!(out, "numChildren = {}", stat.num_children);
    out
}

/// Milliseconds since the epoch as Java's `Date.toString()` in UTC:
/// `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Permissions as zkCli's letters, in its order `cdrwa`.
pub fn perms_text(p: Permission) -> String {
    [
        (Permission::CREATE, 'c'),
        (Permission::DELETE, 'd'),
        (Permission::READ, 'r'),
        (Permission::WRITE, 'w'),
        (Permission::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p.has(*bit))
    .map(|(_, c)| *c)
    .collect()
}

/// An ACL list as zkCli's `getAcl` prints it.
pub fn acl_lines(acls: &[Acl]) -> String {
    let mut out = String::new();
    for acl in acls {
        let _ = writeln!(out, "'{},'{}", acl.scheme(), acl.id());
        let _ = writeln!(out, ": {}", perms_text(acl.permission()));
    }
    out
}

/// Parses zkCli's ACL text: `scheme:id:perms[,scheme:id:perms...]`, where `id` may itself
/// contain colons (`digest:user:hash:cdrwa`, `ip:10.0.0.1:r`, `auth::cdrwa`).
pub fn parse_acl(text: &str) -> Result<Vec<Acl>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_one_acl)
        .collect::<Result<Vec<_>>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(CliError::usage("empty ACL"))
            } else {
                Ok(v)
            }
        })
}

fn parse_one_acl(entry: &str) -> Result<Acl> {
    let bad = || {
        CliError::usage(format!(
            "bad ACL entry {entry:?}: expected scheme:id:perms, perms from cdrwa"
        ))
    };
    let (scheme, rest) = entry.split_once(':').ok_or_else(bad)?;
    let (id, perms) = rest.rsplit_once(':').ok_or_else(bad)?;
    if scheme.is_empty() {
        return Err(bad());
    }
    let mut permission = Permission::NONE;
    for c in perms.chars() {
        let bit = match c {
            'c' => Permission::CREATE,
            'd' => Permission::DELETE,
            'r' => Permission::READ,
            'w' => Permission::WRITE,
            'a' => Permission::ADMIN,
            _ => return Err(bad()),
        };
        permission = permission | bit;
    }
    Ok(Acl::new(permission, AuthId::new(scheme, id)))
}

/// Bytes for humans: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_like_javas() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2024-02-29T12:34:56Z, a leap day and a Thursday.
        assert_eq!(java_date(1_709_210_096_000), "Thu Feb 29 12:34:56 UTC 2024");
    }

    #[test]
    fn acl_text_round_trips() {
        let acls = parse_acl("world:anyone:r,digest:bob:abc=:cdrwa,auth::cd").unwrap();
        assert_eq!(acls[1].scheme(), "digest");
        assert_eq!(acls[1].id(), "bob:abc=");
        assert_eq!(perms_text(acls[1].permission()), "cdrwa");
        assert_eq!(acls[2].id(), "");
        assert_eq!(acl_lines(&acls[..1]), "'world,'anyone\n: r\n",);
        assert!(parse_acl("world:anyone:x").is_err());
        assert!(parse_acl("nocolon").is_err());
    }

    #[test]
    fn stat_names_match_zkcli() {
        let text = stat_lines(&Stat {
            czxid: 2,
            mzxid: 3,
            pzxid: 2,
            ctime: 0,
            mtime: 0,
            version: 1,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 5,
            num_children: 0,
        });
        assert!(
            text.starts_with("cZxid = 0x2\nctime = Thu Jan 01 00:00:00 UTC 1970\nmZxid = 0x3\n")
        );
        assert!(text.contains("dataVersion = 1\n"));
        assert!(text.ends_with("dataLength = 5\nnumChildren = 0\n"));
    }
}
