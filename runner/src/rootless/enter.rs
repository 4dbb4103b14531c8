//! Entering the user namespace: this process unshares it, and a helper
//! forked just before, still outside, has the setuid `newuidmap` and
//! `newgidmap` (Debian's `uidmap`) write its maps. The same split as
//! rootlesskit's and Podman's (the process outside maps the one inside:
//! a process cannot map its own namespace beyond its own id). With no
//! subordinate range, or no helpers, the process maps only itself
//! (`0 UID 1`), which the kernel lets any user do after denying setgroups.
//!
//! Unlike them, no process stays behind: the helper exits once the maps
//! are written, and this process goes on inside (the caller then
//! re-executes from a sealed copy of its binary, see `exeseal`).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::idmap::{self, Extent, IdMapError};

#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error(transparent)]
    IdMap(#[from] IdMapError),
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create a user namespace: {0} (is kernel.unprivileged_userns_clone or user.max_user_namespaces 0?)")]
    Unshare(io::Error),
    #[error("{helper} {args} failed: {why} (check the ranges of {user} in {file})")]
    Helper {
        helper: &'static str,
        args: String,
        why: String,
        user: String,
        file: &'static str,
    },
    #[error("write the single-id map ({what}): {source}")]
    SelfMap {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Fork(io::Error),
}

pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// How this process's namespace gets its maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// newuidmap/newgidmap with these maps (at pid of the process inside).
    Helpers {
        uid_map: Vec<Extent>,
        gid_map: Vec<Extent>,
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
    /// Only the user's own ids; `why` says what is missing.
    SingleId { why: String },
}

/// Decide the plan from the subid files' texts and where the helpers are.
pub fn plan(
    user: &str,
    uid: u32,
    gid: u32,
    subuid: &str,
    subgid: &str,
    helpers: (Option<PathBuf>, Option<PathBuf>),
) -> Result<Plan, IdMapError> {
    let uids = idmap::ranges_for(subuid, Path::new(SUBUID), user, uid)?;
    let gids = idmap::ranges_for(subgid, Path::new(SUBGID), user, gid)?;
    // A group's ranges are listed by user name (shadow's useradd does so);
    // by the numeric gid as a fallback.
    let gids = if gids.is_empty() {
        idmap::ranges_for(subgid, Path::new(SUBGID), user, uid)?
    } else {
        gids
    };
    let missing = match (uids.is_empty(), gids.is_empty()) {
        (true, true) => Some(format!(
            "no subordinate ids for {user} in {SUBUID} and {SUBGID}"
        )),
        (true, false) => Some(format!("no subordinate uids for {user} in {SUBUID}")),
        (false, true) => Some(format!("no subordinate gids for {user} in {SUBGID}")),
        (false, false) => None,
    };
    if let Some(why) = missing {
        return Ok(Plan::SingleId {
            why: format!("{why} (add them: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user})"),
        });
    }
    match helpers {
        (Some(newuidmap), Some(newgidmap)) => Ok(Plan::Helpers {
            uid_map: idmap::map_for(uid, &uids),
            gid_map: idmap::map_for(gid, &gids),
            newuidmap,
            newgidmap,
        }),
        _ => Ok(Plan::SingleId {
            why: "newuidmap or newgidmap not found (install the uidmap package)".into(),
        }),
    }
}

/// `name` in PATH, then in /usr/bin and /bin.
pub fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn read_subids(path: &str) -> Result<String, EnterError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(EnterError::Read {
            path: path.into(),
            source,
        }),
    }
}

/// Enter a new user namespace mapped for the calling user. Must run before
/// any thread starts (unshare(CLONE_NEWUSER) refuses a threaded process).
/// Returns the reason for a single-id map, which the caller prints.
pub fn enter() -> Result<Option<String>, EnterError> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let user = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let plan = plan(
        &user,
        uid,
        gid,
        &read_subids(SUBUID)?,
        &read_subids(SUBGID)?,
        (find_helper("newuidmap"), find_helper("newgidmap")),
    )?;
    match plan {
        Plan::Helpers {
            uid_map,
            gid_map,
            newuidmap,
            newgidmap,
        } => {
            let jobs = [
                (newuidmap, uid_map, "newuidmap", SUBUID),
                (newgidmap, gid_map, "newgidmap", SUBGID),
            ];
            enter_with_helpers(&user, &jobs)?;
            Ok(None)
        }
        Plan::SingleId { why } => {
            unshare()?;
            let w = |what: &'static str, path: &str, v: String| {
                std::fs::write(path, v).map_err(|source| EnterError::SelfMap { what, source })
            };
            w("setgroups", "/proc/self/setgroups", "deny".into())?;
            w("uid_map", "/proc/self/uid_map", format!("0 {uid} 1\n"))?;
            w("gid_map", "/proc/self/gid_map", format!("0 {gid} 1\n"))?;
            Ok(Some(why))
        }
    }
}

/// The user namespace, and a mount namespace it owns: there exeseal's
/// read-only bind clone of our binary is ours to make (in the host's
/// mount namespace only its memfd copy is, ~25 ms more per start), and
/// the host's shared mounts become slaves: nothing propagates back.
fn unshare() -> Result<(), EnterError> {
    use nix::sched::CloneFlags;
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .map_err(|e| EnterError::Unshare(e.into()))
}

/// Fork the helper (it waits for our unshare, runs both map helpers on our
/// pid and reports), unshare, let it go, read its report.
fn enter_with_helpers(
    user: &str,
    jobs: &[(PathBuf, Vec<Extent>, &'static str, &'static str); 2],
) -> Result<(), EnterError> {
    let me = std::process::id().to_string();
    let (go_r, go_w) = crate::sys::pipe().map_err(EnterError::Fork)?;
    let (rep_r, rep_w) = crate::sys::pipe().map_err(EnterError::Fork)?;
    // SAFETY: called before any thread exists (see `enter`), so the child
    // may allocate and spawn; it leaves only through _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| EnterError::Fork(e.into()))? {
        nix::unistd::ForkResult::Child => {
            drop(go_w);
            drop(rep_r);
            let mut go = [0u8; 1];
            let mut r = std::fs::File::from(go_r);
            let mut report = std::fs::File::from(rep_w);
            let msg = match r.read(&mut go) {
                Ok(1) => run_helpers(&me, jobs),
                _ => "the process to map went away".to_string(),
            };
            let _ = report.write_all(msg.as_bytes());
            // SAFETY: _exit never returns; no destructor of the parent's
            // state may run in this copy.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(go_r);
            drop(rep_w);
            let unshared = unshare();
            let mut go = std::fs::File::from(go_w);
            if unshared.is_ok() {
                let _ = go.write_all(b"1");
            }
            drop(go);
            let mut report = String::new();
            let _ = std::fs::File::from(rep_r).read_to_string(&mut report);
            let _ = nix::sys::wait::waitpid(child, None);
            unshared?;
            if let Some((helper, args, why)) = parse_report(&report) {
                let file = if helper == "newuidmap" {
                    SUBUID
                } else {
                    SUBGID
                };
                return Err(EnterError::Helper {
                    helper,
                    args,
                    why,
                    user: user.to_string(),
                    file,
                });
            }
            Ok(())
        }
    }
}

/// Run newuidmap and newgidmap on `pid`; "" when both succeeded, else
/// `helper\targs\twhy`.
fn run_helpers(
    pid: &str,
    jobs: &[(PathBuf, Vec<Extent>, &'static str, &'static str); 2],
) -> String {
    for (path, map, name, _) in jobs {
        let args = idmap::helper_args(map);
        let why = match Command::new(path).arg(pid).args(&args).status() {
            Ok(s) if s.success() => continue,
            Ok(s) => format!("{s}"),
            Err(e) => e.to_string(),
        };
        return format!("{name}\t{pid} {}\t{why}", args.join(" "));
    }
    String::new()
}

fn parse_report(r: &str) -> Option<(&'static str, String, String)> {
    if r.is_empty() {
        return None;
    }
    let mut f = r.splitn(3, '\t');
    let helper = if f.next() == Some("newgidmap") {
        "newgidmap"
    } else {
        "newuidmap"
    };
    let args = f.next().unwrap_or("").to_string();
    let why = f.next().unwrap_or(r).to_string();
    Some((helper, args, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helpers() -> (Option<PathBuf>, Option<PathBuf>) {
        (
            Some("/usr/bin/newuidmap".into()),
            Some("/usr/bin/newgidmap".into()),
        )
    }

    #[test]
    fn ranges_and_helpers_give_the_helpers_plan() {
        let p = plan(
            "alice",
            1000,
            1000,
            "alice:100000:65536\n",
            "alice:200000:65536\n",
            helpers(),
        )
        .unwrap();
        let Plan::Helpers {
            uid_map, gid_map, ..
        } = p
        else {
            panic!("{p:?}")
        };
        assert_eq!(idmap::to_host(&uid_map, 1000), Some(100999));
        assert_eq!(idmap::to_host(&gid_map, 0), Some(1000));
        assert_eq!(idmap::to_host(&gid_map, 1), Some(200000));
    }

    #[test]
    fn anything_missing_gives_a_single_id_map_saying_what() {
        let p = plan("alice", 1000, 1000, "", "", helpers()).unwrap();
        assert!(
            matches!(&p, Plan::SingleId { why } if why.contains("no subordinate ids for alice")),
            "{p:?}"
        );
        let p = plan("alice", 1000, 1000, "alice:100000:65536\n", "", helpers()).unwrap();
        assert!(
            matches!(&p, Plan::SingleId { why } if why.contains("no subordinate gids")),
            "{p:?}"
        );
        let p = plan(
            "alice",
            1000,
            1000,
            "alice:1:2\n",
            "alice:1:2\n",
            (None, None),
        )
        .unwrap();
        assert!(
            matches!(&p, Plan::SingleId { why } if why.contains("uidmap package")),
            "{p:?}"
        );
    }

    #[test]
    fn a_helper_report_names_the_helper() {
        assert_eq!(parse_report(""), None);
        let (h, a, w) = parse_report("newgidmap\t42 0 1000 1\texit status: 1").unwrap();
        assert_eq!(
            (h, a.as_str(), w.as_str()),
            ("newgidmap", "42 0 1000 1", "exit status: 1")
        );
    }
}
