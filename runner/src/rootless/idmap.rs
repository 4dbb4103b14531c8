//! The user namespace's id maps: a user's subordinate ranges from
//! `/etc/subuid` and `/etc/subgid` (shadow's format, `NAME_OR_ID:START:COUNT`
//! a line), and the map rbox asks `newuidmap`/`newgidmap` for.
//!
//! Decisions only (no syscalls): the files are parsed as text, so that
//! the unit tests run without root. The setuid helpers check every range
//! against the same files again: what is parsed here only decides which
//! map to ask for and what to say when there is none.

use std::path::Path;

/// One subordinate range: host ids `start .. start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// One line of a uid_map or gid_map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The kernel takes at most 340 lines per map (Linux 4.15); ours are far
/// fewer: the user's own id plus at most this many ranges.
pub const MAX_RANGES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdMapError {
    #[error("{file} line {line}: {what} (expected NAME_OR_ID:START:COUNT)")]
    BadLine {
        file: String,
        line: usize,
        what: String,
    },
}

/// The ranges of `user` (by name, or by numeric id `id`) in a subid file's
/// `text`, in file order. Lines of other users are not parsed beyond their
/// first field; comments and blank lines are skipped. A range that would
/// wrap past u32, has no ids, or holds the host's uid 0 is an error naming
/// the line: newuidmap would refuse it anyway, less clearly.
pub fn ranges_for(text: &str, file: &Path, user: &str, id: u32) -> Result<Vec<Range>, IdMapError> {
    let id_s = id.to_string();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split(':');
        let who = f.next().unwrap_or("");
        if who != user && who != id_s {
            continue;
        }
        let bad = |what: &str| IdMapError::BadLine {
            file: file.display().to_string(),
            line: n + 1,
            what: what.to_string(),
        };
        let (Some(s), Some(c), None) = (f.next(), f.next(), f.next()) else {
            return Err(bad("not three fields"));
        };
        let start: u32 = s.parse().map_err(|_| bad("START is not a number"))?;
        let count: u32 = c.parse().map_err(|_| bad("COUNT is not a number"))?;
        if count == 0 {
            return Err(bad("COUNT is 0"));
        }
        if start == 0 {
            return Err(bad("the range holds the host's id 0"));
        }
        if start.checked_add(count).is_none() {
            return Err(bad("START + COUNT is past 4294967295"));
        }
        if out.len() == MAX_RANGES {
            break;
        }
        out.push(Range { start, count });
    }
    Ok(out)
}

/// The map rbox asks for: the user's own id as 0 inside, then each range
/// from 1 on, in order. A range holding the user's own id is skipped (an
/// id cannot be mapped twice; newuidmap refuses overlapping lines).
pub fn map_for(own: u32, ranges: &[Range]) -> Vec<Extent> {
    let mut map = vec![Extent {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next = 1u32;
    for r in ranges {
        if (r.start..r.start + r.count).contains(&own) {
            continue;
        }
        let Some(end) = next.checked_add(r.count) else {
            break;
        };
        map.push(Extent {
            inside: next,
            outside: r.start,
            count: r.count,
        });
        next = end;
    }
    map
}

/// newuidmap's arguments after the pid: `inside outside count` per line.
pub fn helper_args(map: &[Extent]) -> Vec<String> {
    map.iter()
        .flat_map(|e| [e.inside, e.outside, e.count])
        .map(|v| v.to_string())
        .collect()
}

/// The host id that id `inside` of the namespace is, if it is mapped.
pub fn to_host(map: &[Extent], inside: u32) -> Option<u32> {
    map.iter().find_map(|e| {
        (inside >= e.inside && inside - e.inside < e.count).then(|| e.outside + (inside - e.inside))
    })
}

/// A /proc/PID/uid_map's text as extents.
pub fn parse_proc_map(text: &str) -> Vec<Extent> {
    text.lines()
        .filter_map(|l| {
            let v: Vec<u32> = l
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            match v.as_slice() {
                [inside, outside, count] => Some(Extent {
                    inside: *inside,
                    outside: *outside,
                    count: *count,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(text: &str) -> Result<Vec<Range>, IdMapError> {
        ranges_for(text, Path::new("/etc/subuid"), "alice", 1000)
    }

    #[test]
    fn lines_by_name_or_id_in_file_order() {
        let t = "# comment\nbob:100000:65536\nalice:165536:65536\n\n1000:300000:10\n";
        assert_eq!(
            ranges(t).unwrap(),
            vec![
                Range {
                    start: 165536,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 10
                }
            ]
        );
        assert_eq!(ranges("bob:100000:65536\n").unwrap(), vec![]);
    }

    #[test]
    fn bad_lines_of_the_user_are_named() {
        for (t, what) in [
            ("alice:1:2:3", "not three fields"),
            ("alice:x:2", "START is not a number"),
            ("alice:5:0", "COUNT is 0"),
            ("alice:0:10", "the range holds the host's id 0"),
            ("alice:4294967290:10", "past 4294967295"),
        ] {
            let e = ranges(t).unwrap_err().to_string();
            assert!(
                e.contains("/etc/subuid line 1") && e.contains(what),
                "{t}: {e}"
            );
        }
        // Other users' bad lines are not ours to judge.
        assert_eq!(ranges("bob:x:y:z\n").unwrap(), vec![]);
    }

    #[test]
    fn the_map_is_the_user_as_root_then_the_ranges() {
        let r = [
            Range {
                start: 165536,
                count: 65536,
            },
            Range {
                start: 900,
                count: 200,
            }, // holds 1000: skipped
            Range {
                start: 300000,
                count: 10,
            },
        ];
        let m = map_for(1000, &r);
        assert_eq!(
            helper_args(&m),
            ["0", "1000", "1", "1", "165536", "65536", "65537", "300000", "10"]
        );
        assert_eq!(to_host(&m, 0), Some(1000));
        assert_eq!(to_host(&m, 1000), Some(165536 + 999));
        assert_eq!(to_host(&m, 65537), Some(300000));
        assert_eq!(to_host(&m, 65547), None);
        assert_eq!(map_for(1000, &[]).len(), 1);
    }

    #[test]
    fn proc_maps_parse() {
        let m =
            parse_proc_map("         0       1000          1\n         1     165536      65536\n");
        assert_eq!(to_host(&m, 1), Some(165536));
    }
}
