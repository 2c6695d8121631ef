//! Secrets: random values from the operating system's CSPRNG (ring's `SystemRandom`),
//! SHA-256 digests of what is stored, constant-time comparison, generated passwords and
//! the API token format `swt_<id>_<secret>`.

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Prefix of every API token, so leaked tokens are recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "swt_";

/// `N` random bytes from the operating system.
pub fn random<const N: usize>() -> Result<[u8; N], super::AuthError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| super::AuthError::Random)?;
    Ok(out)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// Equality that takes the same time wherever the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Letters and digits that cannot be misread (no 0/O, 1/l/I).
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A password of four groups of five characters (about 115 bits), e.g. `k7Tqa-...`.
pub fn generate_password() -> Result<String, super::AuthError> {
    let mut out = String::with_capacity(23);
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    while out.len() < 23 {
        for b in random::<32>()? {
            if out.len() >= 23 {
                break;
            }
            if b >= limit {
                continue; // rejection sampling keeps every character equally likely
            }
            if out.len() % 6 == 5 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// A new API token: its public id, the full token to hand out once, and the digest to
/// store.
pub fn new_token() -> Result<(String, String, Vec<u8>), super::AuthError> {
    let id = hex(&random::<6>()?);
    let secret = hex(&random::<32>()?);
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    Ok((id, token, sha256(secret.as_bytes())))
}

/// Splits `swt_<id>_<secret>` into id and secret.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id) && hexish(secret)).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_grouped_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 23);
        assert_eq!(a.split('-').map(str::len).collect::<Vec<_>>(), [5, 5, 5, 5]);
        assert!(a.bytes().all(|c| c == b'-' || ALPHABET.contains(&c)));
    }

    #[test]
    fn tokens_parse_back_and_digest_matches() {
        let (id, token, digest) = new_token().unwrap();
        let (pid, secret) = parse_token(&token).unwrap();
        assert_eq!(pid, id);
        assert!(ct_eq(&sha256(secret.as_bytes()), &digest));
        assert!(parse_token("swt_abc").is_none());
        assert!(parse_token("Bearer x").is_none());
        assert!(parse_token("swt_zz_11").is_none());
        assert!(!ct_eq(b"ab", b"abc"));
    }
}
