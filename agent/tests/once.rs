//! `sitewatch-agent --once` prints one metrics sample as JSON and needs no broker or site.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use sitewatch_proto::Metrics;

#[test]
fn once_prints_a_sane_metrics_sample() {
    let out = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"))
        .arg("--once")
        // No site, no config, no broker: --once must not need any of them.
        .env_remove("SITEWATCH_SITE")
        .env_remove("SITEWATCH_CONFIG")
        .env("SITEWATCH_BROKER", "mqtt://192.0.2.1:1")
        .output()
        .expect("run sitewatch-agent");
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Metrics = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a Metrics payload ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        m.ts <= now_ms && now_ms - m.ts < 60_000,
        "ts {} vs now {now_ms}",
        m.ts
    );
    assert_eq!(m.seq, 1);
    assert_eq!(m.session.len(), 16, "{}", m.session);

    let cpu = m.cpu.expect("cpu present");
    let pct = 0.0..=100.0;
    assert!(pct.contains(&cpu.usage_pct), "{}", cpu.usage_pct);
    assert!(!cpu.per_core_pct.is_empty());
    assert!(
        cpu.per_core_pct.iter().all(|p| pct.contains(p)),
        "{:?}",
        cpu.per_core_pct
    );
    assert!(cpu.load_1 >= 0.0);

    let mem = m.memory.expect("memory present");
    assert!(mem.total_bytes > 0);
    assert!(mem.used_bytes <= mem.total_bytes && mem.available_bytes <= mem.total_bytes);
    assert!(pct.contains(&mem.used_pct), "{}", mem.used_pct);

    for fs in &m.filesystems {
        assert!(fs.total_bytes > 0 && pct.contains(&fs.used_pct), "{fs:?}");
        assert!(!["tmpfs", "overlay", "proc", "sysfs"].contains(&fs.fs_type.as_str()));
    }
    assert!(m.network.iter().all(|n| n.name != "lo"));
    assert!(m.uptime_s.is_some_and(|u| u > 0));
}
