//! Basic auth against the bcrypt hashes of `basic_auth_users`.
//!
//! bcrypt is slow by design (tens to hundreds of milliseconds per check), and
//! Prometheus sends the same credentials on every scrape; like
//! exporter-toolkit we remember the result of each (user, hash, password)
//! check under a SHA-256 of the three, so the cost is paid once. Unknown
//! users are checked against a dummy hash, so a wrong user name takes as long
//! as a wrong password and does not reveal which users exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64::Engine;

/// Results remembered at most; the cache is emptied when full, so a client
/// guessing passwords cannot grow it without bound.
const CACHE_LIMIT: usize = 1024;

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// A hash of an unguessable password, for unknown users (same cost as real ones).
    dummy: String,
    /// SHA-256(user, hash, password) → verified.
    cache: Mutex<HashMap<[u8; 32], bool>>,
}

impl BasicAuth {
    /// `None` when no users are configured (no authentication).
    pub fn new(users: &BTreeMap<String, String>) -> Option<BasicAuth> {
        if users.is_empty() {
            return None;
        }
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let secret = uuid::Uuid::new_v4().to_string();
        let dummy = bcrypt::hash(secret, cost).unwrap_or_else(|_| {
            "$2b$10$invalidinvalidinvalidinvalidinvalidinvalidinvalidinva".into()
        });
        Some(BasicAuth {
            users: users.clone(),
            dummy,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Checks an `Authorization` header value. Blocking (bcrypt): call it
    /// from a blocking thread.
    pub fn check(&self, authorization: Option<&str>) -> bool {
        let Some((user, pass)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (self.dummy.as_str(), false),
        };
        let key = {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            for part in [user.as_bytes(), hash.as_bytes(), pass.as_bytes()] {
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part);
            }
            let mut k = [0u8; 32];
            k.copy_from_slice(ctx.finish().as_ref());
            k
        };
        if let Some(ok) = self.cache.lock().ok().and_then(|c| c.get(&key).copied()) {
            return ok && known;
        }
        let ok = bcrypt::verify(&pass, hash).unwrap_or(false) && known;
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(key, ok);
        }
        ok
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn checks_and_caches() {
        let users: BTreeMap<String, String> =
            [("prom".to_string(), bcrypt::hash("s3cret", 4).unwrap())].into();
        let auth = BasicAuth::new(&users).unwrap();
        assert!(auth.check(Some(&header("prom", "s3cret"))));
        assert!(auth.check(Some(&header("prom", "s3cret"))), "cached");
        assert!(!auth.check(Some(&header("prom", "wrong"))));
        assert!(!auth.check(Some(&header("other", "s3cret"))));
        assert!(!auth.check(Some("Bearer x")));
        assert!(!auth.check(None));
        assert_eq!(auth.cache.lock().unwrap().len(), 3);
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }
}
