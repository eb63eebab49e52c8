//! Channel binding tokens for NTLM over HTTPS (Windows' Extended Protection
//! for Authentication, WinRM's `CbtHardeningLevel`).
//!
//! The binding is RFC 5929's `tls-server-end-point`: a hash of the certificate
//! the TLS server presented, carried in NTLM's MsvAvChannelBindings. A host
//! behind a TLS-terminating proxy, or a man in the middle with another
//! certificate, sees a binding that does not match its own certificate and
//! refuses the logon, so the NTLM exchange cannot be relayed to it. WinRM with
//! `CbtHardeningLevel=Strict` requires it; `Relaxed` (the default) checks it
//! when present.
//!
//! Kerberos goes without it for now: given bindings, sspi 0.23 also adds
//! KERB_AP_OPTIONS_CBT to the authenticator as a 2-byte value, which MIT's
//! acceptor rejects (`KRB5KRB_AP_ERR_MSG_TYPE`, it wants the 4-byte MS-KILE
//! form); see `auth.rs`.

use ring::digest;

/// `SEC_CHANNEL_BINDINGS` (as SSPI takes it) for the TLS server certificate
/// `cert_der`: no addresses, application data `tls-server-end-point:<hash>`.
pub(super) fn sec_channel_bindings(cert_der: &[u8]) -> Vec<u8> {
    let mut app = b"tls-server-end-point:".to_vec();
    app.extend_from_slice(digest::digest(end_point_hash(cert_der), cert_der).as_ref());
    // Eight u32 fields: initiator type/length/offset, acceptor type/length/
    // offset, application data length/offset; then the data at offset 32.
    let mut out = Vec::with_capacity(32 + app.len());
    for field in [0u32, 0, 0, 0, 0, 0] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(&u32::try_from(app.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&32u32.to_le_bytes());
    out.extend_from_slice(&app);
    out
}

/// RFC 5929 §4.1: the hash of the certificate's signature algorithm, except
/// that MD5 and SHA-1 (and anything not recognised) become SHA-256.
fn end_point_hash(cert_der: &[u8]) -> &'static digest::Algorithm {
    // sha384WithRSAEncryption, ecdsa-with-SHA384 / sha512WithRSAEncryption,
    // ecdsa-with-SHA512, as DER OID contents.
    const SHA384: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
    ];
    const SHA512: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
    ];
    match signature_algorithm(cert_der) {
        Some(oid) if SHA384.contains(&oid) => &digest::SHA384,
        Some(oid) if SHA512.contains(&oid) => &digest::SHA512,
        _ => &digest::SHA256,
    }
}

/// The OID (contents) of `Certificate.signatureAlgorithm`:
/// `SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, .. }, .. }`.
fn signature_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (tag, cert, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_tbs) = tlv(cert)?;
    let (tag, alg, _) = tlv(after_tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = tlv(alg)?;
    (tag == 0x06).then_some(oid)
}

/// One DER element: (tag, contents, rest). Short and long lengths up to 4 bytes.
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["win-01".to_string()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_hash_follows_the_signature_algorithm() {
        let p256 = cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        let p384 = cert(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(
            signature_algorithm(&p256),
            Some(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02][..])
        );
        assert_eq!(end_point_hash(&p256).output_len(), 32);
        assert_eq!(end_point_hash(&p384).output_len(), 48, "ecdsa-with-SHA384");
        // Anything unreadable is hashed with SHA-256, never a panic.
        for junk in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x02\x01\x00",
        ] {
            assert_eq!(end_point_hash(junk).output_len(), 32);
        }
    }

    #[test]
    fn sec_channel_bindings_layout() {
        let der = cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        let cb = sec_channel_bindings(&der);
        assert_eq!(&cb[..24], &[0u8; 24]);
        let len = u32::from_le_bytes(cb[24..28].try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(cb[28..32].try_into().unwrap()), 32);
        assert_eq!(len, 21 + 32);
        assert_eq!(&cb[32..53], b"tls-server-end-point:");
        assert_eq!(&cb[53..], digest::digest(&digest::SHA256, &der).as_ref());
        assert_eq!(cb.len(), 32 + len);
    }
}
