//! Writing tar headers: ustar, with a PAX extended header in front when a
//! field does not fit (long names and link targets, big sizes and owners,
//! times outside ustar's range, xattrs). No user or group names: owners are
//! numeric, so the same tree gives the same bytes on every machine.

use std::io::{self, Write};

pub const BLOCK: usize = 512;
const USTAR_NAME: usize = 100;
const OCTAL_11: u64 = 0o77777777777;
const OCTAL_7: u64 = 0o7777777;

/// One entry as it will be written.
pub struct TarEntry<'a> {
    pub path: &'a [u8],
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub link: Option<&'a [u8]>,
    pub dev: Option<(u32, u32)>,
    /// Sorted by name by the caller.
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // "<len> <key>=<value>\n", where <len> counts its own digits.
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn put_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// The numeric ustar fields, already reduced to what fits (PAX has the rest).
struct Fields {
    uid: u64,
    gid: u64,
    mtime: u64,
    size: u64,
}

fn header(e: &TarEntry<'_>, f: Fields) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    put_bytes(&mut h.as_old_mut().name, e.path);
    h.set_mode(e.mode);
    h.set_uid(f.uid);
    h.set_gid(f.gid);
    h.set_mtime(f.mtime);
    h.set_size(f.size);
    h.set_entry_type(e.kind);
    put_bytes(&mut h.as_old_mut().linkname, e.link.unwrap_or(b""));
    if let Some((major, minor)) = e.dev {
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
    }
    h.set_cksum();
    Ok(h)
}

/// Write the entry's header(s); the caller then writes `size` body bytes
/// and calls [`pad`].
pub fn write_header<W: Write>(out: &mut W, e: &TarEntry<'_>) -> io::Result<()> {
    let mut pax = Vec::new();
    let link = e.link.unwrap_or(b"");
    if e.path.len() > USTAR_NAME {
        pax_record(&mut pax, b"path", e.path);
    }
    if link.len() > USTAR_NAME {
        pax_record(&mut pax, b"linkpath", link);
    }
    let size = if e.size > OCTAL_11 {
        pax_record(&mut pax, b"size", e.size.to_string().as_bytes());
        0
    } else {
        e.size
    };
    let uid = if e.uid > OCTAL_7 {
        pax_record(&mut pax, b"uid", e.uid.to_string().as_bytes());
        0
    } else {
        e.uid
    };
    let gid = if e.gid > OCTAL_7 {
        pax_record(&mut pax, b"gid", e.gid.to_string().as_bytes());
        0
    } else {
        e.gid
    };
    let mtime = if e.mtime < 0 || e.mtime as u64 > OCTAL_11 {
        pax_record(&mut pax, b"mtime", e.mtime.to_string().as_bytes());
        0
    } else {
        e.mtime as u64
    };
    for (k, v) in e.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        pax_record(&mut pax, &key, v);
    }
    if !pax.is_empty() {
        let pax_entry = TarEntry {
            path: b"././@PaxHeader",
            kind: tar::EntryType::XHeader,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: pax.len() as u64,
            link: None,
            dev: None,
            xattrs: &[],
        };
        let h = header(
            &pax_entry,
            Fields {
                uid: 0,
                gid: 0,
                mtime: 0,
                size: pax.len() as u64,
            },
        )?;
        out.write_all(h.as_bytes())?;
        out.write_all(&pax)?;
        pad(out, pax.len() as u64)?;
    }
    let h = header(
        e,
        Fields {
            uid,
            gid,
            mtime,
            size,
        },
    )?;
    out.write_all(h.as_bytes())
}

/// Zero-fill to the next block after a body of `size` bytes.
pub fn pad<W: Write>(out: &mut W, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks.
pub fn finish<W: Write>(out: &mut W) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

#[cfg(test)]
mod tests {
    use super::pax_record;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"abc");
        assert_eq!(v, b"12 path=abc\n");
        let mut v = Vec::new();
        pax_record(&mut v, b"k", &[b'x'; 95]);
        // 1 + 95 + 3 = 99, plus 3 digits = 102.
        assert_eq!(&v[..4], b"102 ");
        assert_eq!(v.len(), 102);
    }
}
