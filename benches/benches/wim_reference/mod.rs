//! The reference tree of `shared/reference/wim.md` §5, shared by the WIM benchmarks that
//! work on whole trees: copies of `/usr/share/doc`, `/usr/lib/python3*` and
//! `/usr/lib/git-core`, plus a second copy of the newest python tree as duplicates, cut
//! at `WIM_APPLY_BENCH_MIB` (default 300) MiB. It is built once, with `cp -a`, into
//! `$CARGO_TARGET_DIR/wim-apply-bench/tree` (delete that directory to rebuild it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `$CARGO_TARGET_DIR/wim-apply-bench` (or `target/` next to the workspace).
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wim-apply-bench")
}

/// Copies `from` into `to` with `cp -a` while the budget lasts (whole top-level entries).
fn copy_budget(from: &Path, to: &Path, budget: &mut u64) {
    if *budget == 0 || !from.exists() {
        return;
    }
    let size = du(from);
    if size > *budget {
        // Too big: copy entries one by one.
        let _ = std::fs::create_dir_all(to);
        let mut entries: Vec<_> = std::fs::read_dir(from)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            let name = e.file_name().unwrap_or_default();
            copy_budget(&e, &to.join(name), budget);
        }
        return;
    }
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        *budget = budget.saturating_sub(size);
    }
}

/// Bytes of regular files and symlinks under `p` (not following links).
pub fn du(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|r| r.flatten().map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

/// The tree, built on first use; `None` if it could not be made.
pub fn tree() -> Option<PathBuf> {
    let dir = bench_dir();
    let tree = dir.join("tree");
    if tree.exists() {
        return Some(tree);
    }
    let mib: u64 = std::env::var("WIM_APPLY_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut budget = mib << 20;
    let tmp = dir.join("tree.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).ok()?;
    copy_budget(Path::new("/usr/share/doc"), &tmp.join("doc"), &mut budget);
    let mut py: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
        })
        .collect();
    py.sort();
    for p in &py {
        copy_budget(p, &tmp.join(p.file_name()?), &mut budget);
    }
    copy_budget(
        Path::new("/usr/lib/git-core"),
        &tmp.join("git-core"),
        &mut budget,
    );
    if let Some(p) = py.last() {
        let _ = std::fs::create_dir_all(tmp.join("dup"));
        copy_budget(p, &tmp.join("dup").join(p.file_name()?), &mut budget);
    }
    std::fs::rename(&tmp, &tree).ok()?;
    Some(tree)
}
