//! `fleetsweep completions SHELL` and `fleetsweep man`: generated from the
//! same clap model the binary parses with, so they never drift from the flags.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use fleetsweep::cli::Cli;

use super::EXIT_CLEAN;

/// Prints the completion script for `shell`.
pub fn completions(shell: Shell) -> Result<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "fleetsweep", &mut out);
    write_stdout(&out)?;
    Ok(EXIT_CLEAN)
}

/// Prints fleetsweep(1), or writes it and one page per subcommand
/// (`fleetsweep-scan.1`, ...) into `dir`.
pub fn man(dir: Option<&Path>) -> Result<u8> {
    // No `help` subcommand page: `--help` and these pages cover it.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            write_pages(&cmd, dir)?;
        }
        None => {
            write_stdout(page(&cmd)?.as_bytes())?;
        }
    }
    Ok(EXIT_CLEAN)
}

/// `cmd`'s page and, recursively, its subcommands' (`fleetsweep-catalog-check.1`).
/// `cmd` is built: each subcommand's display name is its full name.
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page(cmd)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    Ok(())
}

/// The roff page, ASCII only: characters beyond it (the em dash of the
/// description) become `\[uXXXX]` escapes, so groff renders the page without
/// warnings even when it is not told the input is UTF-8 (no preconv).
fn page(cmd: &clap::Command) -> Result<String> {
    let mut raw = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut raw)?;
    let text = String::from_utf8(raw).context("the man page is not UTF-8")?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    Ok(out)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")
}
