//! The cross-built agents run under qemu user-mode emulation against a real hub on loopback,
//! and show up online with metrics through the HTTP API. Each runs on the oldest CPU of the
//! Pis it is meant for, so an instruction those lack fails the test (SIGILL).
//!
//! The binaries come from `cross/build.sh --profile cross-test` (run by scripts/test.sh
//! before `cargo test`); qemu from Debian's qemu-user-static (scripts/install-deps.sh
//! --cross). Either missing fails the test with what to run.

mod common;

use std::time::Duration;

use common::*;

/// A cross-built agent and how to run it.
struct Target {
    triple: &'static str,
    emulator: &'static str,
    cpu: &'static str,
    /// What the agent reports as `info.arch` (Rust's name of the architecture).
    arch: &'static str,
    node: &'static str,
}

/// Starts a hub, runs the target's agent under its emulator, and checks what a user sees: the
/// node online, a CPU figure in the fleet list, and the agent's own `arch` in its info.
fn cross_agent_reports_through_hub(t: Target) {
    let agent = cross_agent_bin(t.triple);
    let qemu = require_program(t.emulator, "qemu-user-static");
    let hub = start_hub(&["--no-local-agent"]);
    let _agent = start_agent_emulated(
        &qemu,
        &["-cpu", t.cpu],
        &agent,
        &hub.broker_url(),
        "cross-lab",
        t.node,
    );

    // Emulation is slow to start on a loaded 2-core machine: be generous, it is not timed.
    let listed = wait_for(
        &format!(
            "{} ({} under {} -cpu {}) online with metrics",
            t.node, t.triple, t.emulator, t.cpu
        ),
        Duration::from_secs(60),
        || {
            hub.node("cross-lab", t.node)
                .filter(|n| n["status"] == "online" && n["metrics"]["cpu_pct"].is_number())
        },
    );
    let cpu = listed["metrics"]["cpu_pct"].as_f64().expect("cpu_pct");
    assert!((0.0..=100.0).contains(&cpu), "cpu_pct {cpu}");

    let detail = wait_for(&format!("{} info", t.node), Duration::from_secs(30), || {
        hub.get(&format!("/api/v1/nodes/cross-lab/{}", t.node))
            .filter(|d| d["info"]["arch"].is_string() && d["latest"]["cpu"].is_object())
    });
    assert_eq!(
        detail["info"]["arch"], t.arch,
        "the node must be the {} build, not a host binary",
        t.triple
    );
}

/// Pi 3 (Cortex-A53), the oldest 64-bit Pi.
#[test]
fn aarch64_agent_under_qemu_is_online_with_metrics() {
    cross_agent_reports_through_hub(Target {
        triple: "aarch64-unknown-linux-musl",
        emulator: "qemu-aarch64-static",
        cpu: "cortex-a53",
        arch: "aarch64",
        node: "pi-arm64",
    });
}

/// Pi 2 (Cortex-A7), the oldest ARMv7 Pi.
#[test]
fn armv7_agent_under_qemu_is_online_with_metrics() {
    cross_agent_reports_through_hub(Target {
        triple: "armv7-unknown-linux-musleabihf",
        emulator: "qemu-arm-static",
        cpu: "cortex-a7",
        arch: "arm",
        node: "pi-armv7",
    });
}

/// Pi Zero / Pi 1 (ARM1176JZF-S, ARMv6 with VFPv2): the build most likely to pick up an
/// ARMv7 instruction from a dependency's C or assembly.
#[test]
fn armv6_agent_under_qemu_arm1176_is_online_with_metrics() {
    cross_agent_reports_through_hub(Target {
        triple: "arm-unknown-linux-musleabihf",
        emulator: "qemu-arm-static",
        cpu: "arm1176",
        arch: "arm",
        node: "pi-zero",
    });
}
