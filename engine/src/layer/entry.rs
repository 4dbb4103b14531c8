//! An entry's metadata as the tar stream carries it (ustar fields, with
//! PAX records taking precedence).

use std::ffi::CString;
use std::io::Read;

use super::sparse::PaxSparse;

/// PAX prefix of extended attributes (the GNU/star/bsdtar convention).
pub const PAX_XATTR: &str = "SCHILY.xattr.";
// The overlay's own xattrs (`crate::rootless::is_overlay_xattr`): we
// write the opaque marker ourselves from `.wh..wh..opq`, and never accept
// any other (redirect, origin, metacopy) from a layer, where they could
// make overlayfs show another path.

#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub xattrs: Vec<(CString, Vec<u8>)>,
    /// GNU PAX sparse records, if any.
    pub sparse: Option<PaxSparse>,
}

/// Why an entry's header could not be read.
pub enum MetaError {
    Io(std::io::Error),
    Invalid(String),
}

impl Meta {
    pub fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, MetaError> {
        let h = entry.header();
        let mode = h.mode().map_err(MetaError::Io)?;
        // The tar crate already folds PAX uid/gid into the header.
        let uid = h.uid().map_err(MetaError::Io)?;
        let gid = h.gid().map_err(MetaError::Io)?;
        let mut mtime = h.mtime().map_err(MetaError::Io)? as i64;
        let mut mtime_nsec = 0;
        let (uid, gid) = match (u32::try_from(uid), u32::try_from(gid)) {
            (Ok(u), Ok(g)) if u != u32::MAX && g != u32::MAX => (u, g),
            _ => {
                return Err(MetaError::Invalid(format!(
                    "owner {uid}:{gid} is out of range"
                )))
            }
        };
        let mut xattrs = Vec::new();
        let mut sparse = PaxSparse::default();
        if let Some(exts) = entry.pax_extensions().map_err(MetaError::Io)? {
            for ext in exts {
                let ext = ext.map_err(MetaError::Io)?;
                let key = ext.key_bytes();
                if sparse.take(key, ext.value_bytes()) {
                    continue;
                }
                if key == b"mtime" {
                    if let Some((s, ns)) = parse_pax_time(ext.value_bytes()) {
                        (mtime, mtime_nsec) = (s, ns);
                    }
                } else if let Some(name) = key.strip_prefix(PAX_XATTR.as_bytes()) {
                    if crate::rootless::is_overlay_xattr(name) || name.is_empty() {
                        continue;
                    }
                    let name = CString::new(name)
                        .map_err(|_| MetaError::Invalid("xattr name contains NUL".into()))?;
                    xattrs.push((name, ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            mtime_nsec,
            xattrs,
            sparse: (sparse != PaxSparse::default()).then_some(sparse),
        })
    }
}

/// `SECONDS[.FRACTION]`, possibly negative, as PAX writes times.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    let mut ns: u32 = 0;
    let mut scale = 100_000_000;
    for c in frac.bytes().take(9) {
        if !c.is_ascii_digit() {
            return None;
        }
        ns += (c - b'0') as u32 * scale;
        scale /= 10;
    }
    if secs < 0 && ns > 0 {
        // -1.5 means 1.5 s before the epoch: -2 s + 0.5 s.
        return Some((secs - 1, 1_000_000_000 - ns));
    }
    Some((secs, ns))
}

#[cfg(test)]
mod tests {
    use super::parse_pax_time;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1700000000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.25"),
            Some((1700000000, 250_000_000))
        );
        assert_eq!(parse_pax_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
