//! `multipart/encrypted` bodies of sealed WinRM messages (MS-WSMV 2.2.9.1.1)
//! as a server sends them. Properties: any body decodes or is refused
//! without a panic; what `encode` writes, `decode` reads back exactly.
#![no_main]
use fleetsweep::transport::winrm::fuzzing as winrm;
use fleetsweep_fuzz::selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parts) = winrm::decode_mime(data) {
        assert!(
            parts.signature.len() <= 1024,
            "signature of {} bytes",
            parts.signature.len()
        );
    }

    // Round trip: the first byte is the signature length (NTLM's is 16).
    let Some((sig_len, rest)) = selector(data) else {
        return;
    };
    let (signature, sealed) = rest.split_at(usize::from(sig_len).min(rest.len()));
    let body = winrm::encode_mime(sealed.len(), signature, sealed);
    let parts = winrm::decode_mime(&body).expect("decoding what encode wrote");
    assert_eq!(parts.plain_len, sealed.len());
    assert_eq!(parts.signature, signature);
    assert_eq!(parts.sealed, sealed);
});
