//! Image references as users type them: `busybox`, `busybox:1.36`,
//! `localhost:5000/team/app:v2`. A bare name means tag `latest`, as in Docker.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// Repository name, possibly with a registry host: `team/app`, `localhost:5000/app`.
    pub name: String,
    pub tag: String,
}

impl ImageRef {
    pub fn new(name: &str, tag: &str) -> Result<ImageRef, ReferenceError> {
        format!("{name}:{tag}").parse()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn err(input: &str, reason: &'static str) -> ReferenceError {
    ReferenceError {
        input: input.to_string(),
        reason,
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(err(input, "empty"));
        }
        // The tag is after the last ':' that follows the last '/', so that a
        // registry port (`localhost:5000/app`) is not mistaken for a tag.
        let last_slash = input.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match input[last_slash..].rfind(':') {
            Some(i) => (&input[..last_slash + i], &input[last_slash + i + 1..]),
            None => (input, "latest"),
        };
        validate_tag(input, tag)?;
        validate_name(input, name)?;
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

fn validate_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    // distribution spec: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(err(
            input,
            "tag must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
        ))
    }
}

fn validate_name(input: &str, name: &str) -> Result<(), ReferenceError> {
    if name.len() > 255 {
        return Err(err(input, "name longer than 255 characters"));
    }
    for (i, component) in name.split('/').enumerate() {
        // The first component may be a registry host with a port.
        let is_host = i == 0
            && name.contains('/')
            && (component.contains('.') || component.contains(':') || component == "localhost");
        let ok = if is_host {
            component
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
                && component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        } else {
            // Lower-case alphanumerics separated by '.', '_', '__' or '-';
            // this also rules out "", ".", ".." as path components.
            !component.is_empty()
                && component
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && component
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && component.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        if !ok {
            return Err(err(
                input,
                "name components must be lower-case letters and digits separated by '.', '_' or '-'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_style_references() {
        let r: ImageRef = "busybox".parse().unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("busybox", "latest"));
        let r: ImageRef = "localhost:5000/team/app:v2".parse().unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str()),
            ("localhost:5000/team/app", "v2")
        );
        let r: ImageRef = "localhost:5000/app".parse().unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str()),
            ("localhost:5000/app", "latest")
        );
    }

    #[test]
    fn refuses_path_tricks_and_bad_tags() {
        for bad in [
            "", "../x", "a/../b", "A", "a:", "a:.x", "/abs", "a//b", "a/.",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} accepted");
        }
    }
}
