//! Turns validated command-line settings into work, and outcomes into exit codes.
//!
//! One file per command: [`scan`] (one sweep), `serve` (the daemon), `report`
//! (renders from the state store), `completions` (shell completions and the man
//! page); `hosts` and `catalog` are small enough to live here.

mod completions;
mod report;
mod scan;
mod serve;

use anyhow::{bail, Result};

use fleetsweep::catalog::{Catalog, Rule};
use fleetsweep::cli::{
    CatalogCommand, Cli, Command, HostsArgs, HostsFormat, InventoryArgs, LogFormat,
};
use fleetsweep::inventory::limit::{Limit, Shard};
use fleetsweep::inventory::{self, Host, Inventory, LoadOptions, Target};
use fleetsweep::sweep::summary::{column_width, term_safe};

pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;
pub const EXIT_PARTIAL: u8 = 3;
/// The sweep's report, metrics and state were written, but a SIEM output
/// (`--syslog`, `--webhook`) was not delivered (docs/siem.md).
pub const EXIT_SIEM: u8 = 4;

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
    // Colour only on a terminal: logs that go to a file or the journal get no escapes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Scan(ref args) => scan::scan(&cli, args).await,
        Command::Report(ref args) => report::report(args),
        // The daemon keeps its settings for its whole life: it takes them.
        Command::Serve(args) => serve::serve(*args).await,
        Command::Hosts(ref args) => hosts(args),
        Command::Catalog(ref c) => catalog(c),
        Command::ProbeScript(ref args) => probe_script(args),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man { ref output_dir } => completions::man(output_dir.as_deref()),
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
    let shard = limit_and_shard(&mut inv, args)?;
    Ok((inv, shard))
}

/// Keeps the hosts `--limit` and `--shard` select; returns the shard.
fn limit_and_shard(inv: &mut Inventory, args: &InventoryArgs) -> Result<Option<Shard>> {
    if let Some(l) = &args.limit {
        let limit = Limit::parse(l).map_err(anyhow::Error::msg)?;
        inv.hosts.retain(|h| limit.matches(h));
    }
    let shard = match (&args.shard, &args.shard_index, &args.shard_count) {
        (Some(s), _, _) => Shard::parse(s).map_err(anyhow::Error::msg)?,
        (None, Some(index), Some(count)) => {
            Shard::from_index(index, count).map_err(anyhow::Error::msg)?
        }
        _ => return Ok(None),
    };
    inv.hosts.retain(|h| shard.contains(&h.name));
    Ok(Some(shard))
}

fn hosts(args: &HostsArgs) -> Result<u8> {
    let inv = match &args.inventory.offline {
        Some(dir) => scan::offline_hosts(dir, &args.inventory)?.0,
        None => load_hosts(&args.inventory)?.0,
    };
    match args.format {
        HostsFormat::Yaml => print!("{}", hosts_yaml(&inv.hosts)?),
        HostsFormat::Table => {
            let mut rows: Vec<[String; 5]> = Vec::new();
            for h in &inv.hosts {
                let addr = match &h.target {
                    Target::Ssh(s) => format!(
                        "{}@{}:{}",
                        s.ssh.endpoint.user,
                        h.address(),
                        s.ssh.endpoint.port
                    ),
                    // WinRM: the endpoint and how it authenticates, never the SSH port.
                    Target::Winrm(w) => format!(
                        "{}@{} ({})",
                        w.winrm.user,
                        fleetsweep::transport::winrm::endpoint(&w.winrm),
                        w.winrm.auth.as_str()
                    ),
                    Target::Local(_) => "-".to_string(),
                    // Offline bundles: the bundle folder stands where an address would.
                    Target::Offline(o) => o.dir.display().to_string(),
                };
                let transport = h.target.kind().to_string();
                let via: Vec<String> = jumps(h);
                let labels: Vec<String> =
                    h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                // Names, labels and addresses come from user files: no
                // control character reaches the terminal.
                rows.push([
                    term_safe(&h.name),
                    transport,
                    term_safe(&addr),
                    if via.is_empty() {
                        "-".to_string()
                    } else {
                        term_safe(&via.join(","))
                    },
                    term_safe(&labels.join(",")),
                ]);
            }
            let width =
                |i: usize, title: &str| column_width(title, rows.iter().map(|r| r[i].as_str()));
            let (w0, w1, w2, w3) = (
                width(0, "NAME"),
                width(1, "TRANSPORT"),
                width(2, "ADDRESS"),
                width(3, "VIA"),
            );
            println!(
                "{:w0$}  {:w1$}  {:w2$}  {:w3$}  LABELS",
                "NAME", "TRANSPORT", "ADDRESS", "VIA"
            );
            for [name, transport, addr, via, labels] in &rows {
                println!("{name:w0$}  {transport:w1$}  {addr:w2$}  {via:w3$}  {labels}");
            }
            eprintln!("{} host(s)", inv.hosts.len());
        }
    }
    Ok(EXIT_CLEAN)
}

/// A host's bastions as `user@address:port`; none but for SSH hosts.
fn jumps(h: &Host) -> Vec<String> {
    match &h.target {
        Target::Ssh(s) => s
            .ssh
            .jumps
            .iter()
            .map(|j| format!("{}@{}:{}", j.user, j.address, j.port))
            .collect(),
        _ => Vec::new(),
    }
}

fn hosts_yaml(hosts: &[Host]) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        name: &'a str,
        transport: &'static str,
        address: &'a str,
        /// SSH and WinRM hosts: where they are connected to, and as whom.
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<&'a str>,
        identity_files: Vec<String>,
        jumps: Vec<String>,
        groups: &'a [String],
        #[serde(serialize_with = "fleetsweep_exporters::labels_as_map")]
        labels: &'a fleetsweep_exporters::Labels,
        #[serde(skip_serializing_if = "Option::is_none")]
        winrm: Option<Winrm>,
    }
    /// A WinRM host's resolved settings; where the secret is, never the secret.
    #[derive(serde::Serialize)]
    struct Winrm {
        url: String,
        auth: &'static str,
        credential: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        spn: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kdc: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ca_file: Option<String>,
    }
    use fleetsweep::transport::winrm::{PasswordSource, WinrmAuth};
    let winrm = |w: &fleetsweep::transport::winrm::WinrmTarget| Winrm {
        url: fleetsweep::transport::winrm::endpoint(w),
        auth: w.auth.as_str(),
        credential: match &w.password {
            PasswordSource::Env(v) => format!("password from environment variable {v}"),
            PasswordSource::File(p) => format!("password from file {}", p.display()),
            PasswordSource::Keytab(p) => format!("keytab {}", p.display()),
        },
        spn: matches!(w.auth, WinrmAuth::Negotiate | WinrmAuth::Kerberos)
            .then(|| w.service_principal()),
        kdc: w.kdc.clone(),
        ca_file: w.ca_file.as_ref().map(|p| p.display().to_string()),
    };
    let rows: Vec<Row> = hosts
        .iter()
        .map(|h| {
            let mut row = Row {
                name: &h.name,
                transport: h.target.kind(),
                address: h.address(),
                port: None,
                user: None,
                identity_files: Vec::new(),
                jumps: jumps(h),
                groups: &h.groups,
                labels: &h.labels,
                winrm: None,
            };
            match &h.target {
                Target::Ssh(s) => {
                    row.port = Some(s.ssh.endpoint.port);
                    row.user = Some(&s.ssh.endpoint.user);
                    row.identity_files = (s.ssh.endpoint.identity_files.iter())
                        .map(|p| p.display().to_string())
                        .collect();
                }
                Target::Winrm(w) => {
                    row.port = Some(w.winrm.port);
                    row.user = Some(&w.winrm.user);
                    row.winrm = Some(winrm(&w.winrm));
                }
                Target::Local(_) | Target::Offline(_) => {}
            }
            row
        })
        .collect();
    let mut yaml = serde_saphyr::to_string(&rows)?;
    if !yaml.ends_with('\n') {
        yaml.push('\n');
    }
    Ok(yaml)
}

/// `fleetsweep probe-script OS`: the family's probe, with the catalog's
/// install roots, ready to run by hand.
fn probe_script(args: &fleetsweep::cli::ProbeScriptArgs) -> Result<u8> {
    use fleetsweep::cli::ProbeOs;
    use fleetsweep::os::OsFamily;
    let family = match args.os {
        ProbeOs::Linux => OsFamily::Linux,
        ProbeOs::Macos => OsFamily::Macos,
        ProbeOs::Windows => OsFamily::Windows,
    };
    let cat = Catalog::load(&args.catalog)?;
    let probe = fleetsweep::probes::registry::probe(family);
    print!("{}", probe.standalone(&cat.path_roots(family)));
    Ok(EXIT_CLEAN)
}

fn catalog(c: &CatalogCommand) -> Result<u8> {
    match c {
        CatalogCommand::Check { files } => {
            let cat = Catalog::load(files)?;
            if files.is_empty() {
                // The built-in catalog is only parsed when read; files given
                // here were compiled as they were read.
                cat.compile_all().map_err(anyhow::Error::msg)?;
            }
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
            let w = column_width("RULE", cat.rules.iter().map(|r| r.id.as_str()));
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
