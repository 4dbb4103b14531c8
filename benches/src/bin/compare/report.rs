//! Markdown tables, the per-section result files and the README section.

use std::fmt::Write as _;
use std::path::Path;

use benches::stats::fmt_ms;

use crate::interleave::Contender;

/// One table of results, already reduced to text.
pub struct Table {
    pub caption: String,
    pub markdown: String,
    /// (name, median seconds) of every row that ran, for plots and summaries.
    pub medians: Vec<(String, f64)>,
}

pub fn table(caption: &str, contenders: &[Contender<'_>]) -> Table {
    let base = contenders
        .iter()
        .find(|c| c.is_rbox && c.skipped.is_none() && !c.samples.is_empty())
        .map(|c| c.samples.median().as_secs_f64());
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| tool | median ms | min–max ms | × rbox | runs | notes |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
    let mut medians = Vec::new();
    for c in contenders {
        if let Some(reason) = &c.skipped {
            let _ = writeln!(
                md,
                "| {} | — | — | — | 0 | skipped: {} |",
                c.name,
                escape(reason)
            );
            continue;
        }
        let m = c.samples.median();
        medians.push((c.name.clone(), m.as_secs_f64()));
        let ratio = match base {
            Some(b) if b > 0.0 => format!("{:.2}", m.as_secs_f64() / b),
            _ => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {}–{} | {} | {} | {} |",
            c.name,
            fmt_ms(m),
            fmt_ms(c.samples.min()),
            fmt_ms(c.samples.max()),
            ratio,
            c.samples.len(),
            escape(&c.note)
        );
    }
    let mut cmds = String::new();
    for c in contenders.iter().filter(|c| !c.command.is_empty()) {
        let _ = writeln!(
            cmds,
            "- {}: `{}`",
            c.name,
            portable(&c.command).replace('`', "'")
        );
    }
    if !cmds.is_empty() {
        let _ = write!(
            md,
            "\n<details><summary>commands timed</summary>\n\n{cmds}\n</details>\n"
        );
    }
    Table {
        caption: caption.to_string(),
        markdown: md,
        medians,
    }
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub struct Section {
    pub key: &'static str,
    pub title: String,
    pub intro: Vec<String>,
    pub tables: Vec<Table>,
    pub plots: Vec<(String, String)>,
    pub notes: Vec<String>,
}

impl Section {
    pub fn new(key: &'static str, title: &str) -> Section {
        Section {
            key,
            title: title.to_string(),
            intro: Vec::new(),
            tables: Vec::new(),
            plots: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn markdown(&self, header: &str) -> String {
        let mut md = format!(
            "<a id=\"perf-{}\"></a>\n\n### {}\n\n{header}\n\n",
            self.key, self.title
        );
        for p in &self.intro {
            let _ = writeln!(md, "{p}\n");
        }
        for t in &self.tables {
            let _ = writeln!(md, "**{}**\n\n{}", t.caption, t.markdown);
        }
        for (file, alt) in &self.plots {
            let _ = writeln!(md, "![{alt}]({file})\n");
        }
        for n in &self.notes {
            let _ = writeln!(md, "- {n}");
        }
        md
    }
}

/// Rewrite the part of `readme` between the perf markers; the rest of the
/// file is the lead's and is left byte for byte.
pub fn rewrite_readme(readme: &Path, body: &str) -> Result<(), String> {
    const BEGIN: &str = "<!-- perf:begin -->";
    const END: &str = "<!-- perf:end -->";
    let text =
        std::fs::read_to_string(readme).map_err(|e| format!("read {}: {e}", readme.display()))?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!(
            "{} has no `{BEGIN}` … `{END}` section: ask the README's owner to add the markers",
            readme.display()
        ));
    };
    if e < b {
        return Err(format!(
            "{}: `{END}` comes before `{BEGIN}`",
            readme.display()
        ));
    }
    let new = format!("{}{BEGIN}\n{}\n{}", &text[..b], body.trim_end(), &text[e..]);
    let tmp = readme.with_extension("md.tmp");
    std::fs::write(&tmp, new).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, readme).map_err(|e| format!("rename {}: {e}", readme.display()))
}

/// A part's result file shortened for the README: no per-command details
/// (they stay in benches/results/), growth reduced to its plots, and links
/// made relative to the repository root.
pub fn readme_digest(text: &str, plots_only: bool) -> String {
    let mut out = String::new();
    let mut in_details = false;
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("<details>") {
            in_details = true;
        }
        if in_details {
            if line.starts_with("</details>") {
                in_details = false;
            }
            continue;
        }
        if plots_only {
            in_table = line.starts_with('|') || (in_table && line.is_empty());
            if in_table || line.starts_with("**") {
                continue;
            }
        }
        let _ = writeln!(out, "{}", line.replace("](", "](../benches/results/"));
    }
    // Collapse the blank runs left where blocks were dropped.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    if plots_only {
        out.push_str("\nTables: [benches/results/growth.md](../benches/results/growth.md).\n");
    }
    out
}

/// A command line as anyone can run it: the repository's root becomes `.`,
/// the directory of the binaries `target/release`, the scratch directory
/// `$RBOX_BENCH_DIR` (`/var/tmp/rbox-bench` unless set). Results files
/// must not carry the paths of the machine that measured them.
pub fn portable(command: &str) -> String {
    let mut out = command.to_string();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut replace = |from: Option<std::path::PathBuf>, to: &str| {
        if let Some(from) = from.and_then(|p| p.canonicalize().ok()) {
            let from = from.to_string_lossy().into_owned();
            if from.len() > 1 {
                out = out.replace(&from, to);
            }
        }
    };
    replace(
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
        "target/release",
    );
    replace(Some(benches::cache_dir()), "$RBOX_BENCH_DIR");
    replace(Some(repo), ".");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_lose_the_machines_paths() {
        let exe_dir = std::env::current_exe().unwrap();
        let exe_dir = exe_dir.parent().unwrap().canonicalize().unwrap();
        let line = format!("{}/rrun --root /x run", exe_dir.display());
        assert_eq!(super::portable(&line), "target/release/rrun --root /x run");
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .canonicalize()
            .unwrap();
        let line = format!("--readme-path {}/README.md", repo.display());
        assert_eq!(super::portable(&line), "--readme-path ./README.md");
    }
}
