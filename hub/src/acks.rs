//! Publishes retained `ack`s once the writer has committed: per node, the highest seq
//! stored for each of its recent sessions.

use std::collections::{BTreeMap, HashMap};

use sitewatch_proto::{Ack, NodeId, NodeTopic, SiteId, Topic};
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::mqtt::Publisher;
use crate::store::Committed;

/// Sessions remembered per node in the ack payload (an agent only needs its current one,
/// plus the previous ones for messages it still has to resend).
const SESSIONS_KEPT: usize = 4;

#[derive(Default)]
struct NodeAcks {
    /// session → (highest seq, last update) ; the oldest updates are evicted first.
    sessions: HashMap<String, (u64, u64)>,
}

impl NodeAcks {
    fn merge(&mut self, session: String, seq: u64, now: u64) {
        let e = self.sessions.entry(session).or_insert((0, now));
        e.0 = e.0.max(seq);
        e.1 = now;
        while self.sessions.len() > SESSIONS_KEPT {
            let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, v)| v.1)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.sessions.remove(&oldest);
        }
    }

    fn payload(&self, now: u64) -> Ack {
        Ack {
            ts: now,
            sessions: self
                .sessions
                .iter()
                .map(|(k, v)| (k.clone(), v.0))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

pub async fn run(mut rx: mpsc::Receiver<Committed>, publisher: Publisher) {
    let mut nodes: HashMap<(SiteId, NodeId), NodeAcks> = HashMap::new();
    while let Some(done) = rx.recv().await {
        let now = now_ms();
        for ((site, node), sessions) in done.acks {
            let acks = nodes.entry((site.clone(), node.clone())).or_default();
            for (session, seq) in sessions {
                acks.merge(session, seq, now);
            }
            match serde_json::to_vec(&acks.payload(now)) {
                Ok(json) => {
                    publisher.publish(&Topic::node(&site, &node, NodeTopic::Ack), true, json)
                }
                Err(err) => tracing::error!(cause = %err, "cannot encode ack"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_seq_and_few_sessions() {
        let mut a = NodeAcks::default();
        a.merge("s1".into(), 5, 1);
        a.merge("s1".into(), 3, 2);
        for (i, s) in ["s2", "s3", "s4", "s5"].iter().enumerate() {
            a.merge((*s).into(), 1, 10 + i as u64);
        }
        let p = a.payload(0);
        assert_eq!(p.sessions.len(), SESSIONS_KEPT);
        assert!(!p.sessions.contains_key("s1"), "oldest session evicted");
        a.merge("s5".into(), 9, 20);
        assert_eq!(a.payload(0).sessions["s5"], 9);
    }
}
