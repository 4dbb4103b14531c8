//! `rbuild build --check`: everything about a Containerfile that can be
//! known without running it, as `docker build --check` does. Errors
//! (unknown instructions and flags, stage cycles, a `--target` or a
//! `--from` naming no stage, bad variable expansions) stop the check;
//! warnings follow a few of BuildKit's lint rules, named as BuildKit
//! names them.

use crate::parse::{Command, Containerfile, Instruction, ParseError};

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    /// BuildKit's rule name (`JSONArgsRecommended`, …).
    pub rule: &'static str,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.rule, self.message
        )
    }
}

/// Walk the stages `target` needs as the executor would, expanding each
/// instruction with the variables in scope (the base image's ENV is not
/// known without the image: only the Containerfile's own are).
pub fn check(cf: &Containerfile, target: Option<&str>) -> Result<Vec<Warning>, ParseError> {
    let needed = cf.stages_needed(target)?;
    let mut warnings = Vec::new();
    for &i in &needed {
        let stage = &cf.stages[i];
        let mut ex = cf.stage_expander();
        for step in &stage.steps {
            let expanded = step.expand(&ex)?;
            match &expanded {
                Instruction::Copy(c) | Instruction::Add(c) => {
                    if let Some(from) = &c.from {
                        cf.resolve_from(step, i, from)?;
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        if let Some(from) = &m.from {
                            cf.resolve_from(step, i, from)?;
                        }
                    }
                }
                Instruction::Cmd(Command::Shell(_)) | Instruction::Entrypoint(Command::Shell(_)) => {
                    warnings.push(Warning {
                        file: step.file.to_string(),
                        line: step.line,
                        rule: "JSONArgsRecommended",
                        message: format!(
                            "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                            expanded.keyword()
                        ),
                    });
                }
                Instruction::Maintainer(_) => warnings.push(Warning {
                    file: step.file.to_string(),
                    line: step.line,
                    rule: "MaintainerDeprecated",
                    message: "the MAINTAINER instruction is deprecated, use a label instead to define an image author".into(),
                }),
                _ => {}
            }
            ex.apply(&expanded);
        }
    }
    for arg in cf.unused_build_args() {
        warnings.push(Warning {
            file: cf.file.clone(),
            line: 0,
            rule: "UnusedBuildArg",
            message: format!("build arg {arg} was given but no ARG declares it"),
        });
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(text: &str, target: Option<&str>) -> Result<Vec<String>, String> {
        let mut args = BTreeMap::new();
        args.insert("NOPE".to_string(), "1".to_string());
        let cf = Containerfile::parse_with_args("Containerfile", text, &args)
            .map_err(|e| e.to_string())?;
        check(&cf, target)
            .map(|w| w.iter().map(|w| w.to_string()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn lints_and_errors_without_building() {
        let w = run(
            "FROM busybox\nMAINTAINER me\nCMD echo hi\nENTRYPOINT [\"sh\"]\n",
            None,
        )
        .unwrap();
        assert_eq!(
            w,
            [
                "Containerfile:2: MaintainerDeprecated: the MAINTAINER instruction is deprecated, use a label instead to define an image author",
                "Containerfile:3: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
                "Containerfile:0: UnusedBuildArg: build arg NOPE was given but no ARG declares it",
            ]
        );
        let e = run("FROM busybox\nCOPY --from=5 /a /b\n", None).unwrap_err();
        assert!(e.contains("Containerfile:2") && e.contains("5"), "{e}");
        let e = run("FROM busybox AS a\nFROM a\n", Some("b")).unwrap_err();
        assert!(e.contains("b"), "{e}");
        let e = run("FROM busybox\nENV X=${Y\n", None).unwrap_err();
        assert!(e.contains("Containerfile:2"), "{e}");
        let e = run("FROM busybox\nRUNN true\n", None).unwrap_err();
        assert!(e.contains("RUNN"), "{e}");
    }
}
