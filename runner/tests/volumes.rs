//! Named and anonymous volumes, `--mount` and `--tmpfs`, and `rrun
//! volume`: real containers on the busybox fixture, Docker's semantics.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::*;

fn volumes_dir() -> PathBuf {
    store_root().join("volumes")
}

fn data(name: &str) -> PathBuf {
    volumes_dir().join(name).join("_data")
}

fn volume_names() -> Vec<String> {
    let o = rrun(&["volume", "ls", "-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).lines().map(String::from).collect()
}

/// Tag `name` = busybox plus one layer staged by `stage` (in its `fs`
/// directory), with `volumes` as the image's VOLUME list.
fn image_with(name: &str, volumes: &[&str], stage: impl FnOnce(&Path)) {
    let store = engine::Store::open(store_root()).unwrap();
    let base = store.find_image("busybox").unwrap();
    let staged = store.new_temp_dir("vol-image").unwrap();
    let fs = staged.join("fs");
    std::fs::create_dir(&fs).unwrap();
    stage(&fs);
    let diff_id = engine::Digest::blake3_of(format!("volume test layer {name}").as_bytes());
    store.commit_layer_dir(&staged, &diff_id).unwrap();
    let mut config = base.config.clone();
    config.rootfs.diff_ids.push(diff_id.clone());
    for v in volumes {
        config
            .config
            .volumes
            .insert(v.to_string(), Default::default());
    }
    let mut layers = base.manifest.layers.clone();
    let mut fake = layers[0].clone();
    fake.digest = diff_id;
    layers.push(fake);
    let m = store.put_image(&config, layers).unwrap();
    store.tag(&name.parse().unwrap(), &m).unwrap();
}

#[test]
fn data_written_by_one_container_is_read_by_the_next() {
    let o = sh(&["-v", "shared1:/data"], "echo hello > /data/f");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Created on first use, with its metadata.
    assert!(volume_names().contains(&"shared1".to_string()));
    let o = sh(&["-v", "shared1:/data"], "cat /data/f");
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "hello\n"),
        "{}",
        stderr(&o)
    );
    let o = rrun(&["volume", "inspect", "shared1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["Name"], "shared1");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(
        v[0]["Mountpoint"].as_str().unwrap(),
        data("shared1").to_str().unwrap()
    );
    assert!(v[0]["CreatedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        std::fs::read_to_string(data("shared1").join("f")).unwrap(),
        "hello\n"
    );
    let o = rrun(&["volume", "inspect", "nosuchvolume"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("no such volume: nosuchvolume"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn volume_create_with_labels_and_ls_filters() {
    let o = rrun(&["volume", "create", "--label", "team=blue", "labelled1"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "labelled1\n"),
        "{}",
        stderr(&o)
    );
    let o = rrun(&["volume", "create"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let random = stdout(&o).trim().to_string();
    assert_eq!(random.len(), 64, "{random}");
    let o = rrun(&["volume", "ls", "-q", "--filter", "label=team=blue"]);
    assert_eq!(stdout(&o), "labelled1\n");
    let o = rrun(&["volume", "ls", "-q", "--filter", "name=abelled"]);
    assert_eq!(stdout(&o), "labelled1\n");
    let o = rrun(&["volume", "inspect", "labelled1"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["Labels"]["team"], "blue");
    let o = rrun(&["volume", "ls", "--filter", "colour=red"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("colour=red"), "{}", stderr(&o));
    let o = rrun(&["volume", "rm", "labelled1", &random]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!volumes_dir().join("labelled1").exists());
}

#[test]
fn an_empty_volume_is_populated_from_the_image_with_owners_and_modes() {
    image_with("vol-seed", &[], |fs| {
        let seed = fs.join("seed");
        std::fs::create_dir_all(seed.join("sub")).unwrap();
        std::fs::write(seed.join("file"), "seeded\n").unwrap();
        std::fs::set_permissions(seed.join("file"), PermissionsExt::from_mode(0o604)).unwrap();
        std::os::unix::fs::chown(seed.join("file"), Some(1000), Some(2000)).unwrap();
        std::fs::set_permissions(seed.join("sub"), PermissionsExt::from_mode(0o1750)).unwrap();
        std::os::unix::fs::chown(seed.join("sub"), Some(1234), Some(1234)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", seed.join("link")).unwrap();
        std::fs::set_permissions(&seed, PermissionsExt::from_mode(0o711)).unwrap();
    });
    let o = rrun(&[
        "run", "--rm", "-v", "seeded1:/seed", "vol-seed", "sh", "-c",
        "cat /seed/file; stat -c '%a %u %g' /seed/file /seed/sub /seed; readlink /seed/link; echo more > /seed/new",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "seeded\n604 1000 2000\n1750 1234 1234\n711 0 0\n/etc/passwd\n"
    );
    let m = std::fs::metadata(data("seeded1").join("file")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o604, 1000, 2000));
    // Not empty any more: never populated again, the container's data kept.
    let o = rrun(&[
        "run",
        "--rm",
        "-v",
        "seeded1:/seed",
        "vol-seed",
        "ls",
        "/seed",
    ]);
    assert_eq!(stdout(&o), "file\nlink\nnew\nsub\n", "{}", stderr(&o));
    // The busybox fixture's /etc, as the image has it.
    let o = sh(&["-v", "etc1:/etc"], "cat /etc/passwd");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("root:"), "{}", stdout(&o));
    assert!(data("etc1").join("passwd").is_file());
    // volume-nocopy: left empty.
    let o = rrun(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=nocopy1,target=/seed,volume-nocopy",
        "vol-seed",
        "ls",
        "-A",
        "/seed",
    ]);
    assert_eq!((code(&o), stdout(&o).as_str()), (0, ""), "{}", stderr(&o));
}

#[test]
fn a_read_only_volume_refuses_writes() {
    let o = sh(&["-v", "ro1:/data"], "echo kept > /data/f");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = sh(&["-v", "ro1:/data:ro"], "cat /data/f; echo no > /data/g");
    assert_ne!(code(&o), 0);
    assert_eq!(stdout(&o), "kept\n");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(!data("ro1").join("g").exists());
}

#[test]
fn anonymous_volumes_go_with_rm_and_stay_without() {
    image_with("vol-anon", &["/anon"], |fs| {
        std::fs::create_dir(fs.join("anon")).unwrap();
        std::fs::write(fs.join("anon/seed"), "from image\n").unwrap();
    });
    let count = |marker: &str| {
        volume_names()
            .iter()
            .filter(|n| n.len() == 64 && data(n).join(marker).exists())
            .count()
    };
    // --rm: the image's VOLUME and -v /path, both removed at exit.
    let o = rrun(&[
        "run",
        "--rm",
        "-v",
        "/other",
        "vol-anon",
        "sh",
        "-c",
        "cat /anon/seed; touch /anon/rm-marker /other/rm-marker2",
    ]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "from image\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(count("rm-marker"), 0);
    assert_eq!(count("rm-marker2"), 0);
    // Without --rm they stay, shown by inspect, until rm -v.
    let o = rrun(&[
        "run",
        "--name",
        "anon-keep",
        "vol-anon",
        "touch",
        "/anon/keep-marker",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(count("keep-marker"), 1);
    let o = rrun(&["inspect", "anon-keep"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let m = &v[0]["Mounts"][0];
    assert_eq!(
        (m["Type"].as_str(), m["Destination"].as_str()),
        (Some("volume"), Some("/anon")),
        "{v}"
    );
    assert_eq!(m["RW"], true);
    assert!(data(m["Name"].as_str().unwrap())
        .join("keep-marker")
        .exists());
    let o = rrun(&["rm", "-v", "anon-keep"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(count("keep-marker"), 0);
    // rm without -v keeps it (dangling).
    let o = rrun(&[
        "run",
        "--name",
        "anon-dangle",
        "vol-anon",
        "touch",
        "/anon/dangle-marker",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "anon-dangle"])), 0);
    assert_eq!(count("dangle-marker"), 1);
    let o = rrun(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    let dangling: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert!(dangling
        .iter()
        .any(|n| data(n).join("dangle-marker").exists()));
}

#[test]
fn a_volume_in_use_is_not_removed_and_names_its_container() {
    let o = rrun(&[
        "create",
        "--name",
        "vol-user1",
        "-v",
        "used1:/d",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["volume", "rm", "used1"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("in use by container vol-user1"),
        "{}",
        stderr(&o)
    );
    assert!(data("used1").is_dir());
    assert_eq!(code(&rrun(&["rm", "vol-user1"])), 0);
    let o = rrun(&["volume", "rm", "used1"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "used1\n"),
        "{}",
        stderr(&o)
    );
    assert!(!volumes_dir().join("used1").exists());
    let o = rrun(&["volume", "rm", "used1"]);
    assert_eq!(code(&o), 1);
    assert_eq!(code(&rrun(&["volume", "rm", "-f", "used1"])), 0);
}

#[test]
fn prune_removes_only_unused_volumes() {
    assert_eq!(code(&rrun(&["volume", "create", "prune-named"])), 0);
    // An anonymous volume kept by a stopped container, one left dangling.
    let o = rrun(&[
        "create",
        "--name",
        "prune-user",
        "-v",
        "/kept",
        "-v",
        "prune-used:/u",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&[
        "run",
        "--name",
        "prune-gone",
        "-v",
        "/gone",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["inspect", "prune-gone"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let gone = v[0]["Mounts"][0]["Name"].as_str().unwrap().to_string();
    let o = rrun(&["inspect", "prune-user"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kept: Vec<String> = v[0]["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept.len(), 2, "{v}");
    assert_eq!(code(&rrun(&["rm", "prune-gone"])), 0);
    // Without -f and without a terminal: refused, nothing removed.
    let o = rrun(&["volume", "prune"]);
    assert_eq!(code(&o), 1);
    assert!(data(&gone).exists());
    let o = rrun(&["volume", "prune", "-f"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(&gone), "{}", stdout(&o));
    assert!(!data(&gone).exists());
    for k in &kept {
        assert!(
            data(k).exists(),
            "pruned {k}, in use by a stopped container"
        );
    }
    assert!(
        data("prune-named").exists(),
        "pruned a named volume without --all"
    );
    let o = rrun(&["volume", "prune", "-a", "-f"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!data("prune-named").exists());
    for k in &kept {
        assert!(
            data(k).exists(),
            "pruned {k}, in use by a stopped container"
        );
    }
    assert_eq!(code(&rrun(&["rm", "-v", "prune-user"])), 0);
}

#[test]
fn bad_volume_names_are_refused_by_name() {
    for bad in ["../x", "a/b", "", ".hidden", "-x"] {
        let o = rrun(&["volume", "create", "--", bad]);
        assert_eq!(code(&o), 125, "{bad:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("invalid volume name"),
            "{bad:?}: {}",
            stderr(&o)
        );
    }
    for bad in ["../x:/d", "a/b:/d", "x y:/d"] {
        let o = sh(&["-v", bad], "true");
        assert_eq!(code(&o), 125, "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(bad), "{bad:?}: {}", stderr(&o));
    }
    let o = sh(&["--mount", "type=volume,source=../x,target=/d"], "true");
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid volume name"), "{}", stderr(&o));
    assert!(!store_root().join("x").exists());
    assert!(!volumes_dir().join("a").exists());
    for bad in ["../x", "a/b"] {
        assert_eq!(code(&rrun(&["volume", "inspect", bad])), 1);
        assert_eq!(code(&rrun(&["volume", "rm", bad])), 1);
    }
}

#[test]
fn mount_forms_and_their_refusals() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "host\n").unwrap();
    let bind = format!(
        "type=bind,source={},target=/b,readonly",
        host.path().display()
    );
    let o = sh(
        &[
            "--mount", &bind,
            "--mount", "type=volume,source=mounted1,target=/v",
            "--mount", "type=tmpfs,target=/t,tmpfs-size=8m,tmpfs-mode=1770",
            "--tmpfs", "/t2:size=4m",
        ],
        "cat /b/h; echo v > /v/f; df -k /t | tail -1 | awk '{print $2}'; stat -c %a /t; df -k /t2 | tail -1 | awk '{print $2}'; touch /b/x",
    );
    assert_ne!(code(&o), 0, "writing to a readonly bind succeeded");
    assert_eq!(stdout(&o), "host\n8192\n1770\n4096\n", "{}", stderr(&o));
    assert!(!host.path().join("x").exists());
    assert_eq!(
        std::fs::read_to_string(data("mounted1").join("f")).unwrap(),
        "v\n"
    );
    // A missing bind source: an error for --mount, made for -v.
    let missing = host.path().join("missing");
    let o = sh(
        &[
            "--mount",
            &format!("type=bind,source={},target=/m", missing.display()),
        ],
        "true",
    );
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!missing.exists());
    let o = sh(&["-v", &format!("{}:/m", missing.display())], "true");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(missing.is_dir());
    for (bad, says) in [
        ("type=tmpfs,target=/t,colour=red", "\"colour\""),
        ("type=tmpfs,target=/t,tmpfs-size=huge", "tmpfs-size"),
        ("type=tmpfs,target=/t,tmpfs-mode=8", "tmpfs-mode"),
        ("type=nfs,target=/t", "\"nfs\""),
        ("type=volume,source=v", "target is required"),
        (
            "type=bind,source=/tmp,target=/t,bind-propagation=shared",
            "bind-propagation",
        ),
        ("type=volume,target=relative", "absolute"),
    ] {
        let o = sh(&["--mount", bad], "true");
        assert_eq!(code(&o), 125, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--mount"), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{bad}: {}", stderr(&o));
    }
    let o = sh(&["-v", "dup1:/d", "--tmpfs", "/d"], "true");
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("duplicate mount point"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn create_and_start_keep_their_volumes() {
    let o = rrun(&[
        "create",
        "--name",
        "vol-cs",
        "-v",
        "cs1:/d",
        "busybox",
        "sh",
        "-c",
        "echo run >> /d/log",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for _ in 0..2 {
        assert_eq!(code(&rrun(&["start", "vol-cs"])), 0);
        let o = rrun(&["wait", "vol-cs"]);
        assert_eq!(stdout(&o), "0\n", "{}", stderr(&o));
    }
    let o = sh(&["-v", "cs1:/d"], "cat /d/log");
    assert_eq!(stdout(&o), "run\nrun\n", "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "vol-cs"])), 0);
}

#[test]
fn a_hostile_volume_path_never_writes_outside_the_volume() {
    // A host directory the image names: populate must not read it, and
    // the container must not write into it.
    let host = std::env::temp_dir().join(format!("rrun-vol-escape-{}", std::process::id()));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), "host secret\n").unwrap();
    let host_s = host.to_str().unwrap().to_string();
    let climb = format!("/../../..{host_s}");
    image_with("vol-hostile", &["/data", "/other"], |fs| {
        std::fs::create_dir(fs.join("etc")).unwrap();
        std::fs::write(fs.join("etc/image-marker"), "image\n").unwrap();
        std::os::unix::fs::symlink("/../../etc", fs.join("data")).unwrap();
        std::os::unix::fs::symlink(&climb, fs.join("other")).unwrap();
    });
    let o = rrun(&[
        "run",
        "--rm",
        "-v",
        "hostile1:/data",
        "-v",
        "hostile2:/other",
        "vol-hostile",
        "sh",
        "-c",
        "echo pwned > /data/pwned; echo pwned > /other/pwned; ls /other",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // /data was the image's /etc: populated from it, mounted on it.
    assert!(data("hostile1").join("image-marker").is_file());
    assert!(data("hostile1").join("pwned").is_file());
    assert!(
        !Path::new("/etc/pwned").exists(),
        "the container wrote /etc/pwned on the host"
    );
    // /other named a path the image does not have: nothing copied, the
    // host's file never read, nothing written there.
    assert_eq!(stdout(&o), "pwned\n");
    assert!(!data("hostile2").join("secret").exists());
    assert!(
        !host.join("pwned").exists(),
        "the container wrote into {host_s}"
    );
    let _ = std::fs::remove_dir_all(&host);
}

#[test]
fn concurrent_first_uses_see_one_whole_populated_volume() {
    // Four containers start at once on a volume none has made yet: one
    // makes and populates it under the lock, every one sees all of it.
    let children: Vec<_> = (0..4)
        .map(|_| {
            rrun_cmd(&[
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                "race1:/etc",
                "busybox",
                "sh",
                "-c",
                "head -1 /etc/passwd; ls /etc | wc -l",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert_eq!(code(o), 0, "{}", stderr(o));
        assert_eq!(stdout(o), stdout(&outs[0]));
        assert!(stdout(o).starts_with("root:"), "{}", stdout(o));
    }
    let o = rrun(&["volume", "ls", "-q", "--filter", "name=race1"]);
    assert_eq!(stdout(&o), "race1\n");
    // Concurrent creations of one name: all succeed, one volume.
    let children: Vec<_> = (0..4)
        .map(|_| {
            rrun_cmd(&["volume", "create", "race2"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            (code(&o), stdout(&o).as_str()),
            (0, "race2\n"),
            "{}",
            stderr(&o)
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(volumes_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
