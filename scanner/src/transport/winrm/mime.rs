//! The `multipart/encrypted` body of MS-WSMV 2.2.9.1.1: how a SOAP message sealed
//! with the NTLM/Kerberos session travels over plain HTTP.
//!
//! ```text
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//! \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\r\n
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/octet-stream\r\n
//! <u32 LE signature length><signature><sealed message>--Encrypted Boundary--\r\n
//! ```

pub const PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";
pub const CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";
const BOUNDARY: &[u8] = b"--Encrypted Boundary";
const OCTET_STREAM: &[u8] = b"Content-Type: application/octet-stream\r\n";
/// NTLM signatures are 16 bytes and Kerberos wrap headers under 100.
const MAX_SIGNATURE: usize = 1024;

/// Builds the body from the signature and the sealed bytes of a message whose
/// plain length was `plain_len`.
pub fn encode(plain_len: usize, signature: &[u8], sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed.len() + signature.len() + 256);
    out.extend_from_slice(BOUNDARY);
    out.extend_from_slice(b"\r\n\tContent-Type: ");
    out.extend_from_slice(PROTOCOL.as_bytes());
    out.extend_from_slice(
        format!(
            "\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={plain_len}\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(BOUNDARY);
    out.extend_from_slice(b"\r\n\t");
    out.extend_from_slice(OCTET_STREAM);
    out.extend_from_slice(&(signature.len() as u32).to_le_bytes());
    out.extend_from_slice(signature);
    out.extend_from_slice(sealed);
    out.extend_from_slice(BOUNDARY);
    out.extend_from_slice(b"--\r\n");
    out
}

/// The parts of an encrypted body, borrowed from it.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    pub plain_len: usize,
    pub signature: &'a [u8],
    pub sealed: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits an encrypted body. Tolerates `-- Encrypted Boundary` (a space, as some
/// servers write it) in the closing line by searching for the closing boundary
/// from the end.
pub fn decode(body: &[u8]) -> Result<Parts<'_>, String> {
    let length_at = find(body, b"Length=").ok_or("encrypted body has no OriginalContent Length")?;
    let digits: Vec<u8> = body[length_at + 7..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    let plain_len: usize = std::str::from_utf8(&digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("encrypted body has an invalid Length")?;
    let data_at = find(body, OCTET_STREAM).ok_or("encrypted body has no octet-stream part")?
        + OCTET_STREAM.len();
    let rest = &body[data_at..];
    if rest.len() < 4 {
        return Err("encrypted body is truncated".to_string());
    }
    let sig_len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if sig_len > MAX_SIGNATURE || rest.len() < 4 + sig_len {
        return Err(format!(
            "encrypted body has an invalid signature length {sig_len}"
        ));
    }
    let signature = &rest[4..4 + sig_len];
    let payload = &rest[4 + sig_len..];
    // The closing boundary: the last `--` + `Encrypted Boundary--` in the payload.
    let end = payload
        .windows(b"Encrypted Boundary--".len())
        .rposition(|w| w == b"Encrypted Boundary--")
        .ok_or("encrypted body has no closing boundary")?;
    // Step back over `--` and an optional space before `Encrypted Boundary--`.
    let mut cut = end;
    if cut > 0 && payload[cut - 1] == b' ' {
        cut -= 1;
    }
    if cut < 2 || &payload[cut - 2..cut] != b"--" {
        return Err("encrypted body has a malformed closing boundary".to_string());
    }
    Ok(Parts {
        plain_len,
        signature,
        sealed: &payload[..cut - 2],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let body = encode(5, b"0123456789abcdef", b"hello--Encrypted Boundary");
        let p = decode(&body).unwrap();
        assert_eq!(p.plain_len, 5);
        assert_eq!(p.signature, b"0123456789abcdef");
        assert_eq!(p.sealed, b"hello--Encrypted Boundary");
        for bad in [
            &b""[..],
            b"Length=",
            b"Length=12\r\nContent-Type: application/octet-stream\r\n\xff\xff\xff\xff",
        ] {
            assert!(decode(bad).is_err());
        }
    }
}
