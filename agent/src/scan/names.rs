//! Reverse DNS of the hosts found (`[scan] reverse-dns = true`).
//!
//! Each lookup is the C library's `getnameinfo` (so `/etc/hosts` and the system resolver
//! answer, as for any other program) on a blocking thread. At most [`PARALLEL`] run at a
//! time, each counted for at most [`LOOKUP_TIMEOUT`], and the whole phase ends after
//! [`PHASE_TIMEOUT`]: a dead DNS server delays a scan by seconds, never minutes. A lookup
//! that overran keeps its thread until the resolver gives up, but holds its slot meanwhile,
//! so no more than [`PARALLEL`] threads ever wait.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Lookups in flight at once.
pub const PARALLEL: usize = 16;
/// A name that takes longer is left out.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1_000);
/// The whole reverse-DNS phase of one scan.
pub const PHASE_TIMEOUT: Duration = Duration::from_millis(3_000);

/// The names of `ips` that resolved in time.
pub async fn reverse_names(ips: &[Ipv4Addr]) -> BTreeMap<Ipv4Addr, String> {
    let slots = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    let mut names = BTreeMap::new();
    let phase = async {
        for &ip in ips {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            tasks.spawn(async move {
                let lookup = tokio::task::spawn_blocking(move || {
                    let name = lookup(ip);
                    drop(slot);
                    name
                });
                match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                    Ok(Ok(name)) => name.map(|n| (ip, n)),
                    _ => None,
                }
            });
            while let Some(done) = tasks.try_join_next() {
                if let Ok(Some((ip, name))) = done {
                    names.insert(ip, name);
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Some((ip, name))) = done {
                names.insert(ip, name);
            }
        }
    };
    if tokio::time::timeout(PHASE_TIMEOUT, phase).await.is_err() {
        tracing::debug!(resolved = names.len(), "reverse DNS phase cut short");
    }
    names
}

/// The PTR name of `ip` (`NI_NAMEREQD`: no numeric fallback), cleaned up.
fn lookup(ip: Ipv4Addr) -> Option<String> {
    // SAFETY: an all-zero sockaddr_in is a valid value; the fields are set below.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr = libc::in_addr {
        s_addr: u32::from_ne_bytes(ip.octets()),
    };
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `sa` is a valid sockaddr_in of the given length, `host` a writable buffer of
    // the given length; no service buffer is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    clean_name(name.to_str().ok()?)
}

/// A host name fit for the payload: printable ASCII without spaces, no trailing dot, at
/// most 253 characters; `None` otherwise.
pub fn clean_name(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.');
    let ok = !name.is_empty() && name.len() <= 253 && name.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("router.lan.").as_deref(), Some("router.lan"));
        assert_eq!(clean_name(" nas "), Some("nas".into()));
        assert_eq!(clean_name(""), None);
        assert_eq!(clean_name("bad name"), None);
        assert_eq!(clean_name(&"a".repeat(300)), None);
    }

    #[tokio::test]
    async fn loopback_resolves_through_the_system_resolver() {
        // /etc/hosts names 127.0.0.1 on every system this runs on; no network involved.
        let names = reverse_names(&[Ipv4Addr::LOCALHOST]).await;
        assert!(names.contains_key(&Ipv4Addr::LOCALHOST), "{names:?}");
    }
}
