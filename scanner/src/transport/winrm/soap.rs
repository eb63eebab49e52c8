//! WS-Management envelopes: our own templates written with quick-xml, and a small,
//! bounded reader for what Windows sends back.
//!
//! Requests follow the header order and values that pypsrp sends to real Windows
//! hosts (the recordings in `tests/fixtures/winrm/` are compared against ours), so a
//! server that accepted those accepts ours. Responses are untrusted: the reader
//! caps depth and element count, never recurses, and treats every missing piece as
//! an error rather than a panic.

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

pub const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
pub const NS_WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
pub const NS_WSMV: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
pub const NS_SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

pub const ACTION_CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
pub const ACTION_DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
pub const ACTION_COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
pub const ACTION_RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
pub const ACTION_SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
/// `terminate` rather than pypsrp's `ctrl_c`: it ends the process even when it
/// ignores console control events, and the probe has nothing left to flush.
pub const SIGNAL_TERMINATE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
const STATE_DONE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";

/// WSManFault code of a Receive long poll that simply had nothing to say yet.
pub const FAULT_OPERATION_TIMEOUT: &str = "2150858793";

/// The parts of `s:Header` that change per request.
pub struct Header<'a> {
    pub action: &'a str,
    /// `wsa:To`: the endpoint URL.
    pub to: &'a str,
    pub message_id: &'a str,
    pub session_id: &'a str,
    pub operation_timeout_secs: u64,
    pub max_envelope_size: u32,
    /// `wsman:OptionSet` entries, in order.
    pub options: &'a [(&'a str, &'a str)],
    pub shell_id: Option<&'a str>,
}

type W = Writer<Vec<u8>>;

fn start(w: &mut W, name: &str, attrs: &[(&str, &str)]) {
    let el = BytesStart::new(name).with_attributes(attrs.iter().copied());
    // Writing into a Vec cannot fail.
    let _ = w.write_event(Event::Start(el));
}

fn end(w: &mut W, name: &str) {
    let _ = w.write_event(Event::End(BytesEnd::new(name)));
}

fn empty(w: &mut W, name: &str, attrs: &[(&str, &str)]) {
    let el = BytesStart::new(name).with_attributes(attrs.iter().copied());
    let _ = w.write_event(Event::Empty(el));
}

fn text_element(w: &mut W, name: &str, attrs: &[(&str, &str)], text: &str) {
    start(w, name, attrs);
    let _ = w.write_event(Event::Text(BytesText::new(text)));
    end(w, name);
}

/// Writes a whole envelope; `body` writes the inside of `s:Body` (nothing for `<s:Body/>`).
fn envelope(h: &Header<'_>, body: Option<&dyn Fn(&mut W)>) -> String {
    let mut w = Writer::new(Vec::new());
    start(
        &mut w,
        "s:Envelope",
        &[
            ("xmlns:rsp", NS_SHELL),
            ("xmlns:s", NS_SOAP),
            ("xmlns:wsa", NS_ADDRESSING),
            ("xmlns:wsman", NS_WSMAN),
            ("xmlns:wsmv", NS_WSMV),
        ],
    );
    start(&mut w, "s:Header", &[]);
    text_element(
        &mut w,
        "wsa:Action",
        &[("s:mustUnderstand", "true")],
        h.action,
    );
    empty(
        &mut w,
        "wsmv:DataLocale",
        &[("s:mustUnderstand", "false"), ("xml:lang", "en-US")],
    );
    empty(
        &mut w,
        "wsman:Locale",
        &[("s:mustUnderstand", "false"), ("xml:lang", "en-US")],
    );
    text_element(
        &mut w,
        "wsman:MaxEnvelopeSize",
        &[("s:mustUnderstand", "true")],
        &h.max_envelope_size.to_string(),
    );
    text_element(
        &mut w,
        "wsa:MessageID",
        &[],
        &format!("uuid:{}", h.message_id),
    );
    text_element(
        &mut w,
        "wsman:OperationTimeout",
        &[],
        &format!("PT{}S", h.operation_timeout_secs),
    );
    start(&mut w, "wsa:ReplyTo", &[]);
    text_element(
        &mut w,
        "wsa:Address",
        &[("s:mustUnderstand", "true")],
        ANONYMOUS,
    );
    end(&mut w, "wsa:ReplyTo");
    text_element(
        &mut w,
        "wsman:ResourceURI",
        &[("s:mustUnderstand", "true")],
        RESOURCE_CMD,
    );
    text_element(
        &mut w,
        "wsmv:SessionId",
        &[("s:mustUnderstand", "false")],
        &format!("uuid:{}", h.session_id),
    );
    text_element(&mut w, "wsa:To", &[], h.to);
    if !h.options.is_empty() {
        start(&mut w, "wsman:OptionSet", &[("s:mustUnderstand", "true")]);
        for (name, value) in h.options {
            text_element(&mut w, "wsman:Option", &[("Name", name)], value);
        }
        end(&mut w, "wsman:OptionSet");
    }
    if let Some(shell) = h.shell_id {
        start(&mut w, "wsman:SelectorSet", &[]);
        text_element(&mut w, "wsman:Selector", &[("Name", "ShellId")], shell);
        end(&mut w, "wsman:SelectorSet");
    }
    end(&mut w, "s:Header");
    match body {
        Some(f) => {
            start(&mut w, "s:Body", &[]);
            f(&mut w);
            end(&mut w, "s:Body");
        }
        None => empty(&mut w, "s:Body", &[]),
    }
    end(&mut w, "s:Envelope");
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

/// WS-Transfer Create of a cmd shell with stdin, stdout and stderr.
pub fn create_shell(h: &Header<'_>) -> String {
    envelope(
        h,
        Some(&|w: &mut W| {
            start(w, "rsp:Shell", &[]);
            text_element(w, "rsp:InputStreams", &[], "stdin");
            text_element(w, "rsp:OutputStreams", &[], "stdout stderr");
            end(w, "rsp:Shell");
        }),
    )
}

/// Command: the whole command line goes in `rsp:Command`. WinRS joins Command and
/// Arguments with spaces anyway, and splitting would have to guess at quoting.
pub fn command(h: &Header<'_>, command_line: &str) -> String {
    envelope(
        h,
        Some(&|w: &mut W| {
            start(w, "rsp:CommandLine", &[]);
            text_element(w, "rsp:Command", &[], command_line);
            end(w, "rsp:CommandLine");
        }),
    )
}

pub fn receive(h: &Header<'_>, command_id: &str) -> String {
    envelope(
        h,
        Some(&|w: &mut W| {
            start(w, "rsp:Receive", &[]);
            text_element(
                w,
                "rsp:DesiredStream",
                &[("CommandId", command_id)],
                "stdout stderr",
            );
            end(w, "rsp:Receive");
        }),
    )
}

pub fn signal(h: &Header<'_>, command_id: &str, code: &str) -> String {
    envelope(
        h,
        Some(&|w: &mut W| {
            start(w, "rsp:Signal", &[("CommandId", command_id)]);
            text_element(w, "rsp:Code", &[], code);
            end(w, "rsp:Signal");
        }),
    )
}

pub fn delete(h: &Header<'_>) -> String {
    envelope(h, None)
}

/// Hard limits on what a response may contain, whatever its byte size.
const MAX_DEPTH: usize = 64;
const MAX_ELEMENTS: usize = 20_000;

/// One element of a parsed response, by local name (namespace prefixes vary
/// between Windows versions and OMI, the local names do not).
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response into its elements in document order. Errors are plain
/// strings for the caller to wrap with the host name.
pub fn parse(xml: &str) -> Result<Vec<Element>, String> {
    let mut reader = Reader::from_str(xml);
    let mut out: Vec<Element> = Vec::new();
    // Indexes into `out` of the open elements.
    let mut open: Vec<usize> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if out.len() >= MAX_ELEMENTS {
                    return Err(format!("response has more than {MAX_ELEMENTS} elements"));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in e.attributes().with_checks(false).flatten() {
                    let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
                    let value = a
                        .unescape_value()
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned());
                    attrs.push((key, value));
                }
                out.push(Element {
                    name,
                    attrs,
                    text: String::new(),
                });
                if matches!(event, Event::Start(_)) {
                    if open.len() >= MAX_DEPTH {
                        return Err(format!("response nests deeper than {MAX_DEPTH} elements"));
                    }
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let (Some(&i), Ok(s)) = (open.last(), t.decode()) {
                    out[i].text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let (Some(&i), Ok(name)) = (open.last(), r.decode()) {
                    let entity = format!("&{name};");
                    if let Ok(s) = quick_xml::escape::unescape(&entity) {
                        out[i].text.push_str(&s);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if out.is_empty() {
        return Err("empty response".to_string());
    }
    Ok(out)
}

/// A SOAP fault, with the WSManFault code when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub subcode: Option<String>,
    pub wsman_code: Option<String>,
    pub reason: String,
}

impl Fault {
    /// A Receive that timed out on the server: poll again.
    pub fn is_operation_timeout(&self) -> bool {
        self.wsman_code.as_deref() == Some(FAULT_OPERATION_TIMEOUT)
            || self
                .subcode
                .as_deref()
                .is_some_and(|s| s.ends_with(":TimedOut") || s == "TimedOut")
    }
}

pub fn fault(elements: &[Element]) -> Option<Fault> {
    elements.iter().position(|e| e.name == "Fault")?;
    // `s:Code/s:Subcode/s:Value`: the second `Value` after `Code`.
    let mut values = elements.iter().filter(|e| e.name == "Value");
    let _code = values.next();
    let subcode = values.next().map(|e| e.text.trim().to_string());
    let wsman_code = elements
        .iter()
        .find(|e| e.name == "WSManFault")
        .and_then(|e| e.attr("Code").map(str::to_string));
    let reason = elements
        .iter()
        .find(|e| e.name == "Message")
        .or_else(|| elements.iter().find(|e| e.name == "Text"))
        .map(|e| e.text.trim().to_string())
        .unwrap_or_default();
    Some(Fault {
        subcode,
        wsman_code,
        reason,
    })
}

/// The ShellId of a CreateResponse (the selector, or `rsp:ShellId`).
pub fn shell_id(elements: &[Element]) -> Option<String> {
    elements
        .iter()
        .find(|e| e.name == "Selector" && e.attr("Name") == Some("ShellId"))
        .or_else(|| elements.iter().find(|e| e.name == "ShellId"))
        .map(|e| e.text.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn command_id(elements: &[Element]) -> Option<String> {
    elements
        .iter()
        .find(|e| e.name == "CommandId")
        .map(|e| e.text.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// What one ReceiveResponse carried.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// `(stream name, base64 text)` in document order.
    pub streams: Vec<(String, String)>,
    /// `Some(exit code)` once CommandState is Done (`None` inside when Done came
    /// without an ExitCode).
    pub done: Option<Option<i64>>,
}

/// Takes the streams out of a ReceiveResponse's elements (moved, not copied:
/// they are most of a response's size).
pub fn received(elements: Vec<Element>) -> Received {
    let done = elements
        .iter()
        .find(|e| e.name == "CommandState" && e.attr("State") == Some(STATE_DONE))
        .map(|_| {
            elements
                .iter()
                .find(|e| e.name == "ExitCode")
                .and_then(|e| e.text.trim().parse::<i64>().ok())
        });
    let streams = elements
        .into_iter()
        .filter(|e| e.name == "Stream")
        .map(|e| {
            let name = e.attr("Name").unwrap_or_default().to_string();
            let mut text = e.text;
            let trimmed = text.trim();
            if trimmed.len() != text.len() {
                text = trimmed.to_string();
            }
            (name, text)
        })
        .collect();
    Received { streams, done }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_fault_and_hostile_input_without_panic() {
        let f = r#"<s:Envelope xmlns:s="x"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason><s:Text>late &amp; slow</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
        let fault = fault(&parse(f).unwrap()).unwrap();
        assert!(fault.is_operation_timeout());
        assert_eq!(fault.reason, "late & slow");
        for bad in ["", "<", "<a><b></a>", "&bogus;", "<a x=>", "\u{0}"] {
            let _ = parse(bad);
        }
        let deep = "<a>".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("deeper"));
    }
}
