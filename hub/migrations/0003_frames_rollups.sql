-- sitewatch hub schema, version 3: compact samples, rollup tiers, retention, scans.
--
-- Samples move from one row per value to one row per metrics message (a *frame*: every
-- series of the message in one blob, see hub/src/store/codec.rs). Rows are appended in
-- arrival order, so ingest writes few pages however many series a fleet has. The old
-- `samples` rows are converted by hub::store::migrate right after this script.

CREATE TABLE frames (
    id      INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order, never reused; the rollup cursor follows it
    node_id INTEGER NOT NULL REFERENCES nodes (id),
    ts_ms   INTEGER NOT NULL,               -- the agent's sample time
    data    BLOB    NOT NULL
);
CREATE INDEX frames_by_node ON frames (node_id, ts_ms);

-- Aggregates of every series of a node over a bucket (`tier` = bucket width in seconds:
-- 60 or 3600): count, min, max, sum, last per series in one blob. Folded incrementally
-- from frames in arrival order, each frame exactly once (meta `rollup_cursor`).
CREATE TABLE rollups (
    tier      INTEGER NOT NULL,
    node_id   INTEGER NOT NULL REFERENCES nodes (id),
    bucket_ms INTEGER NOT NULL,
    data      BLOB    NOT NULL
);
CREATE UNIQUE INDEX rollups_by_node ON rollups (tier, node_id, bucket_ms);
CREATE INDEX rollups_by_age ON rollups (tier, bucket_ms);

-- Small persistent counters and cursors of the writer.
CREATE TABLE meta (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- LAN scan results, verbatim; (session, seq) makes a resend a no-op.
CREATE TABLE scans (
    id          INTEGER PRIMARY KEY,
    node_id     INTEGER NOT NULL REFERENCES nodes (id),
    session     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    agent_ts_ms INTEGER NOT NULL,
    recv_ms     INTEGER NOT NULL,
    json        TEXT    NOT NULL
);
CREATE UNIQUE INDEX scans_by_seq ON scans (node_id, session, seq);
CREATE INDEX scans_by_time ON scans (node_id, agent_ts_ms);
CREATE INDEX scans_by_arrival ON scans (recv_ms);

-- Every distinct `info` a node published (it is re-sent on each connection; only changes
-- are kept).
CREATE TABLE info_history (
    node_id INTEGER NOT NULL REFERENCES nodes (id),
    recv_ms INTEGER NOT NULL,
    json    TEXT    NOT NULL
);
CREATE INDEX info_history_by_node ON info_history (node_id, recv_ms);
INSERT INTO info_history (node_id, recv_ms, json)
    SELECT id, info_recv_ms, info_json FROM nodes WHERE info_json IS NOT NULL;

-- Retention deletes by arrival time in small batches.
CREATE INDEX heartbeats_by_time ON heartbeats (recv_ms);
CREATE INDEX metric_messages_by_time ON metric_messages (recv_ms);
CREATE INDEX node_events_by_time ON node_events (ts_ms);
CREATE INDEX agent_sessions_by_time ON agent_sessions (updated_ms);
