//! Raspberry Pi power and thermal health from sysfs, without `vcgencmd`.
//!
//! Two sources, found once at start ([`discover`]):
//! - the firmware's `get_throttled` value, which the Raspberry Pi kernel's firmware driver
//!   exposes as `/sys/devices/platform/soc/soc:firmware/get_throttled` (other SoC node
//!   names on newer boards, e.g. `soc@107c000000:firmware` on a Pi 5), printed in hex;
//! - the `rpi_volt` hwmon chip, whose `in0_lcrit_alarm` is 1 while the supply is too low.
//!
//! A machine with neither is not a Pi (or runs a kernel without the drivers): its sample
//! has `pi: None` and nothing is logged per sample.

use std::path::PathBuf;

use sitewatch_proto::payload::PiHealth;
use tracing::debug;

use super::kernel::{SysRoot, dir_names, read_text};

/// Bits of the firmware's throttling word (as `vcgencmd get_throttled` documents them).
pub mod bits {
    pub const UNDER_VOLTAGE_NOW: u32 = 1 << 0;
    pub const FREQ_CAPPED_NOW: u32 = 1 << 1;
    pub const THROTTLED_NOW: u32 = 1 << 2;
    pub const SOFT_TEMP_LIMIT_NOW: u32 = 1 << 3;
    pub const UNDER_VOLTAGE_OCCURRED: u32 = 1 << 16;
    pub const FREQ_CAPPED_OCCURRED: u32 = 1 << 17;
    pub const THROTTLED_OCCURRED: u32 = 1 << 18;
    pub const SOFT_TEMP_LIMIT_OCCURRED: u32 = 1 << 19;
}

/// The Pi health files of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiSources {
    pub throttled: Option<PathBuf>,
    /// `in0_lcrit_alarm` of the `rpi_volt` hwmon chip.
    pub volt_alarm: Option<PathBuf>,
}

/// `/proc/device-tree/model`, e.g. `Raspberry Pi 4 Model B Rev 1.4`.
pub fn board_model(root: &SysRoot) -> Option<String> {
    read_text(&root.proc("device-tree/model"))
}

/// Finds the Pi health files; `None` when there are none.
pub fn discover(root: &SysRoot) -> Option<PiSources> {
    let sources = PiSources {
        throttled: find_get_throttled(root),
        volt_alarm: find_rpi_volt_alarm(root),
    };
    let model = board_model(root);
    if sources.throttled.is_none() && sources.volt_alarm.is_none() {
        if model.as_deref().is_some_and(is_raspberry_pi) {
            debug!(
                model = model.as_deref().unwrap_or_default(),
                "no get_throttled or rpi_volt in sysfs: Pi power health is not reported"
            );
        }
        return None;
    }
    debug!(?sources, ?model, "Raspberry Pi health sources found");
    Some(sources)
}

/// Whether a device-tree model names a Raspberry Pi board.
pub fn is_raspberry_pi(model: &str) -> bool {
    model.starts_with("Raspberry Pi")
}

/// `get_throttled` under the firmware node: `platform/soc/soc:firmware` first, then any
/// `platform/*soc*/*firmware*` or `platform/*firmware*`.
fn find_get_throttled(root: &SysRoot) -> Option<PathBuf> {
    let platform = root.sys("devices/platform");
    let usual = platform.join("soc/soc:firmware/get_throttled");
    if usual.is_file() {
        return Some(usual);
    }
    let names = dir_names(&platform);
    let nested = names.iter().filter(|d| d.contains("soc")).flat_map(|soc| {
        let dir = platform.join(soc);
        dir_names(&dir)
            .into_iter()
            .filter(|e| e.contains("firmware"))
            .map(move |e| dir.join(e))
    });
    let top = names
        .iter()
        .filter(|e| e.contains("firmware"))
        .map(|e| platform.join(e));
    nested
        .chain(top)
        .map(|dir| dir.join("get_throttled"))
        .find(|p| p.is_file())
}

/// `in0_lcrit_alarm` of the hwmon chip named `rpi_volt`.
fn find_rpi_volt_alarm(root: &SysRoot) -> Option<PathBuf> {
    let hwmon = root.sys("class/hwmon");
    dir_names(&hwmon)
        .into_iter()
        .map(|chip| hwmon.join(chip))
        .filter(|dir| read_text(&dir.join("name")).as_deref() == Some("rpi_volt"))
        .map(|dir| dir.join("in0_lcrit_alarm"))
        .find(|p| p.is_file())
}

/// The `get_throttled` text: the kernel prints it in hex without `0x` (`50005`); a `0x`
/// prefix is accepted too.
pub fn parse_throttled(text: &str) -> Option<u32> {
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u32::from_str_radix(hex, 16).ok()
}

/// The named flags of a `get_throttled` value.
pub fn decode(raw: u32) -> PiHealth {
    let on = |bit: u32| raw & bit != 0;
    PiHealth {
        throttled_raw: Some(raw),
        under_voltage_now: on(bits::UNDER_VOLTAGE_NOW),
        freq_capped_now: on(bits::FREQ_CAPPED_NOW),
        throttled_now: on(bits::THROTTLED_NOW),
        soft_temp_limit_now: on(bits::SOFT_TEMP_LIMIT_NOW),
        under_voltage_occurred: on(bits::UNDER_VOLTAGE_OCCURRED),
        freq_capped_occurred: on(bits::FREQ_CAPPED_OCCURRED),
        throttled_occurred: on(bits::THROTTLED_OCCURRED),
        soft_temp_limit_occurred: on(bits::SOFT_TEMP_LIMIT_OCCURRED),
    }
}

/// Combines the two sources: the decoded `get_throttled` flags when readable, with
/// `under_voltage_now` also set by the `rpi_volt` alarm. With only the alarm, the other
/// flags stay false and `throttled_raw` is absent. `None` when neither was readable.
pub fn combine(throttled: Option<u32>, volt_alarm: Option<bool>) -> Option<PiHealth> {
    let mut health = match (throttled, volt_alarm) {
        (None, None) => return None,
        (Some(raw), _) => decode(raw),
        (None, Some(_)) => PiHealth::default(),
    };
    health.under_voltage_now |= volt_alarm.unwrap_or(false);
    Some(health)
}

/// Reads the sources of one sample.
pub fn read(sources: &PiSources) -> Option<PiHealth> {
    let throttled = sources
        .throttled
        .as_ref()
        .and_then(|p| parse_throttled(&read_text(p)?));
    let alarm = sources
        .volt_alarm
        .as_ref()
        .and_then(|p| read_text(p))
        .map(|t| t != "0");
    combine(throttled, alarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_text_is_hex() {
        assert_eq!(parse_throttled("50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("0x50000"), Some(0x50000));
        assert_eq!(parse_throttled("0"), Some(0));
        assert_eq!(parse_throttled("e0008"), Some(0xe0008));
        assert_eq!(parse_throttled(""), None);
        assert_eq!(parse_throttled("throttled=0x0"), None);
    }

    #[test]
    fn every_bit_has_its_flag() {
        let all = decode(0xf000f);
        assert!(all.under_voltage_now && all.freq_capped_now && all.throttled_now);
        assert!(all.soft_temp_limit_now && all.under_voltage_occurred);
        assert!(all.freq_capped_occurred && all.throttled_occurred);
        assert!(all.soft_temp_limit_occurred);
        let none = decode(0);
        assert_eq!(
            none,
            PiHealth {
                throttled_raw: Some(0),
                ..Default::default()
            }
        );
        // Bits outside the documented ones change nothing but the raw value.
        assert_eq!(
            decode(0x10),
            PiHealth {
                throttled_raw: Some(0x10),
                ..none
            }
        );
    }

    #[test]
    fn rpi_volt_alarm_complements_the_firmware_value() {
        assert_eq!(combine(None, None), None);
        let only_alarm = combine(None, Some(true)).unwrap();
        assert!(only_alarm.under_voltage_now && only_alarm.throttled_raw.is_none());
        assert!(!only_alarm.under_voltage_occurred);
        let both = combine(Some(0x50000), Some(true)).unwrap();
        assert!(both.under_voltage_now && both.under_voltage_occurred);
        assert!(!combine(Some(0), Some(false)).unwrap().under_voltage_now);
    }

    #[test]
    fn model_detection() {
        assert!(is_raspberry_pi("Raspberry Pi Zero W Rev 1.1"));
        assert!(!is_raspberry_pi("QEMU Standard PC"));
    }
}
