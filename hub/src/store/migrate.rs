//! Schema migrations: numbered `.sql` files under `hub/migrations`, applied in order inside
//! one transaction each; `PRAGMA user_version` holds the number of the last one applied.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// Every migration, in order. Append only; never edit a released one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_agent_sessions.sql"),
    include_str!("../../migrations/0003_frames_rollups.sql"),
    include_str!("../../migrations/0004_alerts.sql"),
    include_str!("../../migrations/0005_site_events.sql"),
    include_str!("../../migrations/0006_devices.sql"),
    include_str!("../../migrations/0007_auth.sql"),
    include_str!("../../migrations/0008_node_credentials.sql"),
    include_str!("../../migrations/0009_install_links.sql"),
];

pub(super) fn apply(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if version == 3 {
            samples_to_frames(&tx)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

/// Version 3: converts the one-row-per-value `samples` of earlier hubs into frames (one
/// row per node and instant), then drops the old table. The rollup cursor starts at 0, so
/// the converted frames are folded into rollups by the writer like new ones.
fn samples_to_frames(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let mut read = tx.prepare(
        "SELECT s.node_id, x.ts_ms, x.series_id, x.value
         FROM samples x JOIN series s ON s.id = x.series_id
         ORDER BY x.ts_ms, s.node_id",
    )?;
    let mut insert = tx.prepare("INSERT INTO frames (node_id, ts_ms, data) VALUES (?1, ?2, ?3)")?;
    let mut rows = read.query([])?;
    let mut current: Option<(i64, i64)> = None;
    let mut values: Vec<(i64, f64)> = Vec::new();
    let mut converted = 0u64;
    while let Some(r) = rows.next()? {
        let key = (r.get::<_, i64>(0)?, r.get::<_, i64>(1)?);
        if current.is_some_and(|c| c != key) {
            if let Some((node, ts)) = current {
                insert.execute(rusqlite::params![
                    node,
                    ts,
                    super::codec::encode_frame(&mut values)
                ])?;
            }
            values.clear();
        }
        current = Some(key);
        values.push((r.get(2)?, r.get(3)?));
        converted += 1;
    }
    if let Some((node, ts)) = current {
        insert.execute(rusqlite::params![
            node,
            ts,
            super::codec::encode_frame(&mut values)
        ])?;
    }
    drop(rows);
    drop(read);
    drop(insert);
    tx.execute_batch("DROP TABLE samples")?;
    if converted > 0 {
        tracing::info!(samples = converted, "converted stored samples to frames");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_samples_survive_the_move_to_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        for (i, sql) in MIGRATIONS.iter().take(2).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO nodes (id, site, node, first_seen_ms) VALUES (1, 'club', 'pi', 0);
             INSERT INTO series (id, node_id, metric, labels) VALUES (1, 1, 'cpu.usage_pct', ''), (2, 1, 'load.1', '');
             INSERT INTO samples VALUES (1, 1000, 12.5), (2, 1000, 0.25), (1, 2000, 13.0);",
        )
        .unwrap();
        apply(&mut conn, &path).unwrap();
        let frames: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT ts_ms, data FROM frames ORDER BY ts_ms")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            super::super::codec::decode_frame(&frames[0].1).unwrap(),
            vec![(1, 12.5), (2, 0.25)]
        );
        assert_eq!(
            super::super::codec::decode_frame(&frames[1].1).unwrap(),
            vec![(1, 13.0)]
        );
    }

    #[test]
    fn migrations_apply_once_and_refuse_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        apply(&mut conn, &path).unwrap();
        apply(&mut conn, &path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = apply(&mut conn, &path).unwrap_err();
        assert!(err.to_string().contains("upgrade sitewatch-hub"), "{err}");
    }
}
