//! Turns validated command-line settings into work, and outcomes into exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::sync::watch;

use fleetsweep::catalog::{Catalog, Rule};
use fleetsweep::cli::{
    CatalogCommand, Cli, Command, HostsArgs, HostsFormat, InventoryArgs, LogFormat, ScanArgs,
};
use fleetsweep::inventory::limit::{Limit, Shard};
use fleetsweep::inventory::{self, Host, Inventory, LoadOptions};
use fleetsweep::sweep::{self, summary, Progress, SweepSettings};
use fleetsweep::transport::known_hosts::HostKeyPolicy;
use fleetsweep::transport::{Passphrase, SshSettings};

pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;
pub const EXIT_PARTIAL: u8 = 3;

const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const DEFAULT_HOST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

pub fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETSWEEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},russh=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Scan(ref args) => scan(&cli, args).await,
        Command::Hosts(ref args) => hosts(args),
        Command::Catalog(ref c) => catalog(c),
    }
}

/// Loads the inventory and applies --limit/--shard.
fn load_hosts(args: &InventoryArgs) -> Result<(Inventory, Option<Shard>)> {
    let mut inv = if args.local {
        Inventory::local()
    } else {
        let Some(path) = &args.inventory else {
            bail!("give an inventory with -i FILE, or --local to sweep this machine");
        };
        let ssh_config = (!args.no_ssh_config).then(|| inventory::expand_home(&args.ssh_config));
        Inventory::load(path, &LoadOptions { ssh_config })?
    };
    if let Some(l) = &args.limit {
        let limit = Limit::parse(l).map_err(anyhow::Error::msg)?;
        inv.hosts.retain(|h| limit.matches(h));
    }
    let shard = match &args.shard {
        Some(s) => {
            let shard = Shard::parse(s).map_err(anyhow::Error::msg)?;
            inv.hosts.retain(|h| shard.contains(&h.name));
            Some(shard)
        }
        None => None,
    };
    Ok((inv, shard))
}

fn duration(flag: &str, text: &str) -> Result<std::time::Duration> {
    inventory::parse_duration(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

async fn scan(cli: &Cli, args: &ScanArgs) -> Result<u8> {
    let (mut inv, shard) = load_hosts(&args.inventory)?;
    let connect_timeout = match &args.connect_timeout {
        Some(t) => Some(duration("connect-timeout", t)?),
        None => None,
    };
    let host_timeout = match &args.host_timeout {
        Some(t) => Some(duration("host-timeout", t)?),
        None => None,
    };
    // Flags given on the command line beat the inventory.
    for h in &mut inv.hosts {
        h.connect_timeout = connect_timeout.or(h.connect_timeout);
        h.host_timeout = host_timeout.or(h.host_timeout);
    }
    let catalog = Catalog::load(&args.catalog)?;
    if inv.hosts.is_empty() {
        bail!("no hosts to sweep (the inventory is empty, or --limit/--shard matched nothing)");
    }
    let known_hosts: Vec<PathBuf> = if !args.known_hosts.is_empty() {
        args.known_hosts.clone()
    } else if !inv.known_hosts_files.is_empty() {
        inv.known_hosts_files.clone()
    } else {
        vec![inventory::expand_home("~/.ssh/known_hosts")]
    };
    let host_keys = HostKeyPolicy::load(&known_hosts, args.accept_new_host_keys.clone())
        .context("cannot load known_hosts")?;
    let settings = SweepSettings {
        concurrency: args.concurrency.max(1),
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        host_timeout: DEFAULT_HOST_TIMEOUT,
        output_limit: args.max_output.max(1).saturating_mul(1024 * 1024),
        ssh: SshSettings {
            known_hosts,
            accept_new_host_keys: args.accept_new_host_keys.clone(),
            use_agent: !args.no_agent && std::env::var_os("SSH_AUTH_SOCK").is_some(),
            passphrase: match (&args.passphrase_env, &args.passphrase_file) {
                (Some(v), _) => Passphrase::Env(v.clone()),
                (None, Some(f)) => Passphrase::File(f.clone()),
                (None, None) => Passphrase::None,
            },
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        },
        sudo: args.sudo,
        shard: shard.map(|s| s.to_string()),
    };
    for path in args.report.iter().chain(args.metrics_file.iter()) {
        check_writable(path)?;
    }
    fleetsweep_exporters::metrics::check_labels(&args.metric_label)?;

    let show_bar =
        !cli.quiet && !args.no_progress && (args.progress || std::io::stderr().is_terminal());
    let bar = show_bar.then(|| Arc::new(summary::Bar::new(inv.hosts.len())));
    let progress: Arc<dyn Progress> = match &bar {
        Some(b) => b.clone(),
        None => Arc::new(sweep::Silent),
    };
    let (tx, rx) = watch::channel(None);
    tokio::spawn(forward_signals(tx));
    let report = sweep::run(
        inv.hosts,
        catalog,
        settings,
        Arc::new(host_keys),
        progress,
        rx,
    )
    .await;
    if let Some(b) = &bar {
        b.finish();
    }
    if let Some(path) = &args.report {
        let yaml = fleetsweep_exporters::yaml::to_yaml(&report)?;
        fleetsweep_exporters::file::write_atomic(path, yaml.as_bytes())
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    if let Some(path) = &args.metrics_file {
        let opts = fleetsweep_exporters::metrics::MetricsOptions {
            label_allowlist: args.metric_label.clone(),
            revision: option_env!("FLEETSWEEP_REVISION")
                .unwrap_or("unknown")
                .to_string(),
        };
        let text = fleetsweep_exporters::metrics::render(&report, &opts)?;
        fleetsweep_exporters::file::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write metrics to {}", path.display()))?;
    }
    if !cli.quiet {
        print!("{}", summary::render(&report));
        if let Some(path) = &args.report {
            println!("\nReport written to {}", path.display());
        }
    }
    Ok(if report.has_open_ban() {
        EXIT_FINDINGS
    } else if report.has_unscanned() || !report.sweep.complete {
        EXIT_PARTIAL
    } else {
        EXIT_CLEAN
    })
}

/// Fails before the sweep, not after an hour of scanning, when an output
/// file cannot be written.
fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    tempfile::NamedTempFile::new_in(&dir).with_context(|| {
        format!(
            "cannot write {}: directory {} is not writable",
            path.display(),
            dir.display()
        )
    })?;
    Ok(())
}

/// SIGINT/SIGTERM → the sweep stops and writes what it has, marked incomplete.
async fn forward_signals(tx: watch::Sender<Option<String>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!(
            "cannot install signal handlers; an interrupt will not write a partial report"
        );
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    tracing::warn!("{name} received: stopping the sweep and writing what it has");
    let _ = tx.send(Some(name.to_string()));
    // A second signal means "now".
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    std::process::exit(i32::from(EXIT_PARTIAL));
}

fn hosts(args: &HostsArgs) -> Result<u8> {
    let (inv, _) = load_hosts(&args.inventory)?;
    match args.format {
        HostsFormat::Yaml => print!("{}", hosts_yaml(&inv.hosts)?),
        HostsFormat::Table => {
            let w = inv
                .hosts
                .iter()
                .map(|h| h.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!(
                "{:w$}  {:9}  {:32}  {:24}  LABELS",
                "NAME",
                "TRANSPORT",
                "ADDRESS",
                "VIA",
                w = w
            );
            for h in &inv.hosts {
                let addr = format!(
                    "{}@{}:{}",
                    h.ssh.endpoint.user,
                    h.address(),
                    h.ssh.endpoint.port
                );
                let via: Vec<String> = h
                    .ssh
                    .jumps
                    .iter()
                    .map(|j| format!("{}@{}:{}", j.user, j.address, j.port))
                    .collect();
                let labels: Vec<String> =
                    h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "{:w$}  {:9}  {:32}  {:24}  {}",
                    h.name,
                    format!("{:?}", h.transport).to_lowercase(),
                    addr,
                    if via.is_empty() {
                        "-".to_string()
                    } else {
                        via.join(",")
                    },
                    labels.join(","),
                    w = w
                );
            }
            eprintln!("{} host(s)", inv.hosts.len());
        }
    }
    Ok(EXIT_CLEAN)
}

fn hosts_yaml(hosts: &[Host]) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        name: &'a str,
        transport: String,
        address: &'a str,
        port: u16,
        user: &'a str,
        identity_files: Vec<String>,
        jumps: Vec<String>,
        groups: &'a [String],
        labels: &'a std::collections::BTreeMap<String, String>,
    }
    let rows: Vec<Row> = hosts
        .iter()
        .map(|h| Row {
            name: &h.name,
            transport: format!("{:?}", h.transport).to_lowercase(),
            address: h.address(),
            port: h.ssh.endpoint.port,
            user: &h.ssh.endpoint.user,
            identity_files: h
                .ssh
                .endpoint
                .identity_files
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            jumps: h
                .ssh
                .jumps
                .iter()
                .map(|j| format!("{}@{}:{}", j.user, j.address, j.port))
                .collect(),
            groups: &h.groups,
            labels: &h.labels,
        })
        .collect();
    Ok(serde_saphyr::to_string(&rows)?)
}

fn catalog(c: &CatalogCommand) -> Result<u8> {
    match c {
        CatalogCommand::Check { files } => {
            let cat = Catalog::load(files)?;
            for info in &cat.catalogs {
                println!(
                    "ok: catalog {} version {} ({} rules)",
                    info.name, info.version, info.rules
                );
            }
            let sigs: usize = cat.rules.iter().map(|r| r.signatures.len()).sum();
            println!("{} rules, {} signatures", cat.rules.len(), sigs);
        }
        CatalogCommand::List { catalog } => {
            let cat = Catalog::load(catalog)?;
            let w = cat.rules.iter().map(|r| r.id.len()).max().unwrap_or(4);
            println!(
                "{:w$}  {:6}  {:30}  PRODUCT",
                "RULE",
                "POLICY",
                "SIGNATURES (linux/windows/macos/any)",
                w = w
            );
            for r in &cat.rules {
                let n = |os: &str| r.signatures.iter().filter(|s| s.os.as_str() == os).count();
                println!(
                    "{:w$}  {:6}  {:36}  {}{}",
                    r.id,
                    format!("{:?}", r.policy).to_lowercase(),
                    format!(
                        "{}/{}/{}/{}",
                        n("linux"),
                        n("windows"),
                        n("macos"),
                        n("any")
                    ),
                    r.product,
                    if r.fallback {
                        " (fallback: vendor traits)"
                    } else {
                        ""
                    },
                    w = w
                );
            }
        }
        CatalogCommand::Show { rule, catalog } => {
            let cat = Catalog::load(catalog)?;
            let Some(r) = cat.rule(rule) else {
                let near: Vec<&str> = cat
                    .rules
                    .iter()
                    .map(|r| r.id.as_str())
                    .filter(|id| id.contains(rule.rsplit('/').next().unwrap_or(rule)))
                    .collect();
                bail!(
                    "no rule `{rule}` in the catalog{}; `fleetsweep catalog list` shows them all",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (did you mean {}?)", near.join(", "))
                    }
                );
            };
            print!("{}", show_rule(r));
        }
    }
    Ok(EXIT_CLEAN)
}

fn show_rule(r: &Rule) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{}  {}", r.id, r.product);
    let _ = writeln!(s, "  vendor:    {}", r.vendor);
    let _ = writeln!(
        s,
        "  policy:    {}",
        format!("{:?}", r.policy).to_lowercase()
    );
    let _ = writeln!(s, "  catalog:   {}", r.catalog);
    if let Some(d) = r.effective {
        let _ = writeln!(s, "  effective: {d}");
    }
    if let Some(d) = r.deadline {
        let _ = writeln!(s, "  deadline:  {d}");
    }
    let _ = writeln!(s, "  grace:     {} days after first sighting", r.grace_days);
    if r.fallback {
        let _ = writeln!(
            s,
            "  fallback:  matches only evidence no other product of {} claimed",
            r.vendor
        );
    }
    if !r.replaces_text.is_empty() {
        let _ = writeln!(s, "  replaces:  {}", r.replaces_text.join(", "));
    }
    if !r.references.is_empty() {
        let _ = writeln!(s, "  references:");
        for x in &r.references {
            let _ = writeln!(
                s,
                "    - {}{}{}",
                x.id.as_deref()
                    .map(|i| format!("{i}: "))
                    .unwrap_or_default(),
                x.title,
                x.url
                    .as_deref()
                    .map(|u| format!(" <{u}>"))
                    .unwrap_or_default()
            );
        }
    }
    let _ = writeln!(s, "  signatures:");
    for sig in &r.signatures {
        let _ = writeln!(
            s,
            "    {:7} {:16} {}  [{:?}] source: {}",
            sig.os.as_str(),
            sig.kind.as_str(),
            sig.pattern,
            sig.confidence,
            sig.source
        );
    }
    if !r.remediation.is_empty() {
        let _ = writeln!(s, "  remediation:");
        for (os, text) in &r.remediation {
            let _ = writeln!(s, "    {os}: {text}");
        }
    }
    s
}
