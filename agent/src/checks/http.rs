//! `kind = "http"`: does a GET answer with the expected status, and how fast?
//!
//! A hand-written HTTP/1.1 GET over a plain `TcpStream` (the agent carries no HTTP client):
//! one request with `Connection: close`, then only the status line is read — at most
//! [`MAX_HEAD_BYTES`] — and the connection dropped. Latency is the time from the start of
//! the check (name resolution included) to the status line. `https://` is reported as
//! `unsupported` until the agent's TLS stack is wired in.

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::url::{HttpUrl, Scheme, parse_url};
use super::{Outcome, tcp};

/// Most bytes read while looking for the end of the status line.
pub(crate) const MAX_HEAD_BYTES: usize = 4096;

/// Runs the check (the caller applies the timeout).
pub(crate) async fn check(url: &str, expect_status: u16, started: Instant) -> Outcome {
    let target = match parse_url(url) {
        Ok(target) => target,
        Err(err) => return Outcome::fail("error", format!("invalid url: {err}")),
    };
    if target.scheme == Scheme::Https {
        return Outcome::fail(
            "unsupported",
            "https checks are not supported yet; use a tcp check on port 443",
        );
    }
    let mut stream = match tcp::connect(&target.host, target.port).await {
        Ok(stream) => stream,
        Err(failure) => return failure,
    };
    if let Err(err) = stream.write_all(request(&target).as_bytes()).await {
        return Outcome::fail("error", format!("cannot send the request to {url}: {err}"));
    }
    let head = match read_status_line(&mut stream).await {
        Ok(head) => head,
        Err(err) => {
            return Outcome::fail("error", format!("no answer from {url}: {err}"));
        }
    };
    let latency = started.elapsed();
    match parse_status_line(&head) {
        Ok((status, reason)) => judge(status, &reason, expect_status).with_latency(latency),
        Err(err) => Outcome::fail(
            "invalid_response",
            format!("{url} did not answer HTTP: {err}"),
        ),
    }
}

/// The request bytes: a GET for the URL's path with `Host`, `User-Agent` and
/// `Connection: close`.
pub(crate) fn request(target: &HttpUrl) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sitewatch-agent/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path,
        target.host_header(),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Reads until the first `\n`, end of stream or [`MAX_HEAD_BYTES`], whichever comes first.
pub(crate) async fn read_status_line<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while head.len() < MAX_HEAD_BYTES && !head.contains(&b'\n') {
        let want = chunk.len().min(MAX_HEAD_BYTES - head.len());
        let n = reader.read(&mut chunk[..want]).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(head)
}

/// Parses `HTTP/1.x NNN Reason` into the status code and reason phrase.
pub(crate) fn parse_status_line(head: &[u8]) -> Result<(u16, String), String> {
    if head.is_empty() {
        return Err("the connection closed before any response".into());
    }
    let Some(end) = head.iter().position(|&b| b == b'\n') else {
        return Err(format!(
            "no status line in the first {} bytes",
            head.len().min(MAX_HEAD_BYTES)
        ));
    };
    let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
    let line = String::from_utf8_lossy(line);
    let shown: String = line.chars().take(80).collect();
    let bad = || format!("unexpected status line {shown:?}");
    let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
    if !version.starts_with("HTTP/") {
        return Err(bad());
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let status = code.parse::<u16>().map_err(|_| bad())?;
    if status < 100 {
        return Err(bad());
    }
    Ok((status, reason.trim().chars().take(64).collect()))
}

/// ok iff the status is the expected one; state is the status code.
pub(crate) fn judge(status: u16, reason: &str, expect_status: u16) -> Outcome {
    if status == expect_status {
        Outcome::pass(status.to_string())
    } else {
        let got = format!("{status} {reason}");
        Outcome::fail(
            status.to_string(),
            format!("expected status {expect_status}, got {}", got.trim_end()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"),
            Ok((200, "OK".into()))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503 Service Unavailable\n"),
            Ok((503, "Service Unavailable".into()))
        );
        // The reason phrase is optional.
        assert_eq!(
            parse_status_line(b"HTTP/1.1 204\r\n"),
            Ok((204, String::new()))
        );
    }

    #[test]
    fn rejects_what_is_not_a_status_line() {
        for head in [
            &b""[..],
            b"HTTP/1.1 200 OK",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/1.1 abc OK\r\n",
            b"HTTP/1.1 099 Low\r\n",
            b"HTTP/1.1\r\n",
            b"\xff\xfe 200\r\n",
        ] {
            assert!(parse_status_line(head).is_err(), "{head:?}");
        }
        let e = parse_status_line(b"").unwrap_err();
        assert!(e.contains("closed"), "{e}");
    }

    #[test]
    fn request_has_the_required_headers() {
        let url = parse_url("http://[::1]:8080/health?x=1").expect("url");
        let req = request(&url);
        assert!(req.starts_with("GET /health?x=1 HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nHost: [::1]:8080\r\n"), "{req}");
        assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
        let ua = format!(
            "\r\nUser-Agent: sitewatch-agent/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(req.contains(&ua), "{req}");
        assert!(req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn judge_compares_with_the_expected_status() {
        let o = judge(200, "OK", 200);
        assert!(o.ok);
        assert_eq!(o.state, "200");
        let o = judge(503, "Service Unavailable", 200);
        assert!(!o.ok);
        assert_eq!(o.state, "503");
        assert_eq!(
            o.detail.as_deref(),
            Some("expected status 200, got 503 Service Unavailable")
        );
        assert!(judge(404, "", 404).ok);
    }

    #[tokio::test]
    async fn reads_at_most_the_head_limit() {
        // A peer that streams bytes without a newline: reading stops at the limit.
        let endless = vec![b'a'; MAX_HEAD_BYTES * 4];
        let mut reader = &endless[..];
        let head = read_status_line(&mut reader).await.expect("read");
        assert_eq!(head.len(), MAX_HEAD_BYTES);
        assert!(parse_status_line(&head).is_err());

        let mut reader = &b"HTTP/1.1 200 OK\r\nrest of the response"[..];
        let head = read_status_line(&mut reader).await.expect("read");
        assert_eq!(parse_status_line(&head), Ok((200, "OK".into())));
    }

    #[tokio::test]
    async fn https_is_reported_unsupported() {
        let o = check("https://127.0.0.1:1/", 200, Instant::now()).await;
        assert!(!o.ok);
        assert_eq!(o.state, "unsupported");
        assert_eq!(
            o.detail.as_deref(),
            Some("https checks are not supported yet; use a tcp check on port 443")
        );
    }
}
