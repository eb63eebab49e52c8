#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the
# real fixtures of the repository, the hand-written seeds in fuzz/seeds/ and a
# run of the Linux probe script on this machine. Idempotent: seeds are named by
# content, so running it again adds nothing twice, and corpus entries libFuzzer
# found are kept. Usage: fuzz/seed.sh [CORPUS_DIR] (default fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FIX=$ROOT/tests/fixtures
OUT=$(realpath -m "${1:-fuzz/corpus}")
# Recorded macOS, Windows and WinRM material beyond the offline bundles: the
# repository's own fixtures (tests/fixtures, with their sources in SOURCES.md).
SHARED=$FIX

command -v python3 >/dev/null || { echo "fuzz/seed.sh: python3 is needed (apt-get install python3)" >&2; exit 1; }

ROOT=$ROOT FIX=$FIX OUT=$OUT SHARED=$SHARED python3 - <<'PY'
import hashlib, os, re, struct, subprocess, glob

ROOT, FIX, OUT, SHARED = (os.environ[k] for k in ("ROOT", "FIX", "OUT", "SHARED"))
# Seeds above this size are cut (text) or skipped (binary): libFuzzer's
# -max_len follows the largest seed, and big inputs slow every execution.
MAX = 128 * 1024
counts = {}

def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > MAX:
        return
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1

def read(path):
    with open(path, "rb") as f:
        return f.read()

def files(*patterns):
    out = []
    for p in patterns:
        out += [f for f in sorted(glob.glob(p, recursive=True)) if os.path.isfile(f)]
    return out

def section(nonce, name, body, rc=0):
    return f"@@fleetsweep:{nonce}:begin {name}\n{body}\n@@fleetsweep:{nonce}:end {name} rc={rc}\n"

def sections(text):
    """(nonce, [(name, body)]) of a probe run."""
    m = re.search(r"^@@fleetsweep:([A-Za-z0-9]+):", text, re.M)
    if not m:
        return None, []
    nonce = m.group(1)
    pat = re.compile(rf"^@@fleetsweep:{nonce}:begin (\S+)\n(.*?)\n?^@@fleetsweep:{nonce}:end \1 rc=\S+$", re.M | re.S)
    return nonce, [(m.group(1), m.group(2)) for m in pat.finditer(text)]

def trimmed(nonce, secs, lines=25):
    """A probe run with every section body cut to its first lines."""
    out = "".join(section(nonce, n, "\n".join(b.split("\n")[:lines])) for n, b in secs)
    return out + f"@@fleetsweep:{nonce}:done\n"

# Hand-written seeds (known_hosts, ssh_config, web.yml, globs) live in the repo.
for d in files(os.path.join(ROOT, "fuzz/seeds/*/*")):
    add(os.path.basename(os.path.dirname(d)), read(d))

# --- Linux probe: a real run on this machine, plus sections from fixtures. ---
script_rs = open(os.path.join(ROOT, "scanner/src/probes/linux/script.rs")).read()
framing = open(os.path.join(ROOT, "scanner/src/probes/framing.sh")).read()
body = script_rs[script_rs.index("pub const SCRIPT: &str = concat!("):]
body = body[: body.index('\n);')]
raw = re.findall(r'r#"(.*?)"#|(include_str!)', body, re.S)
script = "".join(framing if inc else lit for lit, inc in raw)
nonce = "S33dN0nce0000000000000000"
run = ""
try:
    run = subprocess.run(["sh", "-c", script], input=f"{nonce}\n/opt\n/etc/apt\n.\n",
                         capture_output=True, text=True, errors="replace", timeout=60).stdout
except Exception as e:  # a machine without sh tools still gets the fixtures
    print(f"fuzz/seed.sh: the Linux probe did not run here ({e}); fixtures only")
_, live = sections(run)
if live:
    add("linux_probe", trimmed(nonce, live))
    add("linux_probe", trimmed(nonce, live, 3))
LINUX_SEL = {"dpkg": 0, "rpm": 1, "apk": 2, "unit-files": 4, "processes": 5, "ps": 6,
             "proc-cmdline": 7, "proc-exe": 8, "os-release": 9, "uname": 10, "modules": 11,
             "paths": 12, "kesl-app-info": 13}
live_d = dict(live)
for name, b in live:
    if name in LINUX_SEL:
        add("linux_sections", bytes([LINUX_SEL[name]]) + "\n".join(b.split("\n")[:40]).encode())
if "systemd" in live_d:
    cut = lambda n: "\n".join(live_d.get(n, "").split("\n")[:40])
    add("linux_sections", b"\x03" + "\0".join([cut("systemd"), cut("systemd-running"), cut("unit-files")]).encode())
if "processes" in live_d:
    cut = lambda n: "\n".join(live_d.get(n, "").split("\n")[:40])
    add("linux_sections", b"\x05" + "\0".join([cut("processes"), cut("proc-cmdline")]).encode())
fixture_sections = [
    ("dpkg", "offline/linux-kesl-01/dpkg-query.txt"), ("dpkg", "linux/inspec-mocks/dpkg-query-W"),
    ("rpm", "linux/inspec-mocks/rpm-qa-queryformat"), ("apk", "linux/inspec-mocks/apk-info"),
    ("os-release", "offline/linux-kesl-01/os-release"), ("modules", "linux/inspec-mocks/lsmod"),
    ("kesl-app-info", "offline/linux-kesl-01/kesl-control-app-info.txt"),
]
fx = []
for name, rel in fixture_sections:
    text = read(os.path.join(FIX, rel)).decode("utf-8", "replace").rstrip("\n")
    add("linux_sections", bytes([LINUX_SEL[name]]) + text.encode())
    fx.append((name, text))
for f in files(os.path.join(FIX, "linux/osv-scalibr-dpkg-status/*"), os.path.join(FIX, "linux/inspec-mocks/dpkg-s-*")):
    add("linux_sections", b"\x00" + read(f))
add("linux_probe", trimmed("fuzz", fx))
add("linux_probe", section("fuzz", "dpkg", fx[0][1]) + "@@fleetsweep:fuzz:begin rpm\ncut")
for p in ("/etc/os-release", "/proc/modules"):
    if os.path.isfile(p):
        add("linux_sections", bytes([9 if "os-release" in p else 11]) + read(p)[:4096])

# --- macOS: the offline bundles' probe output and single-command files. ---
MAC_SEL = {"sw-vers": 0, "pkgutil": 1, "apps": 2, "launchd": 3, "sysext": 4, "kexts": 5,
           "browser-extensions": 6}
for f in files(os.path.join(FIX, "offline/*/macos.txt")):
    text = read(f).decode("utf-8", "replace")
    add("macos_probe", text)
    n, secs = sections(text)
    for name, b in secs:
        if name in MAC_SEL:
            add("macos_sections", bytes([MAC_SEL[name]]) + b.encode())
        if name == "paths":
            add("linux_sections", b"\x0c" + b.encode())
    if secs:
        add("macos_probe", trimmed(n, secs, 2))
MAC_FILES = {"sw_vers.txt": 0, "pkgutil-pkgs.txt": 1, "launchctl-list.txt": 3,
             "systemextensionsctl-list.txt": 4, "kextstat.txt": 5, "codesign.txt": 7,
             "launchctl-list": 3}
for f in files(os.path.join(FIX, "offline/*/*"), os.path.join(FIX, "macos/inspec-mocks/*")):
    if os.path.basename(f) in MAC_FILES:
        add("macos_sections", bytes([MAC_FILES[os.path.basename(f)]]) + read(f))
for f in files(os.path.join(FIX, "macos/**/*plist"), os.path.join(FIX, "offline/*/Info.plist/*"),
               os.path.join(FIX, "offline/*/LaunchDaemons/*"), os.path.join(SHARED, "macos/**/*plist")):
    add("macos_plist", read(f))

# --- Windows: probe JSON, CLIXML (big Get-Service exports cut to a few objects). ---
for f in files(os.path.join(FIX, "windows/probe/*.json"), os.path.join(FIX, "offline/*/windows.json")):
    add("windows_json", read(f))
def clixml_head(data, objects=3):
    text = data.decode("utf-8-sig", "replace")
    head, _, rest = text.partition("<Obj ")
    if not rest:
        return text
    # Top-level objects are the <Obj> children of <Objs>: split on their closing
    # tags at nesting depth 0.
    out, depth, i, kept = [head], 0, 0, 0
    body = "<Obj " + rest
    for m in re.finditer(r"<(/?)Obj\b[^>]*?(/?)>", body):
        if m.group(2):
            continue
        depth += -1 if m.group(1) else 1
        if depth == 0:
            kept += 1
            if kept == objects:
                return head + body[: m.end()] + "\n</Objs>"
    return text
for f in files(os.path.join(FIX, "windows/**/*.xml"), os.path.join(FIX, "offline/*/*.xml"),
               os.path.join(SHARED, "windows/**/*.xml")):
    data = read(f)
    add("windows_clixml", data if len(data) <= MAX else clixml_head(data))

# --- Offline bundles: each fixture bundle as one input (see offline_bundle.rs). ---
OSES = {"linux": 0, "macos": 1, "windows": 2}
for host in files(os.path.join(FIX, "offline/*/host.yaml")):
    d = os.path.dirname(host)
    add("offline_bundle", b"\x80" + read(host))
    m = re.search(r"^os:\s*(\w+)", read(host).decode(), re.M)
    if not m or m.group(1) not in OSES:
        continue
    data = bytes([OSES[m.group(1)]])
    for f in files(os.path.join(d, "*"), os.path.join(d, "*/*")):
        rel = os.path.relpath(f, d)
        if rel != "host.yaml":
            data += b"%%FILE " + rel.encode() + b"\n" + read(f)
    add("offline_bundle", data)

# --- WinRM: SOAP responses (recorded exchanges), sealed bodies, keytabs. ---
for f in files(os.path.join(FIX, "winrm/**/*.yml"), os.path.join(SHARED, "winrm/**/*.yml")):
    for line in read(f).decode("utf-8", "replace").splitlines():
        m = re.match(r"\s*(?:response|request): (.*)$", line)
        if m and m.group(1).startswith("<"):
            add("winrm_soap", m.group(1))
for f in files(os.path.join(SHARED, "winrm/**/*.xml")):
    add("winrm_soap", read(f))
def mime(plain_len, sig, sealed, space=False):
    b = b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
    b += b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n" % plain_len
    b += b"--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
    b += struct.pack("<I", len(sig)) + sig + sealed
    return b + (b"-- Encrypted Boundary--\r\n" if space else b"--Encrypted Boundary--\r\n")
add("winrm_mime", mime(5, bytes(range(16)), b"hello"))
add("winrm_mime", mime(12, b"\x05\x04" + bytes(58), b"<s:Envelope/>", space=True))
add("winrm_mime", bytes([16]) + bytes(range(16)) + b"sealed--Encrypted Boundary")
def keytab(entries):
    out = b"\x05\x02"
    for realm, parts, kvno8, enctype, key, kvno32 in entries:
        e = struct.pack(">H", len(parts)) + struct.pack(">H", len(realm)) + realm
        for p in parts:
            e += struct.pack(">H", len(p)) + p
        e += struct.pack(">IIBH", 1, 1700000000, kvno8, enctype) + struct.pack(">H", len(key)) + key
        if kvno32 is not None:
            e += struct.pack(">I", kvno32)
        out += struct.pack(">i", len(e)) + e
    return out
kt = keytab([(b"EXAMPLE.COM", [b"scanner"], 3, 18, bytes(32), 3),
             (b"EXAMPLE.COM", [b"scanner"], 2, 17, bytes(16), None),
             (b"EXAMPLE.COM", [b"HTTP", b"win01.example.com"], 1, 23, bytes(16), 300)])
add("keytab", kt)
add("keytab", kt + b"\0scanner@example.com")
add("keytab", kt[:2] + struct.pack(">i", -20) + bytes(20) + kt[2:] + b"\0EXAMPLE\\scanner")

# --- Configuration files. ---
for f in files(os.path.join(FIX, "inventory/*"), os.path.join(ROOT, "configs/inventory.example.yaml"),
               os.path.join(ROOT, "tests/hosts/**/*.yaml"), os.path.join(ROOT, "tests/hosts/**/*.ini")):
    add("inventory", read(f))
for f in files(os.path.join(FIX, "catalog/*.yaml"), os.path.join(ROOT, "configs/catalog/*.yaml")):
    add("catalog", read(f))
for f in files(os.path.join(FIX, "exceptions/*.yaml")):
    add("exceptions", read(f))

for t in sorted(counts):
    print(f"  {t}: {counts[t]} seeds")
PY
echo "fuzz/seed.sh: corpora in $OUT"
