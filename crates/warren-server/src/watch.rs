//! The watch registry of one server: which local sessions watch which paths, and what a
//! change fires.
//!
//! Twin of ZooKeeper 3.9's `DataTree` watch handling over two `WatchManager`s (data and
//! child). A watcher is a session (ZooKeeper's is the connection; a session has one
//! connection at a time here too). Each (session, path) pair holds a set of modes:
//! standard (one-shot), persistent, persistent-recursive. Rules, as ZooKeeper:
//! - `exists`/`getData` add a standard data watch; `getChildren` a standard child watch;
//!   `addWatch` persistent adds to both managers, persistent-recursive to the data manager.
//! - A change at `path` fires every watcher of `path` in the manager (standard modes are
//!   removed), and, in the data manager only, the persistent-recursive watchers of every
//!   ancestor. Recursive watchers never see `NodeChildrenChanged`, which only the child
//!   manager fires.
//! - A delete fires the data manager then the child manager for the node, one event per
//!   session.
//!
//! Watches live only in memory on the server holding the connection; clients re-register
//! them with `setWatches` after reconnecting.

use std::collections::{HashMap, HashSet};

use warren_proto::{EventType, SessionId, WatcherType};

/// How a watch was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchMode {
    /// One-shot: removed when it fires.
    Standard,
    /// Stays until removed.
    Persistent,
    /// Stays until removed, and fires for the whole subtree.
    PersistentRecursive,
}

impl WatchMode {
    fn bit(self) -> u8 {
        match self {
            WatchMode::Standard => 1,
            WatchMode::Persistent => 2,
            WatchMode::PersistentRecursive => 4,
        }
    }
}

/// Which of the two managers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchSet {
    /// Watches set by exists, getData and addWatch.
    Data,
    /// Watches set by getChildren and persistent addWatch.
    Child,
}

/// One of ZooKeeper's two `WatchManager`s.
#[derive(Debug, Default)]
struct Manager {
    /// path -> session -> mode bits.
    by_path: HashMap<String, HashMap<SessionId, u8>>,
    /// session -> paths it watches here (reverse index for close, `wchc` and limits).
    by_session: HashMap<SessionId, HashSet<String>>,
    /// Number of (session, path) pairs holding the recursive mode; zero skips the ancestor walk.
    recursive: usize,
}

impl Manager {
    fn add(&mut self, session: SessionId, path: &str, mode: WatchMode) -> bool {
        let bits = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .entry(session)
            .or_insert(0);
        let added = *bits & mode.bit() == 0;
        if added && mode == WatchMode::PersistentRecursive {
            self.recursive += 1;
        }
        *bits |= mode.bit();
        self.by_session
            .entry(session)
            .or_default()
            .insert(path.to_owned());
        added
    }

    fn contains(&self, session: SessionId, path: &str, mode: Option<WatchMode>) -> bool {
        let bits = self
            .by_path
            .get(path)
            .and_then(|w| w.get(&session))
            .copied()
            .unwrap_or(0);
        match mode {
            Some(m) => bits & m.bit() != 0,
            None => bits != 0,
        }
    }

    /// Removes `mode` (or every mode) of `session` on `path`; true if something was removed.
    fn remove(&mut self, session: SessionId, path: &str, mode: Option<WatchMode>) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(bits) = watchers.get_mut(&session) else {
            return false;
        };
        let clear = mode.map_or(0xff, WatchMode::bit);
        if *bits & clear == 0 {
            return false;
        }
        if *bits & clear & WatchMode::PersistentRecursive.bit() != 0 {
            self.recursive -= 1;
        }
        *bits &= !clear;
        if *bits == 0 {
            watchers.remove(&session);
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
            if let Some(paths) = self.by_session.get_mut(&session) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_session.remove(&session);
                }
            }
        }
        true
    }

    fn remove_session(&mut self, session: SessionId) {
        for path in self.by_session.remove(&session).unwrap_or_default() {
            if let Some(watchers) = self.by_path.get_mut(&path) {
                if let Some(bits) = watchers.remove(&session)
                    && bits & WatchMode::PersistentRecursive.bit() != 0
                {
                    self.recursive -= 1;
                }
                if watchers.is_empty() {
                    self.by_path.remove(&path);
                }
            }
        }
    }

    /// Fires a change at `path` into `out`, skipping sessions already in `out`.
    fn fire(&mut self, path: &str, out: &mut Vec<SessionId>) {
        let before = out.len();
        if let Some(watchers) = self.by_path.get_mut(path) {
            let mut emptied = Vec::new();
            for (session, bits) in watchers.iter_mut() {
                if !out[..before].contains(session) {
                    out.push(*session);
                }
                *bits &= !WatchMode::Standard.bit();
                if *bits == 0 {
                    emptied.push(*session);
                }
            }
            for session in emptied {
                watchers.remove(&session);
                if let Some(paths) = self.by_session.get_mut(&session) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.by_session.remove(&session);
                    }
                }
            }
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive == 0 {
            return;
        }
        for ancestor in ancestors(path) {
            let Some(watchers) = self.by_path.get(ancestor) else {
                continue;
            };
            for (session, bits) in watchers {
                if bits & WatchMode::PersistentRecursive.bit() != 0 && !out.contains(session) {
                    out.push(*session);
                }
            }
        }
    }
}

/// The proper ancestors of a path, nearest first, ending with `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        if rest == "/" || rest.is_empty() {
            return None;
        }
        let cut = rest.rfind('/')?;
        rest = if cut == 0 { "/" } else { &rest[..cut] };
        Some(rest)
    })
}

/// Every watch of this server's sessions.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    data: Manager,
    child: Manager,
}

impl WatchRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        WatchRegistry::default()
    }

    /// Adds a one-shot watch from a read (`exists`/`getData` → data, `getChildren` → child).
    pub fn add_standard(&mut self, session: SessionId, path: &str, set: WatchSet) {
        self.manager(set).add(session, path, WatchMode::Standard);
    }

    /// Adds a persistent watch (`addWatch`), as ZooKeeper's `DataTree.addWatch`.
    pub fn add_persistent(&mut self, session: SessionId, path: &str, recursive: bool) {
        if recursive {
            self.data.add(session, path, WatchMode::PersistentRecursive);
        } else {
            self.data.add(session, path, WatchMode::Persistent);
            self.child.add(session, path, WatchMode::Persistent);
        }
    }

    fn manager(&mut self, set: WatchSet) -> &mut Manager {
        match set {
            WatchSet::Data => &mut self.data,
            WatchSet::Child => &mut self.child,
        }
    }

    /// The sessions a change fires, each once, with the event they get.
    ///
    /// `(path, NodeChildrenChanged)` is a change to `path`'s children (the tree reports the
    /// parent's path); the other events are changes to the node at `path`.
    pub fn fire(&mut self, path: &str, event: EventType) -> Vec<SessionId> {
        let mut out = Vec::new();
        match event {
            EventType::NodeChildrenChanged => self.child.fire(path, &mut out),
            EventType::NodeDeleted => {
                self.data.fire(path, &mut out);
                self.child.fire(path, &mut out);
            }
            _ => self.data.fire(path, &mut out),
        }
        out
    }

    /// True if `session` has a watch of `kind` on `path` (ZooKeeper's `containsWatcher`).
    pub fn contains(&self, session: SessionId, path: &str, kind: WatcherType) -> bool {
        use WatchMode::*;
        match kind {
            WatcherType::Children => self.child.contains(session, path, Some(Standard)),
            WatcherType::Data => self.data.contains(session, path, Some(Standard)),
            WatcherType::Persistent => self.data.contains(session, path, Some(Persistent)),
            WatcherType::PersistentRecursive => {
                self.data.contains(session, path, Some(PersistentRecursive))
            }
            WatcherType::Any => {
                self.child.contains(session, path, None) || self.data.contains(session, path, None)
            }
        }
    }

    /// Removes watches of `kind`; true if any was removed (ZooKeeper's `removeWatch`).
    pub fn remove(&mut self, session: SessionId, path: &str, kind: WatcherType) -> bool {
        use WatchMode::*;
        match kind {
            WatcherType::Children => self.child.remove(session, path, Some(Standard)),
            WatcherType::Data => self.data.remove(session, path, Some(Standard)),
            WatcherType::Persistent => {
                let c = self.child.remove(session, path, Some(Persistent));
                self.data.remove(session, path, Some(Persistent)) | c
            }
            WatcherType::PersistentRecursive => {
                self.data.remove(session, path, Some(PersistentRecursive))
            }
            WatcherType::Any => {
                let c = self.child.remove(session, path, None);
                self.data.remove(session, path, None) | c
            }
        }
    }

    /// Drops every watch of a session (closed, expired, or moved to another server).
    pub fn remove_session(&mut self, session: SessionId) {
        self.data.remove_session(session);
        self.child.remove_session(session);
    }

    /// Number of (session, path) watch pairs of a session, both managers together.
    pub fn session_watch_count(&self, session: SessionId) -> usize {
        let n = |m: &Manager| m.by_session.get(&session).map_or(0, HashSet::len);
        n(&self.data) + n(&self.child)
    }

    /// Total (session, path) pairs, paths watched, and sessions watching (for `wchs`).
    pub fn summary(&self) -> WatchSummary {
        let pairs = |m: &Manager| m.by_path.values().map(HashMap::len).sum::<usize>();
        let mut paths: HashSet<&str> = self.data.by_path.keys().map(String::as_str).collect();
        paths.extend(self.child.by_path.keys().map(String::as_str));
        let mut sessions: HashSet<SessionId> = self.data.by_session.keys().copied().collect();
        sessions.extend(self.child.by_session.keys().copied());
        WatchSummary {
            watches: pairs(&self.data) + pairs(&self.child),
            paths: paths.len(),
            sessions: sessions.len(),
        }
    }

    /// Paths watched by each session, sorted (for `wchc`).
    pub fn by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        let mut map: HashMap<SessionId, HashSet<&str>> = HashMap::new();
        for m in [&self.data, &self.child] {
            for (s, paths) in &m.by_session {
                map.entry(*s)
                    .or_default()
                    .extend(paths.iter().map(String::as_str));
            }
        }
        let mut out: Vec<_> = map
            .into_iter()
            .map(|(s, p)| {
                let mut p: Vec<String> = p.into_iter().map(str::to_owned).collect();
                p.sort();
                (s, p)
            })
            .collect();
        out.sort_by_key(|(s, _)| *s);
        out
    }

    /// Sessions watching each path, sorted (for `wchp`).
    pub fn by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        let mut map: HashMap<&str, HashSet<SessionId>> = HashMap::new();
        for m in [&self.data, &self.child] {
            for (p, w) in &m.by_path {
                map.entry(p.as_str()).or_default().extend(w.keys().copied());
            }
        }
        let mut out: Vec<_> = map
            .into_iter()
            .map(|(p, s)| {
                let mut s: Vec<SessionId> = s.into_iter().collect();
                s.sort();
                (p.to_owned(), s)
            })
            .collect();
        out.sort();
        out
    }
}

/// Counts for the `wchs` four-letter word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    /// (session, path) pairs.
    pub watches: usize,
    /// Distinct paths.
    pub paths: usize,
    /// Distinct sessions.
    pub sessions: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    const A: SessionId = SessionId(1);
    const B: SessionId = SessionId(2);

    #[test]
    fn standard_watches_fire_once() {
        // A data watch from getData fires on the first change only.
        let mut r = WatchRegistry::new();
        r.add_standard(A, "/a", WatchSet::Data);
        assert_eq!(r.fire("/a", NodeDataChanged), vec![A]);
        assert_eq!(r.fire("/a", NodeDataChanged), vec![]);
        assert_eq!(r.summary().watches, 0);
    }

    #[test]
    fn child_watches_see_children_changes_and_deletes_not_data() {
        let mut r = WatchRegistry::new();
        r.add_standard(A, "/p", WatchSet::Child);
        assert_eq!(r.fire("/p", NodeDataChanged), vec![]);
        assert_eq!(r.fire("/p", NodeChildrenChanged), vec![A]);
        r.add_standard(A, "/p", WatchSet::Child);
        assert_eq!(r.fire("/p", NodeDeleted), vec![A]);
    }

    #[test]
    fn a_delete_notifies_a_session_with_both_watches_once() {
        let mut r = WatchRegistry::new();
        r.add_standard(A, "/a", WatchSet::Data);
        r.add_standard(A, "/a", WatchSet::Child);
        r.add_standard(B, "/a", WatchSet::Child);
        let mut fired = r.fire("/a", NodeDeleted);
        fired.sort();
        assert_eq!(fired, vec![A, B]);
        assert_eq!(r.summary().watches, 0);
    }

    #[test]
    fn persistent_watches_stay_and_see_children_changes() {
        let mut r = WatchRegistry::new();
        r.add_persistent(A, "/p", false);
        for _ in 0..3 {
            assert_eq!(r.fire("/p", NodeDataChanged), vec![A]);
            assert_eq!(r.fire("/p", NodeChildrenChanged), vec![A]);
        }
        // Not recursive: a grandchild's change is not seen.
        assert_eq!(r.fire("/p/c", NodeCreated), vec![]);
    }

    #[test]
    fn recursive_watches_see_the_subtree_but_never_children_changed() {
        let mut r = WatchRegistry::new();
        r.add_persistent(A, "/p", true);
        assert_eq!(r.fire("/p/c/d", NodeCreated), vec![A]);
        assert_eq!(r.fire("/p", NodeDataChanged), vec![A]);
        assert_eq!(r.fire("/p", NodeChildrenChanged), vec![]);
        assert_eq!(
            r.fire("/pq", NodeCreated),
            vec![],
            "a sibling with a common prefix"
        );
        r.add_persistent(B, "/", true);
        assert_eq!(r.fire("/x", NodeDeleted), vec![B]);
    }

    #[test]
    fn a_standard_watch_beside_a_persistent_one_is_consumed_alone() {
        let mut r = WatchRegistry::new();
        r.add_persistent(A, "/a", false);
        r.add_standard(A, "/a", WatchSet::Data);
        assert!(r.contains(A, "/a", WatcherType::Data));
        assert_eq!(r.fire("/a", NodeDataChanged), vec![A]);
        assert!(!r.contains(A, "/a", WatcherType::Data));
        assert!(r.contains(A, "/a", WatcherType::Persistent));
    }

    #[test]
    fn remove_and_contains_follow_watcher_types() {
        let mut r = WatchRegistry::new();
        r.add_standard(A, "/a", WatchSet::Data);
        r.add_persistent(A, "/r", true);
        assert!(!r.contains(A, "/a", WatcherType::Children));
        assert!(!r.remove(A, "/a", WatcherType::Children));
        assert!(r.remove(A, "/a", WatcherType::Any));
        assert!(r.contains(A, "/r", WatcherType::PersistentRecursive));
        assert!(r.remove(A, "/r", WatcherType::PersistentRecursive));
        assert_eq!(r.fire("/r/x", NodeCreated), vec![]);
        assert_eq!(r.summary(), WatchSummary::default());
    }

    #[test]
    fn closing_a_session_drops_its_watches_only() {
        let mut r = WatchRegistry::new();
        r.add_standard(A, "/a", WatchSet::Data);
        r.add_persistent(A, "/", true);
        r.add_standard(B, "/a", WatchSet::Data);
        r.remove_session(A);
        assert_eq!(r.fire("/a", NodeDataChanged), vec![B]);
        assert_eq!(r.session_watch_count(A), 0);
    }

    #[test]
    fn ancestors_walk_to_the_root() {
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors("/").count(), 0);
    }
}
