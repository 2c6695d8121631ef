//! Remembers successful logins for a short time, so a client that reconnects (a flaky Wi-Fi
//! link, a restart loop, a compromised Pi hammering CONNECT with valid credentials) does not
//! cost a slow password hash every time.
//!
//! Only successes are kept, keyed by a SHA-256 over a random per-process salt and every
//! input of the decision (client id, user name, password, peer IP, client certificate): no
//! password is stored, and a changed input is a different key. Entries expire after the TTL;
//! `clear` empties the cache (the hub calls it when credentials are revoked) and starts a
//! new generation: a check that began before the clear (against the old credentials) cannot
//! put its verdict into the cache after it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::Access;

/// Most entries kept. A fleet of 10,000 nodes fits; a flood of distinct valid logins (which
/// needs that many credentials) only empties the cache.
const MAX_ENTRIES: usize = 16_384;

/// The SHA-256 of one login's inputs.
pub(crate) type LoginKey = [u8; 32];

/// Everything an authenticator decision may depend on.
pub(crate) struct KeyParts<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) username: &'a str,
    pub(crate) password: Option<&'a [u8]>,
    pub(crate) peer_ip: IpAddr,
    pub(crate) tls: bool,
    pub(crate) client_certificate: Option<&'a [u8]>,
}

/// Successful logins of the last `ttl`.
pub(crate) struct LoginCache {
    ttl: Duration,
    salt: [u8; 32],
    entries: Mutex<Entries>,
}

/// The cached logins, and how many times the cache was cleared.
#[derive(Default)]
struct Entries {
    generation: u64,
    map: HashMap<LoginKey, (Access, Instant)>,
}

impl LoginCache {
    /// An empty cache; `None` if the system has no randomness for the salt (the guard then
    /// runs without a cache).
    pub(crate) fn new(ttl: Duration) -> Option<Self> {
        let mut salt = [0u8; 32];
        SystemRandom::new().fill(&mut salt).ok()?;
        Some(LoginCache {
            ttl,
            salt,
            entries: Mutex::new(Entries::default()),
        })
    }

    /// The key of a login. Each field is length-prefixed, so no two different logins can
    /// produce the same byte sequence.
    pub(crate) fn key(&self, parts: &KeyParts<'_>) -> LoginKey {
        let mut ctx = Context::new(&SHA256);
        ctx.update(&self.salt);
        let mut field = |bytes: Option<&[u8]>| match bytes {
            None => ctx.update(&[0]),
            Some(bytes) => {
                ctx.update(&[1]);
                ctx.update(&(bytes.len() as u64).to_be_bytes());
                ctx.update(bytes);
            }
        };
        field(Some(parts.client_id.as_bytes()));
        field(Some(parts.username.as_bytes()));
        field(parts.password);
        field(Some(parts.peer_ip.to_string().as_bytes()));
        field(Some(&[u8::from(parts.tls)]));
        field(parts.client_certificate);
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The access granted to this login within the last `ttl`, if any, and the current
    /// generation, to hand to [`insert`](Self::insert) after a check.
    pub(crate) fn get(&self, key: &LoginKey, now: Instant) -> (Option<Access>, u64) {
        let mut entries = self.lock();
        let generation = entries.generation;
        let access = match entries.map.get(key) {
            Some((access, expires)) if now < *expires => Some(access.clone()),
            Some(_) => {
                entries.map.remove(key);
                None
            }
            None => None,
        };
        (access, generation)
    }

    /// Remembers a successful login checked in `generation` (from [`get`](Self::get)),
    /// unless the cache was cleared since: the check may have seen withdrawn credentials.
    pub(crate) fn insert(&self, key: LoginKey, access: Access, now: Instant, generation: u64) {
        let mut entries = self.lock();
        if entries.generation != generation {
            return;
        }
        if entries.map.len() >= MAX_ENTRIES {
            entries.map.retain(|_, (_, expires)| now < *expires);
            if entries.map.len() >= MAX_ENTRIES {
                entries.map.clear();
            }
        }
        entries.map.insert(key, (access, now + self.ttl));
    }

    /// Forgets every login (credentials changed or were revoked), and every check still
    /// running.
    pub(crate) fn clear(&self) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.map.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(client_id: &'a str, username: &'a str, password: &'a [u8]) -> KeyParts<'a> {
        KeyParts {
            client_id,
            username,
            password: Some(password),
            peer_ip: IpAddr::from([127, 0, 0, 1]),
            tls: false,
            client_certificate: None,
        }
    }

    #[test]
    fn any_changed_input_is_another_key() {
        let cache = LoginCache::new(Duration::from_secs(60)).unwrap();
        let base = cache.key(&parts("id", "user", b"pw"));
        assert_eq!(base, cache.key(&parts("id", "user", b"pw")));
        for other in [
            parts("id2", "user", b"pw"),
            parts("id", "user2", b"pw"),
            parts("id", "user", b"pw2"),
            // Moving bytes between fields must not collide.
            parts("idu", "ser", b"pw"),
            KeyParts {
                password: None,
                ..parts("id", "user", b"")
            },
            KeyParts {
                peer_ip: IpAddr::from([10, 0, 0, 1]),
                ..parts("id", "user", b"pw")
            },
            KeyParts {
                tls: true,
                ..parts("id", "user", b"pw")
            },
        ] {
            assert_ne!(base, cache.key(&other));
        }
        assert_ne!(base, cache.key(&parts("id", "user", b"")));
        // Another process (another salt) derives other keys.
        let other = LoginCache::new(Duration::from_secs(60)).unwrap();
        assert_ne!(base, other.key(&parts("id", "user", b"pw")));
    }

    #[test]
    fn entries_expire_and_clear() {
        let cache = LoginCache::new(Duration::from_secs(60)).unwrap();
        let key = cache.key(&parts("id", "user", b"pw"));
        let t0 = Instant::now();
        let (none, generation) = cache.get(&key, t0);
        assert_eq!(none, None);
        cache.insert(key, Access::Client, t0, generation);
        assert_eq!(
            cache.get(&key, t0 + Duration::from_secs(59)).0,
            Some(Access::Client)
        );
        assert_eq!(cache.get(&key, t0 + Duration::from_secs(60)).0, None);
        cache.insert(key, Access::Trusted, t0, generation);
        cache.clear();
        assert_eq!(cache.get(&key, t0).0, None);
        // A check that started before the clear does not refill the cache.
        cache.insert(key, Access::Trusted, t0, generation);
        assert_eq!(cache.get(&key, t0).0, None);
        let (_, now) = cache.get(&key, t0);
        cache.insert(key, Access::Trusted, t0, now);
        assert_eq!(cache.get(&key, t0).0, Some(Access::Trusted));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = LoginCache::new(Duration::from_secs(60)).unwrap();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            let id = i.to_string();
            cache.insert(cache.key(&parts(&id, "u", b"p")), Access::Client, t0, 0);
        }
        assert!(cache.len() <= MAX_ENTRIES);
    }
}
