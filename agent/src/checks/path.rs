//! `kind = "path"`: does a file or directory exist ("application missing" when not)?
//!
//! Symlinks are followed: a link whose target is gone counts as missing, as it does for
//! the application that needs it.

use std::io;
use std::path::Path;

use super::Outcome;

/// Runs the check (metadata only: no file is opened or read).
pub(crate) async fn check(path: &str) -> Outcome {
    judge(path, tokio::fs::metadata(path).await.map(|m| m.file_type()))
}

/// `present`, `missing`, or `error` with the I/O error (e.g. permission denied).
pub(crate) fn judge(path: &str, metadata: io::Result<std::fs::FileType>) -> Outcome {
    match metadata {
        Ok(file_type) => {
            let what = if file_type.is_dir() {
                "directory"
            } else if file_type.is_file() {
                "file"
            } else {
                "special file"
            };
            Outcome::pass("present").with_detail(format!("{path} is a {what}"))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            Outcome::fail("missing", format!("application missing: {path} not found"))
        }
        Err(err) if err.kind() == io::ErrorKind::NotADirectory => Outcome::fail(
            "missing",
            format!("application missing: {path} not found (a parent is not a directory)"),
        ),
        Err(err) => Outcome::fail(
            "error",
            format!("cannot check {path}: {err}{}", hint(err.kind(), path)),
        ),
    }
}

fn hint(kind: io::ErrorKind, path: &str) -> String {
    if kind == io::ErrorKind::PermissionDenied {
        let parent = Path::new(path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());
        format!(" — give the agent's user search permission on {parent}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_and_directories_are_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.bin");
        std::fs::write(&file, b"x").expect("write");

        let o = check(&file.display().to_string()).await;
        assert!(o.ok);
        assert_eq!(o.state, "present");
        assert!(o.detail.unwrap_or_default().ends_with("is a file"));

        let o = check(&dir.path().display().to_string()).await;
        assert!(o.ok);
        assert!(o.detail.unwrap_or_default().ends_with("is a directory"));
    }

    #[tokio::test]
    async fn absent_paths_and_dangling_links_are_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let absent = dir.path().join("nope");
        let o = check(&absent.display().to_string()).await;
        assert!(!o.ok);
        assert_eq!(o.state, "missing");
        assert_eq!(
            o.detail,
            Some(format!(
                "application missing: {} not found",
                absent.display()
            ))
        );

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&absent, &link).expect("symlink");
        assert_eq!(check(&link.display().to_string()).await.state, "missing");

        let file = dir.path().join("f");
        std::fs::write(&file, b"").expect("write");
        let under_file = file.join("child");
        assert_eq!(
            check(&under_file.display().to_string()).await.state,
            "missing"
        );
    }

    #[test]
    fn other_io_errors_are_errors_with_the_cause() {
        let o = judge(
            "/srv/secret/app",
            Err(io::Error::from(io::ErrorKind::PermissionDenied)),
        );
        assert!(!o.ok);
        assert_eq!(o.state, "error");
        let detail = o.detail.unwrap_or_default();
        assert!(detail.contains("permission denied"), "{detail}");
        assert!(detail.contains("/srv/secret"), "{detail}");
    }
}
