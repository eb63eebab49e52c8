#!/usr/bin/env python3
"""Builds configs/catalog/kaspersky.yaml from the research list
(configs/catalog/tools/kaspersky-footprints.yaml, or the file given as the only
argument): one product per Kaspersky product, every OS, each signature with its
source and confidence.

Run from the repository root:  python3 configs/catalog/tools/build_kaspersky.py [RESEARCH.yaml]
The output is committed; review the diff after re-running.
"""
import os
import re
import sys
import yaml

if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
    print(__doc__.strip())
    sys.exit(0)
RESEARCH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "kaspersky-footprints.yaml")
OUT = "configs/catalog/kaspersky.yaml"

# (regex on the research `product`, product id, product name); first match wins.
PRODUCTS = [
    (r"UltraAV|UltraVPN", None, None),                       # ultraav.yaml
    (r"Products Remover|kavremover", None, None),            # removal tool: not banned software
    (r"Azure VM extensions|container \(image", None, None),  # not host footprints
    (r"KSC product codes", None, None),
    (r"Linux File Server|KAV for Linux File Server", "kav4fs", "Kaspersky Anti-Virus for Linux File Server"),
    (r"KESL|Endpoint Security (10 )?for Linux", "kesl", "Kaspersky Endpoint Security for Linux"),
    (r"Embedded Systems Security for Linux|KESS for Linux", "kess-linux", "Kaspersky Embedded Systems Security for Linux"),
    (r"Linux Mail Server", "klms", "Kaspersky Security for Linux Mail Server"),
    (r"KSC Linux \(server-side|KSC Linux Administration|Security Center Linux", "ksc-linux", "Kaspersky Security Center Linux (Administration Server)"),
    (r"Web Console", "ksc-web-console", "Kaspersky Security Center Web Console"),
    (r"Light Agent", "ksvla", "Kaspersky Security for Virtualization Light Agent"),
    (r"Endpoint Agent", "kea", "Kaspersky Endpoint Agent"),
    (r"Private Security Network", "kpsn", "Kaspersky Private Security Network"),
    (r"KUMA|Unified Monitoring", "kuma", "Kaspersky Unified Monitoring and Analysis Platform"),
    (r"VPN Secure Connection", "ksec", "Kaspersky VPN Secure Connection"),
    (r"Password Manager", "password-manager", "Kaspersky Password Manager"),
    (r"Small Office Security", "ksos", "Kaspersky Small Office Security"),
    (r"Protection|URL Advisor|Virtual Keyboard", "browser-extensions", "Kaspersky browser extensions (Kaspersky Protection, URL Advisor, Virtual Keyboard)"),
    (r"for Mac|KES for Mac|Downloader\.app|klif kext|\(macOS\)|iOS/macOS", "kaspersky-mac", "Kaspersky for Mac (Endpoint Security for Mac, Anti-Virus / Internet Security for Mac)"),
    (r"Network Agent|klnagent", "klnagent", "Kaspersky Security Center Network Agent"),
    (r"Administration Console", "ksc-console", "Kaspersky Security Center Administration Console"),
    (r"Administration Server|administration plug-in|Plug-in for Microsoft", "ksc-server", "Kaspersky Security Center Administration Server"),
    (r"Windows Server|Windows File Servers", "ksws", "Kaspersky Security for Windows Server"),
    (r"6\.0 for Windows Workstations", "kav-workstations", "Kaspersky Anti-Virus 6.0 for Windows Workstations"),
    (r"Endpoint Security for Windows / consumer", "kaspersky-windows", "Kaspersky protection for Windows (Endpoint Security or a home product)"),
    (r"Endpoint Security for Windows", "kes-windows", "Kaspersky Endpoint Security for Windows"),
    (r"consumer line", "kaspersky-home", "Kaspersky home products for Windows (Anti-Virus, Internet Security, Total Security, Security Cloud, Free, Standard, Plus, Premium)"),
    (r"^any Kaspersky|legacy FreeBSD", "unknown", None),
]

# research kind -> catalog kind (None: no probe can see it; listed in README)
KINDS = {
    "package": "package", "service": "service", "process": "process", "path": "path",
    "kernel_module": "kernel_module", "display_name": "display_name", "publisher": "publisher",
    "driver": "driver", "registry_key": "registry_key", "certificate": "certificate",
    "msi_product_code": "msi_product_code", "pkg_receipt": "pkg_receipt", "bundle_id": "bundle_id",
    "team_id": "team_id", "launchd_label": "launchd_label", "system_extension": "system_extension",
    "kext": "kext", "browser_extension": "browser_extension",
    "module": None, "ksc_product_id": None, "wsc_display_name": None, "native_messaging_host": None,
    "product_note": None, "container_image": None, "authorization_right": None, "preferences": None,
}


def product_of(text):
    for rx, pid, name in PRODUCTS:
        if re.search(rx, text):
            return pid, name
    raise SystemExit(f"no product mapping for research product {text!r}")


def glob_escape(s):
    return re.sub(r"([\[\]{}])", r"\\\1", s)


def values(e):
    """The identifier values of a research entry, cleaned for the catalog."""
    v = str(e["value"]).strip()
    kind = e["kind"]
    if v.startswith("(") or v.lower().startswith("none"):
        return []
    v = re.sub(r"\s*\((FreeBSD|process|pre-2015[^)]*)\)\s*$", "", v)
    v = re.sub(r"\s*\(old: ([^)]*)\)\s*$", r" , \1", v)  # "X (old: Y)" -> X and Y
    parts = [p.strip() for p in re.split(r"\s+,\s+|\s*;\s*", v) if p.strip()] if kind == "path" else [v]
    out = []
    for p in parts:
        if kind == "path" or kind == "registry_key":
            p = p.replace("\\", "/").rstrip("/")
            if e["os"] == "windows" and p.startswith("%"):
                continue  # environment-variable paths need expansion on the host
            p = glob_escape(p)
        elif kind == "driver" and "\\" in p:
            # A driver folder such as C:\Windows\System32\drivers\K4W-21-25\*.sys:
            # the matcher sees image paths with `/` and as registered
            # (\SystemRoot\System32\... or C:\Windows\System32\...), so match
            # from System32 on, whatever comes before it.
            q = p.replace("\\", "/")
            i = q.lower().find("/system32/")
            p = ("*" + q[i:]) if i >= 0 else q
        elif kind == "service" and (" " in p or "/" in p):
            continue  # descriptive entries such as "KSC* / kl* (...)"
        elif kind in ("display_name", "publisher") and "*" not in p:
            # Names are versioned and localized: match the documented prefix.
            p = glob_escape(p) + ("*" if kind == "display_name" else "")
        else:
            p = glob_escape(p) if "*" not in p else p
        out.append(p)
    return out


def section_os(e, kind):
    if e["os"] == "any":
        return "any"
    if kind == "browser_extension":
        return "any"
    return e["os"]


def main():
    data = yaml.safe_load(open(RESEARCH))
    products = {}
    order = []
    left_out = []
    for e in data["entries"]:
        pid, name = product_of(e["product"])
        kind = KINDS.get(e["kind"])
        if pid is None or kind is None:
            left_out.append((e["os"], e["kind"], e["value"], e["product"]))
            continue
        if e["kind"] == "path" and "/opt/kaspersky/kics/" in str(e["value"]):
            # One research row lists several products' install roots.
            for sub, p2, n2 in [("kics", "kics-linux", "Kaspersky Industrial CyberSecurity for Linux Nodes"),
                                ("kess", "kess-linux", None), ("klms", "klms", None),
                                ("kuma", "kuma", None), ("ScanEngine", "scan-engine", "Kaspersky Scan Engine")]:
                add(products, order, p2, n2, "linux", "path", f"/opt/kaspersky/{sub}", e)
            continue
        for v in values(e):
            add(products, order, pid, name, section_os(e, kind), kind, v, e)
    write(products, order)
    print(f"{sum(len(s) for p in products.values() for s in p['signatures'].values())} signatures in {len(products)} products; left out {len(left_out)}:")
    for lo in left_out:
        print("  left out:", lo)


def add(products, order, pid, name, os_, kind, value, e):
    if pid not in products:
        products[pid] = {"name": name, "signatures": {}}
        order.append(pid)
    if name and not products[pid]["name"]:
        products[pid]["name"] = name
    sigs = products[pid]["signatures"].setdefault(os_, [])
    if any(s.get(kind) == value for s in sigs):
        return
    sig = {kind: value, "source": e["source"], "confidence": e.get("confidence", "medium")}
    if e.get("note"):
        sig["note"] = e["note"]
    sigs.append(sig)


# Vendor traits: catch Kaspersky products that are in no list. Matched only
# against evidence no specific product claimed (fallback).
FALLBACK = {
    "linux": [
        {"path": "/opt/kaspersky", "source": "Kaspersky install root (Kaspersky Support collect.sh; Checkmk agents/plugins/kaspersky_av)"},
        {"path": "/opt/kaspersky/*", "source": "Kaspersky install root (Checkmk agents/plugins/kaspersky_av: kesl, kav4fs; support.kaspersky.com/ksvla/6.3/en-US/179792.htm: klnagent64)"},
        {"path": "/var/opt/kaspersky", "source": "Kaspersky data root (Kaspersky Support collect.sh; hub.docker.com/r/dron995/kesl-standalone)"},
        {"path": "/var/opt/kaspersky/*", "source": "Kaspersky data root (Kaspersky Support collect.sh; hub.docker.com/r/dron995/kesl-standalone)"},
        {"path": "/etc/opt/kaspersky", "source": "Kaspersky config root (Kaspersky Support collect.sh)"},
        {"path": "/etc/opt/kaspersky/*", "source": "Kaspersky config root (Kaspersky Support collect.sh)"},
        {"path": "/var/log/kaspersky", "source": "Kaspersky log root (Kaspersky Support collect.sh; hub.docker.com/r/dron995/kesl-standalone)"},
        {"service_exec": "/opt/kaspersky/**", "source": "any unit whose program lives under the Kaspersky install root"},
        {"process_path": "/opt/kaspersky/**", "source": "any process running from the Kaspersky install root"},
        {"package_vendor": "*Kaspersky Lab*", "source": "package vendor/maintainer naming the vendor (company string Kaspersky Lab: Microsoft allocated-altitudes Company column)"},
        {"package_vendor": "AO Kaspersky*", "source": "legal entity AO Kaspersky Lab (BOD 17-01, FR 2017-19838)"},
        {"package_vendor": "Kaspersky", "source": "publisher string 'Kaspersky' (demisto/content KSC inventory)"},
        {"package_vendor": "Kaspersky <*>", "source": "maintainer field form 'Name <email>'"},
        {"package_vendor": "*@kaspersky.com*", "source": "vendor e-mail domain"},
    ],
    "windows": [
        {"publisher": "AO Kaspersky Lab*", "source": "ARP Publisher and Authenticode signer AO Kaspersky Lab (public inventory fixtures and allow-lists; configs/catalog/tools/kaspersky-footprints.yaml)"},
        {"publisher": "Kaspersky Lab*", "source": "Microsoft allocated-altitudes Company column (MicrosoftDocs/windows-driver-docs ifs/allocated-altitudes.md)"},
        {"publisher": "Kaspersky", "source": "demisto/content KSC inventory 'Publisher: Kaspersky'"},
        {"display_name": "Kaspersky *", "source": "Greenbone gb_kaspersky_av_detect.nasl matches ARP DisplayName starting with Kaspersky"},
        {"registry_key": "HKLM/SOFTWARE/KasperskyLab", "source": "Greenbone gate key (gb_kaspersky_av_detect.nasl); Checkmk kaspersky_av_client.vbs"},
        {"registry_key": "HKLM/SOFTWARE/WOW6432Node/KasperskyLab", "source": "Checkmk agents/windows/plugins/kaspersky_av_client.vbs"},
        {"path": "C:/Program Files*/Kaspersky Lab/*", "source": "install folder (Sigma win_codeintegrity_attempted_dll_load.yml; EUCweb/BIS-F 10_PrepBISF_AV-KAVFS.ps1)"},
        {"certificate": "*O=AO Kaspersky Lab*", "source": "Kaspersky Anti-Virus Personal Root Certificate left in Cert:\\LocalMachine\\Root (public TLS-interception logs; configs/catalog/tools/kaspersky-footprints.yaml)"},
    ],
    "macos": [
        {"team_id": "2Y8XE5CQ94", "source": "Apple Developer Team ID of Kaspersky (codesign of Downloader.app: TeamIdentifier=2Y8XE5CQ94)"},
        {"bundle_id": "com.kaspersky.*", "source": "bundle id prefix (com.kaspersky.kav: Kaspersky Anti-Virus for Mac uninstallation script; com.kaspersky.kav.downloader: codesign output)"},
        {"pkg_receipt": "com.kaspersky.*", "source": "pkgutil ids com.kaspersky.* (com.kaspersky.kav.core: Kaspersky Anti-Virus for Mac uninstallation script)"},
        {"launchd_label": "com.kaspersky.*", "source": "launchd labels com.kaspersky.kav* (Kaspersky Anti-Virus for Mac uninstallation script)"},
        {"path": "/Library/Application Support/Kaspersky Lab/*", "source": "Kaspersky support folder (gist.github.com/mrowell/732b71cc3699865e6aefe54edf3c1329; Kaspersky Support collect.sh)"},
    ],
}

HEADER = """\
# Kaspersky products: every product and OS from the research list, each signature with
# its source. Generated by configs/catalog/tools/build_kaspersky.py from
# configs/catalog/tools/kaspersky-footprints.yaml (see configs/catalog/README.md), then
# reviewed. Format: docs/catalog.md.
"""

DEFAULTS = {
    "policy": "ban",
    "effective": "2024-07-20",
    "deadline": "2024-09-29",
    "grace_days": 30,
    "references": [
        {"id": "BIS-ICTS-2021-002", "title": "Commerce/BIS Final Determination ICTS-2021-002, 89 FR 52434 (FR Doc 2024-13532): no sales from 2024-07-20, no updates from 2024-09-29",
         "url": "https://regulations.justia.com/regulations/fedreg/2024/06/24/2024-13532.html"},
        {"id": "BOD-17-01", "title": "DHS Binding Operational Directive 17-01: remove Kaspersky-branded products from federal information systems",
         "url": "https://www.cisa.gov/news-events/directives/binding-operational-directive-17-01"},
        {"id": "FCC-Covered-List", "title": "FCC Covered List (2022-03-25): information security products supplied by AO Kaspersky Lab",
         "url": "https://www.fcc.gov/supplychain/coveredlist"},
    ],
    "remediation": {
        "linux": "Remove the Kaspersky packages with the host's package manager (apt-get purge kesl klnagent64 ... / dnf remove kesl klnagent64 ...), stop and disable their units, then delete /opt/kaspersky, /var/opt/kaspersky, /etc/opt/kaspersky and /var/log/kaspersky.",
        "windows": "Uninstall the product from Apps & Features or with its UninstallString (msiexec /x {ProductCode}); if it cannot be removed or leaves files, run Kaspersky's removal tool kavremover; remove the Kaspersky root certificate from Cert:\\LocalMachine\\Root.",
        "macos": "Run the product's uninstaller (Kaspersky Uninstaller app, or kavremover for Mac), then remove /Library/Application Support/Kaspersky Lab and any com.kaspersky.* launchd jobs.",
    },
}

PRODUCT_REMEDIATION = {
    "kesl": {"linux": "apt-get purge kesl kesl-gui (or dnf/yum remove kesl kesl-gui); then remove /opt/kaspersky/kesl, /var/opt/kaspersky/kesl, /etc/opt/kaspersky and /var/log/kaspersky/kesl."},
    "klnagent": {"linux": "apt-get purge klnagent64 klnagent (or dnf/yum remove klnagent64 klnagent); then remove /opt/kaspersky/klnagent64, /opt/kaspersky/klnagent and /var/opt/kaspersky/klnagent."},
}


def write(products, order):
    doc = {
        "catalog": {"name": "kaspersky", "version": "2026.11.22",
                    "description": "Kaspersky products, banned in the US (BIS ICTS-2021-002; BOD 17-01; FCC Covered List)"},
        "vendors": [{"id": "kaspersky", "name": "Kaspersky", "defaults": DEFAULTS, "products": []}],
    }
    prods = doc["vendors"][0]["products"]
    for pid in order:
        if pid == "unknown":
            continue
        p = products[pid]
        entry = {"id": pid, "name": p["name"]}
        if pid in PRODUCT_REMEDIATION:
            entry["remediation"] = PRODUCT_REMEDIATION[pid]
        entry["signatures"] = {os_: p["signatures"][os_] for os_ in ("linux", "windows", "macos", "any") if os_ in p["signatures"]}
        prods.append(entry)
    fb = {os_: list(sigs) for os_, sigs in FALLBACK.items()}
    for os_, sigs in products.get("unknown", {"signatures": {}})["signatures"].items():
        fb.setdefault(os_, [])
        for s in sigs:
            if not any({k: v for k, v in x.items() if k not in ("source", "confidence", "note")} ==
                       {k: v for k, v in s.items() if k not in ("source", "confidence", "note")} for x in fb[os_]):
                fb[os_].append(s)
    prods.append({"id": "unknown", "name": "Unknown Kaspersky product", "fallback": True,
                  "signatures": {os_: fb[os_] for os_ in ("linux", "windows", "macos", "any") if os_ in fb}})
    with open(OUT, "w") as f:
        f.write(HEADER)
        yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True, width=120)


if __name__ == "__main__":
    main()
