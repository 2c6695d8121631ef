//! WiFi link quality and signal from `/proc/net/wireless`.
//!
//! The file has two header lines, then one line per associated wireless interface:
//!
//! ```text
//! Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
//!  face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
//!  wlan0: 0000   54.  -56.  -256        0      0      0      0     42        0
//! ```
//!
//! `link` is on the driver's scale, 0–70 for every cfg80211 driver (brcmfmac on the Pis
//! included: it is the signal in dBm + 110, capped at 70). `level` and `noise` are dBm;
//! a trailing `.` marks a value the driver updated. `-256` means "not reported". The file
//! is absent when no wireless driver is loaded, and has no line for an interface that is
//! not associated.

use sitewatch_proto::payload::Wifi;

use super::kernel::SysRoot;

/// Top of the `link` scale of cfg80211 drivers.
pub const LINK_QUALITY_MAX: f64 = 70.0;

/// What the kernel prints for a level it does not have.
const NOT_REPORTED: f64 = -256.0;

/// Every interface line of `/proc/net/wireless` with a signal level in dBm.
pub fn parse_wireless(text: &str) -> Vec<Wifi> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let mut f = rest.split_whitespace().skip(1).map(value);
            let (link, level, noise) = (f.next()??, f.next()??, f.next()??);
            // A positive level is a driver's relative scale, not dBm; nothing to report.
            if level == NOT_REPORTED || level > 0.0 {
                return None;
            }
            Some(Wifi {
                interface: name.trim().to_owned(),
                link_quality_pct: quality_pct(link),
                signal_dbm: level,
                noise_dbm: (noise != NOT_REPORTED && noise < 0.0).then_some(noise),
            })
        })
        .collect()
}

/// A quality column value: a number, possibly followed by the "updated" dot.
fn value(field: &str) -> Option<f64> {
    field
        .strip_suffix('.')
        .unwrap_or(field)
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// `link` as a percentage of [`LINK_QUALITY_MAX`], clamped to 0–100, rounded to 0.1.
pub fn quality_pct(link: f64) -> f64 {
    ((link / LINK_QUALITY_MAX * 100.0).clamp(0.0, 100.0) * 10.0).round() / 10.0
}

/// The wireless interfaces under `root`; empty when the file is absent.
pub fn read(root: &SysRoot) -> Vec<Wifi> {
    std::fs::read_to_string(root.proc("net/wireless"))
        .map(|t| parse_wireless(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "\
Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
";

    #[test]
    fn brcmfmac_line() {
        let text = format!(
            "{HEADER} wlan0: 0000   54.  -56.  -256        0      0      0      0     42        0\n"
        );
        assert_eq!(
            parse_wireless(&text),
            [Wifi {
                interface: "wlan0".into(),
                link_quality_pct: 77.1,
                signal_dbm: -56.0,
                noise_dbm: None,
            }]
        );
    }

    #[test]
    fn noise_signal_and_quality_edges() {
        let text = format!(
            "{HEADER}wlp2s0: 0000   70   -30  -95  0 0 0 0 0 0\n\
             wlan1: 0000   80.  -20.  -90.  0 0 0 0 0 0\n\
             wlan2: 0000   0   -256  -256  0 0 0 0 0 0\n\
             wlan3: 0000   40   200   0  0 0 0 0 0 0\n\
             wlan4: 0000   junk\n"
        );
        let got = parse_wireless(&text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].interface, "wlp2s0");
        assert_eq!(
            (got[0].link_quality_pct, got[0].noise_dbm),
            (100.0, Some(-95.0))
        );
        assert_eq!(got[1].link_quality_pct, 100.0, "clamped");
        assert!(parse_wireless(HEADER).is_empty());
        assert!(parse_wireless("").is_empty());
    }
}
