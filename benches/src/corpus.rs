//! The data the benches unpack and snapshot.
//!
//! * [`synthetic`]: a deterministic distro-shaped image of three layers
//!   (≈50 files per MB: many small files, a few large ones, symlinks, hard
//!   links; the third layer deletes files with `.wh.` entries and replaces
//!   a directory with an opaque one). Bytes are text-like so zstd gets a
//!   ratio near a real distro's (≈2×).
//! * [`debian`]: the realistic image of issue 2's Speed section:
//!   `debootstrap --variant=minbase bookworm`, then a layer adding the
//!   host's /usr/include, then a layer deleting /usr/share/doc and
//!   /usr/share/locale.
//!
//! Each image is a directory of `layerN.tar` and `layerN.tar.zst` (and
//! `layerN.tar.gz` once a peer asks for gzip), made once and reused while
//! its `complete` marker exists.

use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{run_quiet, run_stdout};
use crate::{io_err, BenchError, Result};

/// A layered image on disk, bottom layer first.
#[derive(Debug, Clone)]
pub struct LayeredImage {
    pub name: String,
    pub dir: PathBuf,
    pub layers: usize,
}

impl LayeredImage {
    pub fn tar(&self, i: usize) -> PathBuf {
        self.dir.join(format!("layer{}.tar", i + 1))
    }
    pub fn zst(&self, i: usize) -> PathBuf {
        self.dir.join(format!("layer{}.tar.zst", i + 1))
    }
    pub fn gz(&self, i: usize) -> PathBuf {
        self.dir.join(format!("layer{}.tar.gz", i + 1))
    }
    pub fn zst_paths(&self) -> Vec<PathBuf> {
        (0..self.layers).map(|i| self.zst(i)).collect()
    }
    pub fn tar_paths(&self) -> Vec<PathBuf> {
        (0..self.layers).map(|i| self.tar(i)).collect()
    }

    /// gzip copies for peers without zstd support; made on first use.
    pub fn ensure_gzip(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for i in 0..self.layers {
            let gz = self.gz(i);
            if !gz.exists() {
                let tmp = gz.with_extension("gz.tmp");
                let f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
                let mut cmd = Command::new("gzip");
                cmd.args(["-6", "-n", "-c"]).arg(self.tar(i)).stdout(f);
                let st = cmd.status().map_err(io_err("run gzip on", &self.tar(i)))?;
                if !st.success() {
                    return Err(BenchError::Missing(format!(
                        "gzip of {} failed: {st}",
                        self.tar(i).display()
                    )));
                }
                std::fs::rename(&tmp, &gz).map_err(io_err("rename", &gz))?;
            }
            out.push(gz);
        }
        Ok(out)
    }

    /// Total uncompressed bytes and entry count, from `stats`.
    pub fn stats(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(self.dir.join("stats")).unwrap_or_default();
        let mut it = s.split_whitespace().map(|v| v.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    pub fn describe(&self) -> String {
        let (bytes, entries) = self.stats();
        let zst: u64 = self
            .zst_paths()
            .iter()
            .filter_map(|p| p.metadata().ok())
            .map(|m| m.len())
            .sum();
        format!(
            "{}: {} layers, {:.0} MB uncompressed ({:.0} MB zstd -3), {} tar entries",
            self.name,
            self.layers,
            bytes as f64 / 1e6,
            zst as f64 / 1e6,
            entries
        )
    }
}

/// xorshift64*: deterministic and fast; nothing here needs better.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Text-like bytes: 16 symbols, skewed, about 2× under zstd -3.
fn fill(rng: &mut Rng, buf: &mut [u8]) {
    const TABLE: &[u8; 16] = b"eettaoinshr \n_/x";
    for chunk in buf.chunks_mut(16) {
        let mut r = rng.next_u64();
        for b in chunk.iter_mut() {
            *b = TABLE[(r & 15) as usize];
            r >>= 4;
        }
    }
}

fn write_file(path: &Path, size: u64, rng: &mut Rng, mode: u32) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(io_err("create", path))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        fill(rng, &mut buf[..n]);
        f.write_all(&buf[..n]).map_err(io_err("write", path))?;
        left -= n as u64;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("chmod", path))
}

/// A distro-shaped tree of `files` regular files totalling ≈`bytes` under
/// `root/sub`: 20 entries a directory, sizes log-uniform 64 B–16 KiB, 1 % of
/// the files large enough to carry the rest of the bytes, every 20th entry
/// a symlink, every 100th a hard link, every 7th executable. Returns the
/// regular files' paths relative to `root`.
pub fn generate_tree(
    root: &Path,
    sub: &str,
    files: usize,
    bytes: u64,
    seed: u64,
) -> Result<Vec<PathBuf>> {
    let mut rng = Rng::new(seed);
    let mut sizes: Vec<u64> = (0..files)
        .map(|_| {
            let exp = 6.0 + (rng.below(1000) as f64 / 1000.0) * 8.0;
            2f64.powf(exp) as u64
        })
        .collect();
    let small: u64 = sizes.iter().sum();
    let n_large = (files / 100).max(1);
    if bytes > small {
        let each = (bytes - small) / n_large as u64;
        for i in 0..n_large {
            sizes[i * files / n_large] += each;
        }
    }
    let mut out = Vec::with_capacity(files);
    let mut prev: Option<PathBuf> = None;
    for (i, size) in sizes.into_iter().enumerate() {
        let dir = PathBuf::from(sub)
            .join(format!("d{:03}", i / 400))
            .join(format!("s{:02}", (i / 20) % 20));
        let abs_dir = root.join(&dir);
        if i % 20 == 0 {
            std::fs::create_dir_all(&abs_dir).map_err(io_err("create directory", &abs_dir))?;
        }
        let rel = dir.join(format!("f{i:06}{}", if i % 7 == 0 { "" } else { ".so" }));
        let abs = root.join(&rel);
        match (i % 20, i % 100, &prev) {
            (19, _, Some(p)) => {
                let name = p.file_name().expect("a file name");
                symlink(name, &abs).map_err(io_err("symlink", &abs))?;
            }
            (_, 99, Some(p)) => {
                std::fs::hard_link(root.join(p), &abs).map_err(io_err("hard link", &abs))?;
            }
            _ => {
                let mode = if i % 7 == 0 { 0o755 } else { 0o644 };
                write_file(&abs, size, &mut rng, mode)?;
                out.push(rel.clone());
                prev = Some(rel);
            }
        }
        if i % 20 == 0 {
            // a new directory: the next link must not point across it
            prev = out
                .last()
                .filter(|p| p.parent() == Some(dir.as_path()))
                .cloned();
        }
    }
    Ok(out)
}

fn tar_layer(tree: &Path, tar: &Path) -> Result<()> {
    run_quiet(
        Command::new("tar")
            .args([
                "--sort=name",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-C",
            ])
            .arg(tree)
            .arg("-cf")
            .arg(tar)
            .arg("."),
    )?;
    run_quiet(
        Command::new("zstd")
            .args(["-3", "-T0", "-q", "-f"])
            .arg(tar)
            .arg("-o")
            .arg(tar.with_extension("tar.zst")),
    )
}

fn tar_entries(tar: &Path) -> Result<u64> {
    Ok(run_stdout(Command::new("tar").arg("-tf").arg(tar))?
        .lines()
        .count() as u64)
}

fn finish(dir: &Path, name: &str, layers: usize) -> Result<LayeredImage> {
    let img = LayeredImage {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        layers,
    };
    let mut bytes = 0;
    let mut entries = 0;
    for t in img.tar_paths() {
        bytes += t.metadata().map_err(io_err("stat", &t))?.len();
        entries += tar_entries(&t)?;
    }
    std::fs::write(dir.join("stats"), format!("{bytes} {entries}\n"))
        .map_err(io_err("write", dir))?;
    std::fs::write(dir.join("complete"), "").map_err(io_err("write", dir))?;
    Ok(img)
}

fn cached(dir: &Path, name: &str, layers: usize) -> Option<LayeredImage> {
    dir.join("complete").exists().then(|| LayeredImage {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        layers,
    })
}

/// The synthetic three-layer image of ≈`mb` MB and ≈50 files per MB.
pub fn synthetic(cache: &Path, mb: u64) -> Result<LayeredImage> {
    let name = format!("synthetic-{mb}MB");
    let dir = cache.join("corpus").join(&name);
    if let Some(img) = cached(&dir, &name, 3) {
        return Ok(img);
    }
    crate::tools::clean_dir(&dir)?;
    std::fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
    let files = (mb as usize * 50).max(100);
    let bytes = mb * 1_000_000;
    let gen = dir.join("gen");
    let (t1, t2, t3) = (gen.join("1"), gen.join("2"), gen.join("3"));

    let base = generate_tree(&t1, "usr/lib", files * 60 / 100, bytes * 60 / 100, 1)?;

    generate_tree(&t2, "usr/share", files * 35 / 100, bytes * 35 / 100, 2)?;
    let mut rng = Rng::new(22);
    for p in base.iter().step_by(100) {
        let dst = t2.join(p);
        std::fs::create_dir_all(dst.parent().expect("nested"))
            .map_err(io_err("create directory", &dst))?;
        write_file(&dst, 4096, &mut rng, 0o644)?;
    }

    generate_tree(&t3, "opt/app", files * 5 / 100, bytes * 5 / 100, 3)?;
    for p in base.iter().skip(51).step_by(50) {
        let wh = t3.join(p.parent().expect("nested")).join(format!(
            ".wh.{}",
            p.file_name().expect("name").to_string_lossy()
        ));
        std::fs::create_dir_all(wh.parent().expect("nested"))
            .map_err(io_err("create directory", &wh))?;
        std::fs::write(&wh, b"").map_err(io_err("write", &wh))?;
    }
    let opaque = t3.join(base[0].parent().expect("nested"));
    std::fs::create_dir_all(&opaque).map_err(io_err("create directory", &opaque))?;
    std::fs::write(opaque.join(".wh..wh..opq"), b"").map_err(io_err("write", &opaque))?;
    write_file(&opaque.join("replaced"), 1000, &mut rng, 0o644)?;

    for (i, t) in [&t1, &t2, &t3].into_iter().enumerate() {
        tar_layer(t, &dir.join(format!("layer{}.tar", i + 1)))?;
    }
    crate::tools::clean_dir(&gen)?;
    finish(&dir, &name, 3)
}

/// A single tree of ≈`mb` MB / `files` files (what a RUN step leaves in an
/// upperdir), generated into `dest`.
pub fn upper_tree(dest: &Path, mb: u64, files: usize) -> Result<()> {
    generate_tree(dest, "usr/local", files, mb * 1_000_000, 7).map(|_| ())
}

/// The Debian mirror apt uses here (first `…/debian` URI in the sources).
pub fn debian_mirror() -> Option<String> {
    let mut texts = vec![std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in rd.flatten() {
            texts.push(std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    texts
        .iter()
        .flat_map(|t| t.split_whitespace())
        .find(|w| w.starts_with("http") && w.trim_end_matches('/').ends_with("/debian"))
        .map(|s| s.to_string())
}

/// The debootstrap minbase tree (cached); also the base of the build bench.
pub fn debian_rootfs(cache: &Path) -> Result<PathBuf> {
    let root = cache.join("debian-minbase");
    let done = cache.join("debian-minbase.complete");
    if done.exists() {
        return Ok(root);
    }
    if crate::tools::which("debootstrap").is_none() {
        return Err(BenchError::Missing(
            "debootstrap is not installed (benches/scripts/install-peers.sh)".into(),
        ));
    }
    let mirror = debian_mirror().ok_or_else(|| {
        BenchError::Missing("no Debian mirror found in /etc/apt/sources.list*".into())
    })?;
    crate::tools::clean_dir(&root)?;
    run_quiet(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg(&mirror),
    )?;
    std::fs::write(&done, mirror).map_err(io_err("write", &done))?;
    Ok(root)
}

/// issue 2's realistic image: debootstrap minbase + /usr/include + deletions.
pub fn debian(cache: &Path) -> Result<LayeredImage> {
    let name = "debian-minbase+include+whiteouts".to_string();
    let dir = cache.join("corpus").join("debian");
    if let Some(img) = cached(&dir, &name, 3) {
        return Ok(img);
    }
    let rootfs = debian_rootfs(cache)?;
    crate::tools::clean_dir(&dir)?;
    std::fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
    tar_layer(&rootfs, &dir.join("layer1.tar"))?;
    let gen = dir.join("gen");
    let l2 = gen.join("2");
    std::fs::create_dir_all(l2.join("usr")).map_err(io_err("create directory", &l2))?;
    run_quiet(
        Command::new("cp")
            .arg("-a")
            .arg("/usr/include")
            .arg(l2.join("usr")),
    )?;
    tar_layer(&l2, &dir.join("layer2.tar"))?;
    let l3 = gen.join("3/usr/share");
    std::fs::create_dir_all(&l3).map_err(io_err("create directory", &l3))?;
    for w in [".wh.doc", ".wh.locale"] {
        std::fs::write(l3.join(w), b"").map_err(io_err("write", &l3))?;
    }
    tar_layer(&gen.join("3"), &dir.join("layer3.tar"))?;
    crate::tools::clean_dir(&gen)?;
    finish(&dir, &name, 3)
}

/// Layers for the startup-growth part: `count` small distinct layers (20
/// files each), as `(tar, zstd blob, unpacked dir)`, made once.
pub fn small_layers(cache: &Path, count: usize) -> Result<Vec<(PathBuf, PathBuf, PathBuf)>> {
    let base = cache.join("stack");
    let mut out = Vec::new();
    for i in 0..count {
        let dir = base.join(format!("l{i:02}"));
        let tar = base.join(format!("l{i:02}.tar"));
        let zst = base.join(format!("l{i:02}.tar.zst"));
        let done = base.join(format!("l{i:02}.complete"));
        if !done.exists() {
            crate::tools::clean_dir(&dir)?;
            generate_tree(&dir, &format!("opt/l{i:02}"), 20, 40_000, 1000 + i as u64)?;
            tar_layer(&dir, &tar)?;
            std::fs::write(&done, "").map_err(io_err("write", &done))?;
        }
        out.push((tar, zst, dir));
    }
    Ok(out)
}

/// zstd-compress a tar next to itself (`X.tar` → `X.tar.zst`) unless done.
pub fn zstd_of(tar: &Path) -> Result<PathBuf> {
    let zst = tar.with_extension("tar.zst");
    if !zst.exists() {
        run_quiet(
            Command::new("zstd")
                .args(["-3", "-T0", "-q", "-f"])
                .arg(tar)
                .arg("-o")
                .arg(&zst),
        )?;
    }
    Ok(zst)
}
