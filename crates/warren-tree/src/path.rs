//! Path rules. Twin of ZooKeeper's `PathUtils.validatePath` and the parent-path helpers of
//! `PrepRequestProcessor` (`validatePathForCreate`, `getParentPathAndValidate`).

/// The paths ZooKeeper creates at startup and refuses to delete (`DataTree.isSpecialPath`).
pub const SPECIAL_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// True when `path` is valid by `PathUtils.validatePath`.
///
/// Java checks UTF-16 code units, so a character outside the BMP (a surrogate pair in Java)
/// is invalid here too, as is the private-use range U+E000..U+F8FF.
pub fn is_valid_path(path: &str) -> bool {
    if path.is_ascii() {
        is_valid_ascii_path(path.as_bytes())
    } else {
        is_valid_unicode_path(path)
    }
}

/// The same rules walked over bytes, without allocating: for ASCII, a byte is a char.
fn is_valid_ascii_path(b: &[u8]) -> bool {
    if b.first() != Some(&b'/') {
        return false;
    }
    if b.len() == 1 {
        return true;
    }
    if b[b.len() - 1] == b'/' {
        return false;
    }
    let mut lastc = b'/';
    for i in 1..b.len() {
        let c = b[i];
        let next_is_end_or_slash = i + 1 == b.len() || b[i + 1] == b'/';
        let bad = if c == 0 || (c == b'/' && lastc == b'/') {
            true
        } else if c == b'.' && lastc == b'.' {
            b[i - 2] == b'/' && next_is_end_or_slash
        } else if c == b'.' {
            b[i - 1] == b'/' && next_is_end_or_slash
        } else {
            // `is_invalid_char` restricted to ASCII: 0x01..=0x1f and 0x7f.
            c < 0x20 || c == 0x7f
        };
        if bad {
            return false;
        }
        lastc = c;
    }
    true
}

fn is_valid_unicode_path(path: &str) -> bool {
    let chars: Vec<char> = path.chars().collect();
    if chars.first() != Some(&'/') {
        return false;
    }
    if chars.len() == 1 {
        return true;
    }
    if chars.last() == Some(&'/') {
        return false;
    }
    let mut lastc = '/';
    for i in 1..chars.len() {
        let c = chars[i];
        let next_is_end_or_slash = i + 1 == chars.len() || chars[i + 1] == '/';
        let bad = if c == '\0' || (c == '/' && lastc == '/') {
            true
        } else if c == '.' && lastc == '.' {
            chars[i - 2] == '/' && next_is_end_or_slash
        } else if c == '.' {
            chars[i - 1] == '/' && next_is_end_or_slash
        } else {
            is_invalid_char(c)
        };
        if bad {
            return false;
        }
        lastc = c;
    }
    true
}

/// `PathUtils.validatePath(path, isSequential)`: a sequential path is checked with a digit
/// appended, so `/q/` is a valid prefix for `/q/0000000001`.
pub fn is_valid_path_for_mode(path: &str, sequential: bool) -> bool {
    if sequential {
        is_valid_path(&format!("{path}1"))
    } else {
        is_valid_path(path)
    }
}

fn is_invalid_char(c: char) -> bool {
    let u = c as u32;
    (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// The parent of `path` as ZooKeeper computes it: everything before the last `/`, with the
/// empty string (the parent of `/a`) meaning the root. `None` when there is no `/` or the
/// path holds a NUL (ZooKeeper answers BadArguments).
pub fn parent_of(path: &str) -> Option<&str> {
    if path.contains('\0') {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// The last component of `path` (after the last `/`).
pub fn name_of(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// True for the nodes a client may never delete.
pub fn is_special(path: &str) -> bool {
    SPECIAL_PATHS.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_path_matches_path_utils() {
        for ok in [
            "/", "/a", "/a/b", "/a.b", "/...", "/a/..b", "/.a", "/ü", "/a b",
        ] {
            assert!(is_valid_path(ok), "{ok:?} should be valid");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/../b",
            "/a\0",
            "/\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/\u{fff0}",
            "/\u{1f600}",
            "/./a",
        ] {
            assert!(!is_valid_path(bad), "{bad:?} should be invalid");
        }
        assert!(is_valid_path_for_mode("/q/", true));
        // The ASCII fast path and the char walk agree on every short ASCII path.
        let alphabet = [b'/', b'.', b'a', b'\0', 0x1f, 0x7f, b' '];
        let mut checked = 0;
        for len in 1..=5u32 {
            for mut k in 0..alphabet.len().pow(len) {
                let mut p = Vec::new();
                for _ in 0..len {
                    p.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let s = std::str::from_utf8(&p).unwrap();
                assert_eq!(is_valid_ascii_path(&p), is_valid_unicode_path(s), "{s:?}");
                checked += usize::from(is_valid_path(s));
            }
        }
        assert!(checked > 100, "the sweep includes valid paths ({checked})");
        assert!(!is_valid_path_for_mode("/q/", false));
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/"), Some("/"));
        assert_eq!(parent_of("a"), None);
        assert_eq!(parent_of("/a\0"), None);
        assert_eq!(name_of("/a/b"), "b");
    }
}
