//! The command line (clap). Raw flags live here; the binary turns them into
//! validated settings once, then nothing else reads them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `fleetsweep --version`: the package version and the git revision it was
/// built from (`scanner/build.rs`; `unknown` outside a checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("FLEETSWEEP_REVISION"),
    ")"
);

const ABOUT: &str =
    "Agentless fleet scanner for banned security software (first: every Kaspersky product).";

const LONG_ABOUT: &str = "\
fleetsweep connects to every host of an inventory over SSH (or runs locally), runs one
read-only probe script per host, and matches what it sees (packages, services, processes,
kernel modules, install paths) against a catalog of banned software. Each host ends with an
outcome (scanned, unreachable, auth_failed, host_key_rejected, timed_out, probe_failed); a
host that was not scanned is never reported clean.

The built-in catalog covers every Kaspersky product on Linux, Windows and macOS (banned in
the US: BIS Final Determination ICTS-2021-002 — sales from 2024-07-20, updates from
2024-09-29; DHS BOD 17-01 on federal networks since 2017; FCC Covered List).";

const SCAN_EXAMPLES: &str = "\
Examples:
  # Zero setup: sweep this machine, no SSH
  fleetsweep scan --local

  # Sweep a fleet, write the YAML report
  fleetsweep scan -i fleet.yaml --report sweep.yaml

  # First contact with new hosts: trust their keys and record them
  fleetsweep scan -i fleet.yaml --accept-new-host-keys ~/.ssh/fleetsweep_known_hosts

  # Only the Frankfurt web servers, 200 at a time
  fleetsweep scan -i fleet.yaml --limit 'web-*,site=fra1' --concurrency 200

Inventory (YAML):
  defaults: {user: scanner, identity_file: ~/.ssh/id_ed25519, known_hosts: ~/.ssh/known_hosts}
  hosts:
    - name: web-01
      address: 10.0.0.5
      labels: {site: fra1}
    - name: db-01
      jump: ops@bastion.example.net     # ProxyJump, or the name of another inventory host

Exit codes:
  0  every host scanned, no open finding of a banned product
  1  open findings of banned products
  2  usage or configuration error (nothing scanned)
  3  no open finding, but some hosts could not be scanned (or the sweep was interrupted)
  4  a SIEM output (--syslog, --webhook) was not delivered; the report, metrics
     and state store were still written";

const SERVE_EXAMPLES: &str = "\
Examples:
  # Sweep every 6 hours, serve metrics for Prometheus on :9817
  fleetsweep serve -i fleet.yaml --interval 6h --listen 0.0.0.0:9817

  # With TLS and basic auth (exporter-toolkit web.yml)
  fleetsweep serve -i fleet.yaml --web.config.file /etc/fleetsweep/web.yml

Endpoints:
  /metrics             results of the last sweep, plus the daemon's own metrics
  /healthz             200 once the daemon runs
  /report              the last sweep's YAML report
  /probe?target=HOST   sweep one inventory host now (blackbox-style; timeout from
                       X-Prometheus-Scrape-Timeout-Seconds minus 0.5s, default 10s,
                       never above the host timeout). Concurrent calls for one
                       host share one sweep; 16 hosts at once (503 beyond); a
                       probe whose callers all hung up is cancelled.

Limits on clients:
  --web.max-connections (512) open connections; more wait until one closes.
  --web.header-timeout (10s) to send request headers (and the TLS handshake);
  idle keep-alive connections close after it too. A client that reads nothing
  of an answer for 30s is disconnected. HTTP/1.1 only.

Signals:
  SIGHUP          re-read inventory, catalogs, exceptions, known_hosts; a file that
                  does not validate is refused (logged with file:line:column) and
                  the previous configuration stays in use
  SIGTERM/SIGINT  stop gracefully (a second one exits at once)";

const REPORT_EXAMPLES: &str = "\
Examples:
  fleetsweep report                              # latest sweep, YAML
  fleetsweep report --format html -o fleet.html  # one self-contained page with the burn-down
  fleetsweep report --format junit -o junit.xml  # one test case per host, for CI
  fleetsweep report --format sarif               # SARIF 2.1.0
  fleetsweep report --format plan                # per-host remediation plan
  fleetsweep report --list                       # sweeps in the state store
  fleetsweep report --diff PREVIOUS_ID           # what changed since an earlier sweep
  fleetsweep report --from report.yaml --format sarif -o fleet.sarif
                                                 # a saved report, no state store (CI)
  fleetsweep report --from new.yaml --diff old.yaml --format text";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  # bash, for this shell; or install it for everyone
  source <(fleetsweep completions bash)
  fleetsweep completions bash > /usr/share/bash-completion/completions/fleetsweep

  fleetsweep completions zsh  > /usr/share/zsh/vendor-completions/_fleetsweep
  fleetsweep completions fish > /usr/share/fish/vendor_completions.d/fleetsweep.fish

The Debian package installs all three.";

const MAN_EXAMPLES: &str = "\
Examples:
  fleetsweep man | man -l -                 # read it now
  fleetsweep man --output-dir /usr/local/share/man/man1";

#[derive(Debug, Parser)]
#[command(name = "fleetsweep", version = VERSION, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More log output (-v: per-host events, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors; no summary, no progress bar.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sweep the fleet once and report what was found.
    #[command(after_long_help = SCAN_EXAMPLES)]
    Scan(Box<ScanArgs>),
    /// Run as a daemon: sweep on a schedule, serve /metrics, /healthz, /report, /probe.
    #[command(after_long_help = SERVE_EXAMPLES)]
    Serve(Box<ServeArgs>),
    /// Render a sweep from the state store without scanning (yaml, json, csv, junit, sarif, html, plan, ansible, ansible-inventory).
    #[command(after_long_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// List the hosts of an inventory as fleetsweep resolves them (after groups, defaults, ssh_config).
    Hosts(HostsArgs),
    /// Validate and explain catalog files.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Print the probe script of one OS, to run by hand for an offline bundle.
    #[command(after_help = PROBE_SCRIPT_EXAMPLES)]
    ProbeScript(ProbeScriptArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(after_long_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one page per subcommand into a directory.
    #[command(after_long_help = MAN_EXAMPLES)]
    Man {
        /// Write fleetsweep.1 and fleetsweep-SUBCOMMAND.1 pages into DIR instead.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
}

const PROBE_SCRIPT_EXAMPLES: &str = "\
Examples:
  fleetsweep probe-script linux > probe-linux.sh    # then on the host: sh probe-linux.sh > linux.txt
  fleetsweep probe-script macos > probe-macos.sh    # sh probe-macos.sh > macos.txt (as root)
  fleetsweep probe-script windows > probe.ps1       # powershell -NoProfile -ExecutionPolicy Bypass -File probe.ps1 > windows.json
  fleetsweep scan --offline bundles/                # every HOST/ with its host.yaml and saved output

The Linux and macOS scripts carry their input (a nonce and the catalog's install
roots) in a here document; they only read. docs/offline-bundles.md has the rest.";

#[derive(Debug, Args)]
pub struct ProbeScriptArgs {
    /// The OS family whose probe to print.
    #[arg(value_enum)]
    pub os: ProbeOs,

    /// Catalog file whose install roots the script lists; repeatable. Default: the built-in catalog.
    #[arg(long, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,
}

/// `fleetsweep probe-script OS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeOs {
    Linux,
    Macos,
    Windows,
}

#[derive(Debug, Clone, Args)]
pub struct InventoryArgs {
    /// Inventory file: fleetsweep YAML (see `fleetsweep scan --help`), or an
    /// Ansible inventory (INI or YAML) as it is.
    #[arg(short, long, value_name = "FILE", required_unless_present_any = ["local", "offline"])]
    pub inventory: Option<PathBuf>,

    /// Sweep only this machine, without SSH (same probes; the zero-setup first run).
    #[arg(long, conflicts_with = "inventory")]
    pub local: bool,

    /// Analyse offline bundles instead of connecting: DIR holds one directory per
    /// host with a host.yaml and the saved probe outputs (docs/offline-bundles.md).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["inventory", "local"])]
    pub offline: Option<PathBuf>,

    /// Only hosts matching: comma-separated globs on host or group names,
    /// `key=value` on labels, `!term` to exclude (e.g. `web-*,!web-03`, `site=fra1`).
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,

    /// Only shard I of N (deterministic by host name), for splitting a fleet across scanners.
    #[arg(long, value_name = "I/N", conflicts_with = "shard_index")]
    pub shard: Option<String>,

    /// The same as `--shard I/N` counted from 0, as a Kubernetes Indexed Job
    /// numbers its pods: `--shard-index $(JOB_COMPLETION_INDEX) --shard-count 4`
    /// is `--shard 1/4` in the pod of index 0 (docs/scaling-out.md).
    #[arg(long, value_name = "INDEX", requires = "shard_count")]
    pub shard_index: Option<String>,

    /// The number of shards `--shard-index` counts in.
    #[arg(long, value_name = "N", requires = "shard_index")]
    pub shard_count: Option<String>,

    /// OpenSSH client config to honour (HostName, User, Port, IdentityFile, ProxyJump; Include and Match as `ssh -G -F FILE` reads them).
    #[arg(long, value_name = "FILE", default_value = "~/.ssh/config")]
    pub ssh_config: String,

    /// Ignore ~/.ssh/config.
    #[arg(long)]
    pub no_ssh_config: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// Catalog file; repeat to merge several. Default: the built-in catalog.
    #[arg(long, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,

    /// Write the YAML report (report_version 1) to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write Prometheus metrics (text format 0.0.4) to FILE atomically, e.g. into
    /// node_exporter's textfile directory (Debian's prometheus-node-exporter reads
    /// `/var/lib/prometheus/node-exporter`): `/var/lib/prometheus/node-exporter/fleetsweep.prom`.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// Inventory labels that become metric labels, for Alertmanager routing and
    /// dashboard filters: comma-separated or repeated, e.g. `site,owner`. They
    /// go on the fleet series and on every per-host series. Default: none.
    /// Only allow-listed labels are exported, to keep series counts bounded.
    #[arg(long, value_name = "KEY[,KEY...]", value_delimiter = ',')]
    pub metric_label: Vec<String>,

    /// known_hosts file to verify host keys against; repeatable.
    /// Default: the inventory's `known_hosts:`, else ~/.ssh/known_hosts.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Vec<PathBuf>,

    /// Trust on first use: accept unknown host keys and record them in FILE.
    /// Changed or revoked keys are still rejected.
    #[arg(long, value_name = "FILE")]
    pub accept_new_host_keys: Option<PathBuf>,

    /// Hosts in flight at once.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub concurrency: usize,

    /// SSH connections in start-up (TCP connect, key exchange,
    /// authentication) at once across the sweep, whatever --concurrency.
    /// Start-ups are the costly part of a host for both ends; beyond what the
    /// cores can serve, more at once only hold memory (about 100 KB each)
    /// without finishing sooner. Raise it on high-latency networks, where
    /// each start-up mostly waits for round trips.
    #[arg(long, value_name = "N", default_value_t = crate::transport::startup::DEFAULT_MAX_HANDSHAKES)]
    pub max_handshakes: usize,

    /// Deadline for TCP connect + SSH handshake + auth, per hop (e.g. 10s).
    /// Given here, it applies to every host; otherwise the inventory's
    /// `connect_timeout:`, else 10s.
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,

    /// Deadline for a whole host: connect, probe and parse (e.g. 2m).
    /// Given here, it applies to every host; otherwise the inventory's
    /// `host_timeout:`, else 2m.
    #[arg(long, value_name = "DURATION")]
    pub host_timeout: Option<String>,

    /// Run the probe script through `sudo -n` on every host.
    #[arg(long)]
    pub sudo: bool,

    /// Do not offer keys from ssh-agent ($SSH_AUTH_SOCK).
    #[arg(long)]
    pub no_agent: bool,

    /// Environment variable holding the passphrase of encrypted private keys.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,

    /// File whose first line is the passphrase of encrypted private keys.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_env")]
    pub passphrase_file: Option<PathBuf>,

    /// Show a progress bar (default: when stderr is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// Cap on probe output per host, in MiB: stdout past it is dropped as it
    /// arrives (stderr is kept to 64 KiB), and a host that keeps streaming is
    /// cut off (after 4 times the cap, at least 16 MiB, or 10 s).
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub max_output: usize,

    /// Push the sweep's metrics to a Prometheus Pushgateway (PUT: series of the
    /// previous push under the same grouping key disappear), e.g. http://pushgateway:9091.
    /// The grouping key's `instance` is the `--scanner` name when one is given,
    /// else the shard (`1_of_4`), else `all`.
    #[arg(
        long,
        value_name = "URL",
        env = "FLEETSWEEP_PUSH",
        hide_env_values = true
    )]
    pub push: Option<String>,

    /// `job` of the Pushgateway grouping key.
    #[arg(long, value_name = "NAME", default_value = "fleetsweep")]
    pub push_job: String,

    #[command(flatten)]
    pub siem: SiemArgs,

    #[command(flatten)]
    pub state: StateArgs,

    /// This scanner's name, recorded with each sweep it commits to the state
    /// store (shown by `report --list` and in the fleet view). Default: the
    /// host name.
    #[arg(long, value_name = "NAME")]
    pub scanner: Option<String>,

    /// Retention of the state store: sweeps that finished longer ago than this
    /// lose their full report, host results and finding history (their summary,
    /// every remediation event and the statuses stay), so a daemon's store stops
    /// growing. `all` keeps every report. E.g. 400d, 90d, 12h.
    #[arg(long, value_name = "DURATION|all", default_value = "400d")]
    pub state_keep: String,

    /// Exceptions file (docs/exceptions.md): accepted findings with reason, approver and expiry.
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
}

/// SIEM outputs (docs/siem.md): every sweep's findings, status changes and
/// summary as events.
#[derive(Debug, Args, Clone)]
pub struct SiemArgs {
    /// Send events to a syslog receiver as RFC 5424 messages, octet-counted:
    /// tcp://HOST:PORT, or tls://HOST:PORT (RFC 5425), e.g. tls://siem.example.net:6514.
    #[arg(long, value_name = "URL", help_heading = "SIEM")]
    pub syslog: Option<String>,

    /// PEM CA bundle the tls:// receiver's certificate must chain to
    /// (default: the system's roots).
    #[arg(long, value_name = "FILE", requires = "syslog", help_heading = "SIEM")]
    pub syslog_ca: Option<PathBuf>,

    /// PEM client certificate for receivers that authenticate senders (with --syslog-key).
    #[arg(long, value_name = "FILE", requires_all = ["syslog", "syslog_key"], help_heading = "SIEM")]
    pub syslog_cert: Option<PathBuf>,

    /// PEM private key of --syslog-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "syslog_cert",
        help_heading = "SIEM"
    )]
    pub syslog_key: Option<PathBuf>,

    /// POST events as JSON batches to this URL, signed with HMAC-SHA256
    /// (X-Fleetsweep-Signature), e.g. https://siem.example.net/hooks/fleetsweep.
    /// The secret comes from --webhook-secret-file or the environment
    /// variable FLEETSWEEP_WEBHOOK_SECRET, never from the command line.
    #[arg(long, value_name = "URL", help_heading = "SIEM")]
    pub webhook: Option<String>,

    /// File holding the webhook's signing secret (one line; a trailing newline is dropped).
    #[arg(long, value_name = "FILE", requires = "webhook", help_heading = "SIEM")]
    pub webhook_secret_file: Option<PathBuf>,

    /// PEM CA bundle an https:// webhook's certificate must chain to
    /// (default: the system's roots).
    #[arg(long, value_name = "FILE", requires = "webhook", help_heading = "SIEM")]
    pub webhook_ca: Option<PathBuf>,

    /// Events per webhook request (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 100, help_heading = "SIEM")]
    pub webhook_batch: usize,

    /// How long delivery to each SIEM output may take, retries included
    /// (e.g. 2m); past it the delivery fails (exit code 4 for `scan`).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2m",
        help_heading = "SIEM"
    )]
    pub siem_deadline: String,
}

/// Where remediation history lives.
#[derive(Debug, Args, Clone)]
pub struct StateArgs {
    /// State store that tracks findings across sweeps: an SQLite file, or a
    /// PostgreSQL database shared by many scanners
    /// (postgresql://USER@HOST:PORT/DB?sslmode=verify-full; the password from
    /// PGPASSWORD or ~/.pgpass; docs/state.md).
    /// Default: the environment variable FLEETSWEEP_STATE when set (so a URL
    /// can come from a secret; `--no-state` wins over it), else
    /// fleetsweep/state.db under the user's data directory
    /// (~/.local/share/fleetsweep/state.db).
    #[arg(long = "state", value_name = "DB|URL")]
    pub path: Option<PathBuf>,

    /// Keep no history: every finding is `new`, nothing is remembered.
    #[arg(long = "no-state", conflicts_with = "path")]
    pub disabled: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub scan: ScanArgs,

    /// Time between sweeps (e.g. 6h, 30m); the first sweep starts at once.
    #[arg(long, value_name = "DURATION", default_value = "6h")]
    pub interval: String,

    /// Random delay added to each interval, up to this fraction of it (0 to 1).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.1)]
    pub jitter: f64,

    /// Address to serve on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9817")]
    pub listen: String,

    /// TLS and basic auth, in the format of Prometheus's exporter-toolkit web.yml
    /// (`tls_server_config`, `basic_auth_users` with bcrypt hashes).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Connections open at once (as Prometheus's own flag); beyond it new
    /// connections wait in the listen backlog until one closes. Kept below
    /// the usual 1024 open-file limit, which SSH connections share.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 512)]
    pub max_connections: usize,

    /// Time a client has to send a request's headers (and its TLS handshake);
    /// idle keep-alive connections are closed after it too.
    #[arg(
        long = "web.header-timeout",
        value_name = "DURATION",
        default_value = "10s"
    )]
    pub header_timeout: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub state: StateArgs,

    /// Output format. A report renders as yaml, json, csv, junit, sarif, html,
    /// plan, ansible or ansible-inventory; `--diff` as yaml, json or text; `--list` as table or json.
    /// Default: yaml (table with `--list`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ReportFormat>,

    /// Render a saved report file (written by `scan --report`, YAML or JSON)
    /// instead of a sweep from the state store: no state store is needed, so an
    /// ephemeral CI job can turn its one report into JUnit or SARIF.
    #[arg(long, value_name = "REPORT", conflicts_with_all = ["sweep", "list"])]
    pub from: Option<PathBuf>,

    /// Sweep to render (an id from `--list`, or a unique prefix). Default: the
    /// latest sweep (a PostgreSQL store: the fleet view, see --fleet).
    #[arg(long, value_name = "ID")]
    pub sweep: Option<String>,

    /// Render the fleet: the latest result of every host across the sweeps of
    /// every scanner (shards, sites) in the store, each host with the sweep,
    /// scanner and time it comes from. The default for a PostgreSQL store.
    /// With --diff ID: what changed in the fleet since sweep ID was committed.
    #[arg(long, conflicts_with_all = ["sweep", "from", "list"])]
    pub fleet: bool,

    /// Show what changed since this earlier sweep instead (with `--from`: an
    /// earlier saved report file; with the fleet view: the fleet as it stood
    /// when this sweep was committed).
    #[arg(long, value_name = "PREVIOUS")]
    pub diff: Option<String>,

    /// List the sweeps in the state store.
    #[arg(long)]
    pub list: bool,

    /// Write to FILE (atomically) instead of stdout; `-` is stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Every `--format` of `fleetsweep report`; which ones apply depends on the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The report as `scan --report` writes it (report_version 1).
    Yaml,
    /// The same model as JSON.
    Json,
    /// One row per finding, plus one per host without findings.
    Csv,
    /// JUnit XML: one test case per host, for CI test dashboards.
    Junit,
    /// SARIF 2.1.0, for GitHub code scanning and security dashboards.
    Sarif,
    /// One self-contained HTML page with the remediation burn-down.
    Html,
    /// A per-host remediation plan in Markdown.
    Plan,
    /// An Ansible playbook that removes the open findings of banned products
    /// on scanned hosts (one play per host; idempotent, `--check` safe).
    Ansible,
    /// An Ansible inventory of the hosts that playbook targets (`ansible_host`
    /// from the report's addresses).
    AnsibleInventory,
    /// `--diff` only: what changed, to read in a terminal.
    Text,
    /// `--list` only: one line per stored sweep.
    Table,
}

impl ReportFormat {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Yaml => "yaml",
            ReportFormat::Json => "json",
            ReportFormat::Csv => "csv",
            ReportFormat::Junit => "junit",
            ReportFormat::Sarif => "sarif",
            ReportFormat::Html => "html",
            ReportFormat::Plan => "plan",
            ReportFormat::Ansible => "ansible",
            ReportFormat::AnsibleInventory => "ansible-inventory",
            ReportFormat::Text => "text",
            ReportFormat::Table => "table",
        }
    }
}

#[derive(Debug, Args)]
pub struct HostsArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
    pub format: HostsFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostsFormat {
    Table,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate catalog files (default: the built-in catalog); errors name file:line:column.
    Check {
        /// Catalog files to check.
        files: Vec<PathBuf>,
    },
    /// List the rules of the catalog.
    List {
        /// Catalog file; repeatable. Default: the built-in catalog.
        #[arg(long, value_name = "FILE")]
        catalog: Vec<PathBuf>,
    },
    /// Explain one rule: policy, dates, references, signatures with their sources, remediation.
    Show {
        /// Rule id, e.g. kaspersky/kesl.
        rule: String,
        /// Catalog file; repeatable. Default: the built-in catalog.
        #[arg(long, value_name = "FILE")]
        catalog: Vec<PathBuf>,
    },
}
