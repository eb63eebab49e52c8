//! Offline bundles (`probes::offline`): the reader of a host's directory of
//! saved outputs, through the same parsers as a live sweep.
//!
//! Input: one selector byte, then files as `%%FILE NAME\nCONTENT` pieces. The
//! selector's low bits pick the OS (linux, macos, windows); with its top bit
//! set, the rest is the bundle's `host.yaml` instead and `load_bundles` reads
//! it. NAME is one of the family's bundle files (its registered probe's
//! `bundle_files`), or a file
//! inside its `Info.plist`/`LaunchDaemons` directories; anything else is
//! skipped, so nothing is written outside the scratch directory.
#![no_main]
use fleetsweep::os::OsFamily;
use fleetsweep::probes::offline::{self, ReadLimit};
use fleetsweep::probes::registry::probe;
use fleetsweep_fuzz::{scratch, selector};
use libfuzzer_sys::fuzz_target;

const OSES: [OsFamily; 3] = OsFamily::ALL;
const DIRS: [&str; 2] = ["Info.plist", "LaunchDaemons"];

fn fresh_dir() -> std::path::PathBuf {
    let dir = scratch().join("bundle");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch bundle dir");
    dir
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = selector(data) else {
        return;
    };
    let dir = fresh_dir();

    if which & 0x80 != 0 {
        std::fs::write(dir.join(offline::HOST_FILE), rest).expect("host.yaml");
        if let Ok(bundles) = offline::load_bundles(&dir) {
            for b in &bundles {
                drop(offline::read_bundle(&b.dir, b.os, &ReadLimit::default()));
            }
        }
        return;
    }

    let os = OSES[usize::from(which) % OSES.len()];
    for (name, content) in split_files(rest) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        // A directory's name as a plain file is allowed too: the reader must cope.
        let known = probe(os).bundle_files.iter().any(|f| f.name == name);
        let in_dir = name.split_once('/').is_some_and(|(d, f)| {
            DIRS.contains(&d) && !f.is_empty() && !f.contains('/') && f != "." && f != ".."
        });
        // Write errors (a file where a directory is wanted) just leave it out.
        if known {
            let _ = std::fs::write(dir.join(name), content);
        } else if in_dir {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(path, content);
        }
    }
    drop(offline::read_bundle(&dir, os, &ReadLimit::default()));

    // The pure helpers the reader uses on every file.
    let text = offline::decode_text(rest);
    let _ = offline::nonce_of(&text);
});

/// `%%FILE NAME\nCONTENT%%FILE NAME\nCONTENT...` → (NAME, CONTENT) pairs.
fn split_files(data: &[u8]) -> Vec<(&[u8], &[u8])> {
    const SEP: &[u8] = b"%%FILE ";
    let mut starts: Vec<usize> = data
        .windows(SEP.len())
        .enumerate()
        .filter(|(_, w)| *w == SEP)
        .map(|(i, _)| i)
        .collect();
    starts.push(data.len());
    starts
        .windows(2)
        .filter_map(|w| {
            let piece = &data[w[0] + SEP.len()..w[1].max(w[0] + SEP.len())];
            let nl = piece.iter().position(|b| *b == b'\n')?;
            Some((&piece[..nl], &piece[nl + 1..]))
        })
        .collect()
}
