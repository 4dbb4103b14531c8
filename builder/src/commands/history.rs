//! `rbuild history [--no-trunc] [-q] IMAGE`: the image's history, newest
//! first, as `docker history` prints it: each step with its instruction,
//! the size of the layer it made (the layer blob, compressed) and its age.
//! Steps that made no layer (ENV, CMD, ...) show 0B.

use std::path::Path;

use anyhow::Context;

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Image, NAME[:TAG] or ID
    pub image: String,
}

/// One row of the table: (created, created by, layer size, comment).
pub fn rows(
    config: &engine::image::ImageConfig,
    layer_sizes: &[u64],
) -> Vec<(String, String, u64, String)> {
    let mut sizes = layer_sizes.iter();
    let mut rows: Vec<_> = config
        .history
        .iter()
        .map(|h| {
            let size = if h.empty_layer {
                0
            } else {
                sizes.next().copied().unwrap_or(0)
            };
            (
                h.created.clone().unwrap_or_default(),
                h.created_by.clone().unwrap_or_default(),
                size,
                h.comment.clone().unwrap_or_default(),
            )
        })
        .collect();
    rows.reverse();
    rows
}

fn age(created: &str) -> String {
    // RFC 3339 from our own configs; anything else is shown as given.
    let Some(secs) = parse_rfc3339(created) else {
        return created.to_string();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let d = (now - secs).max(0);
    match d {
        0..=59 => format!("{d} seconds ago"),
        60..=3599 => format!("{} minutes ago", d / 60),
        3600..=86_399 => format!("{} hours ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

/// `YYYY-MM-DDTHH:MM:SS…Z` to Unix seconds (days-from-civil).
fn parse_rfc3339(t: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

pub fn run(root: &Path, args: HistoryArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let image = store
        .find_image(&args.image)
        .with_context(|| format!("history of {}", args.image))?;
    let sizes: Vec<u64> = image.manifest.layers.iter().map(|l| l.size).collect();
    let rows = rows(&image.config, &sizes);
    let id = if args.no_trunc {
        image.manifest_digest.to_string()
    } else {
        image.manifest_digest.short().to_string()
    };
    if args.quiet {
        for (i, _) in rows.iter().enumerate() {
            println!("{}", if i == 0 { id.as_str() } else { "<missing>" });
        }
        return Ok(());
    }
    println!(
        "{:<14} {:<16} {:<46} {:>10} COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    );
    for (i, (created, by, size, comment)) in rows.iter().enumerate() {
        let by = by.replace('\n', " ");
        let by = if args.no_trunc || by.chars().count() <= 45 {
            by
        } else {
            by.chars().take(44).collect::<String>() + "…"
        };
        println!(
            "{:<14} {:<16} {:<46} {:>10} {}",
            if i == 0 { id.as_str() } else { "<missing>" },
            age(created),
            by,
            super::human_size(*size),
            comment
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::image::{History, ImageConfig};

    #[test]
    fn rows_pair_layers_with_their_steps_newest_first() {
        let mut c = ImageConfig::scratch();
        for (by, empty) in [
            ("ADD rootfs", false),
            ("ENV A=b", true),
            ("RUN make", false),
        ] {
            c.history.push(History {
                created: Some("2026-01-02T03:04:05Z".into()),
                created_by: Some(by.into()),
                comment: None,
                empty_layer: empty,
            });
        }
        let r = rows(&c, &[100, 7]);
        let got: Vec<(&str, u64)> = r.iter().map(|(_, b, s, _)| (b.as_str(), *s)).collect();
        assert_eq!(got, [("RUN make", 7), ("ENV A=b", 0), ("ADD rootfs", 100)]);
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01Z"), Some(86_401));
        assert_eq!(
            parse_rfc3339(&engine::image::rfc3339(1_700_000_000)),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
