//! The node's identity and environment, published retained on `…/info` at every connect.
//!
//! Read fresh at each connect (addresses change with DHCP); every source is optional, a
//! missing file just leaves its field empty.

use std::net::IpAddr;
use std::path::Path;

use sitewatch_proto::Info;
use sysinfo::{Networks, System};

use crate::collect::network::{addresses, is_loopback};
use crate::config::AgentConfig;
use crate::session::{Session, now_ms};

/// Builds the `Info` payload for this node.
pub fn gather(config: &AgentConfig, session: &Session) -> Info {
    let (ips, macs) = Networks::new_with_refreshed_list()
        .map(|n| addresses_and_macs(&n))
        .unwrap_or_default();
    Info {
        ts: now_ms(),
        session: session.id().to_owned(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        hostname: System::host_name().unwrap_or_default(),
        os: os_name(),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: std::env::consts::ARCH.to_owned(),
        board_model: read_trimmed("/proc/device-tree/model")
            .or_else(|| read_trimmed("/sys/class/dmi/id/product_name")),
        serial: read_trimmed("/proc/device-tree/serial-number"),
        machine_id: read_trimmed("/etc/machine-id")
            .or_else(|| read_trimmed("/var/lib/dbus/machine-id")),
        boot_time_ms: System::boot_time()
            .ok()
            .filter(|t| *t > 0)
            .map(|t| t.saturating_mul(1000)),
        ips,
        macs,
        heartbeat_interval_s: config.heartbeat_interval_s,
        metrics_interval_s: config.metrics_interval_s,
        keepalive_s: config.keepalive_s,
        home_assistant: config.home_assistant,
    }
}

/// `PRETTY_NAME` from os-release (e.g. `Debian GNU/Linux 12 (bookworm)`), else sysinfo's
/// name and version.
fn os_name() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| pretty_name(&text))
        .unwrap_or_else(|| {
            let name = System::name().unwrap_or_else(|_| std::env::consts::OS.to_owned());
            match System::os_version() {
                Ok(v) => format!("{name} {v}"),
                Err(_) => name,
            }
        })
}

/// The `PRETTY_NAME` value of an os-release file, unquoted.
pub fn pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.trim().strip_prefix("PRETTY_NAME=")?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// A small text file trimmed of whitespace and the NULs device-tree files end with;
/// `None` when missing, unreadable or empty.
fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    clean_text(&bytes)
}

/// Bytes as text without NULs and surrounding whitespace; `None` when nothing is left.
pub fn clean_text(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.replace('\0', " "))
}

/// IP addresses (without IPv6 link-local ones) and MAC addresses of every non-loopback
/// interface, sorted and without duplicates.
fn addresses_and_macs(networks: &Networks) -> (Vec<String>, Vec<String>) {
    let mut ips = Vec::new();
    let mut macs = Vec::new();
    for (name, data) in networks.iter() {
        let addrs = addresses(data);
        if is_loopback(&name.to_string_lossy(), &addrs) {
            continue;
        }
        ips.extend(
            addrs
                .iter()
                .filter(|a| !is_ipv6_link_local(a))
                .map(IpAddr::to_string),
        );
        let mac = data.mac_address();
        if !mac.is_unspecified() {
            macs.push(mac.to_string());
        }
    }
    for list in [&mut ips, &mut macs] {
        list.sort();
        list.dedup();
    }
    (ips, macs)
}

fn is_ipv6_link_local(addr: &IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_name_is_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn device_tree_strings_lose_their_nuls() {
        assert_eq!(
            clean_text(b"Raspberry Pi 4 Model B Rev 1.4\0").as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(clean_text(b"\0\0"), None);
        assert_eq!(clean_text(b"  abc\n").as_deref(), Some("abc"));
    }

    #[test]
    fn link_local_v6_is_recognised() {
        assert!(is_ipv6_link_local(&"fe80::1".parse().unwrap()));
        assert!(!is_ipv6_link_local(&"2001:db8::1".parse().unwrap()));
        assert!(!is_ipv6_link_local(&"10.0.0.1".parse().unwrap()));
    }
}
