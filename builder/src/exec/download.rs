//! ADD of a URL: the file is downloaded (http or https), optionally checked
//! against `--checksum=sha256:…`, and then added like a local file.

use std::io::{self, Write};
use std::path::Path;

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

/// Download `url` into `dest` (a new file).
pub fn fetch(url: &str, dest: &Path, checksum: Option<&str>) -> Result<(), String> {
    let response = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(30))
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
    let mut reader = response.into_reader();
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
}
