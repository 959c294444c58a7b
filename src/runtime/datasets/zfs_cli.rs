//! The `zfs-cli` datasets driver: every operation through zfs(8) with
//! argument vectors. Works on FreeBSD, OpenZFS on Linux and zfs-fuse; only
//! options all three share are used (zfs-fuse's `zfs list` has no `-p`, so
//! sizes come from `zfs get -Hp`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{io_err, DatasetError, DatasetInfo, Datasets, SnapshotInfo, SEALED};
use crate::names::{DatasetName, Name};
use crate::runtime::tool::{self, ToolError};
use crate::runtime::undo::Undo;

pub(super) const ZFS: &str = "zfs";

pub struct ZfsCliDatasets {
    root: String,
    mountpoint: PathBuf,
}

impl ZfsCliDatasets {
    pub fn new(root: &str, mountpoint: &Path) -> ZfsCliDatasets {
        ZfsCliDatasets {
            root: root.to_string(),
            mountpoint: mountpoint.to_path_buf(),
        }
    }

    pub(super) fn full(&self, name: &DatasetName) -> String {
        format!("{}/{}", self.root, name)
    }

    fn pool(&self) -> &str {
        self.root.split('/').next().unwrap_or(&self.root)
    }

    /// Whether zfs(8) answers and the pool of the root dataset exists.
    pub fn pool_available(&self) -> bool {
        tool::exists(ZFS) && tool::run(ZFS, &["list", "-H", "-o", "name", self.pool()]).is_ok()
    }

    fn exists_full(&self, full: &str) -> Result<bool, DatasetError> {
        match tool::run(ZFS, &["list", "-H", "-o", "name", full]) {
            Ok(_) => Ok(true),
            Err(e) if e.stderr().contains("does not exist") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Turns zfs(8)'s complaints into the errors callers act on.
pub(super) fn classify(e: ToolError, name: &str) -> DatasetError {
    let msg = e.stderr();
    if msg.contains("does not exist") {
        DatasetError::NotFound(name.to_string())
    } else if msg.contains("already exists") {
        DatasetError::Exists(name.to_string())
    } else if msg.contains("dependent clones") || msg.contains("has children") {
        DatasetError::InUse(name.to_string())
    } else if msg.contains("out of space") || msg.contains("No space left") {
        DatasetError::NoSpace(name.to_string())
    } else {
        DatasetError::Tool(e)
    }
}

impl Datasets for ZfsCliDatasets {
    fn seals_read_only(&self) -> bool {
        true
    }

    fn driver(&self) -> &'static str {
        "zfs-cli"
    }

    fn init(&self) -> Result<(), DatasetError> {
        if !self.exists_full(&self.root)? {
            let mp = format!("mountpoint={}", self.mountpoint.display());
            tool::run(ZFS, &["create", "-p", "-o", &mp, &self.root])
                .map_err(|e| classify(e, &self.root))?;
        }
        for child in ["bases", "pods"] {
            let full = format!("{}/{}", self.root, child);
            if !self.exists_full(&full)? {
                tool::run(ZFS, &["create", &full]).map_err(|e| classify(e, &full))?;
            }
        }
        Ok(())
    }

    fn path(&self, name: &DatasetName) -> PathBuf {
        self.mountpoint.join(name.as_str())
    }

    fn exists(&self, name: &DatasetName) -> Result<bool, DatasetError> {
        self.exists_full(&self.full(name))
    }

    fn create(&self, name: &DatasetName) -> Result<PathBuf, DatasetError> {
        let full = self.full(name);
        tool::run(ZFS, &["create", &full]).map_err(|e| classify(e, &full))?;
        Ok(self.path(name))
    }

    fn seal(&self, name: &DatasetName) -> Result<(), DatasetError> {
        let full = self.full(name);
        let snap = format!("{full}@{SEALED}");
        tool::run(ZFS, &["snapshot", &snap]).map_err(|e| classify(e, &snap))?;
        // A snapshot without read-only is not a seal.
        let mut undo = Undo::new();
        undo.push_with(format!("snapshot {snap}"), || {
            tool::run(ZFS, &["destroy", &snap]).map(drop)
        });
        undo.check(tool::run(ZFS, &["set", "readonly=on", &full]).map_err(|e| classify(e, &full)))?;
        undo.commit();
        Ok(())
    }

    fn clone_sealed(
        &self,
        origin: &DatasetName,
        name: &DatasetName,
    ) -> Result<PathBuf, DatasetError> {
        let snap = format!("{}@{SEALED}", self.full(origin));
        let full = self.full(name);
        tool::run(ZFS, &["clone", &snap, &full]).map_err(|e| match classify(e, &full) {
            DatasetError::NotFound(_) => DatasetError::NotSealed(origin.to_string()),
            other => other,
        })?;
        Ok(self.path(name))
    }

    fn destroy(&self, name: &DatasetName) -> Result<(), DatasetError> {
        let full = self.full(name);
        // zfs-fuse reports a dataset busy for a moment after a clone or an
        // unmount; OpenZFS when a process still has a file open. Unmount and
        // retry for a bounded time before giving up.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(5);
        loop {
            match tool::run(ZFS, &["destroy", "-r", &full]) {
                Ok(_) => return Ok(()),
                Err(e) if e.stderr().contains("busy") && Instant::now() < deadline => {
                    // Best effort, one try of a retry loop: if the unmount
                    // fails, the next destroy fails too and says why.
                    let _ = tool::run(ZFS, &["unmount", "-f", &full]);
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) => {
                    return Err(match classify(e, &full) {
                        DatasetError::Tool(t) if t.stderr().contains("busy") => {
                            DatasetError::InUse(full)
                        }
                        other => other,
                    })
                }
            }
        }
    }

    fn list(&self) -> Result<Vec<DatasetInfo>, DatasetError> {
        let out = tool::run(
            ZFS,
            &[
                "get",
                "-Hp",
                "-r",
                "-o",
                "name,property,value",
                "type,used,referenced,mountpoint",
                &self.root,
            ],
        )?;
        let mut all = parse_get(&out)?;
        let sealed: Vec<String> = all
            .iter()
            .filter_map(|d| {
                d.name
                    .strip_suffix(&format!("@{SEALED}"))
                    .map(str::to_string)
            })
            .collect();
        let prefix = format!("{}/", self.root);
        // Bases and pods only: not snapshots, nor the root and its two
        // container datasets.
        all.retain(|d| {
            d.name
                .strip_prefix(&prefix)
                .is_some_and(|rel| !rel.contains('@') && rel.split('/').count() == 2)
        });
        for d in &mut all {
            d.sealed = sealed.contains(&d.name);
            if let Some(rel) = d.name.strip_prefix(&prefix) {
                d.name = rel.to_string();
            }
        }
        Ok(all)
    }

    fn usage(&self, name: &DatasetName) -> Result<u64, DatasetError> {
        let full = self.full(name);
        let out = tool::run(ZFS, &["get", "-Hp", "-o", "value", "used", &full])
            .map_err(|e| classify(e, &full))?;
        parse_size(out.trim()).ok_or(DatasetError::Parse {
            tool: "zfs get",
            line: out,
        })
    }

    fn has_quotas(&self) -> bool {
        true
    }

    fn set_quota(&self, name: &DatasetName, bytes: u64) -> Result<(), DatasetError> {
        let full = self.full(name);
        tool::run(ZFS, &["set", &format!("quota={bytes}"), &full])
            .map(drop)
            .map_err(|e| classify(e, &full))
    }

    fn send(&self, name: &DatasetName, out: &mut dyn Write) -> Result<(), DatasetError> {
        let snap = format!("{}@{SEALED}", self.full(name));
        let mut child = spawn_zfs(&["send", &snap], Stdio::null(), Stdio::piped())?;
        let copied = child.stdout.take().map(|mut s| std::io::copy(&mut s, out));
        finish(child, &format!("zfs send {snap}"), &snap)?;
        copied
            .transpose()
            .map_err(io_err(format!("sending {snap}")))?;
        Ok(())
    }

    fn receive(&self, name: &DatasetName, input: &mut dyn Read) -> Result<PathBuf, DatasetError> {
        let full = self.full(name);
        if self.exists_full(&full)? {
            return Err(DatasetError::Exists(full));
        }
        let snap = format!("{full}@{SEALED}");
        let mut child = spawn_zfs(&["receive", &snap], Stdio::piped(), Stdio::null())?;
        // A half-received dataset must not stay behind.
        let mut undo = Undo::new();
        undo.push_with(format!("dataset {full}"), || {
            if self.exists_full(&full)? {
                self.destroy(name)?;
            }
            Ok::<(), DatasetError>(())
        });
        let copied = child.stdin.take().map(|mut s| std::io::copy(input, &mut s));
        let result = finish(child, &format!("zfs receive {snap}"), &full)
            .and_then(|_| {
                copied
                    .transpose()
                    .map_err(io_err(format!("receiving {full}")))
            })
            .and_then(|_| {
                tool::run(ZFS, &["set", "readonly=on", &full]).map_err(|e| classify(e, &full))?;
                Ok(())
            });
        undo.check(result)?;
        undo.commit();
        Ok(self.path(name))
    }

    fn stream_kind(&self) -> &'static str {
        "zfs"
    }

    fn snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let full = self.full(name);
        let at = format!("{full}@{snap}");
        tool::run(ZFS, &["snapshot", &at]).map_err(|e| match classify(e, &full) {
            DatasetError::Exists(_) => {
                DatasetError::SnapshotExists(name.to_string(), snap.to_string())
            }
            other => other,
        })?;
        Ok(())
    }

    fn rollback(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let at = format!("{}@{snap}", self.full(name));
        // -r: ZFS rolls back only to the newest snapshot unless the later
        // ones go; their clones (pods) still stop it, with InUse.
        tool::run(ZFS, &["rollback", "-r", &at]).map_err(|e| self.snapshot_error(e, name, snap))?;
        Ok(())
    }

    fn snapshots(&self, name: &DatasetName) -> Result<Vec<SnapshotInfo>, DatasetError> {
        let full = self.full(name);
        let out = tool::run(
            ZFS,
            &["get", "-Hp", "-r", "-o", "name,value", "creation", &full],
        )
        .map_err(|e| classify(e, &full))?;
        let prefix = format!("{full}@");
        let mut snaps = Vec::new();
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || DatasetError::Parse {
                tool: "zfs get",
                line: line.to_string(),
            };
            let (at, value) = line.split_once('\t').ok_or_else(bad)?;
            let Some(snap) = at.strip_prefix(&prefix) else {
                continue; // the dataset itself
            };
            if snap == SEALED {
                continue;
            }
            snaps.push(SnapshotInfo {
                name: snap.to_string(),
                created: value.trim().parse().map_err(|_| bad())?,
            });
        }
        snaps.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(snaps)
    }

    fn destroy_snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let at = format!("{}@{snap}", self.full(name));
        tool::run(ZFS, &["destroy", &at]).map_err(|e| self.snapshot_error(e, name, snap))?;
        Ok(())
    }

    fn clone_snapshot(
        &self,
        origin: &DatasetName,
        snap: &Name,
        target: &DatasetName,
    ) -> Result<PathBuf, DatasetError> {
        let at = format!("{}@{snap}", self.full(origin));
        let full = self.full(target);
        if !self.exists_full(&at)? {
            return Err(DatasetError::NoSnapshot(
                origin.to_string(),
                snap.to_string(),
            ));
        }
        tool::run(ZFS, &["clone", &at, &full]).map_err(|e| classify(e, &full))?;
        Ok(self.path(target))
    }
}

impl ZfsCliDatasets {
    /// zfs(8)'s complaint about `name@snap`, in the snapshot's words.
    fn snapshot_error(&self, e: ToolError, name: &DatasetName, snap: &Name) -> DatasetError {
        let later_clones = e.stderr().contains("clones of previous snapshots");
        match classify(e, &format!("{}@{snap}", self.full(name))) {
            _ if later_clones => DatasetError::LaterClones(name.to_string(), snap.to_string()),
            DatasetError::NotFound(_) => {
                DatasetError::NoSnapshot(name.to_string(), snap.to_string())
            }
            other => other,
        }
    }
}

/// zfs(8) with one end of a stream piped; stderr is kept for the error.
fn spawn_zfs(
    args: &[&str],
    stdin: Stdio,
    stdout: Stdio,
) -> Result<std::process::Child, DatasetError> {
    Command::new(ZFS)
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| {
            DatasetError::Tool(ToolError::Spawn {
                program: ZFS.into(),
                source,
            })
        })
}

fn finish(child: std::process::Child, command: &str, name: &str) -> Result<(), DatasetError> {
    let out = child
        .wait_with_output()
        .map_err(io_err(command.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(classify(
        ToolError::Failed {
            command: command.to_string(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        },
        name,
    ))
}

/// Parses a size as zfs prints it: exact bytes (`-p`), `-`, or human
/// readable (`112K`, `1.50M`) as zfs-fuse's `zfs list` prints it.
pub fn parse_size(s: &str) -> Option<u64> {
    if s == "-" || s == "none" {
        return Some(0);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let shift = match unit {
        "B" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        _ => return None,
    };
    let value: f64 = num.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some((value * (1u64 << shift) as f64).round() as u64)
}

/// Parses `zfs get -Hp -o name,property,value type,used,referenced,mountpoint`
/// into one entry per dataset (snapshots included, named `fs@snap`).
pub fn parse_get(out: &str) -> Result<Vec<DatasetInfo>, DatasetError> {
    let mut all: Vec<DatasetInfo> = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || DatasetError::Parse {
            tool: "zfs get",
            line: line.to_string(),
        };
        let mut cols = line.split('\t');
        let (Some(name), Some(prop), Some(value)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(bad());
        };
        let entry = match all.iter_mut().rev().find(|d| d.name == name) {
            Some(e) => e,
            None => {
                all.push(DatasetInfo {
                    name: name.to_string(),
                    used: 0,
                    referenced: 0,
                    mountpoint: PathBuf::new(),
                    sealed: false,
                });
                all.last_mut().ok_or_else(bad)?
            }
        };
        match prop {
            "used" => entry.used = parse_size(value).ok_or_else(bad)?,
            "referenced" => entry.referenced = parse_size(value).ok_or_else(bad)?,
            "mountpoint" if value != "-" => entry.mountpoint = PathBuf::from(value),
            _ => {}
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_exact_and_human() {
        assert_eq!(parse_size("589824"), Some(589824));
        assert_eq!(parse_size("-"), Some(0));
        assert_eq!(parse_size("112K"), Some(112 * 1024));
        assert_eq!(parse_size("1.50M"), Some(1_572_864));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("-1K"), None);
    }

    // What zfs-fuse 0.7 printed on this machine for `zfs get -Hp -r -o
    // name,property,value type,used,referenced,mountpoint jtest`.
    const ZFS_FUSE_GET: &str = "jtest\ttype\tfilesystem\njtest\tused\t909312\njtest\treferenced\t139264\njtest\tmountpoint\t/jtest\n\
jtest/a\ttype\tfilesystem\njtest/a\tused\t114688\njtest/a\treferenced\t114688\njtest/a\tmountpoint\t/jtest/a\n\
jtest/a@sealed\ttype\tsnapshot\njtest/a@sealed\tused\t0\njtest/a@sealed\treferenced\t114688\njtest/a@sealed\tmountpoint\t-\n";

    // OpenZFS 2.2 on FreeBSD 14 prints the same columns with -o.
    const OPENZFS_GET: &str = "zroot/jetpack\ttype\tfilesystem\nzroot/jetpack\tused\t1234567890\nzroot/jetpack\treferenced\t98304\nzroot/jetpack\tmountpoint\t/var/jetpack\n\
zroot/jetpack/pods/0b7e\ttype\tfilesystem\nzroot/jetpack/pods/0b7e\tused\t8192\nzroot/jetpack/pods/0b7e\treferenced\t1210000\nzroot/jetpack/pods/0b7e\tmountpoint\t/var/jetpack/pods/0b7e\n";

    #[test]
    fn get_output_of_both_implementations() {
        let v = parse_get(ZFS_FUSE_GET).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].name, "jtest/a");
        assert_eq!((v[1].used, v[1].referenced), (114688, 114688));
        assert_eq!(v[1].mountpoint, PathBuf::from("/jtest/a"));
        assert_eq!(v[2].mountpoint, PathBuf::new());
        let v = parse_get(OPENZFS_GET).unwrap();
        assert_eq!(v[0].used, 1234567890);
        assert_eq!(v[1].name, "zroot/jetpack/pods/0b7e");
        assert!(parse_get("only\tthree").is_err());
        assert!(parse_get("a\tused\tlots").is_err());
    }
}
