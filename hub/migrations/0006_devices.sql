-- sitewatch hub schema, version 6: the LAN device inventory (hub::inventory).

-- One row per device of a site: keyed by MAC, or `ip:<address>` for a host seen without
-- one. `json` is the whole `hub::inventory::Device` (address history, ports, ...).
CREATE TABLE devices (
    site          TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    present       INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    json          TEXT    NOT NULL,
    PRIMARY KEY (site, key)
);

-- New / gone / back, as they happened.
CREATE TABLE device_events (
    site  TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    ts_ms INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    ip    TEXT
);
CREATE INDEX device_events_by_site ON device_events (site, ts_ms);
CREATE INDEX device_events_by_time ON device_events (ts_ms);
