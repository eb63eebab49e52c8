//! Kerberos keytab files (`auth: kerberos` with `password_keytab`), MIT
//! format 0x0502: the parser, then the key lookup for a user named after the
//! first NUL. Property: the key found belongs to the parsed entries.
#![no_main]
use fleetsweep::transport::winrm::fuzzing as winrm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (file, user) = match data.iter().rposition(|b| *b == 0) {
        Some(i) if data.len() - i < 64 => (&data[..i], String::from_utf8_lossy(&data[i + 1..])),
        _ => (data, "Administrator@EXAMPLE.COM".into()),
    };
    let Ok(entries) = winrm::parse_keytab(file) else {
        return;
    };
    if let Ok(entry) = winrm::key_for(&entries, &user) {
        assert!(
            entries.iter().any(|e| std::ptr::eq(e, entry)),
            "key from outside the keytab"
        );
    }
});
