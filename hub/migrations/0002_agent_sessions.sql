-- Ack watermark per agent session (see hub::store::watermark): every message of the session
-- with seq <= acked_seq is stored, or was given up by the agent. Survives hub restarts so
-- acks never move backwards.
CREATE TABLE agent_sessions (
    node_id    INTEGER NOT NULL REFERENCES nodes (id),
    session    TEXT    NOT NULL,
    acked_seq  INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (node_id, session)
) WITHOUT ROWID;
