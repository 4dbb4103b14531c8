//! One-line error messages for the command-line tools.
//!
//! rbox's error types put the OS error in their own message *and* expose it
//! as `source()` (so callers can still inspect it). Printing the whole chain
//! naively would then say "ENOSPC: ENOSPC"; this joins the chain and drops
//! any cause whose text a message before it already contains.

use std::error::Error;

/// The chain `e, e.source(), …` on one line, without repeated causes.
pub fn one_line<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut out = String::new();
    for cause in chain {
        let msg = cause.to_string();
        if out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Debug, thiserror::Error)]
    #[error("write {path}: {source}")]
    struct WithSource {
        path: &'static str,
        #[source]
        source: io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("import failed")]
    struct Outer(#[source] WithSource);

    fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
        std::iter::successors(Some(e), |&e| e.source())
    }

    #[test]
    fn an_os_error_in_the_message_is_not_repeated() {
        let e = Outer(WithSource {
            path: "/store/blobs/x",
            source: io::Error::from_raw_os_error(28),
        });
        let line = one_line(chain(&e));
        assert_eq!(
            line,
            "import failed: write /store/blobs/x: No space left on device (os error 28)"
        );
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let e = WithSource {
            path: "a",
            source: io::Error::other("b"),
        };
        let wrapped = Outer(e);
        assert_eq!(one_line(chain(&wrapped)), "import failed: write a: b");
    }
}
