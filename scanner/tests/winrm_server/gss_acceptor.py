#!/usr/bin/python3
"""The server side of Kerberos for the WinRM test server: MIT krb5's GSS-API
acceptor (Debian's python3-gssapi over libgssapi-krb5), driven over stdin/stdout
by the Rust replay server in `mod.rs`, one JSON object per line each way.

It accepts SPNEGO/Kerberos tokens with the service keys in $KRB5_KTNAME (a
keytab the test exported from its own MIT KDC), and seals and unseals WinRM
message bodies the way a Windows host does (MS-WSMV 2.2.9.1: a GSS wrap token
split into a header and the encrypted payload). Requests:

  {"op": "accept", "ctx": N, "token": B64, "cb": B64?}
      -> {"ok": true, "token": B64, "complete": bool, "initiator": str|null, "mech": str}
  {"op": "unwrap", "ctx": N, "header": B64, "data": B64} -> {"ok": true, "data": B64}
  {"op": "wrap", "ctx": N, "data": B64} -> {"ok": true, "header": B64, "data": B64}

Any failure answers {"ok": false, "error": "..."}; the helper itself keeps running.
"""

import base64
import json
import sys

import gssapi
from gssapi.raw import IOV, IOVBufferType, unwrap_iov, wrap_iov

contexts = {}


def b64(data):
    return base64.b64encode(data or b"").decode()


def handle(req):
    op = req["op"]
    n = req["ctx"]
    if op == "accept":
        state = contexts.get(n)
        if state is None or state["complete"]:
            # "cb": the TLS channel binding's application data this host expects
            # (tls-server-end-point of its own certificate); MIT then refuses an
            # authenticator bound to another certificate. (The raw call: the
            # high-level SecurityContext does not pass bindings when accepting.)
            bindings = None
            if req.get("cb"):
                bindings = gssapi.raw.ChannelBindings(application_data=base64.b64decode(req["cb"]))
            state = {"ctx": None, "complete": False, "cb": bindings}
            contexts[n] = state
        res = gssapi.raw.accept_sec_context(
            base64.b64decode(req["token"]),
            gssapi.Credentials(usage="accept"),
            state["ctx"],
            state["cb"],
        )
        state["ctx"] = res.context
        state["complete"] = not res.more_steps
        return {
            "token": b64(res.token),
            "complete": state["complete"],
            "initiator": str(gssapi.Name(base=res.initiator_name)) if state["complete"] else None,
            "mech": res.mech.dotted_form if state["complete"] else "",
        }
    state = contexts.get(n)
    if state is None or not state["complete"]:
        raise ValueError("no established context %r" % n)
    ctx = state["ctx"]
    if op == "unwrap":
        # A Windows-style header (token header, confounder, rotated checksum)
        # and the payload; MIT unwraps that layout with an empty trailing DATA.
        iov = IOV(
            (IOVBufferType.header, False, base64.b64decode(req["header"])),
            (IOVBufferType.data, False, base64.b64decode(req["data"])),
            (IOVBufferType.data, False, b""),
            std_layout=False,
        )
        res = unwrap_iov(ctx, iov)
        if not res.encrypted:
            raise ValueError("message was signed, not sealed")
        return {"data": b64(iov[1].value)}
    if op == "wrap":
        iov = IOV(
            IOVBufferType.header,
            base64.b64decode(req["data"]),
            IOVBufferType.padding,
            std_layout=False,
        )
        wrap_iov(ctx, iov, confidential=True)
        return {"header": b64(iov[0].value), "data": b64((iov[1].value or b"") + (iov[2].value or b""))}
    raise ValueError("unknown op %r" % op)


def main():
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
            answer["ok"] = True
        except Exception as e:  # noqa: BLE001 - every failure goes back to the test
            answer = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
