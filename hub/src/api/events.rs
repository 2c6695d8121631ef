//! `GET /api/v1/events`: Server-Sent Events carrying the node list whenever it changes, so
//! the dashboard updates without reload.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::WatchStream;

use super::AppState;

pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // WatchStream yields the current value first, then each change (coalesced if the
    // client is slower than updates, which keeps a slow browser from building a backlog).
    let stream = WatchStream::new(state.snapshot.clone()).map(|nodes| {
        let event = Event::default().event("nodes");
        Ok(match event.json_data(nodes.as_ref()) {
            Ok(e) => e,
            Err(err) => {
                tracing::error!(cause = %err, "cannot encode node list");
                Event::default().event("error").data("encode failed")
            }
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
