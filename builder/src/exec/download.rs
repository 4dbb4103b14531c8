//! ADD of a URL: the file is downloaded (http or https), optionally checked
//! against `--checksum=sha256:…`, and then added like a local file.
//!
//! The download is held to the registry client's bounds
//! ([`engine::oci::registry::Limits`]): a server that stops sending, or
//! drips, is given up after a window; redirects are followed a few deep;
//! a failed download leaves no file behind.

use std::io::{self, Write};
use std::path::Path;

use engine::oci::registry::client::MAX_REDIRECTS;
use engine::oci::registry::transfer::Progress;
use engine::oci::registry::Limits;
use sha2::Digest as _;

/// The name the file gets in a destination directory: the URL's last path
/// segment, as Docker names it.
pub fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = path.split_once("://").map(|(_, r)| r).unwrap_or(path);
    let name = after_scheme
        .split_once('/')
        .map(|(_, p)| p.rsplit('/').next().unwrap_or(""))
        .unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        "index.html".to_string()
    } else {
        name.to_string()
    }
}

/// Download `url` into `dest` (a new file), with the default limits.
pub fn fetch(url: &str, dest: &Path, checksum: Option<&str>) -> Result<(), String> {
    fetch_with(url, dest, checksum, &Limits::default())
}

/// Download `url` into `dest` (a new file); on any error `dest` is removed.
pub fn fetch_with(
    url: &str,
    dest: &Path,
    checksum: Option<&str>,
    limits: &Limits,
) -> Result<(), String> {
    let result = download(url, dest, checksum, limits);
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

fn download(url: &str, dest: &Path, checksum: Option<&str>, limits: &Limits) -> Result<(), String> {
    let response = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(limits.window)
        .timeout_write(limits.window)
        .redirects(MAX_REDIRECTS)
        .build()
        .get(url)
        .call()
        .map_err(|e| match e {
            ureq::Error::Status(code, _) => format!("the server answered HTTP {code}"),
            ureq::Error::Transport(t) => {
                format!("download failed: {t} (is the network reachable from here?)")
            }
        })?;
    let mut out =
        std::fs::File::create_new(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut reader = Progress::new(response.into_reader(), "the download", limits);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match io::Read::read(&mut reader, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("download broke off: {e}")),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    if let Some(want) = checksum {
        let got = format!("sha256:{:x}", hasher.finalize());
        if !want.eq_ignore_ascii_case(&got) {
            return Err(format!(
                "checksum mismatch: expected {want}, the download has {got}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_like_docker() {
        assert_eq!(
            file_name("https://example.com/a/b/tool.tar.gz?x=1"),
            "tool.tar.gz"
        );
        assert_eq!(file_name("http://example.com/"), "index.html");
        assert_eq!(file_name("http://example.com"), "index.html");
        assert_eq!(file_name("http://example.com/../"), "index.html");
    }

    /// A server that sends `body` one byte every `gap` (Content-Length
    /// announced), on a free loopback port.
    fn dripping_server(body: &'static [u8], gap: std::time::Duration) -> u16 {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = conn.write_all(head.as_bytes());
                for b in body {
                    if conn.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(gap);
                }
            }
        });
        port
    }

    #[test]
    fn a_dripping_download_is_given_up_and_leaves_no_file() {
        let port = dripping_server(&[b'x'; 4000], std::time::Duration::from_millis(50));
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file");
        let limits = Limits {
            window: std::time::Duration::from_millis(500),
            min_bytes: 1024,
            parallel_blobs: 1,
        };
        let start = std::time::Instant::now();
        let err =
            fetch_with(&format!("http://127.0.0.1:{port}/f"), &dest, None, &limits).unwrap_err();
        assert!(err.contains("stalled"), "{err}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "gave up only after {:?}",
            start.elapsed()
        );
        assert!(!dest.exists(), "a half-written download was left");
        // The same server at an easier floor delivers the whole file.
        let slow_ok = Limits {
            min_bytes: 5,
            ..limits
        };
        let port = dripping_server(&[b'y'; 40], std::time::Duration::from_millis(20));
        fetch_with(&format!("http://127.0.0.1:{port}/f"), &dest, None, &slow_ok).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), [b'y'; 40]);
    }
}
