//! `-u/--user uid[:gid]|name[:group]`, resolved like Docker: names through
//! the image's /etc/passwd and /etc/group, read beneath the image's layers
//! (top layer first) without following links out of them.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;

use engine::runtime::UserSpec;

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0:?}: no matching entries in the image's /etc/passwd")]
    NoUser(String),
    #[error("unable to find group {0:?}: no matching entries in the image's /etc/group")]
    NoGroup(String),
    #[error("invalid user {0:?}: expected uid[:gid] or name[:group]")]
    Invalid(String),
}

/// A resolved user plus the HOME Docker would give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub spec: UserSpec,
    pub home: String,
}

/// Read `rel` (e.g. `etc/passwd`) from the topmost layer that has it.
/// A whiteout (a character device) or any non-file hides lower layers.
pub fn read_from_layers(lowers_top_first: &[PathBuf], rel: &str) -> Option<String> {
    let crel = sys::cstring(rel);
    for l in lowers_top_first {
        let Ok(dir) = std::fs::File::open(l) else {
            continue;
        };
        match sys::openat2(
            dir.as_fd(),
            &crel,
            libc::O_RDONLY,
            sys::RESOLVE_BENEATH_ROOT,
        ) {
            Ok(fd) => {
                let mut f = std::fs::File::from(fd);
                let is_file = f.metadata().map(|m| m.is_file()).unwrap_or(false);
                if !is_file {
                    return None;
                }
                let mut s = String::new();
                // Cap what we read: these files are small; a huge one is hostile.
                let _ = (&mut f).take(4 << 20).read_to_string(&mut s);
                return Some(s);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => return None,
        }
    }
    None
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd_entries(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 6 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
pub(crate) fn group_entries(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolve `user` ("" = root) against the given passwd/group contents.
pub fn resolve(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, UserError> {
    let users = passwd.map(passwd_entries).unwrap_or_default();
    let groups = group.map(group_entries).unwrap_or_default();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if u.is_empty() && g.is_some() {
        return Err(UserError::Invalid(user.to_string()));
    }
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|e| e.name == u)
                .ok_or_else(|| UserError::NoUser(u.to_string()))?,
        ),
    };
    let uid = u.parse::<u32>().ok().or(entry.map(|e| e.uid)).unwrap_or(0);
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        },
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if g.is_none() {
        if let Some(e) = entry {
            additional_gids.extend(
                groups
                    .iter()
                    .filter(|(_, gid2, members)| *gid2 != gid && members.contains(&e.name))
                    .map(|(_, gid2, _)| *gid2),
            );
        }
    }
    Ok(ResolvedUser {
        spec: UserSpec {
            uid,
            gid,
            additional_gids,
        },
        home: entry.map(|e| e.home.clone()).unwrap_or_else(|| "/".into()),
    })
}

/// Resolve `user` against the image layers (root needs no files).
pub fn resolve_in_layers(
    user: &str,
    lowers_top_first: &[PathBuf],
) -> Result<ResolvedUser, UserError> {
    let p = read_from_layers(lowers_top_first, "etc/passwd");
    let g = if user.contains(':') || user.parse::<u32>().is_err() || p.is_some() {
        read_from_layers(lowers_top_first, "etc/group")
    } else {
        None
    };
    resolve(user, p.as_deref(), g.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nstaff:x:50:bob\nbob:x:1000:\n";

    #[test]
    fn names_and_numbers_resolve_like_docker() {
        let r = resolve("bob", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            (r.spec.uid, r.spec.gid, r.spec.additional_gids.clone()),
            (1000, 1000, vec![50])
        );
        assert_eq!(r.home, "/home/bob");
        let r = resolve("33:staff", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((r.spec.uid, r.spec.gid), (33, 50));
        let r = resolve("4242", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((r.spec.uid, r.spec.gid, r.home.as_str()), (4242, 0, "/"));
        let r = resolve("", None, None).unwrap();
        assert_eq!((r.spec.uid, r.spec.gid), (0, 0));
        assert!(matches!(
            resolve("nobody", Some(PASSWD), None),
            Err(UserError::NoUser(_))
        ));
        assert!(matches!(
            resolve("bob:wheel", Some(PASSWD), Some(GROUP)),
            Err(UserError::NoGroup(_))
        ));
    }
}
