//! The parser must never panic, whatever it is given: random bytes,
//! random tokens, and mutations of valid Containerfiles. Every input is
//! also pushed through the rest of the API (planning, expansion, display,
//! ignore patterns), since the executor calls those on parser output.
//! A small deterministic PRNG keeps failures reproducible.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use builder::parse::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "# syntax=docker/dockerfile:1\n# escape=`\nARG BASE=busybox\nFROM ${BASE} AS b\nRUN echo `\n  hi\n",
    "FROM busybox AS build\nRUN --mount=type=cache,target=/c,id=x,sharing=locked <<EOF\nset -e\necho $A\nEOF\nFROM build\nCOPY --from=build --chown=1:1 --chmod=0755 --exclude=*.tmp a b /d/\n",
    "FROM scratch\nCOPY <<-A <<\"B\" /etc/\n\tone\n\tA\ntwo\nB\nADD https://x/y.tgz /z\nENV A=1 B=\"2 3\" C\\ D=4\nLABEL a=b\n",
    "FROM x\nHEALTHCHECK --interval=1m30s --retries=3 CMD [\"/bin/true\"]\nONBUILD RUN make\nEXPOSE 80/tcp 53/udp 1-2\nVOLUME [\"/a\"]\nSHELL [\"/bin/sh\",\"-c\"]\nSTOPSIGNAL SIGTERM\nUSER 1:1\nWORKDIR ${W:-/w}\nCMD [\"a\"]\nENTRYPOINT b\nMAINTAINER me\n",
    "FROM a AS one\nFROM b AS two\nCOPY --from=one / /\nRUN --mount=type=bind,from=one,target=/t true\nFROM two\nCOPY --from=0 x /x\n",
];

const TOKENS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "WORKDIR",
    "USER",
    "CMD",
    "ENTRYPOINT",
    "EXPOSE",
    "VOLUME",
    "SHELL",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
    " ",
    " ",
    "\n",
    "\n",
    "\\\n",
    "`\n",
    "\\",
    "`",
    "\"",
    "'",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    ":?",
    "-",
    "+",
    "=",
    "[",
    "]",
    ",",
    "<<",
    "<<-",
    "EOF",
    "\"EOF\"",
    "--",
    "--from=",
    "--mount=",
    "type=cache",
    "type=bind",
    "target=/",
    "--chown=",
    "--network=",
    "AS",
    "scratch",
    "busybox",
    "#",
    "# escape=`",
    "\t",
    "\r\n",
    "0",
    "9999999999999999999999",
    "/",
    "*",
    "**",
    "!",
    "é",
    "\u{feff}",
    "NONE",
    "--interval=",
    "1m",
    "sharing=",
    "from=",
    "a",
    "b",
];

/// Returns whether the text parsed, so tests can show they got deep.
fn exercise(text: &str) -> bool {
    let Ok(cf) = Containerfile::parse("Containerfile", text) else {
        return false;
    };
    let _ = cf.stages_needed(None);
    for stage in &cf.stages {
        let _ = cf.stages_needed(stage.name.as_deref());
        let mut ex = cf.stage_expander();
        ex.set_env_pairs(["PATH=/bin", "A=1"]);
        for step in &stage.steps {
            let _ = step.instruction.to_string();
            if let Ok(e) = step.expand(&ex) {
                let _ = e.to_string();
                if let Instruction::Run(r) = &e {
                    let _ = r.script();
                }
                if let Instruction::Copy(c) | Instruction::Add(c) = &e {
                    if let Some(f) = &c.from {
                        let _ = cf.resolve_from(step, stage.index, f);
                    }
                    if let Ok(filter) = ContextFilter::from_patterns(&c.excludes) {
                        let _ = filter.is_excluded(Path::new("a/b/c.tmp"));
                    }
                }
                ex.apply(&e);
            }
        }
    }
    true
}

fn check(text: &str) -> bool {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let parsed = exercise(text);
        if let Ok(f) = ContextFilter::parse("ignore", text) {
            for p in ["a", "a/b", "a/b/c.txt", ".", "../x", "/abs/p", "é/[x]"] {
                let _ = f.is_excluded(Path::new(p));
            }
        }
        let _ = Expander::new('\\').expand_word(text);
        let _ = Expander::new('`').expand_heredoc(text);
        parsed
    }));
    match r {
        Ok(parsed) => parsed,
        Err(_) => panic!("panicked on input {text:?}"),
    }
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn random_tokens() {
    let mut rng = Rng(42);
    for _ in 0..5000 {
        let n = rng.below(40);
        let mut text = String::new();
        if rng.below(2) == 0 {
            text.push_str("FROM busybox\n");
        }
        for _ in 0..n {
            text.push_str(TOKENS[rng.below(TOKENS.len())]);
        }
        let _ = check(&text);
    }
}

#[test]
fn mutated_valid_files() {
    for seed in SEEDS {
        Containerfile::parse("Containerfile", seed).unwrap_or_else(|e| panic!("seed invalid: {e}"));
    }
    let mut rng = Rng(7);
    let mut parsed = 0;
    for _ in 0..5000 {
        let mut chars: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(chars.len() + 1);
            match rng.below(4) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => {
                    let tok = TOKENS[rng.below(TOKENS.len())];
                    for (k, c) in tok.chars().enumerate() {
                        chars.insert((at + k).min(chars.len()), c);
                    }
                }
                2 if at < chars.len() => chars.truncate(at),
                _ => {
                    // Duplicate a slice somewhere else.
                    let end = (at + rng.below(20)).min(chars.len());
                    let slice: Vec<char> = chars.get(at..end).unwrap_or(&[]).to_vec();
                    let to = rng.below(chars.len() + 1);
                    for (k, c) in slice.into_iter().enumerate() {
                        chars.insert((to + k).min(chars.len()), c);
                    }
                }
            }
        }
        if check(&chars.into_iter().collect::<String>()) {
            parsed += 1;
        }
    }
    // Mutants that still parse are what exercise planning and expansion.
    assert!(parsed > 250, "only {parsed} of 5000 mutants parsed");
}

#[test]
fn pathological_sizes() {
    for text in [
        "\\\n".repeat(10_000),
        format!("FROM x\nWORKDIR {}\n", "${A:-".repeat(2000)),
        format!("FROM x\nENV A={}\n", "\"".repeat(5001)),
        format!("FROM x\nRUN {}\n", "<<A ".repeat(500)),
    ] {
        let _ = check(&text);
    }
    let f = ContextFilter::parse("x", &"*".repeat(300)).unwrap();
    assert!(f.is_excluded(Path::new(&"a".repeat(3000))));
    let f = ContextFilter::parse("x", &"**/a".repeat(100)).unwrap();
    let _ = f.is_excluded(Path::new(&"a/".repeat(500)));
}
