//! End to end with the real binaries: hub (embedded broker) + agent, seen through the API.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The node appears online with metrics; `kill -9` of the agent turns it offline within
/// 1.5 × keepalive + 2 s; a restarted agent brings it back online.
#[test]
fn agent_online_then_killed_offline_then_back_online() {
    let hub = start_hub(&["--no-local-agent"]);
    let mut agent = start_agent(&hub.broker_url(), "club-1", "pi-gate");

    let node = wait_for(
        "pi-gate online with metrics",
        Duration::from_secs(20),
        || {
            hub.node("club-1", "pi-gate")
                .filter(|n| n["status"] == "online" && n["metrics"]["cpu_pct"].is_number())
        },
    );
    let mem = node["metrics"]["mem_pct"].as_f64().expect("mem_pct");
    assert!((0.0..=100.0).contains(&mem), "mem_pct {mem}");

    // The detail view has the agent's info and its latest sample.
    let detail = wait_for("node detail with info", Duration::from_secs(10), || {
        hub.get("/api/v1/nodes/club-1/pi-gate")
            .filter(|d| d["info"]["hostname"].is_string() && d["latest"]["cpu"].is_object())
    });
    assert_eq!(detail["info"]["keepalive_s"], 2);

    // History: points of cpu.usage_pct.
    let series = wait_for("two cpu points", Duration::from_secs(10), || {
        hub.get("/api/v1/nodes/club-1/pi-gate/series?metric=cpu.usage_pct")
            .filter(|s| {
                s["series"][0]["points"]
                    .as_array()
                    .is_some_and(|p| p.len() >= 2)
            })
    });
    assert_eq!(series["series"][0]["labels"], "");

    // The dashboard's live stream is open before the kill: the change must arrive on it.
    let events = node_events(&hub);

    // kill -9: the broker sees the socket close and publishes the retained will.
    let keepalive_s = 2.0;
    let killed = Instant::now();
    agent.kill9();
    wait_for(
        "pi-gate offline",
        Duration::from_secs_f64(1.5 * keepalive_s + 2.0),
        || {
            hub.node("club-1", "pi-gate")
                .filter(|n| n["status"] == "offline")
        },
    );
    eprintln!("offline seen {:?} after kill -9", killed.elapsed());
    let pushed = wait_for(
        "offline pushed on /api/v1/events",
        Duration::from_secs(5),
        || {
            events.try_iter().find(|list| {
                list.as_array().is_some_and(|l| {
                    l.iter()
                        .any(|n| n["node"] == "pi-gate" && n["status"] == "offline")
                })
            })
        },
    );
    assert!(pushed.is_array());

    let _agent = start_agent(&hub.broker_url(), "club-1", "pi-gate");
    wait_for("pi-gate online again", Duration::from_secs(20), || {
        hub.node("club-1", "pi-gate")
            .filter(|n| n["status"] == "online")
    });
}

/// With default settings the hub monitors its own machine: one live node, site `hub`.
#[test]
fn hub_shows_its_own_machine() {
    let hub = start_hub(&[]);
    let own = wait_for(
        "the hub's own node online with metrics",
        Duration::from_secs(20),
        || {
            let list = hub.get("/api/v1/nodes")?;
            list.as_array()?
                .iter()
                .find(|n| {
                    n["site"] == "hub"
                        && n["status"] == "online"
                        && n["metrics"]["mem_pct"].is_number()
                })
                .cloned()
        },
    );
    assert!(own["node"].as_str().is_some_and(|s| !s.is_empty()));
    // The dashboard page and its script are served.
    let page = ureq::get(&hub.url("/"))
        .call()
        .expect("GET /")
        .into_body()
        .read_to_string()
        .expect("body");
    assert!(page.contains("/assets/app.js"));
}

/// A node's state survives a hub restart: still listed after restart, not lost.
#[test]
fn state_survives_hub_restart() {
    let hub = start_hub(&["--no-local-agent"]);
    let agent = start_agent(&hub.broker_url(), "club-2", "pi-a");
    wait_for("pi-a online", Duration::from_secs(20), || {
        hub.node("club-2", "pi-a")
            .filter(|n| n["status"] == "online")
    });
    drop(agent);
    let Hub { proc, data, .. } = hub;
    drop(proc);
    let hub = start_hub_in(data, &["--no-local-agent"]);
    let node = hub
        .node("club-2", "pi-a")
        .expect("node restored from the database");
    assert!(node["last_seen_ms"].is_number());
}
