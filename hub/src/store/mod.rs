//! SQLite storage: schema migrations, the single writer thread and read queries.
//!
//! Only this module knows SQL. One thread owns the write connection and applies batches
//! of [`WriteOp`]s in one transaction each; readers use separate connections from a small
//! pool on blocking threads (WAL lets them run while the writer commits).
//!
//! Samples are stored as *frames* (every series of one metrics message in one compact
//! blob, `codec.rs`), folded by the writer into 1-minute and 1-hour rollups and expired in
//! small steps (`maintain.rs`); `query.rs` picks the tier that answers a range.

pub mod auth;
pub mod bench;
pub mod codec;
pub mod fixture;
pub mod install_links;
pub mod maintain;
mod migrate;
pub mod nodes;
pub mod query;
mod read;
pub mod watermark;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

pub use maintain::Retention;
pub use query::{AggKind, RangeAnswer, RangeQuery, Tier};
pub use read::{
    NodeDetail, NodeRow, SeriesName, StorageStats, alert_history, live_silences, load_devices,
    load_nodes, node_detail, open_alerts, site_devices, storage_stats,
};
pub use writer::{Committed, WriteOp, WriterConfig, WriterHandle, spawn_writer};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "sitewatch.db";

/// Storage failures. Messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path} (check permissions or pass --data-dir)")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open database {path} (check permissions of the data directory)")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this hub knows ({known}); \
         upgrade sitewatch-hub or point --data-dir elsewhere"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Corrupt(String),
    #[error("unexpected stored value: {0}")]
    Type(#[from] rusqlite::types::FromSqlError),
    #[error("database reader task failed: {0}")]
    Join(String),
}

/// Opens a connection with the pragmas every connection needs.
fn open(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Creates the data directory and database if needed, applies migrations and returns
/// the path of the database file.
pub fn init(data_dir: &Path) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(DB_FILE);
    let mut conn = open(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    migrate::apply(&mut conn, &path)?;
    // Node signing keys are in this file: readable by the hub's user only (SQLite gives
    // its -wal and -shm files the same mode).
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(err) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), cause = %err,
                "cannot make the database readable by its owner only; check its permissions");
        }
    }
    Ok(path)
}

/// Whether SQLite says the file is damaged or not a database.
pub fn is_corrupt(err: &StoreError) -> bool {
    let code = match err {
        StoreError::Open { source, .. } | StoreError::Sql(source) => source.sqlite_error_code(),
        _ => None,
    };
    matches!(
        code,
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// [`init`], but a database SQLite reports damaged is moved aside (with its `-wal` and
/// `-shm` files, renamed `sitewatch.db.corrupt-<unix ms>`) and a new one started, so the
/// hub keeps running and storing. Returns the database path and, if it happened, where the
/// damaged file went. Nothing is deleted.
pub fn init_or_quarantine(
    data_dir: &Path,
    now_ms: u64,
) -> Result<(PathBuf, Option<PathBuf>), StoreError> {
    match init(data_dir) {
        Ok(path) => Ok((path, None)),
        Err(err) if is_corrupt(&err) => {
            let path = data_dir.join(DB_FILE);
            let aside = data_dir.join(format!("{DB_FILE}.corrupt-{now_ms}"));
            tracing::error!(
                cause = %err, moved_to = %aside.display(),
                "the database is damaged; moving it aside and starting a new one. Recover \
                 what it holds with `sqlite3 {} .recover | sqlite3 recovered.db`",
                aside.display()
            );
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", path.display()));
                if from.exists() {
                    let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                    std::fs::rename(&from, &to).map_err(|source| StoreError::DataDir {
                        path: from.clone(),
                        source,
                    })?;
                }
            }
            Ok((init(data_dir)?, Some(aside)))
        }
        Err(err) => Err(err),
    }
}

/// A small pool of read-only connections used from blocking threads.
#[derive(Clone)]
pub struct Reader {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

/// Idle read connections kept open.
const READER_POOL: usize = 4;

impl Reader {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with a read connection on a blocking thread.
    pub async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match this.idle.lock().ok().and_then(|mut v| v.pop()) {
                Some(c) => c,
                None => open(
                    &this.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?,
            };
            let out = f(&conn);
            if let Ok(mut idle) = this.idle.lock()
                && idle.len() < READER_POOL
            {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_database_is_moved_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = b"this is not an SQLite database, but someone's data".repeat(100);
        std::fs::write(dir.path().join(DB_FILE), &garbage).unwrap();
        let (path, aside) = init_or_quarantine(dir.path(), 42).unwrap();
        let aside = aside.expect("moved aside");
        assert_eq!(aside, dir.path().join("sitewatch.db.corrupt-42"));
        assert_eq!(std::fs::read(&aside).unwrap(), garbage);
        // The new database works.
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        // A healthy database is left alone.
        assert!(init_or_quarantine(dir.path(), 43).unwrap().1.is_none());
    }
}
