//! WS-Management responses from a WinRM server (`transport::winrm` soap
//! parser): the element list, then the fault, shell id, command id and
//! received streams read from it. Property: never more than the 20,000
//! elements the parser promises.
#![no_main]
use fleetsweep::transport::winrm::fuzzing as winrm;
use fleetsweep_fuzz::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let xml = text(data);
    let Ok(elements) = winrm::parse_soap(&xml) else {
        return;
    };
    assert!(elements.len() <= 20_000, "{} elements", elements.len());
    if let Some(f) = winrm::fault(&elements) {
        let _ = f.is_operation_timeout();
    }
    drop(winrm::shell_id(&elements));
    drop(winrm::command_id(&elements));
    drop(winrm::received(elements));
});
