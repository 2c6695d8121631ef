//! `kind = "process"`: is a process with this exact name running?
//!
//! Scans `/proc/PID/comm`. The kernel truncates `comm` to 15 bytes, so when a process's
//! `comm` is a full-length prefix of a longer wanted name, the basename of the first
//! element of `/proc/PID/cmdline` decides. `cmdline` is read only in that case: the scan
//! runs every interval on small machines and must stay a few syscalls per process.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Outcome;

/// Longest `comm` the kernel keeps (`TASK_COMM_LEN` − 1).
const COMM_MAX: usize = 15;

/// Runs the check against the real `/proc`.
pub(crate) async fn check(name: &str) -> Outcome {
    let name = name.to_owned();
    let scan = tokio::task::spawn_blocking(move || {
        let count = count_running(Path::new("/proc"), &name);
        (name, count)
    })
    .await;
    match scan {
        Ok((name, Ok(count))) => judge(&name, count),
        Ok((_, Err(err))) => Outcome::fail("error", format!("cannot list /proc: {err}")),
        Err(err) => Outcome::fail("error", format!("process scan failed: {err}")),
    }
}

/// `running` with the count when at least one process matches, else `missing`.
pub(crate) fn judge(name: &str, count: usize) -> Outcome {
    if count > 0 {
        let s = if count == 1 { "" } else { "es" };
        Outcome::pass("running").with_detail(format!("{count} process{s} named {name}"))
    } else {
        Outcome::fail("missing", format!("no process named {name} is running"))
    }
}

/// Counts processes under `proc_root` (a `/proc`-like directory) whose name is `name`.
/// Processes that exit during the scan, or whose files cannot be read, are skipped.
pub(crate) fn count_running(proc_root: &Path, name: &str) -> io::Result<usize> {
    let mut count = 0;
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name();
        if !is_pid(&file_name) {
            continue;
        }
        let dir = proc_root.join(&file_name);
        if process_matches(&dir, name) {
            count += 1;
        }
    }
    Ok(count)
}

fn is_pid(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

fn process_matches(dir: &Path, name: &str) -> bool {
    let Ok(comm) = fs::read(dir.join("comm")) else {
        return false;
    };
    let comm = trim_newline(&comm);
    if comm == name.as_bytes() {
        return true;
    }
    if comm_is_truncated_prefix(comm, name) {
        let cmdline_path: PathBuf = dir.join("cmdline");
        if let Ok(cmdline) = fs::read(cmdline_path) {
            return argv0_basename(&cmdline) == Some(name.as_bytes());
        }
    }
    false
}

/// `comm` is as long as the kernel allows and starts the (longer) wanted name.
fn comm_is_truncated_prefix(comm: &[u8], name: &str) -> bool {
    comm.len() == COMM_MAX && name.len() > COMM_MAX && name.as_bytes().starts_with(comm)
}

fn trim_newline(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\n").unwrap_or(bytes)
}

/// Basename of the first NUL-terminated element of a `cmdline` file; `None` when empty
/// (kernel threads, zombies).
pub(crate) fn argv0_basename(cmdline: &[u8]) -> Option<&[u8]> {
    let argv0 = cmdline.split(|&b| b == 0).next()?;
    let base = argv0.rsplit(|&b| b == b'/').next()?;
    (!base.is_empty()).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/proc`: `(pid, comm, cmdline)` per process, plus non-process entries.
    fn fake_proc(procs: &[(&str, &str, &[u8])]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        for (pid, comm, cmdline) in procs {
            let dir = root.path().join(pid);
            fs::create_dir(&dir).expect("mkdir");
            fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
            fs::write(dir.join("cmdline"), cmdline).expect("cmdline");
        }
        fs::create_dir(root.path().join("sys")).expect("mkdir sys");
        fs::write(root.path().join("uptime"), "1.0 2.0\n").expect("uptime");
        root
    }

    #[test]
    fn counts_exact_comm_matches_only() {
        let root = fake_proc(&[
            ("1", "systemd", b"/sbin/init\0"),
            ("20", "nginx", b"nginx: master process /usr/sbin/nginx\0"),
            ("21", "nginx", b"nginx: worker process\0"),
            ("30", "nginx-exporter", b"/usr/bin/nginx-exporter\0"),
            ("40", "kworker/0:1", b""),
        ]);
        assert_eq!(count_running(root.path(), "nginx").ok(), Some(2));
        assert_eq!(count_running(root.path(), "nginx-exporter").ok(), Some(1));
        assert_eq!(count_running(root.path(), "ngin").ok(), Some(0));
        assert_eq!(count_running(root.path(), "sys").ok(), Some(0));
    }

    #[test]
    fn long_names_fall_back_to_cmdline() {
        let root = fake_proc(&[
            // comm is "sitewatch-colle" (15 bytes) for both.
            (
                "7",
                "sitewatch-colle",
                b"/opt/sw/sitewatch-collector\0--flag\0",
            ),
            ("8", "sitewatch-colle", b"/opt/sw/sitewatch-collective\0"),
            ("9", "sitewatch-colle", b""),
        ]);
        assert_eq!(
            count_running(root.path(), "sitewatch-collector").ok(),
            Some(1)
        );
        assert_eq!(
            count_running(root.path(), "sitewatch-collective").ok(),
            Some(1)
        );
        // The truncated name itself still matches comm exactly.
        assert_eq!(count_running(root.path(), "sitewatch-colle").ok(), Some(3));
        assert_eq!(count_running(root.path(), "sitewatch-other").ok(), Some(0));
    }

    #[test]
    fn a_missing_proc_root_is_an_error() {
        let root = tempfile::tempdir().expect("tempdir");
        assert!(count_running(&root.path().join("absent"), "x").is_err());
    }

    #[test]
    fn argv0_basename_handles_paths_and_empty_cmdlines() {
        assert_eq!(argv0_basename(b"/usr/bin/foo\0-x\0"), Some(&b"foo"[..]));
        assert_eq!(argv0_basename(b"foo"), Some(&b"foo"[..]));
        assert_eq!(argv0_basename(b""), None);
        assert_eq!(argv0_basename(b"/usr/bin/\0"), None);
    }

    #[test]
    fn judge_reports_count_or_missing() {
        let o = judge("nginx", 2);
        assert!(o.ok);
        assert_eq!(o.state, "running");
        assert_eq!(o.detail.as_deref(), Some("2 processes named nginx"));
        let o = judge("nginx", 0);
        assert!(!o.ok);
        assert_eq!(o.state, "missing");
    }
}
