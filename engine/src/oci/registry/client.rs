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
//!
//! Bounds ([`Limits`]): every socket read and write gives up after a
//! window of silence, every body is read through [`Progress`] (a floor on
//! bytes per window), requests other than blob transfers have a whole-request
//! deadline, redirects are followed [`MAX_REDIRECTS`] deep, and small bodies
//! (tokens, error texts) are read up to a limit.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use super::reference::scheme_for;
use super::transfer::{check_length, read_limited, Limits, Progress};
use super::RegistryError;

/// Redirects followed per request (registries send blob GETs to object
/// stores: one hop, sometimes two).
pub const MAX_REDIRECTS: u32 = 5;

/// The most a token answer may hold (JWTs are a few KiB).
const TOKEN_LIMIT: u64 = 1 << 20;

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
    pub limits: Limits,
}

pub type Response = ureq::Response;

impl Client {
    pub fn new(
        host: &str,
        insecure: bool,
        scopes: Vec<String>,
        creds: Option<Credentials>,
        limits: Limits,
    ) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(limits.window)
            .timeout_write(limits.window)
            .redirects(MAX_REDIRECTS)
            .build();
        Client {
            agent,
            base: format!("{}://{host}", scheme_for(host, insecure)),
            scopes,
            creds,
            authorization: Mutex::new(None),
            limits,
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
    /// Unless it uploads a file, the whole request, answer included, has
    /// [`Limits::small_request`] to finish.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
    ) -> Result<Response, RegistryError> {
        let whole = !matches!(body, Body::File(..));
        self.request(method, path, headers, body, whole)
    }

    /// GET a blob: no whole-request deadline (a layer may be gigabytes);
    /// the caller reads the body through [`Progress`].
    pub fn get_stream(&self, path: &str) -> Result<Response, RegistryError> {
        self.request("GET", path, &[], &Body::None, false)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        whole_deadline: bool,
    ) -> Result<Response, RegistryError> {
        let url = self.url(path);
        for attempt in 0..2 {
            let mut req = self.agent.request(method, &url);
            if whole_deadline {
                req = req.timeout(self.limits.small_request());
            }
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
                    let what = format!("upload of {}", p.display());
                    req.set("Content-Length", &len.to_string())
                        .send(Progress::new(
                            Reporting {
                                inner: f.take(*len),
                                on_sent: *on_sent,
                            },
                            what,
                            &self.limits,
                        ))
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
                    let _ = Progress::new(resp.into_reader(), "error text", &self.limits)
                        .take(4096)
                        .read_to_string(&mut text);
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
        let (scheme, params) =
            parse_challenge(challenge).map_err(|detail| RegistryError::Unauthorized {
                url: url.to_string(),
                detail,
            })?;
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
        check_realm(&self.base, realm).map_err(|detail| RegistryError::Unauthorized {
            url: url.to_string(),
            detail,
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
        let mut req = self
            .agent
            .get(&token_url)
            .timeout(self.limits.small_request());
        if let Some(c) = &self.creds {
            req = req.set("Authorization", &c.basic());
        }
        let resp = req.call().map_err(|e| RegistryError::Unauthorized {
            url: token_url.clone(),
            detail: format!("the token server refused: {e} (try: rbuild login)"),
        })?;
        let unreadable = |detail: String| RegistryError::Unauthorized {
            url: token_url.clone(),
            detail,
        };
        check_length(
            resp.header("content-length"),
            "token answer",
            None,
            TOKEN_LIMIT,
        )
        .map_err(|e| unreadable(e.to_string()))?;
        let body = Progress::new(resp.into_reader(), "token answer", &self.limits);
        let text = read_limited(body, "token answer", TOKEN_LIMIT)
            .map_err(|e| unreadable(format!("reading the token answer: {e}")))?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| RegistryError::Unauthorized {
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

/// A token realm must be an http(s) URL, and not plain http when the
/// registry is https (credentials go there).
fn check_realm(base: &str, realm: &str) -> Result<(), String> {
    let rest = realm
        .strip_prefix("https://")
        .or_else(|| realm.strip_prefix("http://"))
        .ok_or_else(|| format!("the token realm {realm:?} is not an http(s) URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || realm.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the token realm {realm:?} is not a valid URL"));
    }
    if base.starts_with("https://") && realm.starts_with("http://") {
        return Err(format!(
            "the registry is https but its token realm {realm:?} is plain http; refusing to send credentials there"
        ));
    }
    Ok(())
}

/// `Bearer realm="https://x/token",service="reg",scope="repository:a:pull,push"`
/// → ("Bearer", {realm, service, scope}). Quoted values may hold commas; a
/// quote left open is an error, not a value running to the end.
pub fn parse_challenge(h: &str) -> Result<(String, BTreeMap<String, String>), String> {
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
        let key = key.trim().to_ascii_lowercase();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!(
                    "malformed authentication challenge {h:?}: the quoted {key} has no closing quote"
                ));
            }
        } else {
            value = chars.by_ref().take_while(|&c| c != ',').collect();
        }
        params.insert(key, value);
    }
    Ok((scheme.to_string(), params))
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
        )
        .unwrap();
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["service"], "reg");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (s.as_str(), p["realm"].as_str()),
            ("Basic", "Registry Realm")
        );
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn refuses_an_unterminated_quote_and_odd_realms() {
        let err = parse_challenge(r#"Bearer realm="http://127.0.0.1:1/token"#).unwrap_err();
        assert!(err.contains("no closing quote"), "{err}");
        assert!(check_realm("http://r", "http://127.0.0.1:1/token").is_ok());
        assert!(check_realm("https://r", "https://auth.example/token?x=1").is_ok());
        assert!(check_realm("https://r", "http://auth.example/token").is_err());
        assert!(check_realm("http://r", "file:///etc/passwd").is_err());
        assert!(check_realm("http://r", "http:///token").is_err());
        assert!(check_realm("http://r", "http://a b/token").is_err());
    }
}
