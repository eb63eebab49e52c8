//! Stamps the git revision into the build: `fleetsweep --version` and the
//! `revision` label of `fleetsweep_build_info` read `FLEETSWEEP_REVISION`.
//!
//! Order: `git rev-parse` of the checkout; else the `FLEETSWEEP_REVISION`
//! environment variable (a source tarball built by a packager who knows the
//! commit); else `unknown`. Cargo reruns this only when HEAD or the branch it
//! points at moves (or the variable changes), not on every edit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FLEETSWEEP_REVISION");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let revision = match git(&dir, &["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            for path in watched(&dir) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            rev
        }
        None => std::env::var("FLEETSWEEP_REVISION")
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic()))
            .unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=FLEETSWEEP_REVISION={revision}");
}

/// Runs git in `dir`; its trimmed stdout when it succeeds with some output.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The files whose change moves HEAD's commit: HEAD itself, the branch it
/// points at and packed-refs (a worktree's HEAD and the shared refs live in
/// different directories; `--git-path` knows which). Only existing files:
/// cargo reruns a build script every time for a watched file that is missing.
fn watched(dir: &Path) -> Vec<PathBuf> {
    let mut refs = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        refs.push(branch);
    }
    refs.iter()
        .filter_map(|r| {
            git(
                dir,
                &["rev-parse", "--path-format=absolute", "--git-path", r],
            )
        })
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect()
}
