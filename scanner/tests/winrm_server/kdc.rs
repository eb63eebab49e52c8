//! A real MIT Kerberos KDC (Debian's `krb5kdc`) for the WinRM Kerberos tests,
//! and the MIT GSS-API acceptor that plays the Windows host's side of it.
//!
//! [`Kdc::start`] makes a realm of its own in a temp dir: a database created by
//! `kdb5_util`, principals added by `kadmin.local` (users with
//! `+requires_preauth`, as Active Directory requires), the service keys exported
//! to a keytab, and `krb5kdc -n` listening on TCP on 127.0.0.1 only. The
//! `krb5.conf` it writes names that KDC; the client finds it either through
//! `winrm.kdc` or through `KRB5_CONFIG`, as a user's machine would.
//!
//! [`GssAcceptor`] runs `gss_acceptor.py` under Debian's python3 with
//! python3-gssapi, so the server side of the handshake and of message sealing is
//! MIT krb5's, not `sspi`'s: the client is checked against an implementation it
//! does not share code with.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

pub const REALM: &str = "FLEETSWEEP.TEST";
const KRB5KDC: &str = "/usr/sbin/krb5kdc";
const KDB5_UTIL: &str = "/usr/sbin/kdb5_util";
const KADMIN_LOCAL: &str = "/usr/sbin/kadmin.local";
/// Debian's interpreter, where python3-gssapi lives (not a pyenv one on PATH).
const PYTHON: &str = "/usr/bin/python3";

fn require_tools() {
    for tool in [KRB5KDC, KDB5_UTIL, KADMIN_LOCAL, PYTHON] {
        assert!(
            Path::new(tool).exists(),
            "{tool} not found: the Kerberos tests need a real MIT KDC and GSS-API \
             (apt-get install -y krb5-kdc krb5-admin-server python3-gssapi; scripts/setup \
             installs them)"
        );
    }
    let gssapi = Command::new(PYTHON)
        .args(["-c", "import gssapi.raw.ext_dce"])
        .output()
        .expect("running python3");
    assert!(
        gssapi.status.success(),
        "{PYTHON} cannot import gssapi (apt-get install -y python3-gssapi): {}",
        String::from_utf8_lossy(&gssapi.stderr)
    );
}

pub struct Kdc {
    dir: TempDir,
    child: Child,
    pub port: u16,
    /// `krb5.conf` naming this KDC for [`REALM`].
    pub krb5_conf: PathBuf,
    /// The service principals' keys.
    pub keytab: PathBuf,
}

impl Kdc {
    /// A realm with `users` (name, password) and `services` (e.g.
    /// `HTTP/win-ws-01.fleetsweep.test`), served on 127.0.0.1.
    pub fn start(users: &[(&str, &str)], services: &[&str]) -> Kdc {
        require_tools();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let kdc_conf = d.join("kdc.conf");
        std::fs::write(
            &kdc_conf,
            format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n {REALM} = {{\n  database_name = {db}\n  key_stash_file = {stash}\n  \
                 acl_file = {acl}\n  kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n  \
                 supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }}\n\
                 [logging]\n kdc = FILE:{log}\n",
                db = d.join("principal").display(),
                stash = d.join("stash").display(),
                acl = d.join("kadm5.acl").display(),
                log = d.join("kdc.log").display(),
            ),
        )
        .unwrap();
        std::fs::write(d.join("kadm5.acl"), "").unwrap();
        let krb5_conf = d.join("krb5.conf");
        std::fs::write(
            &krb5_conf,
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n \
                 dns_lookup_realm = false\n rdns = false\n udp_preference_limit = 1\n\
                 [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
            ),
        )
        .unwrap();
        let tool = |program: &str, args: &[&str]| run_tool(&krb5_conf, &kdc_conf, program, args);
        let kadmin = |query: &str| tool(KADMIN_LOCAL, &["-r", REALM, "-q", query]);
        tool(
            KDB5_UTIL,
            &["create", "-s", "-r", REALM, "-P", "fleetsweep-master-key"],
        );
        for (user, password) in users {
            kadmin(&format!("addprinc -pw {password} +requires_preauth {user}"));
        }
        let keytab = d.join("services.keytab");
        for service in services {
            kadmin(&format!("addprinc -randkey {service}"));
            kadmin(&format!("ktadd -k {} {service}", keytab.display()));
        }
        // It logs to kdc.log (read on failure), not to its standard streams.
        let mut child = Command::new(KRB5KDC)
            .args(["-n", "-r", REALM])
            .env("KRB5_CONFIG", &krb5_conf)
            .env("KRB5_KDC_PROFILE", &kdc_conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting krb5kdc");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(d.join("kdc.log")).unwrap_or_default();
                panic!("krb5kdc exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "krb5kdc did not listen on 127.0.0.1:{port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Kdc {
            dir,
            child,
            port,
            krb5_conf,
            keytab,
        }
    }

    /// Exports `user`'s current keys to a keytab of its own (`ktadd -norandkey`,
    /// so the password stays valid), as an admin does for a scan account.
    pub fn user_keytab(&self, user: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{user}.keytab"));
        self.kadmin(&format!("ktadd -k {} -norandkey {user}", path.display()));
        path
    }

    /// Changes `user`'s password (its keys get a new kvno).
    pub fn change_password(&self, user: &str, password: &str) {
        self.kadmin(&format!("cpw -pw {password} {user}"));
    }

    fn kadmin(&self, query: &str) {
        run_tool(
            &self.krb5_conf,
            &self.dir.path().join("kdc.conf"),
            KADMIN_LOCAL,
            &["-r", REALM, "-q", query],
        );
    }

    /// The host side for this realm: MIT's acceptor with the service keys.
    pub fn host(&self) -> super::ServerAuth {
        super::ServerAuth::Kerberos {
            keytab: self.keytab.clone(),
            krb5_conf: self.krb5_conf.clone(),
        }
    }

    /// `tcp://127.0.0.1:PORT`, as `winrm.kdc` takes it.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The KDC's own log: which tickets it issued, which requests it refused.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default()
    }

    /// Stops the KDC (to test a KDC that is down).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs an MIT admin tool on this realm's files; its failure fails the test.
fn run_tool(krb5_conf: &Path, kdc_conf: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .env("KRB5_CONFIG", krb5_conf)
        .env("KRB5_KDC_PROFILE", kdc_conf)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An unused TCP port on 127.0.0.1 (bound once, released, then given to krb5kdc).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the acceptor says of a finished handshake.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub token: Vec<u8>,
    pub complete: bool,
    /// The client principal, e.g. `alice@FLEETSWEEP.TEST`.
    pub initiator: Option<String>,
    /// The mechanism under SPNEGO: `1.2.840.113554.1.2.2` is Kerberos 5.
    pub mech: String,
}

/// MIT krb5's acceptor, one helper process per replay server.
pub struct GssAcceptor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl GssAcceptor {
    pub fn start(keytab: &Path, krb5_conf: &Path) -> GssAcceptor {
        require_tools();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/winrm_server/gss_acceptor.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .env("KRB5_KTNAME", keytab)
            .env("KRB5_CONFIG", krb5_conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{PYTHON} {}: {e}", script.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        GssAcceptor {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, request: serde_json::Value) -> Result<serde_json::Value, String> {
        writeln!(self.stdin, "{request}").map_err(|e| format!("acceptor: {e}"))?;
        self.stdin.flush().map_err(|e| format!("acceptor: {e}"))?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("acceptor: {e}"))?;
        let answer: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("acceptor said {line:?}: {e}"))?;
        if answer["ok"].as_bool() == Some(true) {
            Ok(answer)
        } else {
            Err(answer["error"].as_str().unwrap_or("?").to_string())
        }
    }

    /// `cb`: the channel binding application data the host expects (https).
    pub fn accept(
        &mut self,
        ctx: u64,
        token: &[u8],
        cb: Option<&[u8]>,
    ) -> Result<Accepted, String> {
        let mut req = serde_json::json!({"op": "accept", "ctx": ctx, "token": b64(token)});
        if let Some(cb) = cb {
            req["cb"] = serde_json::Value::String(b64(cb));
        }
        let a = self.call(req)?;
        Ok(Accepted {
            token: unb64(&a["token"]),
            complete: a["complete"].as_bool().unwrap_or(false),
            initiator: a["initiator"].as_str().map(str::to_string),
            mech: a["mech"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// MS-WSMV unsealing: the signature part is the GSS wrap header.
    pub fn unwrap(&mut self, ctx: u64, header: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
        let a = self.call(serde_json::json!({
            "op": "unwrap", "ctx": ctx, "header": b64(header), "data": b64(data)
        }))?;
        Ok(unb64(&a["data"]))
    }

    /// Returns (header, sealed payload).
    pub fn wrap(&mut self, ctx: u64, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let a = self.call(serde_json::json!({"op": "wrap", "ctx": ctx, "data": b64(data)}))?;
        Ok((unb64(&a["header"]), unb64(&a["data"])))
    }
}

impl Drop for GssAcceptor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(v: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .unwrap_or_default()
}
