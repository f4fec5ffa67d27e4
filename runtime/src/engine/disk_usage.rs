//! Bytes a directory tree holds, for `rwasm system df` and `ps --size`: what `du
//! --apparent-size` counts for regular files, each hard-linked inode once, without
//! following symlinks or crossing into other file systems.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Sum of the sizes (bytes) of the regular files under `dir`; 0 when `dir` is missing.
/// Unreadable subdirectories are skipped: this is an estimate for a report, not a check.
pub fn tree_bytes(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = top.dev();
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert(m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_once_and_not_symlinks() {
        let t = std::env::temp_dir().join(format!("rwasm-du-{}", std::process::id()));
        std::fs::create_dir_all(t.join("a/b")).unwrap();
        std::fs::write(t.join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::write(t.join("a/b/two"), vec![0u8; 234]).unwrap();
        std::fs::hard_link(t.join("a/one"), t.join("a/b/link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.join("a/sym")).unwrap();
        assert_eq!(tree_bytes(&t), 1234);
        assert_eq!(tree_bytes(&t.join("missing")), 0);
        std::fs::remove_dir_all(&t).unwrap();
    }
}
