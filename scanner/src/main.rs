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
    match runtime.block_on(app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fleetsweep: error: {e:#}");
            ExitCode::from(app::EXIT_CONFIG)
        }
    }
}
