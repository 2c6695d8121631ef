-- sitewatch hub schema, version 1.
-- Applied by hub::store::migrate inside one transaction; PRAGMA user_version records it.
-- Timestamps are Unix milliseconds. `recv_ms` is the hub's clock, `agent_ts_ms` the agent's
-- (Pis often have no RTC, so both are kept).

-- One row per node ever seen. Holds the state the hub restarts with.
CREATE TABLE nodes (
    id                  INTEGER PRIMARY KEY,
    site                TEXT    NOT NULL,
    node                TEXT    NOT NULL,
    first_seen_ms       INTEGER NOT NULL,
    -- 'online' | 'offline' | 'unknown', as decided by hub::state.
    status              TEXT    NOT NULL DEFAULT 'unknown',
    status_since_ms     INTEGER,
    last_seen_ms        INTEGER,
    -- Latest retained `info` payload, verbatim JSON.
    info_json           TEXT,
    info_recv_ms        INTEGER,
    -- Latest `metrics` payload, verbatim JSON, for the node detail view.
    latest_metrics_json TEXT,
    latest_metrics_ms   INTEGER,
    UNIQUE (site, node)
);

-- Heartbeats; the primary key makes a resent (session, seq) a no-op.
CREATE TABLE heartbeats (
    node_id     INTEGER NOT NULL REFERENCES nodes (id),
    session     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    agent_ts_ms INTEGER NOT NULL,
    recv_ms     INTEGER NOT NULL,
    uptime_s    INTEGER NOT NULL,
    PRIMARY KEY (node_id, session, seq)
) WITHOUT ROWID;

-- One row per metrics message stored; guards samples against duplicates on resend.
CREATE TABLE metric_messages (
    node_id     INTEGER NOT NULL REFERENCES nodes (id),
    session     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    agent_ts_ms INTEGER NOT NULL,
    recv_ms     INTEGER NOT NULL,
    PRIMARY KEY (node_id, session, seq)
) WITHOUT ROWID;

-- A series is one metric of one node with one label set (see proto::sample).
CREATE TABLE series (
    id      INTEGER PRIMARY KEY,
    node_id INTEGER NOT NULL REFERENCES nodes (id),
    metric  TEXT    NOT NULL,
    labels  TEXT    NOT NULL,
    UNIQUE (node_id, metric, labels)
);

-- Raw samples, clustered by series then time so a range query is one index walk.
CREATE TABLE samples (
    series_id INTEGER NOT NULL REFERENCES series (id),
    ts_ms     INTEGER NOT NULL,
    value     REAL    NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) WITHOUT ROWID;

-- Node status history (transitions decided by hub::state).
CREATE TABLE node_events (
    node_id INTEGER NOT NULL REFERENCES nodes (id),
    ts_ms   INTEGER NOT NULL,
    status  TEXT    NOT NULL,
    reason  TEXT    NOT NULL
);
CREATE INDEX node_events_by_node ON node_events (node_id, ts_ms);
