-- sitewatch hub schema, version 4: alert history and silences (hub::alert).

-- Every alert occurrence (fingerprint + when its condition started), in its latest state;
-- `json` is the whole `hub::alert::Alert`. Open ones are restored into the engine at start.
CREATE TABLE alerts (
    fingerprint TEXT    NOT NULL,
    started_ms  INTEGER NOT NULL,
    state       TEXT    NOT NULL,   -- 'pending' | 'firing' | 'resolved'
    updated_ms  INTEGER NOT NULL,
    site        TEXT    NOT NULL,
    node        TEXT,
    json        TEXT    NOT NULL,
    PRIMARY KEY (fingerprint, started_ms)
);
CREATE INDEX alerts_by_state ON alerts (state, updated_ms);

-- Silences, also after they ended (history); active ones are restored at start.
CREATE TABLE silences (
    id      TEXT    PRIMARY KEY,
    ends_ms INTEGER NOT NULL,
    json    TEXT    NOT NULL
);
CREATE INDEX silences_by_end ON silences (ends_ms);
