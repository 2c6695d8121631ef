//! Which mounts count as real filesystems, and their usage.
//!
//! sysinfo lists every mount it can `statvfs`; an operator wants the disks: no pseudo or
//! in-memory filesystems, no container overlays, and each device once even when it is
//! bind-mounted in several places. `[filesystems]` ([`FilesystemsConfig`]) narrows or
//! widens that choice per node.

use std::collections::HashSet;

use sitewatch_proto::payload::Filesystem;
use sysinfo::Disks;

/// Filesystem types that are never reported: kernel pseudo filesystems, memory-backed
/// ones, read-only images and container layers. The one list of them.
pub const SKIPPED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fuse.portal",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// One mount as sysinfo reports it, before filtering.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub device: String,
    pub mount: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// Whether a mount of this type and device is a real filesystem worth reporting.
pub fn is_real(fs_type: &str, device: &str) -> bool {
    !SKIPPED_FS_TYPES.contains(&fs_type)
        && !fs_type.starts_with("fuse.gvfs")
        && !device.starts_with("/dev/loop")
}

/// Keeps the real filesystems, each device once (at its shortest mount path, so `/` wins
/// over a bind mount of it), sorted by mount path. Used bytes are `total - available`, so
/// `used_pct` reaches 100 when non-root users can write nothing more, as `df` does.
pub fn select_real(mounts: Vec<Mount>) -> Vec<Filesystem> {
    select(mounts, &FilesystemsConfig::default())
}

/// [`select_real`] with a node's `[filesystems]` settings applied (see
/// [`FilesystemsConfig`] for the rules).
pub fn select(mut mounts: Vec<Mount>, cfg: &FilesystemsConfig) -> Vec<Filesystem> {
    mounts.retain(|m| m.total_bytes > 0 && cfg.wants(m));
    mounts.sort_by(|a, b| (a.mount.len(), &a.mount).cmp(&(b.mount.len(), &b.mount)));
    let mut seen = HashSet::new();
    let mut out: Vec<Filesystem> = mounts
        .into_iter()
        // A pseudo filesystem's "device" is its type name (`tmpfs`), shared by all its
        // mounts: only real devices identify a filesystem mounted twice.
        .filter(|m| !is_real(&m.fs_type, &m.device) || seen.insert(m.device.clone()))
        .map(|m| {
            let available = m.available_bytes.min(m.total_bytes);
            let used = m.total_bytes - available;
            Filesystem {
                used_pct: used as f64 * 100.0 / m.total_bytes as f64,
                mount: m.mount,
                device: m.device,
                fs_type: m.fs_type,
                total_bytes: m.total_bytes,
                used_bytes: used,
                available_bytes: available,
            }
        })
        .collect();
    out.sort_by(|a, b| a.mount.cmp(&b.mount));
    out
}

/// A mount path compared without a trailing `/` (`/data/` names `/data`; `/` stays `/`).
fn same_mount(a: &str, b: &str) -> bool {
    fn trim(p: &str) -> &str {
        if p.len() > 1 {
            p.trim_end_matches('/')
        } else {
            p
        }
    }
    trim(a) == trim(b)
}

/// The mounts of a refreshed [`Disks`].
pub fn mounts(disks: &Disks) -> Vec<Mount> {
    disks
        .iter()
        .map(|d| Mount {
            device: d.name().to_string_lossy().into_owned(),
            mount: d.mount_point().to_string_lossy().into_owned(),
            fs_type: d.file_system().to_string_lossy().into_owned(),
            total_bytes: d.total_space(),
            available_bytes: d.available_space(),
        })
        .collect()
}

/// `[filesystems]`: which mounts the agent reports, on top of the built-in skip list.
///
/// Rules, in order: a mount in `exclude-mounts` or of a type in `exclude-types` is never
/// reported; when `include-mounts` is set, exactly the listed mounts are reported, even of
/// a type the built-in list skips (a `tmpfs` `/var/log` under log2ram is worth watching);
/// otherwise every real filesystem is. Mount paths are compared exactly, ignoring a
/// trailing `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FilesystemsConfig {
    /// When non-empty, only these mount points are reported.
    #[serde(default)]
    pub include_mounts: Vec<String>,
    /// Mount points never reported (e.g. `/boot/firmware`).
    #[serde(default)]
    pub exclude_mounts: Vec<String>,
    /// Filesystem types skipped in addition to the built-in pseudo/overlay list.
    #[serde(default)]
    pub exclude_types: Vec<String>,
}

impl FilesystemsConfig {
    /// Whether this mount is reported under these settings (size is checked elsewhere).
    pub fn wants(&self, m: &Mount) -> bool {
        if self.exclude_mounts.iter().any(|x| same_mount(x, &m.mount))
            || self.exclude_types.contains(&m.fs_type)
        {
            return false;
        }
        if self.include_mounts.is_empty() {
            is_real(&m.fs_type, &m.device)
        } else {
            self.include_mounts.iter().any(|x| same_mount(x, &m.mount))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(device: &str, mount: &str, fs_type: &str, total: u64, avail: u64) -> Mount {
        Mount {
            device: device.into(),
            mount: mount.into(),
            fs_type: fs_type.into(),
            total_bytes: total,
            available_bytes: avail,
        }
    }

    #[test]
    fn keeps_real_disks_once_and_skips_pseudo_filesystems() {
        let got = select_real(vec![
            m("/dev/mmcblk0p2", "/var/lib/docker", "ext4", 100, 25),
            m(
                "overlay",
                "/var/lib/docker/overlay2/x/merged",
                "overlay",
                100,
                25,
            ),
            m("/dev/mmcblk0p2", "/", "ext4", 100, 25),
            m("/dev/mmcblk0p1", "/boot/firmware", "vfat", 512, 256),
            m("tmpfs", "/dev/shm", "tmpfs", 1000, 1000),
            m("devtmpfs", "/dev", "devtmpfs", 1000, 1000),
            m("/dev/loop3", "/snap/core/1", "squashfs", 50, 0),
            m("/dev/loop4", "/mnt/img", "ext4", 50, 0),
            m("proc", "/proc", "proc", 0, 0),
            m("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, 0),
            m("/dev/sda1", "/mnt/empty", "ext4", 0, 0),
        ]);
        let mounts: Vec<&str> = got.iter().map(|f| f.mount.as_str()).collect();
        assert_eq!(mounts, ["/", "/boot/firmware"]);
        let root = &got[0];
        assert_eq!(
            (root.total_bytes, root.used_bytes, root.available_bytes),
            (100, 75, 25)
        );
        assert_eq!(root.used_pct, 75.0);
        assert_eq!(root.fs_type, "ext4");
    }

    #[test]
    fn available_above_total_does_not_underflow() {
        let got = select_real(vec![m("/dev/sda1", "/data", "xfs", 10, 20)]);
        assert_eq!((got[0].used_bytes, got[0].used_pct), (0, 0.0));
    }

    #[test]
    fn config_includes_excludes_and_extra_types() {
        let mounts = || {
            vec![
                m("/dev/mmcblk0p2", "/", "ext4", 100, 25),
                m("/dev/mmcblk0p1", "/boot/firmware", "vfat", 512, 256),
                m("/dev/sda1", "/srv/backup", "exfat", 1000, 900),
                m("log2ram", "/var/log", "tmpfs", 40, 30),
                m("tmpfs", "/run", "tmpfs", 80, 79),
                m("tmpfs", "/dev/shm", "tmpfs", 80, 80),
            ]
        };
        let names = |cfg: FilesystemsConfig| -> Vec<String> {
            select(mounts(), &cfg)
                .into_iter()
                .map(|f| f.mount)
                .collect()
        };
        assert_eq!(
            names(FilesystemsConfig::default()),
            ["/", "/boot/firmware", "/srv/backup"]
        );
        let exclude = FilesystemsConfig {
            exclude_mounts: vec!["/boot/firmware/".into()],
            exclude_types: vec!["exfat".into()],
            ..Default::default()
        };
        assert_eq!(names(exclude), ["/"]);
        // Included by name even though tmpfs is skipped by default; two tmpfs mounts are
        // two filesystems, not one device seen twice.
        let include = FilesystemsConfig {
            include_mounts: vec!["/".into(), "/var/log".into(), "/dev/shm".into()],
            exclude_mounts: vec!["/dev/shm".into()],
            ..Default::default()
        };
        assert_eq!(names(include), ["/", "/var/log"]);
        let tmpfs_too = FilesystemsConfig {
            include_mounts: vec!["/run".into(), "/dev/shm".into()],
            ..Default::default()
        };
        assert_eq!(names(tmpfs_too), ["/dev/shm", "/run"]);
    }

    #[test]
    fn network_and_zfs_filesystems_are_real() {
        assert!(is_real("zfs", "rpool/ROOT/debian"));
        assert!(is_real("btrfs", "/dev/nvme0n1p2"));
        assert!(is_real("nfs4", "nas:/export"));
        assert!(!is_real("overlay", "overlay"));
    }
}
