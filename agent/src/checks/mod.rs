//! Checks configured per node (`[[checks]]`): systemd unit, process, path, TCP port, HTTP.
//! Results travel in the metrics payload as `proto::payload::CheckResult`.
//!
//! [`run_all`] runs every check at once, each in its own task under its own timeout, so a
//! hung check costs at most its `timeout-ms` and never delays the others. Each kind lives in
//! its own module; the parsers they need (systemctl output, `/proc`, URLs, HTTP status lines)
//! are pure functions with unit tests.

mod config;
mod http;
mod path;
mod process;
mod systemd;
mod tcp;
mod url;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sitewatch_proto::payload::CheckResult;
use tokio::task::JoinSet;

pub use config::{CheckConfig, CheckKind, DEFAULT_CHECK_TIMEOUT_MS};
pub use url::{HttpUrl, Scheme, parse_url};

/// Runs every check concurrently and returns one result per check, in config order.
///
/// Each check runs in a spawned task under `tokio::time::timeout`; one that does not finish
/// in time yields `ok = false`, state `timeout`. The whole call therefore takes about the
/// longest single timeout, never their sum. Dropping the returned future aborts the checks
/// (and kills any `systemctl` child they started).
pub async fn run_all(checks: &[CheckConfig]) -> Vec<CheckResult> {
    let mut tasks = JoinSet::new();
    for (index, check) in checks.iter().enumerate() {
        let check = check.clone();
        tasks.spawn(async move { (index, run_one(&check).await) });
    }
    let mut results: Vec<Option<CheckResult>> = vec![None; checks.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
            Err(err) => tracing::error!(cause = %err, "a check task failed"),
        }
    }
    results
        .into_iter()
        .zip(checks)
        .map(|(result, check)| {
            result.unwrap_or_else(|| {
                failed(
                    check,
                    "error",
                    "the check task failed unexpectedly (see the agent log)".into(),
                )
            })
        })
        .collect()
}

/// Runs one check under its timeout.
pub async fn run_one(check: &CheckConfig) -> CheckResult {
    let timeout = check.timeout();
    match tokio::time::timeout(timeout, probe(check)).await {
        Ok(result) => result,
        Err(_) => {
            tracing::debug!(check = %check.name, timeout_ms = timeout.as_millis() as u64, "check timed out");
            failed(
                check,
                "timeout",
                format!(
                    "no answer after {} ms (the check's timeout-ms)",
                    timeout.as_millis()
                ),
            )
        }
    }
}

/// The check itself, without the timeout.
async fn probe(check: &CheckConfig) -> CheckResult {
    let started = Instant::now();
    let outcome = match &check.kind {
        CheckKind::Systemd { unit } => systemd::check(unit).await,
        CheckKind::Process { process } => process::check(process).await,
        CheckKind::Path { path } => path::check(path).await,
        CheckKind::Tcp { host, port } => tcp::check(host, *port, started).await,
        CheckKind::Http { url, expect_status } => http::check(url, *expect_status, started).await,
    };
    CheckResult {
        name: check.name.clone(),
        kind: check.kind.as_str().to_owned(),
        ok: outcome.ok,
        state: outcome.state,
        latency_ms: outcome.latency.map(duration_ms),
        detail: outcome.detail,
    }
}

/// What one probe observed; [`probe`] adds the check's name and kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub ok: bool,
    pub state: String,
    pub latency: Option<Duration>,
    pub detail: Option<String>,
}

impl Outcome {
    pub fn pass(state: impl Into<String>) -> Self {
        Outcome {
            ok: true,
            state: state.into(),
            latency: None,
            detail: None,
        }
    }

    pub fn fail(state: impl Into<String>, detail: impl Into<String>) -> Self {
        Outcome {
            ok: false,
            state: state.into(),
            latency: None,
            detail: Some(detail.into()),
        }
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

fn failed(check: &CheckConfig, state: &str, detail: String) -> CheckResult {
    CheckResult {
        name: check.name.clone(),
        kind: check.kind.as_str().to_owned(),
        ok: false,
        state: state.to_owned(),
        latency_ms: None,
        detail: Some(detail),
    }
}

/// Milliseconds with microsecond resolution, as the payload carries them.
fn duration_ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// Checks a node's `[[checks]]` as a whole: names unique and usable as series labels
/// (non-empty, no control characters), timeouts of at least 1 ms, HTTP URLs well formed.
/// The error names the check and says what to change.
pub fn validate(checks: &[CheckConfig]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for check in checks {
        let name = &check.name;
        if name.trim().is_empty() {
            return Err("a check has an empty `name`; give each check a unique name".into());
        }
        if name.chars().any(char::is_control) {
            return Err(format!(
                "check name {name:?} contains a control character; use printable characters only"
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!(
                "two checks are named `{name}`; check names must be unique per node"
            ));
        }
        if check.timeout_ms == Some(0) {
            return Err(format!("check `{name}`: `timeout-ms` must be at least 1"));
        }
        if let CheckKind::Http { url, .. } = &check.kind {
            parse_url(url).map_err(|e| format!("check `{name}`: `url`: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_check(name: &str) -> CheckConfig {
        CheckConfig {
            name: name.into(),
            kind: CheckKind::Path { path: "/".into() },
            timeout_ms: None,
        }
    }

    #[test]
    fn validate_accepts_distinct_printable_names() {
        let checks = [path_check("root"), path_check("root fs ✓"), path_check("b")];
        assert_eq!(validate(&checks), Ok(()));
        assert_eq!(validate(&[]), Ok(()));
    }

    #[test]
    fn validate_rejects_duplicate_empty_and_control_names() {
        let e = validate(&[path_check("a"), path_check("b"), path_check("a")]).unwrap_err();
        assert!(e.contains("two checks are named `a`"), "{e}");
        let e = validate(&[path_check("  ")]).unwrap_err();
        assert!(e.contains("empty `name`"), "{e}");
        let e = validate(&[path_check("web\nx")]).unwrap_err();
        assert!(e.contains("control character"), "{e}");
        let e = validate(&[path_check("tab\t")]).unwrap_err();
        assert!(e.contains("control character"), "{e}");
    }

    #[test]
    fn validate_rejects_zero_timeouts_and_bad_urls() {
        let mut zero = path_check("z");
        zero.timeout_ms = Some(0);
        assert!(validate(&[zero]).unwrap_err().contains("timeout-ms"));
        let http = |url: &str| CheckConfig {
            name: "web".into(),
            kind: CheckKind::Http {
                url: url.into(),
                expect_status: 200,
            },
            timeout_ms: Some(100),
        };
        let e = validate(&[http("ftp://x/")]).unwrap_err();
        assert!(e.starts_with("check `web`: `url`:"), "{e}");
        assert_eq!(validate(&[http("http://127.0.0.1:8080/health")]), Ok(()));
        // https parses (its result says "unsupported" at run time, not a config error).
        assert_eq!(validate(&[http("https://example.org/")]), Ok(()));
    }

    #[test]
    fn milliseconds_keep_sub_millisecond_latency() {
        assert_eq!(duration_ms(Duration::from_micros(1_500)), 1.5);
        assert_eq!(duration_ms(Duration::from_secs(2)), 2000.0);
    }
}
