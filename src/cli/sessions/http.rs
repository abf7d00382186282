//! A tiny HTTP/1.1 client for the admin endpoint (plain HTTP, one request
//! per connection, `Connection: close`): enough for `switchboard sessions`,
//! without an HTTP client crate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use zeroize::Zeroizing;

/// How long to wait to connect, and for each read or write.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer read: a full list of 10,000 sessions is a few MiB.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// Where the admin endpoint is: `http://HOST:PORT[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUrl {
    /// `host:port` (IPv6 in brackets), for connecting and `Host:`.
    pub authority: String,
    /// Path prefix (a reverse proxy's), without a trailing `/`.
    pub prefix: String,
}

impl AdminUrl {
    /// `http://HOST:PORT[/PREFIX]` or `HOST:PORT`; `http://HOST` is port 80.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text.starts_with("https://") {
            bail!("{text}: the admin endpoint speaks plain HTTP (use http://)");
        }
        let rest = text.strip_prefix("http://");
        let (authority, prefix) = match rest.unwrap_or(text).split_once('/') {
            Some((a, p)) => (a, format!("/{}", p.trim_end_matches('/'))),
            None => (rest.unwrap_or(text), String::new()),
        };
        let prefix = if prefix == "/" { String::new() } else { prefix };
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        let authority = match (has_port, rest.is_some()) {
            (true, _) => authority.to_owned(),
            (false, true) if !authority.is_empty() && !authority.ends_with(':') => {
                format!("{authority}:80")
            }
            (false, _) => bail!("{text}: expected http://HOST:PORT or HOST:PORT"),
        };
        Ok(Self { authority, prefix })
    }

    /// The endpoint of a listen address: a wildcard address is reached on
    /// loopback.
    pub fn of_listen(listen: SocketAddr) -> Self {
        let ip = listen.ip();
        let ip = match ip {
            ip if !ip.is_unspecified() => ip,
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        Self {
            authority: SocketAddr::new(ip, listen.port()).to_string(),
            prefix: String::new(),
        }
    }
}

impl std::fmt::Display for AdminUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `METHOD PATH` at `url`, with `Authorization: Bearer TOKEN` when given.
pub fn request(
    url: &AdminUrl,
    method: &str,
    path: &str,
    token: Option<&[u8]>,
) -> anyhow::Result<Answer> {
    let mut stream = connect(&url.authority).with_context(|| {
        format!("cannot reach the admin endpoint {url} (is the gateway running? see admin.listen, or --admin URL)")
    })?;
    let mut head = Zeroizing::new(format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: switchboard/{}\r\n\
         Accept: application/json\r\nConnection: close\r\nContent-Length: 0\r\n",
        url.prefix,
        url.authority,
        env!("CARGO_PKG_VERSION"),
    ));
    if let Some(token) = token {
        let token = std::str::from_utf8(token).map_err(|_| anyhow!("the token is not UTF-8"))?;
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .with_context(|| format!("sending to {url}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .with_context(|| format!("reading from {url}"))?;
    parse(&raw).with_context(|| format!("{url} answered something other than HTTP"))
}

fn connect(authority: &str) -> anyhow::Result<TcpStream> {
    let mut last = None;
    for addr in authority.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.set_write_timeout(Some(TIMEOUT))?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| anyhow!("no address"), anyhow::Error::from))
}

/// Status and body of a whole response (`Content-Length` or read to the end).
pub fn parse(raw: &[u8]) -> anyhow::Result<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(raw)? else {
        bail!("the response ended inside its head");
    };
    let status = response.code.ok_or_else(|| anyhow!("no status code"))?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if header("transfer-encoding").is_some() {
        bail!("a chunked response (not what the gateway sends)");
    }
    let rest = raw.get(head_len..).unwrap_or_default();
    let body = match header("content-length") {
        Some(len) => {
            let len: usize = len.parse().context("a bad Content-Length")?;
            rest.get(..len)
                .ok_or_else(|| anyhow!("the response ended inside its body"))?
        }
        None => rest,
    };
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_listen_addresses() {
        let url = |t: &str| AdminUrl::parse(t).map(|u| u.to_string()).ok();
        assert_eq!(
            url("http://127.0.0.1:9102").as_deref(),
            Some("http://127.0.0.1:9102")
        );
        assert_eq!(
            url("127.0.0.1:9102/").as_deref(),
            Some("http://127.0.0.1:9102")
        );
        assert_eq!(
            url("http://[::1]:9102/gw/").as_deref(),
            Some("http://[::1]:9102/gw")
        );
        assert_eq!(
            url("http://gw.internal").as_deref(),
            Some("http://gw.internal:80")
        );
        for bad in ["https://gw:9102", "gw", "http://", ":9102", "http://gw:"] {
            assert_eq!(url(bad), None, "{bad}");
        }
        let listen = |t: &str| AdminUrl::of_listen(t.parse().expect("addr")).to_string();
        assert_eq!(listen("0.0.0.0:9102"), "http://127.0.0.1:9102");
        assert_eq!(listen("[::]:9102"), "http://[::1]:9102");
        assert_eq!(listen("10.1.2.3:9102"), "http://10.1.2.3:9102");
    }

    #[test]
    fn responses_are_cut_at_their_length() {
        let raw = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\nextra";
        let answer = parse(raw).expect("parses");
        assert_eq!((answer.status, answer.body.as_slice()), (403, &b"no\n"[..]));
        let to_end = parse(b"HTTP/1.1 200 OK\r\n\r\n{}").expect("parses");
        assert_eq!(to_end.body, b"{}");
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n").is_err());
    }
}
