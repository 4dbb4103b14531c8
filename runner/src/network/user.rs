//! User-defined networks (`rrun network create`): one JSON definition per
//! network in the store, `<root>/networks/<name>.json`, kept across
//! reboots like the containers that name it. What a definition becomes on
//! the host (its bridge device, nftables table and leases) is made on
//! first use like the default network's and is not kept: the bridge is
//! `rbox-` and 10 hex digits of the hash of the store and the name (one
//! store's `mynet` is not another's), the leases are under
//! `STATE_DIR/<bridge>`, with the network's DNS resolver (`resolver`),
//! which `remove` stops.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ipam::Subnet;
use super::Network;

#[derive(Debug, thiserror::Error)]
pub enum UserNetError {
    #[error("network {0} not found (see rrun network ls)")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit (at most 64)")]
    BadName(String),
    #[error("{0} is a predefined network and cannot be created or removed")]
    Predefined(String),
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("subnet {0} overlaps network {1} ({2})")]
    Overlap(Subnet, String, Subnet),
    #[error("no free subnet left in 10.88.0.0/16 to 10.99.0.0/16: give one with --subnet")]
    NoSubnet,
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The names `--network` gives other meanings to.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// A network as `rrun network create` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    /// 64 hex digits, as Docker's network ids.
    pub id: String,
    pub subnet: String,
    pub gateway: String,
    /// Seconds since the epoch.
    pub created: u64,
}

fn dir(root: &Path) -> PathBuf {
    root.join("networks")
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> UserNetError + 'a {
    move |source| UserNetError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

pub fn check_name(name: &str) -> Result<(), UserNetError> {
    if PREDEFINED.contains(&name) {
        return Err(UserNetError::Predefined(name.into()));
    }
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(UserNetError::BadName(name.into()))
    }
}

impl Definition {
    /// The network on the host this definition stands for.
    pub fn network(&self, root: &Path) -> Network {
        let tag = crate::lifecycle::store_tag(root);
        let d = engine::Digest::blake3_of(format!("{tag}/{}", self.name).as_bytes());
        let subnet: Subnet = self.subnet.parse().unwrap_or(Subnet {
            network: Ipv4Addr::new(10, 88, 0, 0),
            prefix: 24,
        });
        Network {
            name: self.name.clone(),
            bridge: format!("rbox-{}", &d.hex()[..10]),
            gateway: self.gateway.parse().unwrap_or(subnet.gateway()),
            subnet,
        }
    }
}

/// Every definition in the store, by name.
pub fn list(root: &Path) -> Vec<Definition> {
    let mut v: Vec<Definition> = fs::read_dir(dir(root))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The definition named `key`, or whose id starts with it.
pub fn load(root: &Path, key: &str) -> Result<Definition, UserNetError> {
    let all = list(root);
    if let Some(d) = all.iter().find(|d| d.name == key) {
        return Ok(d.clone());
    }
    let mut hits = all
        .into_iter()
        .filter(|d| key.len() >= 3 && d.id.starts_with(key));
    match (hits.next(), hits.next()) {
        (Some(d), None) => Ok(d),
        _ => Err(UserNetError::NotFound(key.into())),
    }
}

fn overlaps(a: Subnet, b: Subnet) -> bool {
    let p = a.prefix.min(b.prefix);
    let mask = u32::MAX << (32 - p as u32);
    u32::from(a.network) & mask == u32::from(b.network) & mask
}

/// The subnets in use: the default network's and every definition's.
fn taken(root: &Path) -> Vec<(String, Subnet)> {
    let mut v = vec![(
        super::DEFAULT_NAME.to_string(),
        super::DEFAULT_SUBNET.parse().expect("valid default subnet"),
    )];
    for d in list(root) {
        if let Ok(s) = d.subnet.parse() {
            v.push((d.name, s));
        }
    }
    v
}

/// The subnets of /proc/net/route, default routes left out.
fn routed(table: &str) -> Vec<(String, Subnet)> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // The kernel prints each __be32 as a native-endian integer.
            let addr = |s: &str| u32::from_str_radix(s, 16).ok().map(|x| x.to_ne_bytes());
            let (dest, mask) = (addr(f.get(1)?)?, addr(f.get(7)?)?);
            let prefix = u32::from_be_bytes(mask).count_ones() as u8;
            (prefix > 0).then(|| {
                let network = Ipv4Addr::from(dest);
                (f[0].to_string(), Subnet { network, prefix })
            })
        })
        .collect()
}

/// The first /24 of 10.88.0.0 to 10.99.255.0 that overlaps nothing taken.
pub fn pick_subnet(taken: &[(String, Subnet)]) -> Option<Subnet> {
    (88u8..100)
        .flat_map(|b| (0u8..=255).map(move |c| Ipv4Addr::new(10, b, c, 0)))
        .map(|network| Subnet {
            network,
            prefix: 24,
        })
        .find(|s| !taken.iter().any(|(_, t)| overlaps(*s, *t)))
}

/// Create a definition (`rrun network create`).
pub fn create(
    root: &Path,
    name: &str,
    subnet: Option<&str>,
    gateway: Option<&str>,
) -> Result<Definition, UserNetError> {
    check_name(name)?;
    let d = dir(root);
    // Root's only, as every directory of the store (invariant 6).
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(&d)
        .map_err(io_err("create", &d))?;
    // One creator at a time: subnets are picked against the others.
    // (No child is cloned holding the lock: sys::NO_INHERIT.)
    let _no_inherit = crate::sys::hold_no_inherit();
    let lock_path = d.join(".lock");
    let lock = fs::File::create(&lock_path).map_err(io_err("create", &lock_path))?;
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if list(root).iter().any(|x| x.name == name) {
        return Err(UserNetError::Exists(name.into()));
    }
    let taken = taken(root);
    let subnet = match subnet {
        Some(s) => {
            let s: Subnet = s.parse().map_err(|why| UserNetError::Invalid {
                what: "--subnet",
                value: s.into(),
                why,
            })?;
            if let Some((n, t)) = taken.iter().find(|(_, t)| overlaps(s, *t)) {
                return Err(UserNetError::Overlap(s, n.clone(), *t));
            }
            s
        }
        None if gateway.is_some() => {
            return Err(UserNetError::Invalid {
                what: "--gateway",
                value: gateway.unwrap_or_default().into(),
                why: "a gateway needs --subnet".into(),
            })
        }
        None => {
            // Also clear of what the host routes to (its LANs, other
            // stores' bridges); a --subnet given is the user's call.
            let mut avoid = taken.clone();
            let routes = fs::read_to_string("/proc/net/route").unwrap_or_default();
            avoid.extend(routed(&routes));
            pick_subnet(&avoid).ok_or(UserNetError::NoSubnet)?
        }
    };
    let gw = match gateway {
        Some(g) => {
            let a: Ipv4Addr = g.parse().map_err(|_| UserNetError::Invalid {
                what: "--gateway",
                value: g.into(),
                why: "not an IPv4 address".into(),
            })?;
            let broadcast = u32::from(subnet.network) | !(u32::MAX << (32 - subnet.prefix as u32));
            if !subnet.contains(a) || a == subnet.network || u32::from(a) == broadcast {
                return Err(UserNetError::Invalid {
                    what: "--gateway",
                    value: g.into(),
                    why: format!("not a host address of {subnet}"),
                });
            }
            a
        }
        None => subnet.gateway(),
    };
    let created = crate::state::now();
    let seed = format!("{name}/{created}/{}", crate::lifecycle::new_id(root));
    let id = engine::Digest::blake3_of(seed.as_bytes()).hex().to_string();
    let def = Definition {
        name: name.into(),
        id,
        subnet: subnet.to_string(),
        gateway: gw.to_string(),
        created,
    };
    let path = d.join(format!("{name}.json"));
    let tmp = d.join(format!(".{name}.json.tmp"));
    let json = serde_json::to_vec_pretty(&def).expect("a definition serialises");
    fs::write(&tmp, json).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
    drop(lock);
    Ok(def)
}

/// Delete a definition and what it made on the host (bridge, table,
/// leases). The caller has checked that no container uses it.
pub fn remove(root: &Path, def: &Definition) -> Result<(), UserNetError> {
    let net = def.network(root);
    super::resolver::stop(&net);
    if let Ok(mut nl) = super::netlink::Netlink::open() {
        if let Ok(Some(l)) = nl.link(&net.bridge) {
            let _ = nl.delete_link(l.index);
        }
    }
    if super::nat::exists(&net.bridge) {
        let _ = super::nat::remove(&net.bridge);
    }
    let _ = fs::remove_dir_all(net.state_dir());
    let path = dir(root).join(format!("{}.json", def.name));
    fs::remove_file(&path).map_err(io_err("remove", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_picked_past_the_taken_ones() {
        let t = |s: &str| (String::from("x"), s.parse::<Subnet>().unwrap());
        assert_eq!(
            pick_subnet(&[t("10.87.0.0/16")]).unwrap().to_string(),
            "10.88.0.0/24"
        );
        assert_eq!(
            pick_subnet(&[t("10.87.0.0/16"), t("10.88.0.0/24"), t("10.88.1.0/25")])
                .unwrap()
                .to_string(),
            "10.88.2.0/24"
        );
        assert_eq!(
            pick_subnet(&[t("10.88.0.0/16")]).unwrap().to_string(),
            "10.89.0.0/24"
        );
        if cfg!(target_endian = "little") {
            let table = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
                eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                br0\t0058A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
            let r = routed(table);
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].1.to_string(), "192.168.88.0/24");
        }
        assert!(overlaps(
            "10.0.0.0/8".parse().unwrap(),
            "10.88.3.0/24".parse().unwrap()
        ));
    }

    #[test]
    fn definitions_are_created_listed_and_checked() {
        let root = tempfile::tempdir().unwrap();
        let a = create(root.path(), "a", None, None).unwrap();
        // 10.88.0.0/24 unless this host routes to it.
        let sa: Subnet = a.subnet.parse().unwrap();
        assert!(a.subnet.starts_with("10.") && sa.prefix == 24, "{a:?}");
        assert_eq!(a.gateway, sa.gateway().to_string());
        let b = create(
            root.path(),
            "b",
            Some("192.168.50.0/24"),
            Some("192.168.50.254"),
        )
        .unwrap();
        assert_eq!(b.gateway, "192.168.50.254");
        assert!(matches!(
            create(root.path(), "a", None, None),
            Err(UserNetError::Exists(_))
        ));
        assert!(matches!(
            create(root.path(), "c", Some(&format!("{}/25", sa.network)), None),
            Err(UserNetError::Overlap(..))
        ));
        assert!(matches!(
            create(root.path(), "host", None, None),
            Err(UserNetError::Predefined(_))
        ));
        assert!(create(root.path(), "-x", None, None).is_err());
        assert_eq!(list(root.path()).len(), 2);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(root.path().join("networks"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(load(root.path(), &b.id[..6]).unwrap(), b);
        let net = a.network(root.path());
        assert!(net.bridge.len() <= 15 && net.bridge.starts_with("rbox-"));
        assert_ne!(net.bridge, b.network(root.path()).bridge);
    }
}
