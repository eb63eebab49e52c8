//! End-to-end: the PostgreSQL state backend (`--state postgresql://...`)
//! against a real PostgreSQL server each test starts
//! ([`fleetsweep_e2e::postgres::Server`]), with real `fleetsweep scan`
//! processes as the scanners. The hosts are offline bundles made by the test
//! (the state semantics do not need SSH): `h-00`..`h-NN`, the even ones with
//! Kaspersky Endpoint Security for Linux installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use fleetsweep_e2e::postgres::{free_port, make_certs, Server, PASSWORD};
use fleetsweep_e2e::{e2e_dir, signal};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");
const T0: &str = "2027-03-01T06:00:00Z";
const T1: &str = "2027-03-02T06:00:00Z";
const KESL: &str = "kaspersky/kesl";

fn server() -> Server {
    Server::start().unwrap_or_else(|e| panic!("{e:#}"))
}

/// `n` offline bundles in `dir`; host `i` has KESL when `infected(i)`.
fn bundles(dir: &Path, n: usize, infected: impl Fn(usize) -> bool) {
    let fixture = e2e_dir().join("fixtures/offline/linux-kesl-01");
    for i in 0..n {
        let b = dir.join(format!("h-{i:02}"));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("host.yaml"), format!("name: h-{i:02}\nos: linux\n")).unwrap();
        std::fs::copy(fixture.join("os-release"), b.join("os-release")).unwrap();
        let dpkg = std::fs::read_to_string(fixture.join("dpkg-query.txt")).unwrap();
        let dpkg: String = if infected(i) {
            std::fs::copy(
                fixture.join("kesl-control-app-info.txt"),
                b.join("kesl-control-app-info.txt"),
            )
            .unwrap();
            dpkg
        } else {
            let _ = std::fs::remove_file(b.join("kesl-control-app-info.txt"));
            dpkg.lines()
                .filter(|l| !l.contains("\tkesl\t"))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        std::fs::write(b.join("dpkg-query.txt"), dpkg).unwrap();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `fleetsweep scan --offline` command against `url` (password in PGPASSWORD).
fn scan_cmd(url: &str, bundles: &Path, now: &str, report: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(FLEETSWEEP);
    c.args(["scan", "--offline"])
        .arg(bundles)
        .args(["--state", url, "--report"])
        .arg(report)
        .args(["--no-progress", "-v"])
        .args(extra)
        .env("PGPASSWORD", PASSWORD)
        .env("FLEETSWEEP_NOW", now)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("PGPASSFILE")
        .env_remove("PGSSLMODE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn yaml_file(path: &Path) -> Value {
    let yaml = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_saphyr::from_str(&yaml).unwrap()
}

/// `report` against `url`, as JSON.
fn report_json(url: &str, extra: &[&str]) -> Value {
    let out = Command::new(FLEETSWEEP)
        .args(["report", "--state", url, "--format", "json"])
        .args(extra)
        .env("PGPASSWORD", PASSWORD)
        .output_within(RUN_LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// host → status of its KESL finding (hosts without one are left out).
fn kesl_status(report: &Value) -> BTreeMap<String, String> {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| {
            let f = h["findings"]
                .as_array()?
                .iter()
                .find(|f| f["rule"] == KESL)?;
            Some((
                h["name"].as_str()?.to_string(),
                f["status"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn host_names(report: &Value) -> Vec<String> {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect()
}

/// Runs the commands at once; waits for all; returns their outputs in order.
fn all_at_once(cmds: Vec<Command>) -> Vec<Output> {
    let children: Vec<Child> = cmds.into_iter().map(|mut c| c.spawn().unwrap()).collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

fn remediations_total(metrics: &Path) -> u64 {
    let text = std::fs::read_to_string(metrics).unwrap();
    text.lines()
        .filter(|l| l.starts_with("fleetsweep_remediations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Four scanners on disjoint shards commit at once to a fresh database (so
/// they also race to create the schema); the fleet view has every host once,
/// with the scanner that saw it. Re-sharded 4 → 3, every finding is `open`,
/// not `new`: the history is the host's, not the scanner's. Then retention
/// and the remediation counter work as on SQLite.
#[test]
fn four_shards_at_once_then_three_keep_every_hosts_history() {
    let started = Instant::now();
    let pg = server();
    pg.create_db("fleet").unwrap();
    let url = pg.url("fleet", "sslmode=disable");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    bundles(&dir, 24, |i| i % 2 == 0);
    let out = |name: &str| tmp.path().join(name);

    // Round 1: shards 1/4..4/4 at once; commits slowed down so they overlap.
    let cmds = (1..=4)
        .map(|i| {
            let mut c = scan_cmd(
                &url,
                &dir,
                T0,
                &out(&format!("r1-{i}.yaml")),
                &[
                    "--shard",
                    &format!("{i}/4"),
                    "--scanner",
                    &format!("scanner-{i}"),
                ],
            );
            c.env("FLEETSWEEP_TEST_COMMIT_PAUSE_MS", "15");
            c
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (i, o) in all_at_once(cmds).iter().enumerate() {
        let i = i + 1;
        assert_eq!(o.status.code(), Some(1), "shard {i}/4: {}", text(&o.stderr));
        let r = yaml_file(&out(&format!("r1-{i}.yaml")));
        for (host, status) in kesl_status(&r) {
            assert_eq!(status, "new", "{host} in shard {i}/4");
        }
        for h in host_names(&r) {
            assert!(seen.insert(h.clone()), "{h} is in two shards");
        }
    }
    assert_eq!(seen.len(), 24, "the four shards cover the fleet");
    assert_eq!(
        pg.psql("fleet", "SELECT version FROM fleetsweep_schema")
            .unwrap(),
        "1",
        "one schema, migrated once"
    );

    // The fleet view: every host exactly once, with its scanner and shard.
    let fleet = report_json(&url, &[]);
    assert_eq!(fleet["sweep"]["id"], "fleet");
    let names = host_names(&fleet);
    assert_eq!(names.len(), 24, "{names:?}");
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), 24);
    for h in fleet["hosts"].as_array().unwrap() {
        let by = &h["scanned_by"];
        let shard = by["shard"].as_str().unwrap();
        let n = shard.split('/').next().unwrap();
        assert_eq!(by["scanner"], format!("scanner-{n}"), "{h}");
        assert!(by["sweep"].as_str().unwrap().len() > 8);
    }
    assert_eq!(fleet["summary"]["hosts"]["total"], 24);
    assert_eq!(fleet["summary"]["findings"]["new"], 12);
    let list = report_json(&url, &["--list"]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let round1_last = rows[3]["id"].as_str().unwrap().to_string();
    let scanners: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["scanner"].as_str().unwrap())
        .collect();
    assert_eq!(
        scanners,
        BTreeSet::from(["scanner-1", "scanner-2", "scanner-3", "scanner-4"])
    );

    // Round 2, re-sharded 4 -> 3: nothing is new, every host's history carried over.
    let cmds = (1..=3)
        .map(|i| {
            scan_cmd(
                &url,
                &dir,
                T1,
                &out(&format!("r2-{i}.yaml")),
                &[
                    "--shard",
                    &format!("{i}/3"),
                    "--scanner",
                    &format!("scanner-{i}"),
                ],
            )
        })
        .collect();
    let mut infected = 0;
    for (i, o) in all_at_once(cmds).iter().enumerate() {
        assert_eq!(
            o.status.code(),
            Some(1),
            "shard {}/3: {}",
            i + 1,
            text(&o.stderr)
        );
        for (host, status) in kesl_status(&yaml_file(&out(&format!("r2-{}.yaml", i + 1)))) {
            assert_eq!(status, "open", "{host} after re-sharding");
            infected += 1;
        }
    }
    assert_eq!(infected, 12);
    let fleet = report_json(&url, &["--fleet"]);
    assert_eq!(host_names(&fleet).len(), 24);
    assert!(fleet["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["scanned_by"]["shard"].as_str().unwrap().ends_with("/3")));
    assert_eq!(
        kesl_status(&fleet).values().collect::<BTreeSet<_>>(),
        BTreeSet::from([&"open".to_string()])
    );
    // What changed in the fleet since the end of round 1: every KESL new -> open.
    let diff = report_json(&url, &["--fleet", "--diff", &round1_last]);
    assert_eq!(diff["previous_sweep"], format!("fleet@{round1_last}"));
    let changed = diff["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 12, "{diff}");
    assert!(changed
        .iter()
        .all(|c| c["status"]["from"] == "new" && c["status"]["to"] == "open"));
    // The table names each sweep's scanner.
    let table = Command::new(FLEETSWEEP)
        .args(["report", "--state", &url, "--list"])
        .env("PGPASSWORD", PASSWORD)
        .output_within(RUN_LIMIT);
    let table = text(&table.stdout);
    assert!(table.lines().next().unwrap().contains("SCANNER"), "{table}");
    assert_eq!(table.lines().filter(|l| l.contains("scanner-4")).count(), 1);

    // Round 3, 40 days on, one scanner for everything, 30 days of reports
    // kept; h-00 got rid of KESL.
    bundles(&dir, 24, |i| i % 2 == 0 && i != 0);
    let metrics = out("m.prom");
    let o = scan_cmd(
        &url,
        &dir,
        "2027-04-11T06:00:00Z",
        &out("r3.yaml"),
        &[
            "--scanner",
            "scanner-1",
            "--state-keep",
            "30d",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let r3 = kesl_status(&yaml_file(&out("r3.yaml")));
    assert_eq!(r3.get("h-00").map(String::as_str), Some("remediated"));
    assert!(
        r3.values().all(|s| s != "new"),
        "statuses still come from the tracks: {r3:?}"
    );
    assert_eq!(remediations_total(&metrics), 1);
    let rows = report_json(&url, &["--list"]);
    let pruned: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("pruned").is_some())
        .collect();
    // Kept: the newest sweep of each scanner (scanner-1's round 3,
    // scanner-2 and -3's round 2, scanner-4's round 1).
    assert_eq!(pruned.len(), 4, "{rows}");
    assert_eq!(
        pg.psql(
            "fleet",
            "SELECT count(*) FROM host_results h JOIN sweeps s ON s.seq = h.sweep WHERE s.pruned IS NOT NULL"
        )
        .unwrap(),
        "0"
    );
    assert_eq!(
        pg.psql("fleet", "SELECT count(*) FROM remediations")
            .unwrap(),
        "1"
    );
    eprintln!("four_shards test: {:?}", started.elapsed());
}

/// A scanner SIGKILLed while committing leaves nothing of its sweep, no lock
/// and no open transaction; the next sweep is fine.
#[test]
fn a_scanner_killed_mid_commit_leaves_the_database_consistent() {
    let pg = server();
    pg.create_db("kill").unwrap();
    let url = pg.url("kill", "sslmode=disable");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    bundles(&dir, 24, |i| i % 2 == 0);
    let first = scan_cmd(&url, &dir, T0, &tmp.path().join("r1.yaml"), &[])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));

    for delay_ms in [150u64, 600] {
        let mut child = scan_cmd(&url, &dir, T1, &tmp.path().join("killed.yaml"), &[])
            .env("FLEETSWEEP_TEST_COMMIT_PAUSE_MS", "40")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("committing the sweep") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the sweep reaches its commit");
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(child.id(), Signal::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        let log = reader.join().unwrap();
        assert_eq!(status.code(), None, "killed during the commit:\n{log}");
        // The server notices the lost connection and rolls back.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let open = pg
                .psql(
                    "kill",
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fleetsweep'",
                )
                .unwrap();
            let locks = pg
                .psql(
                    "kill",
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
                )
                .unwrap();
            if open == "0" && locks == "0" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the killed scanner's session ({open}) or locks ({locks}) stayed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for (sql, want) in [
            ("SELECT count(*) FROM sweeps", "1"),
            ("SELECT count(*) FROM host_results", "24"),
            ("SELECT count(*) FROM finding_history", "12"),
            (
                "SELECT count(*) FROM tracks WHERE sweep NOT IN (SELECT seq FROM sweeps)",
                "0",
            ),
            (
                "SELECT count(*) FROM verified WHERE sweep NOT IN (SELECT seq FROM sweeps)",
                "0",
            ),
        ] {
            assert_eq!(
                pg.psql("kill", sql).unwrap(),
                want,
                "{sql} (killed after {delay_ms} ms)"
            );
        }
    }
    let next = scan_cmd(&url, &dir, T1, &tmp.path().join("r2.yaml"), &[])
        .output()
        .unwrap();
    assert_eq!(next.status.code(), Some(1), "{}", text(&next.stderr));
    let statuses = kesl_status(&yaml_file(&tmp.path().join("r2.yaml")));
    assert_eq!(statuses.len(), 12);
    assert!(statuses.values().all(|s| s == "open"), "{statuses:?}");
    assert_eq!(pg.psql("kill", "SELECT count(*) FROM sweeps").unwrap(), "2");
}

/// Two scanners sweeping the same hosts at the same moment: each host's
/// finding is `new` once (the second commit derives from the first), and
/// its removal is counted once.
#[test]
fn two_scanners_on_the_same_hosts_at_once_agree() {
    let pg = server();
    pg.create_db("same").unwrap();
    let url = pg.url("same", "sslmode=disable");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    bundles(&dir, 12, |i| i % 2 == 0);
    // Exit code `code`: 1 while KESL is there, 0 once it is gone.
    let pair = |now: &str, round: &str, code: i32| {
        let cmds = ["a", "b"]
            .iter()
            .map(|s| {
                let mut c = scan_cmd(
                    &url,
                    &dir,
                    now,
                    &tmp.path().join(format!("{round}-{s}.yaml")),
                    &[
                        "--scanner",
                        &format!("site-{s}"),
                        "--metrics-file",
                        tmp.path()
                            .join(format!("{round}-{s}.prom"))
                            .to_str()
                            .unwrap(),
                    ],
                );
                c.env("FLEETSWEEP_TEST_COMMIT_PAUSE_MS", "25");
                c
            })
            .collect();
        for o in all_at_once(cmds) {
            assert_eq!(o.status.code(), Some(code), "{}", text(&o.stderr));
        }
        ["a", "b"].map(|s| kesl_status(&yaml_file(&tmp.path().join(format!("{round}-{s}.yaml")))))
    };
    let [a, b] = pair(T0, "r1", 1);
    for i in (0..12).step_by(2) {
        let h = format!("h-{i:02}");
        let mut both = [a[&h].as_str(), b[&h].as_str()];
        both.sort_unstable();
        assert_eq!(both, ["new", "open"], "{h}: one scanner saw it first");
    }
    // KESL removed everywhere; both scanners again at once.
    bundles(&dir, 12, |_| false);
    let tmp_path = tmp.path().to_path_buf();
    let [a, b] = pair(T1, "r2", 0);
    let remediated = a
        .values()
        .chain(b.values())
        .filter(|s| *s == "remediated")
        .count();
    assert_eq!(remediated, 6, "each removal reported once: {a:?} {b:?}");
    assert_eq!(
        pg.psql("same", "SELECT count(*) FROM remediations")
            .unwrap(),
        "6"
    );
    assert_eq!(
        pg.psql("same", "SELECT count(DISTINCT host) FROM remediations")
            .unwrap(),
        "6"
    );
    let totals: Vec<u64> = ["a", "b"]
        .iter()
        .map(|s| remediations_total(&tmp_path.join(format!("r2-{s}.prom"))))
        .collect();
    assert_eq!(totals.iter().max(), Some(&6), "{totals:?}");
    assert_eq!(
        pg.psql("same", "SELECT DISTINCT status FROM tracks")
            .unwrap(),
        "remediated"
    );
}

/// sslmode=verify-full with the CA that signed the server's certificate
/// connects (by IP and by name); another CA is refused with a clear error.
#[test]
fn tls_verify_full_and_a_wrong_ca() {
    let pg = server();
    pg.create_db("tls").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    bundles(&dir, 2, |i| i == 0);
    let ca = pg.ca_cert();
    for url in [
        pg.url(
            "tls",
            &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ),
        format!(
            "postgresql://fleetsweep@localhost:{}/tls?sslmode=verify-full&sslrootcert={}",
            pg.port(),
            ca.display()
        ),
        pg.url(
            "tls",
            &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
        ),
        pg.url("tls", "sslmode=require"),
    ] {
        let o = scan_cmd(&url, &dir, T0, &tmp.path().join("r.yaml"), &[])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{url}: {}", text(&o.stderr));
    }
    // Connected by address to a name the certificate does not hold:
    // verify-ca accepts it (the chain is good), verify-full does not.
    let misnamed = |mode: &str| {
        format!(
            "postgresql://fleetsweep@db.wrong-name.invalid:{}/tls?hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
            pg.port(),
            ca.display()
        )
    };
    let o = scan_cmd(
        &misnamed("verify-ca"),
        &dir,
        T0,
        &tmp.path().join("r.yaml"),
        &[],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let o = scan_cmd(
        &misnamed("verify-full"),
        &dir,
        T0,
        &tmp.path().join("r.yaml"),
        &[],
    )
    .output()
    .unwrap();
    let err = text(&o.stderr);
    eprintln!("misnamed: {err}");
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("certificate not valid for name \"db.wrong-name.invalid\""),
        "{err}"
    );
    assert!(
        err.contains("connect by a name the certificate holds"),
        "{err}"
    );
    make_certs(tmp.path(), "other").unwrap();
    let wrong = tmp.path().join("other-ca.crt");
    let url = pg.url_with_password(
        "tls",
        &format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
    );
    let o = scan_cmd(&url, &dir, T0, &tmp.path().join("r.yaml"), &[])
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "cannot connect to the state store postgresql://fleetsweep@127.0.0.1:{}/tls",
            pg.port()
        )),
        "{err}"
    );
    eprintln!("wrong CA: {err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(err.contains("sslrootcert names the CA"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

/// What users get wrong: a bad URL, a wrong password, a missing database,
/// no server, a database from a newer fleetsweep. Each is a configuration
/// error (exit 2) naming the URL without the password, before any host is
/// scanned; a passfile supplies the password.
#[test]
fn bad_urls_wrong_passwords_and_no_server_fail_clearly() {
    let pg = server();
    pg.create_db("errs").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    bundles(&dir, 2, |i| i == 0);
    let port = pg.port();
    let refused = |url: &str, env: &[(&str, &str)]| -> String {
        let mut c = scan_cmd(url, &dir, T0, &tmp.path().join("r.yaml"), &[]);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let err = text(&o.stderr);
        eprintln!("refused: {err}");
        assert_eq!(o.status.code(), Some(2), "{url}: {err}");
        assert!(!err.contains("s3cr3t-x"), "{err}");
        assert!(!err.contains(PASSWORD), "{err}");
        assert!(
            !tmp.path().join("r.yaml").exists(),
            "nothing scanned before the store is known good"
        );
        err
    };
    let err = refused(
        "postgresql://fleetsweep:s3cr3t-x@127.0.0.1:notaport/errs",
        &[],
    );
    assert!(
        err.contains(
            "--state postgresql://fleetsweep@127.0.0.1:notaport/errs: not a PostgreSQL URL"
        ),
        "{err}"
    );
    let err = refused(
        &format!("postgresql://fleetsweep:s3cr3t-x@127.0.0.1:{port}/errs?sslmode=disable"),
        &[],
    );
    assert!(
        err.contains(&format!(
            "cannot connect to the state store postgresql://fleetsweep@127.0.0.1:{port}/errs: FATAL: password authentication failed for user \"fleetsweep\""
        )),
        "{err}"
    );
    assert!(err.contains("PGPASSWORD"), "{err}");
    let err = refused(&pg.url("nope", "sslmode=disable"), &[]);
    assert!(err.contains("database \"nope\" does not exist"), "{err}");
    assert!(err.contains("createdb"), "{err}");
    let down = free_port().unwrap();
    let err = refused(
        &format!("postgresql://fleetsweep:s3cr3t-x@127.0.0.1:{down}/errs"),
        &[],
    );
    assert!(
        err.contains(&format!(
            "cannot connect to the state store postgresql://fleetsweep@127.0.0.1:{down}/errs: error connecting to server"
        )),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("is PostgreSQL running"), "{err}");

    // The password from a passfile (no PGPASSWORD), as libpq reads it.
    let passfile = tmp.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!("127.0.0.1:{port}:errs:fleetsweep:{PASSWORD}\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let o = scan_cmd(
        &pg.url("errs", ""),
        &dir,
        T0,
        &tmp.path().join("ok.yaml"),
        &[],
    )
    .env_remove("PGPASSWORD")
    .env("PGPASSFILE", &passfile)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!(
        "History: postgresql://fleetsweep@127.0.0.1:{port}/errs"
    )));

    // Everything from the libpq environment: the server's Unix socket
    // (local connections are trusted by this test server: no password).
    let o = scan_cmd(
        "postgresql://",
        &dir,
        T0,
        &tmp.path().join("sock.yaml"),
        &[],
    )
    .env_remove("PGPASSWORD")
    .env("PGHOST", pg.dir())
    .env("PGPORT", port.to_string())
    .env("PGUSER", "fleetsweep")
    .env("PGDATABASE", "errs")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!(
        "History: postgresql://fleetsweep@{}:{port}/errs",
        pg.dir().display()
    )));

    // A database a newer fleetsweep migrated is refused, never downgraded.
    pg.psql("errs", "UPDATE fleetsweep_schema SET version = 99")
        .unwrap();
    let err = refused(&pg.url("errs", ""), &[("PGPASSWORD", PASSWORD)]);
    assert!(
        err.contains(&format!(
            "postgresql://fleetsweep@127.0.0.1:{port}/errs was written by a newer fleetsweep (schema 99, this build knows 1)"
        )),
        "{err}"
    );
    // Another program's `sweeps` table is not taken for ours.
    pg.create_db("foreign").unwrap();
    pg.psql("foreign", "CREATE TABLE sweeps (x int)").unwrap();
    let err = refused(&pg.url("foreign", ""), &[]);
    assert!(
        err.contains("a `sweeps` table fleetsweep did not create"),
        "{err}"
    );
}

/// `ms=` of the "state step done" log line (-v).
fn state_step_ms(stderr: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.contains("state step done"))
        .and_then(|l| l.split("ms=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no state step in the log:\n{stderr}"))
}

/// 2,500 hosts: the commit goes in several batches, the next sweep derives
/// every status from it. Prints the state step's time next to SQLite's.
#[test]
fn a_2500_host_sweep_is_committed_whole_and_drives_the_next() {
    let pg = server();
    pg.create_db("big").unwrap();
    let url = pg.url("big", "sslmode=disable");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    let n = 2500;
    bundles(&dir, n, |i| i % 10 == 0);
    let sqlite = tmp.path().join("state.db");
    let mut times = Vec::new();
    for (round, now) in [(1, T0), (2, T1)] {
        if round == 2 {
            // Hosts 0, 10, ... 990 removed it; host 7 got it.
            bundles(&dir, 1000, |i| i == 7);
        }
        for state in [url.as_str(), sqlite.to_str().unwrap()] {
            let report = tmp.path().join(format!("r{round}.yaml"));
            let o = scan_cmd(state, &dir, now, &report, &["--concurrency", "64"])
                .output()
                .unwrap();
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{err}");
            times.push((round, state.starts_with("postgresql"), state_step_ms(&err)));
            let statuses = kesl_status(&yaml_file(&report));
            let count = |s: &str| statuses.values().filter(|v| *v == s).count();
            if round == 1 {
                assert_eq!(count("new"), 250);
            } else {
                assert_eq!(
                    (count("remediated"), count("open"), count("new")),
                    (100, 150, 1),
                    "{state}"
                );
            }
        }
    }
    assert_eq!(
        pg.psql("big", "SELECT count(*) FROM host_results").unwrap(),
        (2 * n).to_string()
    );
    assert_eq!(
        pg.psql("big", "SELECT count(*) FROM remediations").unwrap(),
        "100"
    );
    // The fleet view of the PostgreSQL store and the last sweep agree.
    let fleet = report_json(&url, &[]);
    assert_eq!(host_names(&fleet).len(), n);
    assert_eq!(fleet["summary"]["findings"]["remediated"], 100);
    for (round, pg, ms) in times {
        eprintln!(
            "{n} hosts, sweep {round}: state step {ms} ms on {}",
            if pg { "PostgreSQL" } else { "SQLite" }
        );
    }
}

/// `serve` keeps one connection for its life; a connection the server
/// drops (a restart, a terminated session) is opened again for the next
/// sweep instead of failing every sweep from then on.
#[test]
fn a_daemon_connects_again_after_losing_its_connection() {
    let pg = server();
    pg.create_db("daemon").unwrap();
    let url = pg.url("daemon", "sslmode=disable");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    bundles(&dir, 4, |i| i == 0);
    let log = tmp.path().join("serve.log");
    let mut child = Command::new(FLEETSWEEP)
        .args(["serve", "--offline"])
        .arg(&dir)
        .args(["--state", &url, "--interval", "1s", "--jitter", "0"])
        .args(["--scanner", "daemon", "-v"])
        .args(["--listen", &format!("127.0.0.1:{}", free_port().unwrap())])
        .env("PGPASSWORD", PASSWORD)
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let sweeps = || -> u64 {
        pg.psql("daemon", "SELECT count(*) FROM sweeps")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let wait_for = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while sweeps() < n {
            assert!(
                Instant::now() < deadline,
                "{n} sweeps not recorded: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(1);
    let killed = pg
        .psql(
            "daemon",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'fleetsweep'",
        )
        .unwrap();
    assert_eq!(killed, "1", "the daemon's one connection");
    let before = sweeps();
    wait_for(before + 2);
    signal(child.id(), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("the connection was lost; connecting again"),
        "{log}"
    );
    assert!(!log.contains("post-processing the sweep failed"), "{log}");
}
