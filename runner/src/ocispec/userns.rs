//! A bundle's user namespace, as runc has it: `{"type": "user"}` in
//! `linux.namespaces` with `linux.uidMappings` and `linux.gidMappings`
//! makes a new one whose maps the runtime (root) writes into the child's
//! `/proc/<pid>/uid_map` and `gid_map` while the child waits
//! (`spawn::UserNsPlan`); with a `path`, an existing one is joined. The
//! rootfs is used as the bundle has it: the caller prepared its ownership
//! (runc does not chown either).
//!
//! Decisions only (the maps as the kernel reads them, and which ids they
//! cover): the unit tests run without root.

use std::path::PathBuf;

use oci_spec::runtime::LinuxIdMapping;

use super::{invalid, Result};

/// The kernel's limit on lines of one map (Linux 4.15 and later).
const MAX_LINES: usize = 340;

/// One line of a map: container ids `container .. container + size` are
/// host ids `host .. host + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The user namespace of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNs {
    /// A new one with these maps (both cover container id 0: the child
    /// becomes the namespace's root before it builds the rootfs).
    New {
        uid_map: Vec<IdRange>,
        gid_map: Vec<IdRange>,
    },
    /// An existing one, joined by its namespace file.
    Join(PathBuf),
}

impl UserNs {
    /// The map as `/proc/<pid>/uid_map` takes it: one `inside outside
    /// count` line per range, written in one write(2).
    pub fn map_text(ranges: &[IdRange]) -> Vec<u8> {
        ranges
            .iter()
            .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
            .collect::<String>()
            .into_bytes()
    }
}

/// Whether `id` (a container id) is covered by `ranges`.
pub fn mapped(ranges: &[IdRange], id: u32) -> bool {
    ranges
        .iter()
        .any(|r| id >= r.container && u64::from(id) < u64::from(r.container) + u64::from(r.size))
}

/// `linux.uidMappings` or `linux.gidMappings` (named `field`), checked
/// the way the kernel would refuse them, but naming the entry.
fn ranges(field: &str, maps: &[LinuxIdMapping]) -> Result<Vec<IdRange>> {
    if maps.len() > MAX_LINES {
        return Err(invalid(
            field,
            format!(
                "{} ranges; the kernel takes at most {MAX_LINES}",
                maps.len()
            ),
        ));
    }
    let mut out: Vec<IdRange> = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        let r = IdRange {
            container: m.container_id(),
            host: m.host_id(),
            size: m.size(),
        };
        let end = |start: u32| u64::from(start) + u64::from(r.size);
        if r.size == 0 || end(r.container) > 1 << 32 || end(r.host) > 1 << 32 {
            return Err(invalid(
                format!("{field}[{i}]"),
                format!(
                    "containerID {} hostID {} size {}: an empty range or one past 2^32",
                    r.container, r.host, r.size
                ),
            ));
        }
        let overlaps = |a: u32, b: u32| u64::from(a) < end(b) && u64::from(b) < end(a);
        if let Some(o) = out
            .iter()
            .find(|o| overlaps(o.container, r.container) || overlaps(o.host, r.host))
        {
            return Err(invalid(
                format!("{field}[{i}]"),
                format!(
                    "overlaps the range containerID {} hostID {} size {}",
                    o.container, o.host, o.size
                ),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// The bundle's user namespace: `user` is the `linux.namespaces` entry of
/// type user (`Some(path)` when it names one), `None` when there is none.
pub fn translate(
    user: Option<Option<PathBuf>>,
    uid_mappings: Option<&Vec<LinuxIdMapping>>,
    gid_mappings: Option<&Vec<LinuxIdMapping>>,
    process: (u32, u32, &[u32]),
) -> Result<Option<UserNs>> {
    let uids = uid_mappings.map(|m| m.as_slice()).unwrap_or_default();
    let gids = gid_mappings.map(|m| m.as_slice()).unwrap_or_default();
    let field_set = |uids: &[_], gids: &[_]| {
        if !uids.is_empty() {
            Some("linux.uidMappings")
        } else if !gids.is_empty() {
            Some("linux.gidMappings")
        } else {
            None
        }
    };
    let user = match user {
        None => return match field_set(uids, gids) {
            Some(f) => Err(invalid(
                f,
                "id maps need a new user namespace: list {\"type\": \"user\"} in linux.namespaces",
            )),
            None => Ok(None),
        },
        Some(u) => u,
    };
    if let Some(path) = user {
        if let Some(f) = field_set(uids, gids) {
            return Err(invalid(
                f,
                "a joined user namespace has its maps already (leave them out)",
            ));
        }
        if !path.exists() || path.is_dir() {
            return Err(invalid(
                "linux.namespaces[user].path",
                format!("{} is not a namespace file", path.display()),
            ));
        }
        return Ok(Some(UserNs::Join(path)));
    }
    if uids.is_empty() {
        return Err(invalid(
            "linux.uidMappings",
            "required with a new user namespace",
        ));
    }
    if gids.is_empty() {
        return Err(invalid(
            "linux.gidMappings",
            "required with a new user namespace",
        ));
    }
    let uid_map = ranges("linux.uidMappings", uids)?;
    let gid_map = ranges("linux.gidMappings", gids)?;
    for (field, map) in [
        ("linux.uidMappings", &uid_map),
        ("linux.gidMappings", &gid_map),
    ] {
        if !mapped(map, 0) {
            return Err(invalid(
                field,
                "must map container id 0 (the runtime sets the container up as the namespace's root)",
            ));
        }
    }
    let (uid, gid, groups) = process;
    if !mapped(&uid_map, uid) {
        return Err(invalid(
            "process.user.uid",
            format!("{uid} is not mapped by linux.uidMappings"),
        ));
    }
    if let Some(g) = std::iter::once(&gid)
        .chain(groups)
        .find(|g| !mapped(&gid_map, **g))
    {
        return Err(invalid(
            "process.user",
            format!("gid {g} is not mapped by linux.gidMappings"),
        ));
    }
    Ok(Some(UserNs::New { uid_map, gid_map }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(container: u32, host: u32, size: u32) -> LinuxIdMapping {
        serde_json::from_value(
            serde_json::json!({"containerID": container, "hostID": host, "size": size}),
        )
        .unwrap()
    }

    fn err(r: Result<Option<UserNs>>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn maps_are_checked_and_written_as_the_kernel_reads_them() {
        let u = vec![m(0, 100000, 65536)];
        let g = vec![m(0, 100000, 1000), m(1000, 1000, 1)];
        let ns = translate(Some(None), Some(&u), Some(&g), (0, 1000, &[5])).unwrap();
        let Some(UserNs::New { uid_map, gid_map }) = ns else {
            panic!("{ns:?}")
        };
        assert_eq!(UserNs::map_text(&uid_map), b"0 100000 65536\n");
        assert_eq!(
            UserNs::map_text(&gid_map),
            b"0 100000 1000\n1000 1000 1\n".to_vec()
        );
        assert_eq!(
            translate(None, None, Some(&vec![]), (0, 0, &[])).unwrap(),
            None
        );
    }

    #[test]
    fn bad_maps_are_named() {
        let u = vec![m(0, 100000, 65536)];
        assert!(err(translate(None, Some(&u), None, (0, 0, &[])))
            .starts_with("linux.uidMappings: id maps need"));
        assert!(err(translate(Some(None), Some(&u), None, (0, 0, &[])))
            .starts_with("linux.gidMappings: required"));
        assert!(err(translate(Some(None), None, Some(&u), (0, 0, &[])))
            .starts_with("linux.uidMappings: required"));
        let e = err(translate(
            Some(None),
            Some(&vec![m(1, 100000, 10)]),
            Some(&u),
            (0, 0, &[]),
        ));
        assert!(e.contains("must map container id 0"), "{e}");
        let e = err(translate(
            Some(None),
            Some(&vec![m(0, 1, 10), m(5, 100, 10)]),
            Some(&u),
            (0, 0, &[]),
        ));
        assert!(e.starts_with("linux.uidMappings[1]: overlaps"), "{e}");
        let e = err(translate(
            Some(None),
            Some(&vec![m(0, u32::MAX, 2)]),
            Some(&u),
            (0, 0, &[]),
        ));
        assert!(e.starts_with("linux.uidMappings[0]"), "{e}");
        let e = err(translate(Some(None), Some(&u), Some(&u), (70000, 0, &[])));
        assert!(
            e.starts_with("process.user.uid: 70000 is not mapped"),
            "{e}"
        );
        let e = err(translate(Some(None), Some(&u), Some(&u), (0, 0, &[70001])));
        assert!(e.contains("gid 70001 is not mapped"), "{e}");
        let e = err(translate(
            Some(Some("/proc/self/ns/user".into())),
            Some(&u),
            None,
            (0, 0, &[]),
        ));
        assert!(e.contains("joined user namespace has its maps"), "{e}");
    }
}
