-- sitewatch hub schema, version 5: site status history (online / degraded / offline), as
-- published retained on `…/{site}/status`.
CREATE TABLE site_events (
    site   TEXT    NOT NULL,
    ts_ms  INTEGER NOT NULL,
    status TEXT    NOT NULL
);
CREATE INDEX site_events_by_site ON site_events (site, ts_ms);
CREATE INDEX site_events_by_time ON site_events (ts_ms);
