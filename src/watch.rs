//! `[frontend] reload_on_change`: notice that the configuration file changed, without
//! inotify (a scratch container has no extra tools, and inotify misses a ConfigMap
//! update made by swapping a symlink two levels up).
//!
//! Kubernetes mounts a ConfigMap as `sluice.ini -> ..data/sluice.ini` and
//! `..data -> ..2026_12_05_09_00_00.123`; an update writes a new timestamped directory
//! and renames a new `..data` link over the old one (atomic). A [`Stamp`] therefore
//! holds the fully resolved path (changes with the swap) and the metadata of the file
//! it resolves to (device, inode, size, modification and change times: an edit in
//! place). The reactor stats the file every [`INTERVAL`] on its own timer (IO stays in
//! the reactor); [`Watch`] decides, purely, whether what it saw is a change.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the file is stat'ed.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// What identifies one version of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Every symlink resolved.
    target: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Resolves `path` and stats what it points to (two syscalls' worth of IO: call it
/// from the reactor's timer, never per request).
pub fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let target = std::fs::canonicalize(path)?;
    let m = std::fs::metadata(&target)?;
    Ok(Stamp {
        target,
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// The last version seen and when to look again.
#[derive(Debug)]
pub struct Watch {
    last: Option<Stamp>,
    next: Instant,
}

impl Watch {
    /// Starts watching from `first` (the version running now; `None` when it could not
    /// be stat'ed), first check at `now + INTERVAL`.
    pub fn new(first: Option<Stamp>, now: Instant) -> Watch {
        Watch {
            last: first,
            next: now + INTERVAL,
        }
    }

    /// When the reactor should stat the file next.
    pub fn next_check(&self) -> Instant {
        self.next
    }

    /// The stat taken at `now` (`None`: the file is missing or unreadable). True when
    /// it is a version not seen before: reload it. A missing file is not a change
    /// (mid-swap, or an operator's mistake): the running configuration stays and the
    /// version that appears next is compared with the last one seen.
    pub fn observe(&mut self, seen: Option<Stamp>, now: Instant) -> bool {
        self.next = now + INTERVAL;
        match seen {
            Some(s) if self.last.as_ref() != Some(&s) => {
                self.last = Some(s);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(target: &str, ino: u64, mtime: i64) -> Stamp {
        Stamp {
            target: target.into(),
            dev: 1,
            ino,
            len: 10,
            mtime: (mtime, 0),
            ctime: (mtime, 0),
        }
    }

    #[test]
    fn a_new_version_is_reported_once_and_checks_repeat_every_interval() {
        let t = Instant::now();
        let mut w = Watch::new(Some(at("/c/..1/sluice.ini", 5, 100)), t);
        assert_eq!(w.next_check(), t + INTERVAL);
        assert!(!w.observe(Some(at("/c/..1/sluice.ini", 5, 100)), t + INTERVAL));
        assert_eq!(w.next_check(), t + 2 * INTERVAL);
        // The `..data` swap: another directory, another inode.
        assert!(w.observe(Some(at("/c/..2/sluice.ini", 6, 100)), t + 2 * INTERVAL));
        assert!(!w.observe(Some(at("/c/..2/sluice.ini", 6, 100)), t + 3 * INTERVAL));
        // An edit in place: same path and inode, new modification time.
        assert!(w.observe(Some(at("/c/..2/sluice.ini", 6, 101)), t + 4 * INTERVAL));
    }

    #[test]
    fn a_missing_file_is_not_a_change() {
        let t = Instant::now();
        let mut w = Watch::new(Some(at("/c/a", 5, 100)), t);
        assert!(!w.observe(None, t));
        assert!(!w.observe(Some(at("/c/a", 5, 100)), t), "back as it was");
        let mut w = Watch::new(None, t);
        assert!(w.observe(Some(at("/c/a", 5, 100)), t), "appeared");
    }

    #[test]
    fn stamps_follow_symlinks_the_way_kubelet_swaps_them() {
        let dir = std::env::temp_dir().join(format!("sluice-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("..v1")).unwrap();
        std::fs::write(dir.join("..v1/sluice.ini"), "one").unwrap();
        std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/sluice.ini", dir.join("sluice.ini")).unwrap();
        let path = dir.join("sluice.ini");
        let first = stamp(&path).unwrap();
        assert_eq!(stamp(&path).unwrap(), first);
        std::fs::create_dir_all(dir.join("..v2")).unwrap();
        std::fs::write(dir.join("..v2/sluice.ini"), "two").unwrap();
        std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        let second = stamp(&path).unwrap();
        assert_ne!(second, first);
        assert!(second.target.ends_with("..v2/sluice.ini"), "{second:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
