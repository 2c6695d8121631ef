//! Every temperature sensor the kernel exposes: thermal zones and hwmon chips, labelled.
//!
//! Thermal zones (`/sys/class/thermal/thermal_zone*`) are labelled by their `type`
//! (`cpu-thermal`, `acpitz`), with the `critical` trip point as `crit_c`. hwmon chips
//! (`/sys/class/hwmon/hwmon*`) are labelled `name/label` (`coretemp/Core 0`) or
//! `name/tempN` when the driver gives no label, with `tempN_crit` as `crit_c`.
//!
//! The kernel mirrors every thermal zone as an hwmon chip named after the zone's type with
//! `-` replaced by `_` (a Pi's `cpu-thermal` zone is also hwmon `cpu_thermal`); those
//! mirrors are skipped so each sensor is reported once. Sensors are found once
//! ([`discover`]); a sample reads only their `temp` files ([`read`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use sitewatch_proto::payload::Temperature;

use super::kernel::{SysRoot, dir_names, millidegrees, read_i64, read_text};

/// One sensor found at discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// Unique among the node's sensors (a repeated one gets ` #2`, ` #3`…).
    pub label: String,
    /// The file holding the current reading, in millidegrees.
    pub input: PathBuf,
    /// Critical temperature, read once: trip points and limits are set at boot.
    pub crit_c: Option<f64>,
}

/// Finds every thermal zone and hwmon temperature input, sorted by label.
pub fn discover(root: &SysRoot) -> Vec<Sensor> {
    let mut sensors = Vec::new();
    let mut zone_types = HashSet::new();

    let thermal = root.sys("class/thermal");
    for zone in dir_names(&thermal) {
        if !zone.starts_with("thermal_zone") {
            continue;
        }
        let dir = thermal.join(&zone);
        let label = read_text(&dir.join("type")).unwrap_or(zone);
        zone_types.insert(hwmon_name_of_zone(&label));
        sensors.push(Sensor {
            crit_c: critical_trip(&dir),
            input: dir.join("temp"),
            label,
        });
    }

    let hwmon = root.sys("class/hwmon");
    for chip in dir_names(&hwmon) {
        let dir = hwmon.join(&chip);
        // Old drivers keep their attributes in the parent device directory.
        let dir = if dir.join("name").is_file() || !dir.join("device/name").is_file() {
            dir
        } else {
            dir.join("device")
        };
        let name = read_text(&dir.join("name")).unwrap_or(chip);
        if zone_types.contains(&name) {
            continue;
        }
        for file in dir_names(&dir) {
            let Some(n) = file
                .strip_prefix("temp")
                .and_then(|f| f.strip_suffix("_input"))
            else {
                continue;
            };
            let label = read_text(&dir.join(format!("temp{n}_label")))
                .map_or_else(|| format!("{name}/temp{n}"), |l| format!("{name}/{l}"));
            sensors.push(Sensor {
                crit_c: positive_c(read_i64(&dir.join(format!("temp{n}_crit")))),
                input: dir.join(file),
                label,
            });
        }
    }

    sensors.sort_by(|a, b| a.label.cmp(&b.label));
    make_labels_unique(&mut sensors);
    sensors
}

/// The hwmon chip name the kernel gives the mirror of a thermal zone of this type.
pub fn hwmon_name_of_zone(zone_type: &str) -> String {
    zone_type.replace('-', "_")
}

/// The temperature of the zone's first trip point of type `critical`.
fn critical_trip(zone: &Path) -> Option<f64> {
    (0..)
        .map_while(|n| Some((n, read_text(&zone.join(format!("trip_point_{n}_type")))?)))
        .find(|(_, kind)| kind == "critical")
        .and_then(|(n, _)| positive_c(read_i64(&zone.join(format!("trip_point_{n}_temp")))))
}

/// Millidegrees as °C; 0 or below means "not set" for a critical limit.
fn positive_c(milli: Option<i64>) -> Option<f64> {
    milli.filter(|m| *m > 0).map(millidegrees)
}

/// Appends ` #2`, ` #3`… to repeated labels (two identical chips, e.g. two NVMe drives),
/// so every series name stays unique.
fn make_labels_unique(sensors: &mut [Sensor]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for s in sensors.iter_mut() {
        let count = seen.entry(s.label.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            s.label = format!("{} #{count}", s.label);
        }
    }
}

/// The current reading of every sensor that answers, in discovery order. A sensor that
/// fails (a device asleep, a driver returning an error) is left out of this sample only.
pub fn read(sensors: &[Sensor]) -> Vec<Temperature> {
    sensors
        .iter()
        .filter_map(|s| {
            let milli = read_i64(&s.input)?;
            // -273 °C and below is a driver's "no reading", not a temperature.
            (milli > -273_000).then(|| Temperature {
                label: s.label.clone(),
                temp_c: millidegrees(milli),
                crit_c: s.crit_c,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    #[test]
    fn hwmon_labels_crit_and_zone_mirrors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "sys/class/thermal/thermal_zone0/type", "acpitz\n");
        write(d, "sys/class/thermal/thermal_zone0/temp", "27800\n");
        write(
            d,
            "sys/class/thermal/thermal_zone0/trip_point_0_type",
            "passive\n",
        );
        write(
            d,
            "sys/class/thermal/thermal_zone0/trip_point_0_temp",
            "95000\n",
        );
        write(
            d,
            "sys/class/thermal/thermal_zone0/trip_point_1_type",
            "critical\n",
        );
        write(
            d,
            "sys/class/thermal/thermal_zone0/trip_point_1_temp",
            "105000\n",
        );
        write(d, "sys/class/hwmon/hwmon0/name", "acpitz\n");
        write(d, "sys/class/hwmon/hwmon0/temp1_input", "27800\n");
        write(d, "sys/class/hwmon/hwmon1/name", "coretemp\n");
        write(d, "sys/class/hwmon/hwmon1/temp1_input", "45000\n");
        write(d, "sys/class/hwmon/hwmon1/temp1_label", "Package id 0\n");
        write(d, "sys/class/hwmon/hwmon1/temp1_crit", "100000\n");
        write(d, "sys/class/hwmon/hwmon1/temp2_input", "43000\n");
        write(d, "sys/class/hwmon/hwmon1/temp2_label", "Core 0\n");
        write(d, "sys/class/hwmon/hwmon2/name", "nvme\n");
        write(d, "sys/class/hwmon/hwmon2/temp1_input", "38850\n");
        write(d, "sys/class/hwmon/hwmon3/name", "nvme\n");
        write(d, "sys/class/hwmon/hwmon3/temp1_input", "not a number\n");
        write(d, "sys/class/hwmon/hwmon10/device/name", "drivetemp\n");
        write(d, "sys/class/hwmon/hwmon10/device/temp1_input", "31000\n");

        let sensors = discover(&SysRoot::under(d));
        let labels: Vec<&str> = sensors.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "acpitz",
                "coretemp/Core 0",
                "coretemp/Package id 0",
                "drivetemp/temp1",
                "nvme/temp1",
                "nvme/temp1 #2"
            ]
        );
        let got = read(&sensors);
        let t = |l: &str| got.iter().find(|t| t.label == l).cloned();
        assert_eq!(t("acpitz").unwrap().crit_c, Some(105.0));
        let pkg = t("coretemp/Package id 0").unwrap();
        assert_eq!((pkg.temp_c, pkg.crit_c), (45.0, Some(100.0)));
        assert_eq!(t("coretemp/Core 0").unwrap().crit_c, None);
        assert_eq!(t("nvme/temp1").unwrap().temp_c, 38.9);
        assert_eq!(t("drivetemp/temp1").unwrap().temp_c, 31.0);
        assert!(t("nvme/temp1 #2").is_none(), "unreadable sensor skipped");
    }

    #[test]
    fn zone_mirror_names() {
        assert_eq!(hwmon_name_of_zone("cpu-thermal"), "cpu_thermal");
        assert_eq!(hwmon_name_of_zone("acpitz"), "acpitz");
    }
}
