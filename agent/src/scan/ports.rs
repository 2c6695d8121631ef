//! TCP connect probes (`[scan] tcp-ports`): which of the listed ports accept a connection
//! on each host the sweep found. A connection is closed as soon as it is open; at most
//! [`PARALLEL`] are attempted at once, each for at most the scan's `timeout-ms`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Connection attempts in flight at once.
pub const PARALLEL: usize = 128;

/// The ports of `ports` that accepted, per host (hosts with none are left out), sorted.
pub async fn open_ports(
    hosts: &[Ipv4Addr],
    ports: &[u16],
    timeout: Duration,
) -> BTreeMap<Ipv4Addr, Vec<u16>> {
    let slots = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    let mut open: BTreeMap<Ipv4Addr, Vec<u16>> = BTreeMap::new();
    let mut record = |done: Result<Option<(Ipv4Addr, u16)>, _>| {
        if let Ok(Some((ip, port))) = done {
            open.entry(ip).or_default().push(port);
        }
    };
    for &ip in hosts {
        for &port in ports {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            tasks.spawn(async move {
                let addr = SocketAddr::from((ip, port));
                let result = tokio::time::timeout(timeout, TcpStream::connect(addr)).await;
                drop(slot);
                matches!(result, Ok(Ok(_))).then_some((ip, port))
            });
            while let Some(done) = tasks.try_join_next() {
                record(done);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done);
    }
    for list in open.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_port_is_open_and_a_closed_one_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let open = open_ports(
            &[Ipv4Addr::LOCALHOST],
            &[closed, port],
            Duration::from_millis(500),
        )
        .await;
        assert_eq!(open.get(&Ipv4Addr::LOCALHOST), Some(&vec![port]));
    }
}
