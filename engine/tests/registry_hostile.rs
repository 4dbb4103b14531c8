//! Pulls from a hostile registry: a small HTTP server on 127.0.0.1 that
//! sends more than it announced, drips bytes, never answers, sends a
//! malformed auth challenge, or counts how many blob downloads we run at
//! once. Each pull must fail quickly with an error naming what was wrong,
//! and leave nothing half-written in the store.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use engine::oci::registry::{self, Limits, PullOptions};
use engine::progress::NoProgress;
use engine::{Digest, Store};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What the server answers on one path.
#[derive(Clone)]
enum Reply {
    Ok {
        content_type: String,
        body: Vec<u8>,
    },
    /// `total` zero bytes, announced with this Content-Length (or none:
    /// the body ends when the connection closes).
    Flood {
        announce: Option<u64>,
        total: u64,
    },
    /// The body (with its true Content-Length), one byte every `gap`.
    Drip {
        body: Vec<u8>,
        gap: Duration,
    },
    /// Accept the request, never answer.
    Silent,
    /// 401 with this `WWW-Authenticate` (`{port}`: the server's own port).
    Challenge(String),
}

#[derive(Default)]
struct Stats {
    blobs_now: AtomicUsize,
    blobs_most: AtomicUsize,
    /// Body bytes the server managed to write.
    sent: AtomicU64,
    token_requests: AtomicUsize,
}

struct Server {
    port: u16,
    stats: Arc<Stats>,
}

impl Server {
    /// Serve `routes` (by path, query ignored); blob answers wait `delay`
    /// first, so that concurrent downloads overlap and can be counted.
    fn start(routes: HashMap<String, Reply>, delay: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Stats::default());
        let routes = Arc::new(routes);
        let s = stats.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (routes, stats) = (routes.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &routes, &stats, delay, port);
                });
            }
        });
        Server { port, stats }
    }

    fn reference(&self, tag: &str) -> String {
        format!("127.0.0.1:{}/test/app:{tag}", self.port)
    }
}

fn serve(
    mut conn: TcpStream,
    routes: &HashMap<String, Reply>,
    stats: &Stats,
    delay: Duration,
    port: u16,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim_end().is_empty() {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    if path == "/token" {
        stats.token_requests.fetch_add(1, Ordering::SeqCst);
        let body = br#"{"token":"t"}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes())?;
        return conn.write_all(body);
    }
    let is_blob = path.contains("/blobs/");
    if is_blob {
        let now = stats.blobs_now.fetch_add(1, Ordering::SeqCst) + 1;
        stats.blobs_most.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(delay);
    }
    let result = answer(&mut conn, routes.get(path), stats, port);
    if is_blob {
        stats.blobs_now.fetch_sub(1, Ordering::SeqCst);
    }
    result
}

fn answer(
    conn: &mut TcpStream,
    reply: Option<&Reply>,
    stats: &Stats,
    port: u16,
) -> std::io::Result<()> {
    let head = |status: &str, extra: &str, len: Option<u64>| {
        let len = len
            .map(|l| format!("Content-Length: {l}\r\n"))
            .unwrap_or_default();
        format!("HTTP/1.1 {status}\r\n{len}{extra}Connection: close\r\n\r\n")
    };
    match reply {
        None => conn.write_all(head("404 Not Found", "", Some(0)).as_bytes()),
        Some(Reply::Ok { content_type, body }) => {
            let digest = Digest::sha256_of(body);
            let extra =
                format!("Content-Type: {content_type}\r\nDocker-Content-Digest: {digest}\r\n");
            conn.write_all(head("200 OK", &extra, Some(body.len() as u64)).as_bytes())?;
            conn.write_all(body)?;
            stats.sent.fetch_add(body.len() as u64, Ordering::SeqCst);
            Ok(())
        }
        Some(Reply::Flood { announce, total }) => {
            conn.write_all(head("200 OK", "", *announce).as_bytes())?;
            let chunk = vec![0u8; 64 << 10];
            let mut left = *total;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                conn.write_all(&chunk[..n])?;
                stats.sent.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
            Ok(())
        }
        Some(Reply::Drip { body, gap }) => {
            conn.write_all(head("200 OK", "", Some(body.len() as u64)).as_bytes())?;
            for b in body {
                conn.write_all(&[*b])?;
                stats.sent.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(*gap);
            }
            Ok(())
        }
        Some(Reply::Silent) => {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        Some(Reply::Challenge(c)) => {
            let c = c.replace("{port}", &port.to_string());
            let extra = format!("WWW-Authenticate: {c}\r\n");
            conn.write_all(head("401 Unauthorized", &extra, Some(0)).as_bytes())
        }
    }
}

/// An image of `layers` one-file layers (plain tar), as routes under
/// /v2/test/app; the manifest is served at the tag `latest`.
struct TestImage {
    routes: HashMap<String, Reply>,
    manifest: Vec<u8>,
    layer_paths: Vec<String>,
}

fn blob_path(d: &Digest) -> String {
    format!("/v2/test/app/blobs/{d}")
}

fn ok(content_type: &str, body: &[u8]) -> Reply {
    Reply::Ok {
        content_type: content_type.into(),
        body: body.to_vec(),
    }
}

fn test_image(layers: usize) -> TestImage {
    let mut routes = HashMap::new();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_paths = Vec::new();
    for i in 0..layers {
        let mut b = tar::Builder::new(Vec::new());
        let data = format!("layer {i}\n");
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("f{i}"), data.as_bytes())
            .unwrap();
        let tar = b.into_inner().unwrap();
        let d = Digest::sha256_of(&tar);
        diff_ids.push(d.to_string());
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": d.to_string(), "size": tar.len()}));
        layer_paths.push(blob_path(&d));
        routes.insert(blob_path(&d), ok("application/octet-stream", &tar));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
    .unwrap();
    let cd = Digest::sha256_of(&config);
    routes.insert(blob_path(&cd), ok("application/octet-stream", &config));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd.to_string(), "size": config.len()},
        "layers": descs}))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    routes.insert(manifest_path("latest"), ok(OCI_MANIFEST, &manifest));
    routes.insert(manifest_path(&md.to_string()), ok(OCI_MANIFEST, &manifest));
    TestImage {
        routes,
        manifest,
        layer_paths,
    }
}

fn manifest_path(reference: &str) -> String {
    format!("/v2/test/app/manifests/{reference}")
}

fn quick_limits() -> Limits {
    Limits {
        window: Duration::from_secs(1),
        min_bytes: 1024,
        parallel_blobs: 3,
    }
}

/// Pull on a thread; give up (failing the test) if it has not ended
/// within `patience`: a pull that hangs is the bug.
fn pull(
    store_root: &Path,
    reference: &str,
    limits: Limits,
    patience: Duration,
) -> (Result<Digest, String>, Duration) {
    let (tx, rx) = mpsc::channel();
    let (root, name) = (store_root.to_path_buf(), reference.to_string());
    let start = Instant::now();
    std::thread::spawn(move || {
        let store = Store::open(&root).unwrap();
        let opts = PullOptions {
            limits,
            ..Default::default()
        };
        let r = registry::pull(&store, &name, &opts, &NoProgress).map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    match rx.recv_timeout(patience) {
        Ok(r) => (r, start.elapsed()),
        Err(_) => panic!("the pull of {reference} was still running after {patience:?}"),
    }
}

/// Nothing left in the store: no blob, no layer, no temp file.
fn assert_nothing_kept(root: &Path) {
    for sub in ["blobs/blake3", "layers", "images"] {
        let n = std::fs::read_dir(root.join(sub))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(n, 0, "{sub} is not empty after a refused pull");
    }
    let mut left = Vec::new();
    for session in std::fs::read_dir(root.join("tmp")).unwrap() {
        let session = session.unwrap().path();
        for e in std::fs::read_dir(&session).unwrap() {
            left.push(e.unwrap().path());
        }
    }
    assert!(left.is_empty(), "temp files left: {left:?}");
}

#[test]
fn a_blob_longer_than_its_descriptor_is_cut_at_the_descriptor_size() {
    // The layer's descriptor says 118 bytes; the server sends 256 MiB,
    // first without a Content-Length (the body ends when it closes), then
    // announcing all of it.
    for announce in [None, Some(256u64 << 20)] {
        let mut img = test_image(1);
        let bogus = vec![7u8; 118];
        let d = Digest::sha256_of(&bogus);
        let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
        manifest["layers"][0]["digest"] = d.to_string().into();
        manifest["layers"][0]["size"] = 118.into();
        let manifest = serde_json::to_vec(&manifest).unwrap();
        img.routes
            .insert(manifest_path("latest"), ok(OCI_MANIFEST, &manifest));
        img.routes.insert(
            blob_path(&d),
            Reply::Flood {
                announce,
                total: 256 << 20,
            },
        );
        let server = Server::start(img.routes, Duration::ZERO);
        let store = tempfile::tempdir().unwrap();
        let (r, took) = pull(
            store.path(),
            &server.reference("latest"),
            quick_limits(),
            Duration::from_secs(60),
        );
        let err = r.expect_err("a 256 MiB blob for a 118-byte descriptor was accepted");
        assert!(
            err.contains("more than the 118 bytes the descriptor says"),
            "unclear error (announce {announce:?}): {err}"
        );
        // The server could only push what the socket buffers hold before
        // we hung up; nowhere near the 256 MiB.
        std::thread::sleep(Duration::from_millis(200));
        let sent = server.stats.sent.load(Ordering::SeqCst);
        assert!(
            sent < 32 << 20,
            "the client read {sent} bytes of a 118-byte blob"
        );
        assert_nothing_kept(store.path());
        eprintln!(
            "announce {announce:?}: refused in {took:?} after the server sent {sent} bytes: {err}"
        );
    }
}

#[test]
fn a_manifest_larger_than_the_limit_is_refused_not_truncated() {
    let mut routes = HashMap::new();
    routes.insert(
        manifest_path("latest"),
        Reply::Flood {
            announce: None,
            total: 64 << 20,
        },
    );
    let server = Server::start(routes, Duration::ZERO);
    let store = tempfile::tempdir().unwrap();
    let (r, _) = pull(
        store.path(),
        &server.reference("latest"),
        quick_limits(),
        Duration::from_secs(60),
    );
    let err = r.expect_err("a 64 MiB manifest was accepted");
    assert!(
        err.contains("larger than the 4194304 bytes allowed"),
        "unclear error: {err}"
    );
    assert_nothing_kept(store.path());
}

#[test]
fn a_dripping_or_silent_registry_times_out_by_the_deadline() {
    // One byte every 100 ms is 10 B/s; the floor here is 1 KiB per second.
    let mut img = test_image(1);
    let layer = img.layer_paths[0].clone();
    let Reply::Ok { body, .. } = img.routes[&layer].clone() else {
        unreachable!()
    };
    img.routes.insert(
        layer,
        Reply::Drip {
            body,
            gap: Duration::from_millis(100),
        },
    );
    let server = Server::start(img.routes, Duration::ZERO);
    let store = tempfile::tempdir().unwrap();
    let (r, took) = pull(
        store.path(),
        &server.reference("latest"),
        quick_limits(),
        Duration::from_secs(20),
    );
    let err = r.expect_err("a dripping blob was accepted");
    assert!(err.contains("stalled"), "unclear error: {err}");
    assert!(took < Duration::from_secs(5), "gave up only after {took:?}");
    assert_nothing_kept(store.path());
    eprintln!("drip: gave up after {took:?}: {err}");

    // A registry that accepts the connection and never answers.
    let mut routes = HashMap::new();
    routes.insert(manifest_path("latest"), Reply::Silent);
    let server = Server::start(routes, Duration::ZERO);
    let (r, took) = pull(
        store.path(),
        &server.reference("latest"),
        quick_limits(),
        Duration::from_secs(20),
    );
    let err = r.expect_err("a silent registry was accepted");
    assert!(
        took < Duration::from_secs(6),
        "gave up only after {took:?}: {err}"
    );
    eprintln!("silent: gave up after {took:?}: {err}");
}

#[test]
fn a_realm_with_an_unterminated_quote_is_refused() {
    let mut img = test_image(1);
    // The realm names the token endpoint of the very server that sends
    // it, with its closing quote missing.
    img.routes.insert(
        manifest_path("latest"),
        Reply::Challenge(r#"Bearer realm="http://127.0.0.1:{port}/token"#.into()),
    );
    let server = Server::start(img.routes, Duration::ZERO);
    let store = tempfile::tempdir().unwrap();
    let (r, _) = pull(
        store.path(),
        &server.reference("latest"),
        quick_limits(),
        Duration::from_secs(20),
    );
    let err = r.expect_err("a malformed challenge was accepted");
    assert!(err.contains("no closing quote"), "unclear error: {err}");
    assert_eq!(
        server.stats.token_requests.load(Ordering::SeqCst),
        0,
        "a token was asked for from a realm cut out of a malformed challenge"
    );
}

#[test]
fn a_pull_downloads_a_bounded_number_of_blobs_at_once() {
    let img = test_image(24);
    let server = Server::start(img.routes, Duration::from_millis(150));
    let store = tempfile::tempdir().unwrap();
    let (r, took) = pull(
        store.path(),
        &server.reference("latest"),
        quick_limits(),
        Duration::from_secs(120),
    );
    let digest = r.expect("the pull failed");
    let most = server.stats.blobs_most.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&most),
        "{most} blob downloads at once, the limit is 3"
    );
    let s = Store::open(store.path()).unwrap();
    let image = s.image_by_digest(&digest).unwrap();
    assert_eq!(image.manifest.layers.len(), 24);
    eprintln!("24 layers, at most {most} at once, in {took:?}");
}

#[test]
fn a_nested_index_resolves_to_its_platform_manifest() {
    let mut img = test_image(2);
    let entry = |mt: &str, body: &[u8], platform: Option<&str>| {
        let mut e = serde_json::json!({"mediaType": mt,
            "digest": Digest::sha256_of(body).to_string(), "size": body.len()});
        if let Some(p) = platform {
            let (os, arch) = p.split_once('/').unwrap();
            e["platform"] = serde_json::json!({"os": os, "architecture": arch});
        }
        e
    };
    let index = |entries: Vec<serde_json::Value>| {
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": entries}),
        )
        .unwrap()
    };
    let missing_arm = "sha256:".to_string() + &"ab".repeat(32);
    // inner: arm64 (absent) and amd64 (the image); outer: an index entry
    // for linux/amd64 pointing at inner; top: outer, without a platform.
    let inner = index(vec![
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": missing_arm, "size": 10,
            "platform": {"os": "linux", "architecture": "arm64"}}),
        entry(OCI_MANIFEST, &img.manifest, Some("linux/amd64")),
    ]);
    let outer = index(vec![entry(OCI_INDEX, &inner, Some("linux/amd64"))]);
    let top = index(vec![entry(OCI_INDEX, &outer, None)]);
    for (name, body) in [("inner", &inner), ("outer", &outer)] {
        let d = Digest::sha256_of(body);
        img.routes
            .insert(manifest_path(&d.to_string()), ok(OCI_INDEX, body));
        eprintln!("{name}: {d}");
    }
    img.routes
        .insert(manifest_path("latest"), ok(OCI_INDEX, &top));
    img.routes
        .insert(manifest_path("outer"), ok(OCI_INDEX, &outer));
    // A chain of six indexes, each the only entry of the one above.
    let mut chain = inner.clone();
    for _ in 0..6 {
        let up = index(vec![entry(OCI_INDEX, &chain, Some("linux/amd64"))]);
        img.routes.insert(
            manifest_path(&Digest::sha256_of(&up).to_string()),
            ok(OCI_INDEX, &up),
        );
        chain = up;
    }
    img.routes
        .insert(manifest_path("deep"), ok(OCI_INDEX, &chain));
    let server = Server::start(img.routes, Duration::ZERO);
    let store = tempfile::tempdir().unwrap();
    for tag in ["latest", "outer"] {
        let (r, _) = pull(
            store.path(),
            &server.reference(tag),
            quick_limits(),
            Duration::from_secs(60),
        );
        let digest = r.unwrap_or_else(|e| panic!("pull of {tag} through nested indexes: {e}"));
        let s = Store::open(store.path()).unwrap();
        assert_eq!(s.image_by_digest(&digest).unwrap().manifest.layers.len(), 2);
    }
    let (r, _) = pull(
        store.path(),
        &server.reference("deep"),
        quick_limits(),
        Duration::from_secs(60),
    );
    let err = r.expect_err("an index chain 7 deep was followed");
    assert!(
        err.contains("nested more than 4 deep"),
        "unclear error: {err}"
    );

    // A platform none of them has: the error names the one there is
    // (once, though an index and a manifest both claim it).
    let s390x = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let (root, reference) = (s390x.path().to_path_buf(), server.reference("latest"));
    std::thread::spawn(move || {
        let store = Store::open(&root).unwrap();
        let opts = PullOptions {
            platform: Some("linux/s390x".parse().unwrap()),
            limits: quick_limits(),
            ..Default::default()
        };
        let _ = tx.send(
            registry::pull(&store, &reference, &opts, &NoProgress).map_err(|e| e.to_string()),
        );
    });
    let err = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .expect_err("an s390x image was found");
    assert!(
        err.contains("no image for platform linux/s390x in the index (it has: linux/amd64;"),
        "unclear error: {err}"
    );
}
