-- sitewatch hub schema, version 9: one-time install links (hub::install_links).
--
-- `sitewatch-hub node install-link SITE NODE` creates a link; `deploy/install-agent.sh` on
-- the Pi uses it to download the agent binary and config, then redeems it once for the
-- node's credentials, which the hub issues at that moment (the plaintext password and key
-- are sent to the Pi and never stored). Written like the credentials of version 8: short
-- IMMEDIATE transactions on a connection of their own, never by the writer thread.

-- `token_hash` is the SHA-256 of the whole token (`swi_` + 64 hex digits): the token itself
-- is shown once by the CLI and never stored. `broker_url` goes into the agent's config.
-- `replace_credentials` = 1 when the link may replace existing credentials of the node
-- (`--rotate`). `used_ms` stays NULL until the link is redeemed; a used or expired link
-- serves nothing.
CREATE TABLE install_links (
    token_hash          BLOB    PRIMARY KEY,
    site                TEXT    NOT NULL,
    node                TEXT    NOT NULL,
    broker_url          TEXT    NOT NULL,
    replace_credentials INTEGER NOT NULL CHECK (replace_credentials IN (0, 1)),
    created_ms          INTEGER NOT NULL,
    expires_ms          INTEGER NOT NULL,
    used_ms             INTEGER
);
CREATE INDEX install_links_by_expiry ON install_links (expires_ms);
