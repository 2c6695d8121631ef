//! The dashboard in a real headless Chromium against the real hub, agents and load
//! generator: runs `hub/tests/browser/dashboard.test.mjs` (node's test runner driving
//! Debian's `chromium` through playwright-core). Checks login, the live fleet view (a
//! killed agent turns offline on screen), the 24 h chart, a silence made in the UI, an
//! HTML hostname shown as text, FR/EN, a read-only viewer, 1,000 nodes; writes the
//! screenshots under `docs/screenshots/` and prints the measured figures.
//!
//! Prerequisites (`scripts/install-deps.sh --test`): Debian's `chromium` and `nodejs`,
//! and `npm ci` in `hub/tests/browser`. With `CI=true` a missing one fails the test;
//! elsewhere the test says what is missing and passes without running.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn dashboard_acceptance_in_headless_chromium() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let node = find_program("node");
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!("{} (Debian package chromium)", chromium.display()));
    }
    if node.is_none() {
        missing.push("node (Debian package nodejs)".to_owned());
    }
    if !harness.join("node_modules/playwright-core").is_dir() {
        missing.push(format!(
            "playwright-core (run `npm ci` in {})",
            harness.display()
        ));
    }
    if !missing.is_empty() {
        let msg = format!(
            "the browser tests need {}; scripts/install-deps.sh --test installs them",
            missing.join(", ")
        );
        assert!(!ci, "{msg}");
        eprintln!("SKIPPED (not in CI): {msg}");
        return;
    }
    let bin_dir = common::hub_bin()
        .parent()
        .expect("binary directory")
        .to_path_buf();
    for b in ["sitewatch-agent", "sitewatch-loadgen"] {
        assert!(
            bin_dir.join(b).is_file(),
            "{} is missing; build the workspace first (cargo build --workspace --bins, done by \
             scripts/test.sh)",
            bin_dir.join(b).display()
        );
    }
    let status = Command::new(node.expect("checked above"))
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "dashboard.test.mjs",
        ])
        .current_dir(&harness)
        .env("SITEWATCH_BIN_DIR", &bin_dir)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("run node");
    assert!(
        status.success(),
        "the dashboard's browser tests failed ({status}); rerun them alone with \
         SITEWATCH_BROWSER_VERBOSE=1 for the hub's and agents' logs"
    );
}
