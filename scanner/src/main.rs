//! The `fleetsweep` binary: parse, run, map the result to an exit code.
//! Everything else lives in the library; `app` is the only place using anyhow.

mod app;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `fleetsweep hosts | head` should end quietly, not panic on a closed pipe.
    // SAFETY: first thing in main, before any other thread exists; SIG_DFL
    // installs no handler, so no Rust code ever runs in signal context.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    limit_malloc_arenas();
    let cli = fleetsweep::cli::Cli::parse();
    app::init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetsweep: cannot start the async runtime: {e}");
            return ExitCode::from(app::EXIT_CONFIG);
        }
    };
    let result = runtime.block_on(app::run(cli));
    // Everything is written by now. A blocking task still running (a bundle
    // read whose host timed out, on a stalled file system) must not keep the
    // process from exiting: dropping the runtime would wait for it forever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fleetsweep: error: {e:#}");
            ExitCode::from(app::EXIT_CONFIG)
        }
    }
}

/// glibc gives threads that allocate at once arenas of their own (up to 8
/// per core), and memory freed in one arena is never reused by another: the
/// inventory parsed on the main thread, the host results built on the
/// runtime's workers and the state step on a blocking thread each kept their
/// own high-water mark. Two arenas bring the peak RSS of a 100,000-host sweep
/// from 347 to 318 MB at no measurable CPU cost (docs/performance.md).
///
/// And glibc serves a block of more than 128 KiB from a mapping of its own,
/// returned whole when freed, but raises that threshold to the size of each
/// such block freed (up to 32 MiB): after loading freed the parsed
/// inventory's lists (megabytes each), the host table, the report's host
/// list and the state step's lists came from the heap instead, and their
/// pages stayed resident after they were freed, under whatever came next. A
/// fixed threshold keeps large blocks in mappings of their own: 100,000
/// hosts peak at 70-72 MB rather than 80-83, at no measurable CPU cost.
/// `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the environment still
/// decide when set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in main, before any other thread
        // exists; mallopt only sets a tunable of the allocator.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above. 1 MiB: the SSH buffers and probe outputs of a
        // host in flight stay on the heap; a list of the whole fleet does not.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    }
}

/// Blocks from this size up get a mapping of their own ([`limit_malloc_arenas`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
