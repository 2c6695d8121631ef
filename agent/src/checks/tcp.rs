//! `kind = "tcp"`: does a port accept connections? Also the connect step of HTTP checks.
//!
//! The name is resolved with `tokio::net::lookup_host` and every address is tried in
//! turn, as `TcpStream::connect` does; the connection is closed as soon as it is open.
//! States: `open` (with latency), `refused`, `unreachable`, `timeout`, `dns_error`, `error`.

use std::io;
use std::time::Instant;

use tokio::net::TcpStream;

use super::Outcome;

/// Runs the check; `started` is when the check began (latency includes name resolution).
pub(crate) async fn check(host: &str, port: u16, started: Instant) -> Outcome {
    match connect(host, port).await {
        Ok(_stream) => Outcome::pass("open").with_latency(started.elapsed()),
        Err(failure) => failure,
    }
}

/// Resolves `host` and connects to the first address that accepts; on failure, the
/// outcome to report (`dns_error`, `refused`, `unreachable`, `timeout` or `error`).
pub(crate) async fn connect(host: &str, port: u16) -> Result<TcpStream, Outcome> {
    let host = unbracket(host);
    let addrs = match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs,
        Err(err) => {
            return Err(Outcome::fail(
                "dns_error",
                format!("cannot resolve {host}: {err}"),
            ));
        }
    };
    let mut last: Option<(std::net::SocketAddr, io::Error)> = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some((addr, err)),
        }
    }
    Err(match last {
        None => Outcome::fail("dns_error", format!("{host} resolves to no address")),
        Some((addr, err)) => Outcome::fail(
            connect_state(&err),
            format!("cannot connect to {addr}: {err}{}", connect_hint(&err)),
        ),
    })
}

/// The state a failed connect reports.
pub(crate) fn connect_state(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => "unreachable",
        io::ErrorKind::TimedOut => "timeout",
        _ => "error",
    }
}

fn connect_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => {
            " — nothing listens on that port; is the service running?"
        }
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            " — check the address and this node's routes"
        }
        _ => "",
    }
}

/// `[::1]` → `::1`, so both spellings of an IPv6 literal work in `host`.
fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_map_to_states() {
        let state = |kind| connect_state(&io::Error::from(kind));
        assert_eq!(state(io::ErrorKind::ConnectionRefused), "refused");
        assert_eq!(state(io::ErrorKind::HostUnreachable), "unreachable");
        assert_eq!(state(io::ErrorKind::NetworkUnreachable), "unreachable");
        assert_eq!(state(io::ErrorKind::TimedOut), "timeout");
        assert_eq!(state(io::ErrorKind::PermissionDenied), "error");
        // Raw errno values as the kernel returns them.
        assert_eq!(
            connect_state(&io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            "refused"
        );
        assert_eq!(
            connect_state(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)),
            "unreachable"
        );
        assert_eq!(
            connect_state(&io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            "timeout"
        );
    }

    #[test]
    fn bracketed_ipv6_hosts_are_accepted() {
        assert_eq!(unbracket("[::1]"), "::1");
        assert_eq!(unbracket("::1"), "::1");
        assert_eq!(unbracket("example.org"), "example.org");
    }

    #[tokio::test]
    async fn open_and_refused_ports_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let o = check("127.0.0.1", port, Instant::now()).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(o.state, "open");
        assert!(o.latency.is_some());
        drop(listener);
        let o = check("127.0.0.1", port, Instant::now()).await;
        assert!(!o.ok);
        assert_eq!(o.state, "refused");
        assert!(o.latency.is_none());
    }
}
