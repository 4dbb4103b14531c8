//! How big one layer may get when it is expanded: its uncompressed size
//! and its number of entries. A few KiB of zstd or a sparse tar can claim
//! terabytes; these bound every path that expands a layer (unpack of an
//! image's layers, import, load, pull, a build's ADD of a local tarball)
//! so such a stream fails cleanly, naming the limit, before it fills the
//! disk.
//!
//! The defaults are far above any real image (distribution base layers
//! are well under 1 GiB and 100,000 entries; the largest layers seen in
//! the wild, CUDA and ML toolchains, a few tens of GiB). Set
//! `RBOX_MAX_LAYER_BYTES` (an integer, or with a K/M/G/T suffix, powers of
//! 1024) and `RBOX_MAX_LAYER_ENTRIES` to change them for every command.

/// The environment variable for [`UnpackLimits::max_bytes`].
pub const ENV_MAX_BYTES: &str = "RBOX_MAX_LAYER_BYTES";
/// The environment variable for [`UnpackLimits::max_entries`].
pub const ENV_MAX_ENTRIES: &str = "RBOX_MAX_LAYER_ENTRIES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// The most bytes a layer may expand to, counted two ways, each
    /// bounded: its uncompressed tar stream, and the sum of its regular
    /// files' sizes (sparse files at their full size).
    pub max_bytes: u64,
    /// The most entries (files, directories, links, ...) in one layer.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits::DEFAULT
    }
}

/// A limit given in the environment that is not a number.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not a valid limit: {reason} (use an integer, optionally with a K, M, G or T suffix)")]
pub struct LimitError {
    pub var: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl UnpackLimits {
    /// 64 GiB and 2,097,152 entries.
    pub const DEFAULT: UnpackLimits = UnpackLimits {
        max_bytes: 64 << 30,
        max_entries: 1 << 21,
    };

    /// The defaults, with what `RBOX_MAX_LAYER_BYTES` and
    /// `RBOX_MAX_LAYER_ENTRIES` set instead.
    pub fn from_env() -> Result<UnpackLimits, LimitError> {
        let mut limits = UnpackLimits::DEFAULT;
        if let Some(v) = std::env::var_os(ENV_MAX_BYTES) {
            limits.max_bytes = parse_limit(ENV_MAX_BYTES, &v.to_string_lossy())?;
        }
        if let Some(v) = std::env::var_os(ENV_MAX_ENTRIES) {
            limits.max_entries = parse_limit(ENV_MAX_ENTRIES, &v.to_string_lossy())?;
        }
        Ok(limits)
    }
}

/// `123`, `64G`, `512MiB`, `2k`: an integer, times a power of 1024 for a
/// K, M, G or T suffix (an `i` and a `B` after it are allowed).
pub fn parse_limit(var: &'static str, value: &str) -> Result<u64, LimitError> {
    let err = |reason| LimitError {
        var,
        value: value.to_string(),
        reason,
    };
    let s = value.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(err("it does not start with a number"));
    }
    let (num, suffix) = s.split_at(digits);
    let num: u64 = num.parse().map_err(|_| err("the number is too large"))?;
    let suffix = suffix.trim_start().to_ascii_lowercase();
    let suffix = suffix.strip_suffix('b').unwrap_or(&suffix);
    let suffix = suffix.strip_suffix('i').unwrap_or(suffix);
    let shift = match suffix {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(err("unknown suffix")),
    };
    let n = num
        .checked_mul(1 << shift)
        .ok_or_else(|| err("the number is too large"))?;
    if n == 0 {
        return Err(err("a limit of 0 would refuse every layer"));
    }
    Ok(n)
}

/// `n` bytes in the largest binary unit that shows it whole: `64 GiB`,
/// `1536 MiB`, `1000 bytes`.
pub fn show_bytes(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::{parse_limit, show_bytes};

    #[test]
    fn byte_limits_show_in_whole_units() {
        assert_eq!(show_bytes(64 << 30), "64 GiB");
        assert_eq!(show_bytes(1536 << 20), "1536 MiB");
        assert_eq!(show_bytes(1000), "1000 bytes");
    }

    #[test]
    fn limits_parse_with_binary_suffixes_and_refuse_nonsense() {
        let p = |v| parse_limit("X", v).map_err(|e| e.to_string());
        assert_eq!(p("123"), Ok(123));
        assert_eq!(p("64G"), Ok(64 << 30));
        assert_eq!(p("512MiB"), Ok(512 << 20));
        assert_eq!(p("2k"), Ok(2048));
        assert_eq!(p(" 1 T "), Ok(1 << 40));
        for bad in ["", "G", "-1", "1.5G", "12Q", "0", "99999999999T"] {
            let e = p(bad).unwrap_err();
            assert!(e.starts_with("X="), "{bad:?}: {e}");
        }
    }
}
