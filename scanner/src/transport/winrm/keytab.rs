//! MIT keytab files (`ktutil`, `kadmin ktadd`, `msktutil`, AD's `ktpass`):
//! the long-term key of the scan account, so Kerberos needs no password on the
//! scanner. Format version 0x0502 (every current tool writes it), big-endian:
//!
//! ```text
//! u16 0x0502, then entries: i32 size (negative: a deleted entry, skip |size| bytes)
//!   u16 components; u16-counted realm; u16-counted component * components;
//!   u32 name type; u32 timestamp; u8 kvno; u16 enctype; u16-counted key;
//!   [u32 kvno, which replaces the u8 one when present and non-zero]
//! ```
//!
//! The file is the operator's, but it is still parsed without panics and
//! bounded: a keytab is a few hundred bytes; over 1 MiB is refused.

use std::path::Path;

/// Largest keytab read.
const MAX_KEYTAB: u64 = 1 << 20;

/// Encryption types sspi's Kerberos client can use a key of.
const AES256: u16 = 18;
const AES128: u16 = 17;

/// One key of one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `name[/instance]`.
    pub name: String,
    pub realm: String,
    pub kvno: u32,
    pub enctype: u16,
    pub key: Vec<u8>,
}

impl Entry {
    pub fn principal(&self) -> String {
        format!("{}@{}", self.name, self.realm)
    }
}

/// Reads `path`; errors name the file.
pub fn load(path: &Path) -> Result<Vec<Entry>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read keytab {shown}: {e}"))?;
    if meta.len() > MAX_KEYTAB {
        return Err(format!(
            "keytab {shown} is {} bytes: not a keytab (they are a few hundred)",
            meta.len()
        ));
    }
    // Bounded: the size check above does not hold for a FIFO or a device.
    let data = crate::diag::read_bounded(path, MAX_KEYTAB)
        .map_err(|e| format!("cannot read keytab {shown}: {e}"))?;
    parse(&data).map_err(|e| format!("keytab {shown}: {e}"))
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() < n {
            return Err("truncated".to_string());
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn counted(&mut self) -> Result<&'a [u8], String> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
    fn text(&mut self) -> Result<String, String> {
        String::from_utf8(self.counted()?.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
    }
}

/// Parses a whole keytab.
pub fn parse(data: &[u8]) -> Result<Vec<Entry>, String> {
    let mut r = Reader { data };
    match r.u16() {
        Ok(0x0502) => {}
        Ok(0x0501) => {
            return Err(
                "format version 0x0501 (native byte order) is not supported; \
                        rewrite it with `ktutil` (rkt, then wkt)"
                    .to_string(),
            )
        }
        _ => return Err("not a keytab (no 0x0502 version header)".to_string()),
    }
    let mut out = Vec::new();
    while !r.data.is_empty() {
        let size = r.u32()? as i32;
        let len = usize::try_from(size.unsigned_abs()).map_err(|_| "bad entry size".to_string())?;
        let body = r
            .take(len)
            .map_err(|_| "an entry runs past the end".to_string())?;
        if size <= 0 {
            continue; // a hole left by a deleted entry
        }
        let mut e = Reader { data: body };
        let parsed = (|| -> Result<Entry, String> {
            let count = e.u16()?;
            let realm = e.text()?;
            let mut parts = Vec::new();
            for _ in 0..count {
                parts.push(e.text()?);
            }
            let _name_type = e.u32()?;
            let _timestamp = e.u32()?;
            let kvno8 = e.u8()?;
            let enctype = e.u16()?;
            let key = e.counted()?.to_vec();
            let kvno = match e.u32() {
                Ok(v) if v != 0 => v,
                _ => u32::from(kvno8),
            };
            Ok(Entry {
                name: parts.join("/"),
                realm,
                kvno,
                enctype,
                key,
            })
        })();
        out.push(parsed.map_err(|m| format!("entry {}: {m}", out.len() + 1))?);
    }
    Ok(out)
}

/// The key for `user` (`REALM\name`, `name@REALM` or `name`): the entry of
/// that principal (realm compared without case, as AD does), AES-256 before
/// AES-128, newest kvno first.
pub fn key_for<'a>(entries: &'a [Entry], user: &str) -> Result<&'a Entry, String> {
    let (name, realm) = match (user.split_once('\\'), user.rsplit_once('@')) {
        (Some((realm, name)), _) => (name, Some(realm)),
        (None, Some((name, realm))) => (name, Some(realm)),
        (None, None) => (user, None),
    };
    let of_user: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.name == name && realm.is_none_or(|r| e.realm.eq_ignore_ascii_case(r)))
        .collect();
    if of_user.is_empty() {
        let held: Vec<String> = entries.iter().map(Entry::principal).collect();
        return Err(format!(
            "it holds no key of `{user}` (it has: {})",
            if held.is_empty() {
                "nothing".to_string()
            } else {
                dedup(held).join(", ")
            }
        ));
    }
    of_user
        .iter()
        .filter(|e| matches!(e.enctype, AES256 | AES128))
        .max_by_key(|e| (e.kvno, e.enctype == AES256))
        .copied()
        .ok_or_else(|| {
            let types: Vec<String> = of_user.iter().map(|e| e.enctype.to_string()).collect();
            format!(
                "its keys of `{user}` are of encryption types {} only; Kerberos here needs \
                 aes256-cts-hmac-sha1-96 (18) or aes128-cts-hmac-sha1-96 (17): export the \
                 account's AES keys",
                dedup(types).join(", ")
            )
        })
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// (realm, components, kvno8, enctype, key, kvno32).
    type Spec<'a> = (&'a str, &'a [&'a str], u8, u16, &'a [u8], Option<u32>);

    /// A keytab written from the format description, one entry per tuple.
    fn keytab(entries: &[Spec<'_>]) -> Vec<u8> {
        let mut out = vec![0x05, 0x02];
        for (realm, parts, kvno8, enctype, key, kvno32) in entries {
            let mut e = Vec::new();
            e.extend_from_slice(&(parts.len() as u16).to_be_bytes());
            e.extend_from_slice(&(realm.len() as u16).to_be_bytes());
            e.extend_from_slice(realm.as_bytes());
            for p in *parts {
                e.extend_from_slice(&(p.len() as u16).to_be_bytes());
                e.extend_from_slice(p.as_bytes());
            }
            e.extend_from_slice(&1u32.to_be_bytes());
            e.extend_from_slice(&1_700_000_000u32.to_be_bytes());
            e.push(*kvno8);
            e.extend_from_slice(&enctype.to_be_bytes());
            e.extend_from_slice(&(key.len() as u16).to_be_bytes());
            e.extend_from_slice(key);
            if let Some(v) = kvno32 {
                e.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&(e.len() as i32).to_be_bytes());
            out.extend_from_slice(&e);
        }
        out
    }

    #[test]
    fn picks_the_users_newest_aes256_key() {
        let k = keytab(&[
            ("CORP.EXAMPLE", &["svc-scan"], 2, 17, &[1; 16], None),
            ("CORP.EXAMPLE", &["svc-scan"], 2, 18, &[2; 32], None),
            ("CORP.EXAMPLE", &["svc-scan"], 3, 18, &[3; 32], Some(300)),
            (
                "CORP.EXAMPLE",
                &["HTTP", "web-01.corp.example"],
                5,
                18,
                &[4; 32],
                None,
            ),
        ]);
        let entries = parse(&k).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(
            entries[3].principal(),
            "HTTP/web-01.corp.example@CORP.EXAMPLE"
        );
        for user in [
            "CORP.EXAMPLE\\svc-scan",
            "svc-scan@corp.example",
            "svc-scan",
        ] {
            let e = key_for(&entries, user).unwrap();
            assert_eq!((e.kvno, e.enctype, e.key[0]), (300, 18, 3), "{user}");
        }
        let err = key_for(&entries, "CORP.EXAMPLE\\other").unwrap_err();
        assert!(
            err.contains("no key of `CORP.EXAMPLE\\other`")
                && err.contains("HTTP/web-01.corp.example@CORP.EXAMPLE, svc-scan@CORP.EXAMPLE"),
            "{err}"
        );
    }

    #[test]
    fn rc4_only_keytabs_say_what_to_export() {
        let k = keytab(&[("CORP", &["svc"], 1, 23, &[9; 16], None)]);
        let err = key_for(&parse(&k).unwrap(), "svc").unwrap_err();
        assert!(err.contains("encryption types 23 only"), "{err}");
    }

    #[test]
    fn holes_are_skipped_and_bad_files_are_errors_not_panics() {
        let mut k = keytab(&[("R", &["a"], 1, 18, &[1; 32], None)]);
        // A deleted entry: negative size, then that many bytes.
        k.extend_from_slice(&(-5i32).to_be_bytes());
        k.extend_from_slice(&[0; 5]);
        assert_eq!(parse(&k).unwrap().len(), 1);
        assert!(parse(b"").unwrap_err().contains("not a keytab"));
        assert!(parse(&[0x05, 0x01]).unwrap_err().contains("0x0501"));
        let cut = &k[..k.len() - 10];
        assert!(parse(cut).is_err());
        for n in 0..k.len() {
            let _ = parse(&k[..n]);
        }
        let mut junk = vec![0x05, 0x02];
        junk.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
        assert!(parse(&junk).unwrap_err().contains("past the end"));
    }
}
