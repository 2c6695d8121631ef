//! systemd's readiness protocol (`sd_notify(3)`) without libsystemd: one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `$NOTIFY_SOCKET` (a path, or an abstract
//! socket when it starts with `@`). Outside a `Type=notify` unit the variable is unset and
//! every call does nothing.
//!
//! The `sitewatch-agent` binary and the hub's binary call these; the library's `run` does
//! not, so the agent the hub embeds never speaks for the hub's unit.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to the service manager.
/// `Ok(false)` when not started by systemd with a notification socket.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return Ok(false);
    };
    send(socket.as_bytes(), state)?;
    Ok(true)
}

/// Sends `state` to the socket `address` (`/path` or `@abstract`).
pub fn send(address: &[u8], state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    match address {
        [b'@', name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        [b'/', ..] => {
            sock.send_to(state.as_bytes(), std::ffi::OsStr::from_bytes(address))?;
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor an abstract socket (@name)",
            ));
        }
    }
    Ok(())
}

/// Start-up is done: systemd considers the unit started (`systemctl start` returns).
pub fn ready() {
    log_failure("READY=1", notify("READY=1\nSTATUS=running"));
}

/// A SIGHUP reload begins; [`ready`] must follow when it is done.
pub fn reloading() {
    let state = format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec());
    log_failure("RELOADING=1", notify(&state));
}

/// Shutdown begins.
pub fn stopping() {
    log_failure("STOPPING=1", notify("STOPPING=1"));
}

fn log_failure(what: &str, result: io::Result<bool>) {
    if let Err(err) = result {
        tracing::warn!(cause = %err, "cannot tell systemd {what} (sd_notify to $NOTIFY_SOCKET)");
    }
}

/// CLOCK_MONOTONIC in microseconds, which systemd wants beside `RELOADING=1`.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec.max(0) as u64) * 1_000_000 + (ts.tv_nsec.max(0) as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str().as_bytes(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sitewatch-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        send(format!("@{name}").as_bytes(), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn refuses_relative_addresses_and_counts_time() {
        assert!(send(b"notify", "READY=1").is_err());
        assert!(monotonic_usec() > 0);
    }
}
