//! A registry API client: HTTP through `ureq` and the auth dance.
//!
//! Why ureq 2: blocking (the rest of the engine is threads, not async, so no
//! runtime to carry), small, rustls for TLS (no OpenSSL to link), and it
//! never forwards `Authorization` across redirects (registries redirect blob
//! GETs to object stores). Layer parallelism is one thread per layer.
//!
//! Auth: requests go out with whatever we have; a 401 carries
//! `WWW-Authenticate`. `Basic` → credentials; `Bearer realm=…,service=…,scope=…`
//! → GET a token from the realm (with credentials if we have them) → retry.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use super::reference::scheme_for;
use super::RegistryError;

pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What a request sends.
pub enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    /// A part of a file: path, offset, length, and what to tell of each
    /// chunk sent (upload progress). Reopened on a retry.
    File(&'a std::path::Path, u64, u64, Option<&'a OnSent<'a>>),
}

/// Told the length of each chunk of a file body as it goes out.
pub type OnSent<'a> = dyn Fn(u64) + Sync + 'a;

struct Reporting<'a, R> {
    inner: R,
    on_sent: Option<&'a OnSent<'a>>,
}

impl<R: Read> Read for Reporting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let (Some(f), true) = (self.on_sent, n > 0) {
            f(n as u64);
        }
        Ok(n)
    }
}

pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    /// `repository:<repo>:pull,push` scopes for Bearer tokens.
    scopes: Vec<String>,
    creds: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

pub type Response = ureq::Response;

impl Client {
    pub fn new(
        host: &str,
        insecure: bool,
        scopes: Vec<String>,
        creds: Option<Credentials>,
    ) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(60))
            .build();
        Client {
            agent,
            base: format!("{}://{host}", scheme_for(host, insecure)),
            scopes,
            creds,
            authorization: Mutex::new(None),
        }
    }

    /// `path` is absolute on the registry (`/v2/...`) or a full URL (a Location).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Send a request, authenticating and retrying once on 401. Non-2xx
    /// answers are `RegistryError::Status` (with the registry's error text).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
    ) -> Result<Response, RegistryError> {
        let url = self.url(path);
        for attempt in 0..2 {
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = self
                .authorization
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                req = req.set("Authorization", &a);
            }
            let result = match body {
                Body::None => req.call(),
                Body::Bytes(b) => req
                    .set("Content-Length", &b.len().to_string())
                    .send_bytes(b),
                Body::File(p, off, len, on_sent) => {
                    use std::io::{Seek, SeekFrom};
                    let mut f = std::fs::File::open(p)
                        .map_err(|e| RegistryError::Local(format!("open {}: {e}", p.display())))?;
                    f.seek(SeekFrom::Start(*off))
                        .map_err(|e| RegistryError::Local(format!("seek {}: {e}", p.display())))?;
                    req.set("Content-Length", &len.to_string()).send(Reporting {
                        inner: f.take(*len),
                        on_sent: *on_sent,
                    })
                }
            };
            match result {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) if attempt == 0 => {
                    let challenge = resp.header("www-authenticate").unwrap_or("").to_string();
                    self.authenticate(&url, &challenge)?;
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let mut text = String::new();
                    let _ = resp.into_reader().take(4096).read_to_string(&mut text);
                    return Err(RegistryError::Status {
                        method: method.to_string(),
                        url,
                        code,
                        body: text.trim().to_string(),
                    });
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(RegistryError::Transport {
                        url,
                        detail: t.to_string(),
                    });
                }
            }
        }
        Err(RegistryError::Unauthorized {
            url,
            detail: "the registry refused the credentials it asked for (try: rbuild login)".into(),
        })
    }

    fn authenticate(&self, url: &str, challenge: &str) -> Result<(), RegistryError> {
        let (scheme, params) = parse_challenge(challenge);
        let header = match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &self.creds {
                Some(c) => c.basic(),
                None => return Err(RegistryError::Unauthorized {
                    url: url.to_string(),
                    detail:
                        "the registry wants a username and password (try: rbuild login REGISTRY)"
                            .into(),
                }),
            },
            "bearer" => format!("Bearer {}", self.fetch_token(url, &params)?),
            _ => {
                return Err(RegistryError::Unauthorized {
                    url: url.to_string(),
                    detail: format!("unsupported authentication challenge {challenge:?}"),
                })
            }
        };
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(header);
        Ok(())
    }

    fn fetch_token(
        &self,
        url: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<String, RegistryError> {
        let realm = params
            .get("realm")
            .ok_or_else(|| RegistryError::Unauthorized {
                url: url.to_string(),
                detail: "Bearer challenge without a realm".into(),
            })?;
        let mut query = Vec::new();
        if let Some(s) = params.get("service") {
            query.push(format!("service={}", encode(s)));
        }
        let mut scopes = self.scopes.clone();
        if let Some(s) = params.get("scope") {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        for s in &scopes {
            query.push(format!("scope={}", encode(s)));
        }
        let token_url = if query.is_empty() {
            realm.clone()
        } else {
            format!(
                "{realm}{}{}",
                if realm.contains('?') { '&' } else { '?' },
                query.join("&")
            )
        };
        let mut req = self.agent.get(&token_url);
        if let Some(c) = &self.creds {
            req = req.set("Authorization", &c.basic());
        }
        let resp = req.call().map_err(|e| RegistryError::Unauthorized {
            url: token_url.clone(),
            detail: format!("the token server refused: {e} (try: rbuild login)"),
        })?;
        let mut text = String::new();
        let _ = resp.into_reader().take(1 << 20).read_to_string(&mut text);
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| RegistryError::Unauthorized {
                url: token_url.clone(),
                detail: format!("token answer is not JSON: {e}"),
            })?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Unauthorized {
                url: token_url,
                detail: "token answer has no token".into(),
            })
    }
}

/// `Bearer realm="https://x/token",service="reg",scope="repository:a:pull,push"`
/// → ("Bearer", {realm, service, scope}). Quoted values may hold commas.
pub fn parse_challenge(h: &str) -> (String, BTreeMap<String, String>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ') | Some(',')) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|&c| c != ',').collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    (scheme.to_string(), params)
}

/// Percent-encoding for query values (RFC 3986 unreserved kept).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["service"], "reg");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (s.as_str(), p["realm"].as_str()),
            ("Basic", "Registry Realm")
        );
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
