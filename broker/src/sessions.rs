//! The logged-in connections, by user name, so the application can cut off the ones whose
//! credentials it withdrew (a revoked or rotated node): forgetting cached logins only stops
//! the next CONNECT, and a compromised Pi would otherwise keep its open session, publishing
//! to whoever reads its topics, for as long as it likes.
//!
//! A connection is registered as soon as its CONNECT is read, before the authenticator
//! runs, so a login checked against the old credentials while they are being withdrawn is
//! still found by [`Sessions::disconnect_users`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

/// Live connections that logged in with a user name.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    next: AtomicU64,
    live: Mutex<HashMap<u64, (String, CancellationToken)>>,
}

impl Sessions {
    /// Registers a connection of `username`; it stays registered until the returned
    /// [`Session`] is dropped.
    pub(crate) fn register(self: &Arc<Self>, username: &str) -> Session {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let withdrawn = CancellationToken::new();
        self.lock()
            .insert(id, (username.to_owned(), withdrawn.clone()));
        Session {
            sessions: self.clone(),
            id,
            withdrawn,
        }
    }

    /// Cuts off every connection that logged in as one of `usernames`; returns how many.
    pub(crate) fn disconnect_users(&self, usernames: &[String]) -> usize {
        let live = self.lock();
        let mut cut = 0;
        for (user, withdrawn) in live.values() {
            if usernames.iter().any(|u| u == user) && !withdrawn.is_cancelled() {
                withdrawn.cancel();
                cut += 1;
            }
        }
        cut
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (String, CancellationToken)>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One registered connection.
pub(crate) struct Session {
    sessions: Arc<Sessions>,
    id: u64,
    withdrawn: CancellationToken,
}

impl Session {
    /// Whether the application withdrew this login.
    pub(crate) fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_cancelled()
    }

    /// Completes when the application withdraws this login.
    pub(crate) async fn withdrawn(&self) {
        self.withdrawn.cancelled().await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_users_are_cut_off_and_only_while_connected() {
        let sessions = Arc::new(Sessions::default());
        let a1 = sessions.register("sw.a.pi");
        let a2 = sessions.register("sw.a.pi");
        let b = sessions.register("sw.b.pi");
        let gone = sessions.register("sw.c.pi");
        drop(gone);
        let cut = sessions.disconnect_users(&["sw.a.pi".to_owned(), "sw.c.pi".to_owned()]);
        assert_eq!(cut, 2);
        assert!(a1.is_withdrawn() && a2.is_withdrawn());
        assert!(!b.is_withdrawn());
        // Already cut off: not counted twice.
        assert_eq!(sessions.disconnect_users(&["sw.a.pi".to_owned()]), 0);
        drop((a1, a2, b));
        assert!(sessions.lock().is_empty(), "dropped sessions unregister");
    }
}
