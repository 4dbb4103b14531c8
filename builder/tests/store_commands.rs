//! `rbuild history` and `rbuild system df` on a real build.

mod common;

use common::*;

#[test]
fn history_lists_each_step_newest_first_with_its_layer() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nENV GREETING=hi\nRUN echo hello > /hello && dd if=/dev/zero of=/blob bs=1k count=300\nCMD [\"cat\", \"/hello\"]\n",
    )]);
    build_ok("hist:1", ctx.path(), &["--no-cache"]);
    let o = rbuild(&["history", "hist:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{out}");
    assert!(lines[1].contains("CMD"), "newest first:\n{out}");
    assert!(lines[2].contains("RUN"), "{out}");
    assert!(lines[3].contains("ENV GREETING=hi"), "{out}");
    // The RUN layer has a size; metadata steps made none.
    assert!(!lines[2].contains(" 0B"), "{out}");
    assert!(
        lines[1].contains(" 0B") && lines[3].contains(" 0B"),
        "{out}"
    );
    // Only the newest row names the image.
    assert!(
        !lines[1].starts_with("<missing>") && lines[2].starts_with("<missing>"),
        "{out}"
    );
    let q = stdout(&rbuild(&["history", "-q", "hist:1"]));
    assert_eq!(q.lines().count(), lines.len() - 1);
    let o = rbuild(&["history", "no-such-image"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-image"), "{}", stderr(&o));
}

#[test]
fn system_df_counts_images_and_containers() {
    let o = rbuild(&["system", "df"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let images = row("Images");
    assert!(images[1].parse::<usize>().unwrap() >= 1, "{out}");
    assert!(images[3].ends_with('B') && images[3] != "0B", "{out}");
    assert!(row("Containers")[1].parse::<usize>().is_ok(), "{out}");
    assert_eq!(row("Build")[0], "Build");
}

#[test]
fn build_check_reports_without_building() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nCMD echo hi\nRUN touch /never\n",
    )]);
    let o = rbuild(&[
        "build",
        "--check",
        "-t",
        "checked:1",
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("Containerfile:2: JSONArgsRecommended"),
        "{}",
        stdout(&o)
    );
    assert!(
        !rbuild(&["inspect", "checked:1"]).status.success(),
        "--check built the image"
    );
    let ctx = context(&[("Containerfile", "FROM busybox\nRUNN x\n")]);
    let o = rbuild(&["build", "--check", ctx.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("RUNN"), "{}", stderr(&o));
}

/// `rbuild images | head -1`: the reader goes away before rbuild is done.
/// Here it is gone before rbuild writes anything, so every write fails.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    std::process::Command::new(RBUILD)
        .arg("--root")
        .arg(store_root())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .output()
        .expect("run rbuild")
}

#[test]
fn listing_commands_end_quietly_when_the_reader_closes() {
    use std::os::unix::process::ExitStatusExt;
    for args in [
        &["images"][..],
        &["history", "busybox"],
        &["inspect", "busybox"],
        &["system", "df"],
    ] {
        let o = with_closed_stdout(args);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "rbuild {args:?}: {err}");
        assert_ne!(o.status.code(), Some(101), "rbuild {args:?}: {err}");
        // As docker: ended by the signal, with nothing on stderr.
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "rbuild {args:?}: {:?} {err}",
            o.status
        );
        assert_eq!(err, "", "rbuild {args:?}");
    }
}

/// `rbuild system df`'s row NAME as its columns.
fn df_row(root: &std::path::Path, name: &str) -> Vec<String> {
    let o = rbuild_in(root, &["system", "df"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    out.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} row:\n{out}"))
        .trim_start_matches(name)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// "524.3kB" as bytes.
fn df_bytes(s: &str) -> u64 {
    let at = s.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = s.split_at(at);
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => panic!("unit {u} in {s}"),
    };
    (n.parse::<f64>().unwrap() * mult) as u64
}

#[test]
fn system_df_counts_what_the_build_cache_keeps() {
    // A store of its own: the shared one sees other tests' builds.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    {
        let store = engine::Store::open(root).unwrap();
        fixtures::ensure_busybox_image(&store, "busybox").unwrap();
    }
    let cache = df_row(root, "Build Cache");
    assert_eq!(
        (cache[0].as_str(), cache[2].as_str()),
        ("0", "0B"),
        "{cache:?}"
    );
    let images_before = df_bytes(&df_row(root, "Images")[2]);
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN dd if=/dev/zero of=/blob bs=1k count=600\nENV AFTER=1\n",
    )]);
    let o = rbuild_in(
        root,
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "dfcache:1",
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Tagged: the layers are the image's, the records keep only the
    // intermediate images' manifests and configs.
    let cache = df_row(root, "Build Cache");
    assert!(cache[0].parse::<usize>().unwrap() >= 1, "{cache:?}");
    let shared = df_bytes(&cache[2]);
    assert!(shared > 0 && shared < 100_000, "{cache:?}");
    let images_tagged = df_bytes(&df_row(root, "Images")[2]);
    assert!(
        images_tagged >= images_before + 600_000,
        "{images_tagged} {images_before}"
    );
    // Untagged: the 600 kB layer is kept by the cache alone, counted there
    // (and reclaimable), no longer under Images.
    assert!(rbuild_in(root, &["rmi", "dfcache:1"]).status.success());
    let cache = df_row(root, "Build Cache");
    let only_cache = df_bytes(&cache[2]);
    assert!(only_cache >= 600_000, "{cache:?}");
    assert_eq!(cache[2], cache[3], "all reclaimable: {cache:?}");
    let images_after = df_bytes(&df_row(root, "Images")[2]);
    assert!(
        images_after < images_before + 100_000,
        "{images_after} {images_before}"
    );
}
