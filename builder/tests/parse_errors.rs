//! Malformed Containerfiles: each gets one error naming file, line and
//! what is wrong. The expected texts are the whole message a user sees.

use builder::parse::*;

const CASES: &[(&str, &str)] = &[
    ("", "Containerfile: the file is empty: a Containerfile needs at least one FROM instruction"),
    ("# only a comment\n\n", "Containerfile: the file is empty: a Containerfile needs at least one FROM instruction"),
    ("ARG A=1\n", "Containerfile: no FROM instruction: every build stage starts with FROM"),
    ("ENV A=1\nFROM x\n", "Containerfile:1: ENV before the first FROM: only ARG may come before FROM"),
    ("FROM x\n\n\n\n\n\nRUNN echo\n", "Containerfile:7: unknown instruction \"RUNN\" (did you mean RUN?)"),
    ("FROM x\nmaintainr me\n", "Containerfile:2: unknown instruction \"maintainr\" (did you mean MAINTAINER?)"),
    ("FROM x\nFOOBAR\n", "Containerfile:2: unknown instruction \"FOOBAR\""),
    ("FROM x\n\nCOPY --chwon=1 a /b\n", "Containerfile:3: COPY: unknown flag --chwon (did you mean --chown?)"),
    ("FROM x\nENV --foo=1 A=1\n", "Containerfile:2: ENV: unknown flag --foo"),
    ("FROM x\nADD --from=y a /b\n", "Containerfile:2: ADD: unknown flag --from"),
    ("FROM x\nCOPY --chown a /b\n", "Containerfile:2: COPY: --chown: needs a value: --chown=VALUE"),
    ("FROM x\nCOPY --link=maybe a /b\n", "Containerfile:2: COPY: --link: expected true or false, got \"maybe\""),
    ("FROM x\nCOPY --from=a --from=b a /b\n", "Containerfile:2: COPY: --from: given more than once"),
    ("FROM x\nRUN\n", "Containerfile:2: RUN requires at least one argument"),
    ("FROM x\nWORKDIR \\\n\n", "Containerfile:2: WORKDIR requires at least one argument"),
    ("FROM x\nRUN <<EOF\necho\n", "Containerfile:2: heredoc <<EOF is not terminated: no line \"EOF\" before the end of the file"),
    ("FROM x\nCOPY <<EOF\nhi\nEOF\n", "Containerfile:2: COPY: expected at least one source and a destination"),
    ("FROM x AS a\nFROM y AS a\n", "Containerfile:2: duplicate stage name \"a\": it was already defined at line 1"),
    ("FROM x AS 1bad\n", "Containerfile:1: invalid stage name \"1bad\": use lowercase letters, digits, '-', '_' and '.', starting with a letter"),
    ("FROM x y z\n", "Containerfile:1: FROM: expected FROM [--platform=P] IMAGE [AS NAME]"),
    ("FROM Not:An:Image\n", "Containerfile:1: FROM: \"Not:An:Image\" is neither an earlier stage nor a valid image reference"),
    ("FROM ${NOPE}\n", "Containerfile:1: FROM: \"${NOPE}\" expanded to an empty image name (is the ARG declared before FROM and set?)"),
    ("FROM x\nCOPY --from=Bad_Stage! a /b\n", "Containerfile:2: COPY: --from=Bad_Stage!: no earlier stage has that name, and it is not a valid image reference either"),
    ("FROM x\nCOPY --from=3 a /b\n", "Containerfile:2: COPY: --from=3: stage index 3 is not an earlier stage (this is stage 0)"),
    ("FROM x AS me\nCOPY --from=me a /b\n", "Containerfile:2: COPY: --from=me: a stage cannot refer to itself"),
    ("FROM x\nRUN --mount=type=bind,from=No!,target=/x true\n", "Containerfile:2: RUN: --mount from=No!: no earlier stage has that name, and it is not a valid image reference either"),
    ("FROM busybox AS a\nCOPY --from=b /x /x\nFROM a AS b\n", "Containerfile:1: stages form a cycle: a -> b -> a"),
    ("FROM x\nSHELL /bin/bash -c\n", "Containerfile:2: SHELL: the shell must be a JSON array of strings, e.g. SHELL [\"/bin/sh\", \"-c\"]"),
    ("# escape=x\nFROM x\n", "Containerfile:1: parser directive: invalid escape character \"x\": must be \\ or `"),
    ("# escape=\\\n# escape=`\nFROM x\n", "Containerfile:2: parser directive: only one \"escape\" directive may be given"),
    ("FROM x\nCOPY onlyone\n", "Containerfile:2: COPY: expected at least one source and a destination"),
    ("FROM x\nCOPY a b /notadir\n", "Containerfile:2: COPY: with several sources the destination must be a directory ending in '/' (got \"/notadir\")"),
    ("FROM x\nCOPY https://example.com/f /f\n", "Containerfile:2: COPY: cannot fetch URLs (https://example.com/f): use ADD"),
    ("FROM x\nCOPY --chmod=999 a /b\n", "Containerfile:2: COPY: --chmod: \"999\" is not an octal mode like 0755"),
    ("FROM x\nADD --checksum=sha256:0 a /b\n", "Containerfile:2: ADD: --checksum: applies only to URL sources"),
    ("FROM x\nENV A\n", "Containerfile:2: ENV: A has no value: use ENV A=VALUE"),
    ("FROM x\nENV A=1 B\n", "Containerfile:2: ENV: \"B\" has no '=': use NAME=VALUE"),
    ("FROM x\nLABEL =v\n", "Containerfile:2: LABEL: \"=v\": the name cannot be empty"),
    ("FROM x\nARG =1\n", "Containerfile:2: ARG: \"\" is not a valid argument name"),
    ("FROM x\nEXPOSE 80/xyz\n", "Containerfile:2: EXPOSE: \"80/xyz\": protocol must be tcp, udp or sctp"),
    ("FROM x\nEXPOSE http\n", "Containerfile:2: EXPOSE: \"http\": \"http\" is not a port number 1-65535"),
    ("FROM x\nSTOPSIGNAL SIGNOPE\n", "Containerfile:2: STOPSIGNAL: \"SIGNOPE\" is not a signal name or number"),
    ("FROM x\nHEALTHCHECK --interval=abc CMD true\n", "Containerfile:2: HEALTHCHECK: --interval: \"abc\" is not a duration like 30s, 1m30s or 500ms"),
    ("FROM x\nHEALTHCHECK --retries=-1 CMD true\n", "Containerfile:2: HEALTHCHECK: --retries: \"-1\" is not a whole number"),
    ("FROM x\nHEALTHCHECK NONE extra\n", "Containerfile:2: HEALTHCHECK: NONE takes no other arguments or flags"),
    ("FROM x\nHEALTHCHECK echo\n", "Containerfile:2: HEALTHCHECK: expected NONE or CMD, got \"echo\""),
    ("FROM x\nHEALTHCHECK CMD\n", "Containerfile:2: HEALTHCHECK: CMD needs a command"),
    ("FROM x\nONBUILD FROM y\n", "Containerfile:2: ONBUILD: FROM is not allowed as an ONBUILD trigger"),
    ("FROM x\nONBUILD RUNN y\n", "Containerfile:2: unknown instruction \"RUNN\" (did you mean RUN?)"),
    ("FROM x\nRUN --mount=type=cache a\n", "Containerfile:2: RUN: --mount: a mount needs target=PATH"),
    // BuildKit's testfiles/escapes: two words, the first an unterminated quote.
    ("FROM x\nADD \\conf\\\\\" /.znc\n", "Containerfile:2: ADD: bad variable syntax: unterminated double quote in \"\\\\conf\\\\\\\\\\\"\""),
    ("FROM x\nRUN --mount=type=ssh,target=/s a\n", "Containerfile:2: RUN: --mount: type=ssh mounts are not supported by rbuild"),
    ("FROM x\nRUN --mount=type=secret,id=x,from=y a\n", "Containerfile:2: RUN: --mount: type=secret takes id, target, env, required, mode, uid and gid"),
    ("FROM x\nRUN --mount=type=cache,target=/y,sharing=x a\n", "Containerfile:2: RUN: --mount: sharing=\"x\": use shared, private or locked"),
    ("FROM x\nRUN --network=bridge a\n", "Containerfile:2: RUN: --network: \"bridge\": use host, none or default"),
    ("FROM x\nVOLUME []\n", "Containerfile:2: VOLUME: a volume path cannot be empty"),
    ("FROM x\nWORKDIR ${A\n", "Containerfile:2: WORKDIR: bad variable syntax: unterminated ${ in \"${A\""),
    ("FROM x\nCOPY ${A/x/y} /b\n", "Containerfile:2: COPY: bad variable syntax: bad substitution in \"${A/x/y}\": unsupported modifier '/' after ${A (use :-, -, :+, +, :? or ?)"),
    ("FROM x\nUSER 'unterminated\n", "Containerfile:2: USER: bad variable syntax: unterminated single quote in \"'unterminated\""),
];

#[test]
fn malformed_containerfiles_table() {
    assert!(CASES.len() >= 20);
    let mut failures = Vec::new();
    for (text, want) in CASES {
        match Containerfile::parse("Containerfile", text) {
            Ok(_) => failures.push(format!("{text:?}: parsed, expected error {want:?}")),
            Err(e) if e.to_string() != *want => {
                failures.push(format!("{text:?}:\n   got  {e}\n   want {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_carry_the_file_name_given() {
    let e = Containerfile::parse("build/Dockerfile.prod", "FROM x\nRUNN a\n").unwrap_err();
    assert_eq!(e.file, "build/Dockerfile.prod");
    assert_eq!(e.line, 2);
    assert!(matches!(*e.kind, ErrorKind::UnknownInstruction { .. }));
    assert!(e.to_string().starts_with("build/Dockerfile.prod:2: "));
}

#[test]
fn line_numbers_count_continuations_comments_and_heredocs() {
    let text = "FROM x\nRUN a \\\n  # c\n  b\nRUN <<EOF\nx\nEOF\n# comment\n\nRUNN\n";
    let e = Containerfile::parse("Containerfile", text).unwrap_err();
    assert_eq!(e.line, 10);
}

#[test]
fn value_errors_wait_for_the_values() {
    // `EXPOSE $P` cannot be judged before P is known: the executor's
    // expand() reports it, with the line.
    let cf = Containerfile::parse("Containerfile", "FROM x\nARG P=nope\nEXPOSE $P\n").unwrap();
    let mut ex = cf.stage_expander();
    let s = &cf.stages[0].steps;
    ex.apply(&s[0].expand(&ex).unwrap());
    let e = s[1].expand(&ex).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Containerfile:3: EXPOSE: \"nope\": \"nope\" is not a port number 1-65535"
    );
}
