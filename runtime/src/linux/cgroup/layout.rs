//! Which cgroup layout this host has, read from a mount table and a proc cgroup file.
//!
//! Rules (never assumed, always read):
//! - Only mounts whose mount point is under the cgroup root (normally /sys/fs/cgroup) count;
//!   the first mount of a hierarchy wins (later ones are bind mounts of it).
//! - **V1**: at least one `cgroup` (v1) mount holding a real controller, no `cgroup2` mount.
//! - **Hybrid**: v1 hierarchies with real controllers *and* a `cgroup2` mount. Treated as v1:
//!   the container gets a directory in every v1 hierarchy; the unified hierarchy is not
//!   joined. rwasm writes no controller that lives only on the unified mount (on this
//!   project's hosts that is `hugetlb`: a container with `hugepageLimits` is refused there,
//!   naming the field, until hugetlb is bound to a v1 hierarchy), and there is no systemd
//!   that would track processes through it. runc behaves the same for limits; crun refuses
//!   this layout.
//! - **V2**: a `cgroup2` mount and no v1 hierarchy with a real controller (a lone
//!   `name=systemd` v1 hierarchy, as systemd's "unified" mode keeps, is ignored).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::CgroupError;
use super::fs;

/// One v1 hierarchy: a `cgroup` mount and the controllers bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Controllers of this mount, e.g. `["cpu", "cpuacct"]` or `["name=systemd"]`.
    pub controllers: Vec<String>,
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows at its mount point (mountinfo's root
    /// field: `/` normally, a sub-cgroup inside a container without a cgroup namespace).
    pub mount_root: PathBuf,
}

/// The cgroup2 (unified) mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unified {
    /// Where it is mounted, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified.
    pub mount_point: PathBuf,
    /// mountinfo's root field, as for v1.
    pub mount_root: PathBuf,
    /// The controllers in the mount's root `cgroup.controllers` (those not bound to v1).
    pub controllers: Vec<String>,
}

/// The cgroup layout of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1 {
        /// The hierarchies, in mount table order.
        hierarchies: Vec<V1Hierarchy>,
    },
    /// v1 hierarchies and a cgroup2 mount; managed as v1 (see the module docs).
    Hybrid {
        /// The hierarchies, in mount table order.
        hierarchies: Vec<V1Hierarchy>,
        /// The unified mount, not joined by containers.
        unified: Unified,
    },
    /// Only the unified hierarchy.
    V2 {
        /// The unified mount.
        unified: Unified,
    },
}

/// One mountinfo line, the fields we need.
#[derive(Debug)]
struct MountEntry {
    root: PathBuf,
    mount_point: PathBuf,
    fstype: String,
    super_options: String,
}

/// Mount options of a v1 cgroup mount that are not controllers.
const NON_CONTROLLER_OPTIONS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "all",
    "none",
];

impl Layout {
    /// Reads the mount table at `mountinfo` (format of proc(5) /proc/PID/mountinfo) and
    /// classifies the cgroup mounts under `root`. For a cgroup2 mount, its
    /// `cgroup.controllers` is read as well.
    pub fn detect(root: &Path, mountinfo: &Path) -> Result<Layout, CgroupError> {
        let text = fs::read(mountinfo)?;
        let mut hierarchies: Vec<V1Hierarchy> = Vec::new();
        let mut unified: Option<Unified> = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let entry = parse_mountinfo_line(line).ok_or_else(|| CgroupError::Parse {
                path: mountinfo.to_path_buf(),
                content: line.to_owned(),
                reason: "not a mountinfo line (ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS)",
            })?;
            if !entry.mount_point.starts_with(root) {
                continue;
            }
            match entry.fstype.as_str() {
                "cgroup" => {
                    let controllers: Vec<String> = entry
                        .super_options
                        .split(',')
                        .filter(|o| !o.is_empty())
                        .filter(|o| !NON_CONTROLLER_OPTIONS.contains(o))
                        .filter(|o| !o.starts_with("release_agent="))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    let set: BTreeSet<&String> = controllers.iter().collect();
                    if hierarchies
                        .iter()
                        .any(|h| h.controllers.iter().collect::<BTreeSet<_>>() == set)
                    {
                        continue; // a bind mount of a hierarchy we already have
                    }
                    hierarchies.push(V1Hierarchy {
                        controllers,
                        mount_point: entry.mount_point,
                        mount_root: entry.root,
                    });
                }
                "cgroup2" if unified.is_none() => {
                    let file = entry.mount_point.join("cgroup.controllers");
                    let controllers = fs::read(&file)?
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect();
                    unified = Some(Unified {
                        mount_point: entry.mount_point,
                        mount_root: entry.root,
                        controllers,
                    });
                }
                _ => {}
            }
        }
        let has_real_v1 = hierarchies
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        let layout = match (has_real_v1, unified) {
            (true, None) => Layout::V1 { hierarchies },
            (true, Some(unified)) => Layout::Hybrid {
                hierarchies,
                unified,
            },
            (false, Some(unified)) => Layout::V2 { unified },
            (false, None) => {
                return Err(CgroupError::NoCgroupMounts {
                    root: root.to_path_buf(),
                    mountinfo: mountinfo.to_path_buf(),
                });
            }
        };
        tracing::debug!(?layout, mountinfo = %mountinfo.display(), "cgroup layout detected");
        Ok(layout)
    }
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    let post: Vec<&str> = post.split(' ').collect();
    if pre.len() < 6 || post.len() < 3 {
        return None;
    }
    Some(MountEntry {
        root: PathBuf::from(unescape(pre[3])),
        mount_point: PathBuf::from(unescape(pre[4])),
        fstype: post[0].to_owned(),
        super_options: post[2].to_owned(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                u8::try_from(v).ok()
            });
        if let Some(v) = octal {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of /proc/PID/cgroup: `ID:CONTROLLERS:PATH` (v2: `0::PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    /// Controllers of the hierarchy (empty for the unified one).
    pub controllers: Vec<String>,
    /// The process's cgroup in that hierarchy, absolute from the hierarchy's root.
    pub path: PathBuf,
}

/// Parses a proc cgroup file (cgroups(7)).
pub(crate) fn read_proc_cgroup(file: &Path) -> Result<Vec<ProcCgroup>, CgroupError> {
    let text = fs::read(file)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(CgroupError::Parse {
                    path: file.to_path_buf(),
                    content: line.to_owned(),
                    reason: "expected ID:CONTROLLERS:PATH",
                });
            };
            Ok(ProcCgroup {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// The directory of cgroup `cgroup` (absolute in its hierarchy) under a mount that shows the
/// hierarchy's `mount_root` at `mount_point`.
pub(crate) fn dir_of(mount_point: &Path, mount_root: &Path, cgroup: &Path) -> PathBuf {
    let rel = cgroup.strip_prefix(mount_root).unwrap_or(cgroup);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    mount_point.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / ROOT rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / ROOT/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / ROOT/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / ROOT/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / ROOT/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / ROOT/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / ROOT/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    fn tree(mountinfo: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cg");
        let text = mountinfo.replace("ROOT", root.to_str().unwrap());
        for line in text.lines() {
            let Some(e) = parse_mountinfo_line(line) else {
                continue;
            };
            if e.mount_point.starts_with(&root) {
                std::fs::create_dir_all(&e.mount_point).unwrap();
                if e.fstype == "cgroup2" {
                    std::fs::write(e.mount_point.join("cgroup.controllers"), "hugetlb\n").unwrap();
                }
            }
        }
        let mi = tmp.path().join("mountinfo");
        std::fs::write(&mi, text).unwrap();
        (tmp, root, mi)
    }

    #[test]
    fn hybrid_host_is_detected_with_every_hierarchy() {
        let (_tmp, root, mi) = tree(HOST_MOUNTINFO);
        let Layout::Hybrid {
            hierarchies,
            unified,
        } = Layout::detect(&root, &mi).unwrap()
        else {
            panic!("expected hybrid");
        };
        let names: Vec<String> = hierarchies
            .iter()
            .map(|h| h.controllers.join(","))
            .collect();
        assert_eq!(
            names,
            ["cpu", "cpuacct", "cpuset", "memory", "name=systemd"]
        );
        assert_eq!(hierarchies[0].mount_point, root.join("cpu"));
        assert_eq!(unified.mount_point, root.join("unified"));
        assert_eq!(unified.controllers, ["hugetlb"]);
    }

    #[test]
    fn comounted_v1_and_bind_mounts() {
        let mi = "\
32 31 0:29 / ROOT/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 31 0:29 / ROOT/cpuacct,cpu rw - cgroup cgroup rw,cpuacct,cpu
34 31 0:30 /docker/abc ROOT/pids rw - cgroup cgroup rw,pids
35 31 0:31 / /elsewhere/pids rw - cgroup cgroup rw,pids
";
        let (_tmp, root, mi) = tree(mi);
        let Layout::V1 { hierarchies } = Layout::detect(&root, &mi).unwrap() else {
            panic!("expected v1");
        };
        assert_eq!(hierarchies.len(), 2);
        assert_eq!(hierarchies[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(hierarchies[0].mount_point, root.join("cpu,cpuacct"));
        assert_eq!(hierarchies[1].mount_root, Path::new("/docker/abc"));
    }

    #[test]
    fn v2_only_and_named_only_v1_is_v2() {
        let mi = "\
30 1 0:26 / ROOT rw - cgroup2 cgroup2 rw,nsdelegate
31 1 0:27 / ROOT/systemd rw - cgroup cgroup rw,name=systemd
";
        let (_tmp, root, mi) = tree(mi);
        assert!(matches!(
            Layout::detect(&root, &mi).unwrap(),
            Layout::V2 { .. }
        ));
    }

    #[test]
    fn no_cgroup_mount_is_an_error_naming_the_files() {
        let (_tmp, root, mi) = tree("27 1 254:0 / / rw - ext4 /dev/vda rw\n");
        let err = Layout::detect(&root, &mi).unwrap_err();
        assert!(matches!(err, CgroupError::NoCgroupMounts { .. }));
        assert!(err.to_string().contains("mountinfo"), "{err}");
    }

    #[test]
    fn garbage_mountinfo_names_the_file() {
        let (_tmp, root, mi) = tree("what is this\n");
        let err = Layout::detect(&root, &mi).unwrap_err();
        assert!(matches!(err, CgroupError::Parse { .. }), "{err}");
        assert!(err.to_string().contains(mi.to_str().unwrap()));
    }

    #[test]
    fn missing_mountinfo_names_the_file() {
        let err = Layout::detect(
            Path::new("/sys/fs/cgroup"),
            Path::new("/nonexistent/mountinfo"),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "failed to read /nonexistent/mountinfo");
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape(r"/plain\"), r"/plain\");
    }

    #[test]
    fn proc_cgroup_lines_and_dir_of() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("cgroup");
        std::fs::write(
            &f,
            "4:memory:/process_api/6d9b\n2:cpu,cpuacct:/\n1:name=systemd:/\n0::/\n",
        )
        .unwrap();
        let lines = read_proc_cgroup(&f).unwrap();
        assert_eq!(lines[0].controllers, ["memory"]);
        assert_eq!(lines[0].path, Path::new("/process_api/6d9b"));
        assert_eq!(lines[1].controllers, ["cpu", "cpuacct"]);
        assert!(lines[3].controllers.is_empty());
        assert_eq!(
            dir_of(Path::new("/m"), Path::new("/"), Path::new("/a/b")),
            Path::new("/m/a/b")
        );
        assert_eq!(
            dir_of(
                Path::new("/m"),
                Path::new("/docker/x"),
                Path::new("/docker/x/a")
            ),
            Path::new("/m/a")
        );
    }
}
