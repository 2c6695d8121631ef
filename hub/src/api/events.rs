//! `GET /api/v1/events`: Server-Sent Events carrying the node list whenever it changes, so
//! the dashboard updates without reload.
//!
//! Without parameters every event is a `nodes` event with the whole list (as first
//! shipped). The dashboard asks for `?delta=true&alerts=true`: one `nodes` event with the
//! whole list, then `nodes-delta` events (`{"changed": [NodeView…], "removed": [[site,
//! node]…]}`, at most one per [`DELTA_GAP`]), and an `alerts` event (active alerts and
//! silences) at the start and on every change.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use super::{ApiError, AppState};
use crate::state::NodeView;

/// Shortest time between two `nodes-delta` events: changes in between are merged, so a
/// busy fleet costs a browser at most a few events a second.
pub const DELTA_GAP: Duration = Duration::from_millis(200);

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Whole list once, then only what changed.
    #[serde(default)]
    delta: bool,
    /// Also `alerts` events.
    #[serde(default)]
    alerts: bool,
}

fn json_event(name: &'static str, value: &impl Serialize) -> Event {
    match Event::default().event(name).json_data(value) {
        Ok(e) => e,
        Err(err) => {
            tracing::error!(cause = %err, event = name, "cannot encode an SSE event");
            Event::default().event("error").data("encode failed")
        }
    }
}

pub async fn stream(
    State(state): State<AppState>,
    query: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let Query(params) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; expected [?delta=true][&alerts=true]",
            e.body_text()
        ))
    })?;
    let nodes: EventStream = if params.delta {
        Box::pin(delta_stream(state.snapshot.clone()))
    } else {
        // WatchStream yields the current value first, then each change (coalesced if the
        // client is slower than updates, which keeps a slow browser from building a
        // backlog).
        Box::pin(
            WatchStream::new(state.snapshot.clone())
                .map(|nodes| Ok(json_event("nodes", nodes.as_ref()))),
        )
    };
    let stream: EventStream = if params.alerts {
        let alerts = WatchStream::new(state.alerts.clone())
            .map(|view| Ok(json_event("alerts", view.as_ref())));
        Box::pin(futures_util::stream::select(nodes, alerts))
    } else {
        nodes
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// What changed between two node lists.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct NodesDelta {
    pub changed: Vec<NodeView>,
    /// `[site, node]` of nodes no longer listed.
    pub removed: Vec<(String, String)>,
}

impl NodesDelta {
    pub fn between(before: &[NodeView], after: &[NodeView]) -> Self {
        let old: HashMap<(&str, &str), &NodeView> = before
            .iter()
            .map(|n| ((n.site.as_str(), n.node.as_str()), n))
            .collect();
        let mut seen = std::collections::HashSet::with_capacity(after.len());
        let mut delta = NodesDelta::default();
        for n in after {
            let key = (n.site.as_str(), n.node.as_str());
            seen.insert(key);
            if old.get(&key).is_none_or(|o| *o != n) {
                delta.changed.push(n.clone());
            }
        }
        for key in old.keys() {
            if !seen.contains(key) {
                delta.removed.push((key.0.to_owned(), key.1.to_owned()));
            }
        }
        delta
    }

    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }
}

struct DeltaState {
    rx: watch::Receiver<Arc<Vec<NodeView>>>,
    last: Option<Arc<Vec<NodeView>>>,
}

fn delta_stream(
    rx: watch::Receiver<Arc<Vec<NodeView>>>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    futures_util::stream::unfold(DeltaState { rx, last: None }, |mut st| async move {
        loop {
            let Some(last) = st.last.clone() else {
                let now = st.rx.borrow_and_update().clone();
                let event = json_event("nodes", now.as_ref());
                st.last = Some(now);
                return Some((Ok(event), st));
            };
            // Changes made during the gap are merged into the next event.
            tokio::time::sleep(DELTA_GAP).await;
            if st.rx.changed().await.is_err() {
                return None; // the hub is stopping
            }
            let now = st.rx.borrow_and_update().clone();
            let delta = NodesDelta::between(&last, &now);
            st.last = Some(now);
            if !delta.is_empty() {
                return Some((Ok(json_event("nodes-delta", &delta)), st));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NodeStatus;
    use sitewatch_proto::{NodeId, SiteId};

    fn view(node: &str, status: NodeStatus) -> NodeView {
        NodeView {
            site: SiteId::new("club").unwrap(),
            node: NodeId::new(node).unwrap(),
            status,
            status_since_ms: 1,
            last_seen_ms: Some(1),
            hostname: None,
            metrics: None,
        }
    }

    #[test]
    fn delta_has_changed_new_and_removed_nodes_only() {
        let before = vec![
            view("a", NodeStatus::Online),
            view("b", NodeStatus::Online),
            view("c", NodeStatus::Online),
        ];
        let after = vec![
            view("a", NodeStatus::Online),
            view("b", NodeStatus::Offline),
            view("d", NodeStatus::Online),
        ];
        let d = NodesDelta::between(&before, &after);
        let changed: Vec<&str> = d.changed.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(changed, ["b", "d"]);
        assert_eq!(d.removed, [("club".to_owned(), "c".to_owned())]);
        assert!(NodesDelta::between(&after, &after).is_empty());
    }
}
