//! The open-files limit: every simulated agent holds one socket, so the soft limit (often
//! 1024) is raised to the hard limit before connecting, and a run that cannot fit says so.

/// File descriptors the run needs besides the agents' sockets (stdio, runtime, /proc reads).
pub const RESERVED_FDS: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force.
pub fn raise_nofile() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    // rlim_t is not u64 on every target.
    #[allow(clippy::unnecessary_cast)]
    Ok(lim.rlim_cur as u64)
}

/// Checks that `agents` sockets fit under `limit` open files.
pub fn check_fits(agents: usize, limit: u64) -> anyhow::Result<()> {
    let needed = agents as u64 + RESERVED_FDS;
    if needed > limit {
        anyhow::bail!(
            "--agents {agents} needs about {needed} open files but this process may open only \
             {limit} (RLIMIT_NOFILE hard limit): run fewer agents, or raise the hard limit \
             (`ulimit -Hn {needed}` as root, LimitNOFILE= in a systemd unit, or \
             /etc/security/limits.conf) and try again"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_and_checks_explain() {
        let limit = raise_nofile().unwrap();
        assert!(limit >= 16);
        assert!(check_fits(1, limit).is_ok());
        let e = check_fits(usize::MAX / 2, limit).unwrap_err().to_string();
        assert!(e.contains("RLIMIT_NOFILE") && e.contains("ulimit"), "{e}");
    }
}
