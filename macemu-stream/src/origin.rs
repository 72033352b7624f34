//! Which requests may reach the server, decided from header values alone (sans-IO).
//!
//! Three checks keep other web pages away from a server on the user's machine:
//! - `Host` (every HTTP and WebSocket request): only the loopback names, the bound address and
//!   `--allow-host` names. A page on a DNS-rebound name (`attacker.example` resolving to 127.0.0.1)
//!   sends its own name as `Host` and is refused. Bound to 0.0.0.0 or `::` with a token required,
//!   any `Host` is accepted: the token is then what keeps strangers out, and the user may reach the
//!   machine by any name or address.
//! - `Origin` on the signaling WebSocket (browsers do not apply CORS to WebSockets): only the server's
//!   own page (`http://<allowed host>:<http port>`) and `--allow-origin` origins. A missing `Origin` is a
//!   non-browser client and allowed.
//! - State-changing API calls (every method but GET/HEAD/OPTIONS) refuse a foreign `Origin` and
//!   `Sec-Fetch-Site: cross-site`/`same-site` unless the origin is allowed, and need
//!   `Content-Type: application/json` when they carry a body, a type browsers only send cross-site
//!   after a CORS preflight the server never grants.

use std::fmt;
use std::net::IpAddr;

/// Why a request was refused; the message is safe to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    MissingHost,
    ForeignHost(String),
    ForeignOrigin(String),
    CrossSite(String),
    /// A body of a type a cross-site form could send without a preflight.
    BodyType(String),
}

impl Refusal {
    /// The HTTP status that goes with the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MissingHost => 400,
            Refusal::BodyType(_) => 415,
            _ => 403,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are echoed bounded and without control characters.
        let clip =
            |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(100).collect() };
        match self {
            Refusal::MissingHost => write!(f, "request without a Host header"),
            Refusal::ForeignHost(h) => write!(
                f,
                "Host {:?} is not this server (add it with --allow-host)",
                clip(h)
            ),
            Refusal::ForeignOrigin(o) => write!(
                f,
                "Origin {:?} may not use this server (add it with --allow-origin)",
                clip(o)
            ),
            Refusal::CrossSite(s) => {
                write!(
                    f,
                    "cross-site request refused (Sec-Fetch-Site: {})",
                    clip(s)
                )
            }
            Refusal::BodyType(t) => write!(
                f,
                "request bodies must be Content-Type: application/json, or \
                 application/octet-stream for uploads (got {:?})",
                clip(t)
            ),
        }
    }
}

/// The allowed hosts and origins of one server.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Lower-case host names and addresses without port; IPv6 in brackets.
    hosts: Vec<String>,
    /// Any `Host` is accepted (bound to every address, token required).
    any_host: bool,
    http_port: u16,
    /// The server's other ports (signaling): they serve no page, so an origin naming one of
    /// them on an allowed host can only be a client speaking for this server itself.
    other_ports: Vec<u16>,
    /// `--allow-origin` values, normalized (lower case, no trailing slash).
    origins: Vec<String>,
}

/// A request's headers as far as the policy cares.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHeaders<'a> {
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// The request carries a body (non-zero Content-Length or any Transfer-Encoding).
    pub has_body: bool,
}

fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Splits `host[:port]` (IPv6 in brackets); `None` when malformed.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/' || b == b'@')
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    // Normalize IPv6 literals ("[0:0::1]" is "[::1]"); names are case-insensitive.
    let host = match host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<std::net::Ipv6Addr>().ok())
    {
        Some(v6) => format!("[{v6}]"),
        None => host.trim_end_matches('.').to_ascii_lowercase(),
    };
    Some((host, port))
}

/// Splits an origin `scheme://host[:port]` into scheme, host and effective port.
fn split_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = split_host_port(rest)?;
    Some((scheme, host, port.unwrap_or(default)))
}

fn normalize_origin(o: &str) -> String {
    match split_origin(o) {
        Some((scheme, host, port)) => format!("{scheme}://{host}:{port}"),
        None => o.trim().trim_end_matches('/').to_ascii_lowercase(),
    }
}

impl Default for OriginPolicy {
    /// A server on 127.0.0.1 with its HTTP port 8080, nothing extra allowed, no token.
    fn default() -> Self {
        Self::new(
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            8080,
            &[],
            &[],
            false,
        )
    }
}

impl OriginPolicy {
    /// `bind`: the listening address; `token_required`: whether every request needs the token.
    pub fn new(
        bind: IpAddr,
        http_port: u16,
        allow_hosts: &[String],
        allow_origins: &[String],
        token_required: bool,
    ) -> Self {
        let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !bind.is_unspecified() {
            hosts.push(host_literal(bind));
        }
        for h in allow_hosts {
            // Accept "name", "name:port" and bracketed or bare IPv6 literals.
            let parsed = match h.parse::<IpAddr>() {
                Ok(ip) => Some(host_literal(ip)),
                Err(_) => split_host_port(h).map(|(h, _)| h),
            };
            if let Some(h) = parsed {
                hosts.push(h);
            }
        }
        hosts.sort();
        hosts.dedup();
        Self {
            hosts,
            any_host: bind.is_unspecified() && token_required,
            http_port,
            other_ports: Vec::new(),
            origins: allow_origins.iter().map(|o| normalize_origin(o)).collect(),
        }
    }

    /// Also takes the server's own `port` (its signaling listener) in an origin.
    pub fn with_own_port(mut self, port: u16) -> Self {
        if port != self.http_port && !self.other_ports.contains(&port) {
            self.other_ports.push(port);
        }
        self
    }

    /// Whether `Host` (as sent, `name[:port]`) names this server.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), Refusal> {
        let raw = host.ok_or(Refusal::MissingHost)?;
        let (name, _) = split_host_port(raw).ok_or_else(|| Refusal::ForeignHost(raw.into()))?;
        if self.any_host || self.hosts.contains(&name) {
            Ok(())
        } else {
            Err(Refusal::ForeignHost(raw.into()))
        }
    }

    /// Whether `origin` is the server's own page or an allowed one. `request_host` is the request's
    /// `Host`, which with `any_host` is how the user reached the server.
    fn origin_allowed(&self, origin: &str, request_host: Option<&str>) -> bool {
        if self.origins.contains(&normalize_origin(origin)) {
            return true;
        }
        let Some((_, host, port)) = split_origin(origin) else {
            return false; // "null", file://, chrome-extension://…
        };
        if port != self.http_port && !self.other_ports.contains(&port) {
            return false;
        }
        if self.hosts.contains(&host) {
            return true;
        }
        self.any_host
            && request_host
                .and_then(split_host_port)
                .is_some_and(|(h, _)| h == host)
    }

    /// The signaling WebSocket upgrade: the Host, then the Origin (when a browser sent one).
    pub fn check_websocket(&self, h: &RequestHeaders<'_>) -> Result<(), Refusal> {
        self.check_host(h.host)?;
        match h.origin {
            None => Ok(()),
            Some(o) if self.origin_allowed(o, h.host) => Ok(()),
            Some(o) => Err(Refusal::ForeignOrigin(o.into())),
        }
    }

    /// Any HTTP request: the Host always; for state-changing methods also the origin and body type.
    pub fn check_http(&self, method: &str, h: &RequestHeaders<'_>) -> Result<(), Refusal> {
        self.check_host(h.host)?;
        if matches!(method, "GET" | "HEAD" | "OPTIONS") {
            return Ok(());
        }
        let origin_ok = match h.origin {
            Some(o) if self.origin_allowed(o, h.host) => true,
            Some(o) => return Err(Refusal::ForeignOrigin(o.into())),
            None => false,
        };
        if let Some(site) = h.sec_fetch_site {
            let site_lc = site.trim().to_ascii_lowercase();
            if matches!(site_lc.as_str(), "cross-site" | "same-site") && !origin_ok {
                return Err(Refusal::CrossSite(site.into()));
            }
        }
        if h.has_body || h.content_type.is_some() {
            let ct = h.content_type.unwrap_or("");
            let essence = ct.split(';').next().unwrap_or("").trim();
            // Neither type is one a cross-site form may send without a CORS preflight.
            let upload =
                method == "PUT" && essence.eq_ignore_ascii_case("application/octet-stream");
            if !essence.eq_ignore_ascii_case("application/json") && !upload {
                return Err(Refusal::BodyType(ct.into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LOOP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn default_policy() -> OriginPolicy {
        OriginPolicy::new(LOOP, 8080, &[], &[], false)
    }

    fn ws<'a>(host: &'a str, origin: Option<&'a str>) -> RequestHeaders<'a> {
        RequestHeaders {
            host: Some(host),
            origin,
            ..Default::default()
        }
    }

    #[test]
    fn loopback_names_and_the_bound_address_are_hosts_with_or_without_port() {
        let p = OriginPolicy::new(
            IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5)),
            8080,
            &[],
            &[],
            true,
        );
        for h in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:8090",
            "LOCALHOST",
            "localhost.",
            "[::1]:8080",
            "[0:0::1]",
            "192.168.1.5:8080",
        ] {
            assert_eq!(p.check_host(Some(h)), Ok(()), "{h}");
        }
        for h in [
            "evil.example.com",
            "evil.example.com:8090",
            "attacker.rebind.example",
            "127.0.0.2",
            "192.168.1.6:8080",
            "localhost:99999",
            "localhost:x",
            "[::1",
            "user@127.0.0.1",
            "",
        ] {
            assert!(
                matches!(p.check_host(Some(h)), Err(Refusal::ForeignHost(_))),
                "{h}"
            );
        }
        assert_eq!(p.check_host(None), Err(Refusal::MissingHost));
        assert_eq!(Refusal::MissingHost.status(), 400);
    }

    #[test]
    fn allow_host_adds_names_and_addresses() {
        let p = OriginPolicy::new(
            LOOP,
            8080,
            &["mac.lan".into(), "10.0.0.2:8080".into(), "fe80::1".into()],
            &[],
            false,
        );
        for h in ["mac.lan", "MAC.LAN:8080", "10.0.0.2", "[fe80::1]:8090"] {
            assert_eq!(p.check_host(Some(h)), Ok(()), "{h}");
        }
        assert!(p.check_host(Some("other.lan")).is_err());
    }

    #[test]
    fn any_host_only_when_bound_to_every_address_with_a_token() {
        let all = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let with_token = OriginPolicy::new(all, 8080, &[], &[], true);
        assert_eq!(with_token.check_host(Some("whatever.example:8080")), Ok(()));
        let without = OriginPolicy::new(all, 8080, &[], &[], false);
        assert!(without.check_host(Some("whatever.example")).is_err());
        assert_eq!(without.check_host(Some("localhost")), Ok(()));
        // With any Host accepted, the page's origin is the host the user typed, on the HTTP port.
        assert_eq!(
            with_token.check_websocket(&ws("mac.example:8090", Some("http://mac.example:8080"))),
            Ok(())
        );
        assert!(with_token
            .check_websocket(&ws("mac.example:8090", Some("http://evil.example:8080")))
            .is_err());
    }

    #[test]
    fn websocket_origin_is_the_servers_own_page_or_allowed() {
        let p = OriginPolicy::new(LOOP, 8080, &[], &["https://Console.Example/".into()], false);
        for o in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "https://console.example",
            "https://console.example:443",
        ] {
            assert_eq!(
                p.check_websocket(&ws("127.0.0.1:8090", Some(o))),
                Ok(()),
                "{o}"
            );
        }
        assert_eq!(p.check_websocket(&ws("127.0.0.1:8090", None)), Ok(()));
        // The signaling port is the server's own too (it serves no page): a client that names it
        // as its origin is accepted once the server says so, and only on an allowed host.
        let own = "http://127.0.0.1:8090";
        assert!(p.check_websocket(&ws("127.0.0.1:8090", Some(own))).is_err());
        let p = p.with_own_port(8090);
        assert_eq!(p.check_websocket(&ws("127.0.0.1:8090", Some(own))), Ok(()));
        assert!(p
            .check_websocket(&ws("127.0.0.1:8090", Some("http://evil.example.com:8090")))
            .is_err());
        for o in [
            "http://evil.example.com",
            "http://127.0.0.1:8081",
            "http://127.0.0.1",
            "null",
            "file://",
            "http://console.example",
            "chrome-extension://abc",
        ] {
            assert!(
                matches!(
                    p.check_websocket(&ws("127.0.0.1:8090", Some(o))),
                    Err(Refusal::ForeignOrigin(_))
                ),
                "{o}"
            );
        }
        // A rebound Host is refused before the Origin is looked at.
        assert!(matches!(
            p.check_websocket(&ws(
                "evil.example.com:8090",
                Some("http://evil.example.com:8090")
            )),
            Err(Refusal::ForeignHost(_))
        ));
    }

    fn post<'a>(
        origin: Option<&'a str>,
        site: Option<&'a str>,
        ctype: Option<&'a str>,
        has_body: bool,
    ) -> RequestHeaders<'a> {
        RequestHeaders {
            host: Some("127.0.0.1:8080"),
            origin,
            sec_fetch_site: site,
            content_type: ctype,
            has_body,
        }
    }

    #[test]
    fn state_changes_refuse_cross_site_and_non_json() {
        let p = default_policy();
        let own = Some("http://127.0.0.1:8080");
        let json = Some("application/json");
        // The page's own fetch, and curl with JSON or without a body.
        assert_eq!(
            p.check_http("POST", &post(own, Some("same-origin"), json, true)),
            Ok(())
        );
        assert_eq!(
            p.check_http(
                "POST",
                &post(None, None, Some("Application/JSON; charset=utf-8"), true)
            ),
            Ok(())
        );
        assert_eq!(p.check_http("POST", &post(None, None, None, false)), Ok(()));
        // The request from the report: foreign Origin, text/plain.
        assert!(matches!(
            p.check_http(
                "POST",
                &post(
                    Some("http://evil.example.com"),
                    None,
                    Some("text/plain"),
                    true
                )
            ),
            Err(Refusal::ForeignOrigin(_))
        ));
        // No Origin but the browser says it is cross-site (or a sibling site).
        for s in ["cross-site", "same-site", "Cross-Site"] {
            assert!(matches!(
                p.check_http("DELETE", &post(None, Some(s), json, true)),
                Err(Refusal::CrossSite(_))
            ));
        }
        assert_eq!(
            p.check_http("PUT", &post(own, Some("same-site"), json, true)),
            Ok(())
        );
        // Bodies must be JSON; an empty text/plain form post too.
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let r = p.check_http("POST", &post(own, None, ct, true));
            assert!(matches!(r, Err(Refusal::BodyType(_))), "{ct:?}");
            assert_eq!(r.unwrap_err().status(), 415);
        }
        assert!(p
            .check_http("POST", &post(own, None, Some("text/plain"), false))
            .is_err());
        // Raw bytes only for uploads (PUT, which no cross-site form can send unasked).
        let raw = Some("application/octet-stream");
        assert_eq!(p.check_http("PUT", &post(own, None, raw, true)), Ok(()));
        assert!(matches!(
            p.check_http("POST", &post(own, None, raw, true)),
            Err(Refusal::BodyType(_))
        ));
        assert!(matches!(
            p.check_http("PUT", &post(own, None, Some("text/plain"), true)),
            Err(Refusal::BodyType(_))
        ));
        // Reads only need the right Host: CORS keeps foreign pages from reading the answers.
        assert_eq!(
            p.check_http(
                "GET",
                &post(
                    Some("http://evil.example.com"),
                    Some("cross-site"),
                    None,
                    false
                )
            ),
            Ok(())
        );
        let mut rebound = post(None, None, None, false);
        rebound.host = Some("attacker.rebind.example");
        assert!(matches!(
            p.check_http("GET", &rebound),
            Err(Refusal::ForeignHost(_))
        ));
    }

    #[test]
    fn refusal_messages_are_bounded_and_clean() {
        let long = format!("evil\u{1b}[31m{}", "x".repeat(1000));
        let m = Refusal::ForeignOrigin(long).to_string();
        assert!(m.len() < 250, "{m}");
        assert!(!m.contains('\u{1b}'));
    }
}
