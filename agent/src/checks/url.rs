//! The small URL subset HTTP checks accept: `http[s]://host[:port][/path][?query]`.
//!
//! Hand-written to keep the agent tiny. Whitespace and control characters are rejected
//! anywhere (they would end up in the request line or `Host` header), as are credentials
//! (`user@host`: never sent in clear text over plain HTTP, and never logged).

use std::net::Ipv6Addr;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed check URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub scheme: Scheme,
    /// Host name or IP address; IPv6 literals without their brackets.
    pub host: String,
    pub port: u16,
    /// Request target: path and query, always starting with `/` (fragment dropped).
    pub path: String,
}

impl HttpUrl {
    /// Value of the `Host` header: brackets around IPv6, port only when not the default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses a check URL; the error says what is wrong in operator terms.
pub fn parse_url(url: &str) -> Result<HttpUrl, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{url:?} contains spaces or control characters; percent-encode them (%20)"
        ));
    }
    let (scheme, rest) = split_scheme(url)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(format!(
            "{url:?} contains credentials (user@host); they are not supported in check URLs"
        ));
    }
    let (host, port) = split_host_port(authority, scheme, url)?;
    let target = target.split('#').next().unwrap_or_default();
    let path = if target.is_empty() {
        "/".to_owned()
    } else if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_owned()
    };
    Ok(HttpUrl {
        scheme,
        host,
        port,
        path,
    })
}

fn split_scheme(url: &str) -> Result<(Scheme, &str), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "{url:?} is not a URL; write it as http://host[:port]/path"
        ));
    };
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        return Err(format!(
            "{url:?}: scheme {scheme:?} is not supported; use http:// (or a tcp check)"
        ));
    };
    Ok((scheme, rest))
}

fn split_host_port(authority: &str, scheme: Scheme, url: &str) -> Result<(String, u16), String> {
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(format!("{url:?}: IPv6 address without a closing `]`"));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{url:?}: [{inside}] is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(format!("{url:?}: unexpected {after:?} after `]`")),
            },
        };
        (inside.to_owned(), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err(format!(
                "{url:?}: write IPv6 addresses in brackets, e.g. http://[::1]:8080/"
            ));
        }
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        if let Some(bad) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            return Err(format!("{url:?}: host {host:?} contains {bad:?}"));
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{url:?}: port {p:?} is not 1-65535")),
            Ok(port) => port,
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> HttpUrl {
        parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn defaults_port_and_path() {
        let u = ok("http://example.org");
        assert_eq!(
            u,
            HttpUrl {
                scheme: Scheme::Http,
                host: "example.org".into(),
                port: 80,
                path: "/".into()
            }
        );
        assert_eq!(u.host_header(), "example.org");
        assert_eq!(ok("https://example.org").port, 443);
        assert_eq!(ok("HTTP://h:/").port, 80);
    }

    #[test]
    fn keeps_path_and_query_and_drops_fragment() {
        let u = ok("http://10.0.0.5:8080/health/live?full=1#top");
        assert_eq!(u.host, "10.0.0.5");
        assert_eq!(u.port, 8080);
        assert_eq!(u.path, "/health/live?full=1");
        assert_eq!(u.host_header(), "10.0.0.5:8080");
        assert_eq!(ok("http://h?x=1").path, "/?x=1");
        assert_eq!(ok("http://h#frag").path, "/");
    }

    #[test]
    fn ipv6_literals_need_brackets() {
        let u = ok("http://[::1]:9000/x");
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 9000);
        assert_eq!(u.host_header(), "[::1]:9000");
        assert_eq!(ok("http://[fe80::1]").host_header(), "[fe80::1]");
        assert!(
            parse_url("http://::1:80/")
                .unwrap_err()
                .contains("brackets")
        );
        assert!(parse_url("http://[::1/").is_err());
        assert!(parse_url("http://[nope]/").is_err());
        assert!(parse_url("http://[::1]x/").is_err());
    }

    #[test]
    fn rejects_credentials_spaces_and_bad_ports() {
        assert!(
            parse_url("http://user:pw@h/")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(parse_url("http://h/a b").is_err());
        assert!(parse_url("http://h/\r\nX-Injected: 1").is_err());
        assert!(parse_url("http://h:0/").unwrap_err().contains("1-65535"));
        assert!(parse_url("http://h:70000/").is_err());
        assert!(parse_url("http://h:8o/").is_err());
        assert!(parse_url("http:///path").unwrap_err().contains("no host"));
        assert!(parse_url("http://:80/").unwrap_err().contains("no host"));
        assert!(parse_url("http://ex%41mple/").is_err());
    }

    #[test]
    fn rejects_other_schemes_and_non_urls() {
        assert!(parse_url("ftp://h/").unwrap_err().contains("not supported"));
        assert!(
            parse_url("example.org/health")
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(parse_url("").is_err());
    }
}
