//! The default gateway, from the kernel's IPv4 routing table (`/proc/net/route`): the
//! latency probes' target when none is configured.

use std::net::Ipv4Addr;

const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;

/// The default route's gateway: the up route to 0.0.0.0/0 through a gateway with the
/// lowest metric. `None` when there is none (an isolated LAN, a namespace).
pub fn parse_default_gateway(text: &str) -> Option<Ipv4Addr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let hex = |i: usize| cols.get(i).and_then(|s| u32::from_str_radix(s, 16).ok());
            let (dest, gateway, flags, metric, mask) =
                (hex(1)?, hex(2)?, hex(3)?, cols.get(6)?, hex(7)?);
            let metric: u32 = metric.parse().ok()?;
            let wanted = dest == 0 && mask == 0 && gateway != 0;
            (wanted && flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY)
                // The kernel prints the address as the native-endian integer of its
                // network-order bytes.
                .then(|| (metric, Ipv4Addr::from(gateway.to_ne_bytes())))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gateway)| gateway)
}

/// The default gateway of the agent's network namespace, if any.
pub fn default_gateway() -> Option<Ipv4Addr> {
    std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|text| parse_default_gateway(&text))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    #[test]
    fn the_default_route_with_the_lowest_metric_wins() {
        let text = format!(
            "{HEADER}\
wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
        );
        assert_eq!(
            parse_default_gateway(&text),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
    }

    #[test]
    fn no_default_route_no_gateway() {
        let text = format!(
            "{HEADER}\
lab0\t0000E70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth0\t00000000\t0101A8C0\t0001\t0\t0\t100\t00000000\t0\t0\t0\n\
broken line\n"
        );
        assert_eq!(parse_default_gateway(&text), None);
        assert_eq!(parse_default_gateway(""), None);
    }
}
