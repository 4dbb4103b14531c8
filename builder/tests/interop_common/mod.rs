//! Shared setup for the interop tests: stores, the real `rbuild` and `rrun`,
//! Debian's docker-registry on a free loopback port, a tiny registry of our
//! own (Bearer tokens, fault injection), and tree comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const RBUILD: &str = env!("CARGO_BIN_EXE_rbuild");

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the interop tests need root (unpacking layers keeps owners, export mounts overlayfs): run as root"
    );
}

pub fn require_tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed (try: apt-get install docker-registry skopeo umoci apache2-utils, or scripts/install-deps.sh)");
}

pub fn rrun_path() -> PathBuf {
    let p = Path::new(RBUILD).with_file_name("rrun");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p runner --bin rrun, or scripts/test.sh)",
        p.display()
    );
    p
}

/// A fresh, empty store root.
pub fn empty_store() -> tempfile::TempDir {
    require_root();
    tempfile::Builder::new()
        .prefix("interop-store-")
        .tempdir()
        .unwrap()
}

/// A store holding the busybox fixture image as `busybox:latest`.
pub fn busybox_store() -> tempfile::TempDir {
    let dir = empty_store();
    let store = engine::Store::open(dir.path()).unwrap();
    fixtures::ensure_busybox_image(&store, "busybox").expect("build the busybox fixture image");
    dir
}

pub fn rbuild(root: &Path, args: &[&str]) -> Output {
    Command::new(RBUILD)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run rbuild")
}

pub fn rbuild_ok(root: &Path, args: &[&str]) -> String {
    let out = rbuild(root, args);
    assert!(
        out.status.success(),
        "rbuild {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn rbuild_err(root: &Path, args: &[&str]) -> String {
    let out = rbuild(root, args);
    assert!(
        !out.status.success(),
        "rbuild {args:?} succeeded but should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rrun run --rm IMAGE cmd...` in `root`; returns stdout.
pub fn rrun_ok(root: &Path, image: &str, cmd: &[&str]) -> String {
    let mut c = Command::new(rrun_path());
    c.arg("--root")
        .arg(root)
        .args(["run", "--rm", image])
        .args(cmd)
        .stdin(Stdio::null());
    run_tool(&mut c)
}

/// The manifest digest a ref resolves to in a store.
pub fn resolve(root: &Path, r: &str) -> Option<String> {
    let store = engine::Store::open(root).unwrap();
    store
        .find_image(r)
        .ok()
        .map(|i| i.manifest_digest.to_string())
}

pub fn diff_ids(root: &Path, r: &str) -> Vec<String> {
    let store = engine::Store::open(root).unwrap();
    store
        .find_image(r)
        .unwrap()
        .config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| d.to_string())
        .collect()
}

/// Nothing of an image in the store: no refs, no blobs, no unpacked layers.
pub fn assert_store_empty(root: &Path) {
    for sub in ["images", "blobs/blake3", "layers"] {
        let n = fs::read_dir(root.join(sub)).map(|d| d.count()).unwrap_or(0);
        assert_eq!(
            n,
            0,
            "{sub} in {} is not empty after a refused import",
            root.display()
        );
    }
}

/// A tree as (path → description): type, mode, owner, size and content
/// digest or link target. mtimes are left out (tools differ on directories).
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let ft = m.file_type();
        let desc = if ft.is_symlink() {
            format!("link -> {}", fs::read_link(&p).unwrap().display())
        } else if ft.is_dir() {
            format!(
                "dir {:o} {}:{}",
                m.permissions().mode() & 0o7777,
                m.uid(),
                m.gid()
            )
        } else if ft.is_file() {
            format!(
                "file {:o} {}:{} {} {}",
                m.permissions().mode() & 0o7777,
                m.uid(),
                m.gid(),
                m.len(),
                engine::Digest::blake3_of(&fs::read(&p).unwrap())
            )
        } else {
            format!("special {:o} rdev {}", m.mode(), m.rdev())
        };
        out.insert(rel, desc);
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// `rbuild export` of an image, extracted with GNU tar into a fresh dir.
pub fn exported_tree(root: &Path, image: &str, work: &Path) -> BTreeMap<String, String> {
    let tar = work.join(format!("export-{}.tar", image.replace(['/', ':'], "_")));
    rbuild_ok(root, &["export", image, "-o", tar.to_str().unwrap()]);
    let dir = work.join(format!("export-{}", image.replace(['/', ':'], "_")));
    fs::create_dir_all(&dir).unwrap();
    run_tool(
        Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("--same-owner")
            .arg("-xpf")
            .arg(&tar),
    );
    tree(&dir)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on 127.0.0.1:{port} within 20s; its log:\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// Debian's docker-registry (distribution 2.8) on a free loopback port,
/// storage in a temp dir; killed and cleaned up on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(htpasswd: Option<&str>) -> Registry {
        let bin = require_tool("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("interop-registry-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(line) = htpasswd {
            let f = dir.path().join("htpasswd");
            fs::write(&f, format!("{line}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: interop\n    path: {}\n",
                f.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        fs::write(&cfg, config).unwrap();
        let log = dir.path().join("log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(dir.path().join("log.err")).unwrap())
            .spawn()
            .expect("start docker-registry");
        wait_listening(port, "docker-registry", &dir.path().join("log.err"));
        Registry { child, port, dir }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the tiny registry misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    None,
    /// Layer blobs: send the full Content-Length, half the bytes, then close.
    Truncate,
    /// Layer blobs: one byte flipped.
    Corrupt,
    /// Layer blobs: the full Content-Length, half the bytes, then nothing
    /// for a minute (a pull that hangs mid-blob, to be killed).
    Stall,
}

/// A read-only registry of our own serving one OCI layout (GET manifests
/// and blobs), optionally behind the Bearer token flow, optionally faulty.
pub struct TinyRegistry {
    pub port: u16,
    pub token_requests: Arc<AtomicUsize>,
}

pub struct TinyConfig {
    pub layout: PathBuf,
    /// (user, password) the token endpoint wants; None: no auth at all.
    pub bearer: Option<(String, String)>,
    pub fault: Fault,
}

impl TinyRegistry {
    pub fn start(cfg: TinyConfig) -> TinyRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let token_requests = Arc::new(AtomicUsize::new(0));
        let counter = token_requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let _ = serve_one(conn, &cfg, port, &counter);
            }
        });
        TinyRegistry {
            port,
            token_requests,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

const TOKEN: &str = "interop-token-1";

fn serve_one(
    mut conn: TcpStream,
    cfg: &TinyConfig,
    port: u16,
    tokens: &AtomicUsize,
) -> std::io::Result<()> {
    use base64_free::encode_basic;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let respond = |conn: &mut TcpStream,
                   status: &str,
                   extra: &[(&str, String)],
                   body: &[u8]|
     -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes())?;
        if method != "HEAD" {
            conn.write_all(body)?;
        }
        conn.flush()
    };
    if path == "/token" {
        tokens.fetch_add(1, Ordering::SeqCst);
        let (u, p) = cfg
            .bearer
            .as_ref()
            .expect("token endpoint only with bearer");
        if headers.get("authorization") == Some(&encode_basic(u, p)) {
            return respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                format!("{{\"token\":\"{TOKEN}\"}}").as_bytes(),
            );
        }
        return respond(
            &mut conn,
            "401 Unauthorized",
            &[],
            b"{\"details\":\"bad credentials\"}",
        );
    }
    if cfg.bearer.is_some()
        && headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}"))
    {
        let challenge = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"tiny\",scope=\"repository:tiny/app:pull\"");
        return respond(
            &mut conn,
            "401 Unauthorized",
            &[("WWW-Authenticate", challenge)],
            b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
        );
    }
    if path == "/v2/" {
        return respond(&mut conn, "200 OK", &[], b"{}");
    }
    if let Some(rest) = path.strip_prefix("/v2/") {
        if let Some((_, reference)) = rest.split_once("/manifests/") {
            let index: serde_json::Value =
                serde_json::from_slice(&fs::read(cfg.layout.join("index.json"))?).unwrap();
            let m = &index["manifests"][0];
            let digest = m["digest"].as_str().unwrap().to_string();
            // By tag: the layout's first entry; by digest: any blob of it.
            let digest = if reference == "latest" {
                digest
            } else {
                reference.to_string()
            };
            let Ok(body) = fs::read(
                cfg.layout
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:")),
            ) else {
                return respond(
                    &mut conn,
                    "404 Not Found",
                    &[],
                    b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}",
                );
            };
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let mt = v["mediaType"]
                .as_str()
                .or(m["mediaType"].as_str())
                .unwrap()
                .to_string();
            return respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", mt), ("Docker-Content-Digest", digest)],
                &body,
            );
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            let Ok(mut body) = fs::read(
                cfg.layout
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:")),
            ) else {
                return respond(&mut conn, "404 Not Found", &[], b"{}");
            };
            let is_layer = body.len() > 4096;
            match cfg.fault {
                Fault::Corrupt if is_layer => {
                    let mid = body.len() / 2;
                    body[mid] ^= 0xff;
                }
                Fault::Truncate if is_layer => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    conn.write_all(head.as_bytes())?;
                    conn.write_all(&body[..body.len() / 2])?;
                    conn.flush()?;
                    // The registry "goes away": the connection is cut mid-body.
                    return conn.shutdown(std::net::Shutdown::Both);
                }
                Fault::Stall if is_layer => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    conn.write_all(head.as_bytes())?;
                    conn.write_all(&body[..body.len() / 2])?;
                    conn.flush()?;
                    std::thread::sleep(std::time::Duration::from_secs(60));
                    return conn.shutdown(std::net::Shutdown::Both);
                }
                _ => {}
            }
            return respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/octet-stream".into())],
                &body,
            );
        }
    }
    let _ = reader.read(&mut [0u8; 0]);
    respond(&mut conn, "404 Not Found", &[], b"{}")
}

/// Base64 for the test's own server (the engine's is what is tested).
mod base64_free {
    pub fn encode_basic(user: &str, pass: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let input = format!("{user}:{pass}").into_bytes();
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("Basic {out}")
    }
}
