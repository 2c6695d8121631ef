-- sitewatch hub schema, version 8: credentials of agents and MQTT clients (hub::nodes).
--
-- Written by `sitewatch-hub node …` and `sitewatch-hub mqtt-user …` (and by the hub for its
-- own machine's agent) in short IMMEDIATE transactions, like the accounts of version 7; the
-- hub re-reads them when meta `credentials_version` changes. Passwords are argon2id PHC
-- strings. `signing_key` is the node's HMAC-SHA256 key in hex: the hub must hold it to
-- verify signed telemetry (HMAC is symmetric), so the database file is kept mode 0600.
-- `mosquitto_hash` is the same password in Mosquitto's password-file format ($7$:
-- PBKDF2-SHA512), for `sitewatch-hub mosquitto-config`; NULL when unknown.

-- One agent: MQTT user name `sw.{site}.{node}`, client id the same.
CREATE TABLE node_credentials (
    site          TEXT    NOT NULL,
    node          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    signing_key   TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    mosquitto_hash TEXT,
    PRIMARY KEY (site, node)
);

-- An integration that reads the bus (Home Assistant, Node-RED, mosquitto_sub).
CREATE TABLE mqtt_users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    mosquitto_hash TEXT
);

INSERT INTO meta (key, value) VALUES ('credentials_version', 0);
