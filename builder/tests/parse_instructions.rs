//! Every instruction and form the parser accepts, checked field by field.

use std::time::Duration;

use builder::parse::*;

fn parse(text: &str) -> Containerfile {
    Containerfile::parse("Containerfile", text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// The instructions of the last stage.
fn steps(text: &str) -> Vec<Instruction> {
    let cf = parse(text);
    cf.stages
        .last()
        .unwrap()
        .steps
        .iter()
        .map(|s| s.instruction.clone())
        .collect()
}

fn one(body: &str) -> Instruction {
    let v = steps(&format!("FROM busybox\n{body}\n"));
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().unwrap()
}

/// The instruction after expansion with an empty scope.
fn expanded(body: &str) -> Instruction {
    let cf = parse(&format!("FROM busybox\n{body}\n"));
    let ex = cf.stage_expander();
    cf.stages[0].steps[0].expand(&ex).unwrap()
}

#[test]
fn from_forms() {
    let cf = parse(
        "FROM --platform=linux/amd64 busybox:1.36 AS Base\nFROM scratch\nFROM base as again\nFROM localhost:5000/team/app@sha256:abcd\n",
    );
    let s = &cf.stages;
    assert_eq!(s.len(), 4);
    assert_eq!(s[0].name.as_deref(), Some("base"));
    assert_eq!(s[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(s[0].base, Base::Image("busybox:1.36".into()));
    assert_eq!(s[1].base, Base::Scratch);
    assert_eq!(s[1].name, None);
    assert_eq!(s[2].base, Base::Stage(0));
    assert_eq!(s[2].deps, vec![0]);
    assert_eq!(
        s[3].base,
        Base::Image("localhost:5000/team/app@sha256:abcd".into())
    );
    assert_eq!(s[3].line, 4);
    assert_eq!(cf.stage_index("BASE"), Some(0));
}

#[test]
fn run_shell_exec_and_fallback() {
    assert_eq!(
        one("RUN echo hi && ls"),
        Instruction::Run(Run {
            mounts: vec![],
            network: None,
            security: None,
            command: Command::Shell("echo hi && ls".into()),
            heredocs: vec![],
        })
    );
    let Instruction::Run(r) = one(r#"RUN ["/bin/echo", "a b", "$HOME"]"#) else {
        panic!()
    };
    assert_eq!(
        r.command,
        Command::Exec(vec!["/bin/echo".into(), "a b".into(), "$HOME".into()])
    );
    assert_eq!(
        r.script(),
        RunScript::Exec(vec!["/bin/echo".into(), "a b".into(), "$HOME".into()])
    );
    // Not valid JSON: shell form, as Docker does.
    let Instruction::Run(r) = one("RUN [echo, hi]") else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("[echo, hi]".into()));
    // RUN is never expanded by us: the shell does it.
    let Instruction::Run(r) = expanded("RUN echo $HOME ${X:-y}") else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("echo $HOME ${X:-y}".into()));
}

#[test]
fn run_flags() {
    let Instruction::Run(r) = one(
        "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked \\\n    --mount=type=bind,from=build,source=/out,target=/in,rw \\\n    --mount=type=tmpfs,target=/tmp \\\n    --network=none pip install x",
    ) else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 3);
    assert_eq!(r.mounts[0].kind, MountKind::Cache);
    assert_eq!(r.mounts[0].cache_id(), "pip");
    assert_eq!(r.mounts[0].sharing, Sharing::Locked);
    assert_eq!(r.mounts[1].kind, MountKind::Bind);
    assert_eq!(r.mounts[1].from.as_deref(), Some("build"));
    assert_eq!(r.mounts[1].source.as_deref(), Some("/out"));
    assert!(!r.mounts[1].readonly);
    assert_eq!(r.mounts[2].kind, MountKind::Tmpfs);
    assert_eq!(r.network, Some(Network::None));
    assert_eq!(r.command, Command::Shell("pip install x".into()));
    let Instruction::Run(r) = one("RUN --network=host true") else {
        panic!()
    };
    assert_eq!(r.network, Some(Network::Host));
    let Instruction::Run(r) = one("RUN --network=default true") else {
        panic!()
    };
    assert_eq!(r.network, Some(Network::Default));
}

#[test]
fn run_heredocs() {
    let Instruction::Run(r) = one("RUN <<EOF\necho one\necho two\nEOF") else {
        panic!()
    };
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.script(), RunScript::Shell("echo one\necho two\n".into()));

    let Instruction::Run(r) = one("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF") else {
        panic!()
    };
    assert_eq!(
        r.script(),
        RunScript::File("#!/usr/bin/env python3\nprint(1)\n".into())
    );

    // A heredoc feeding a command: the shell gets the whole text.
    let Instruction::Run(r) = one("RUN python3 <<EOF > /out\nprint(1)\nEOF") else {
        panic!()
    };
    assert_eq!(
        r.script(),
        RunScript::Shell("python3 <<EOF > /out\nprint(1)\nEOF".into())
    );

    // Two heredocs on one line, <<- strips tabs, a quoted name stops expansion.
    let Instruction::Run(r) = one("RUN cat <<-A <<'B' > f\n\tline $X\n\tA\n$Y\nB") else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "line $X\n");
    assert!(r.heredocs[0].expand && r.heredocs[0].strip_tabs);
    assert_eq!(r.heredocs[1].content, "$Y\n");
    assert!(!r.heredocs[1].expand);
    assert_eq!(
        r.script(),
        RunScript::Shell("cat <<-A <<'B' > f\nline $X\nA\n$Y\nB".into())
    );

    // Instructions after a heredoc are parsed normally, with right lines.
    let cf = parse("FROM x\nRUN <<EOF\na\nEOF\nENV A=1\n");
    assert_eq!(cf.stages[0].steps[1].line, 5);
}

#[test]
fn copy_and_add() {
    let cf = parse("FROM x AS b\nFROM y\nCOPY --from=b --chown=1000:1000 --chmod=0755 --exclude=*.tmp --exclude=cache --link a b* /dest/\n");
    let Instruction::Copy(c) = &cf.stages[1].steps[0].instruction else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("b"));
    assert_eq!(c.chown.as_deref(), Some("1000:1000"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert_eq!(c.excludes, vec!["*.tmp", "cache"]);
    assert!(c.link);
    assert_eq!(
        c.sources,
        vec![Source::Path("a".into()), Source::Path("b*".into())]
    );
    assert_eq!(c.dest, "/dest/");
    assert_eq!(cf.stages[1].deps, vec![0]);

    let Instruction::Copy(c) = one(r#"COPY ["a b", "/d e/"]"#) else {
        panic!()
    };
    assert_eq!(c.sources, vec![Source::Path("a b".into())]);
    assert_eq!(c.dest, "/d e/");

    let Instruction::Add(a) = one("ADD --checksum=sha256:00 https://example.com/x.tgz /x") else {
        panic!()
    };
    assert_eq!(
        a.sources,
        vec![Source::Url("https://example.com/x.tgz".into())]
    );
    assert_eq!(a.checksum.as_deref(), Some("sha256:00"));
    let Instruction::Add(a) = one("ADD --keep-git-dir=true local.tar /x") else {
        panic!()
    };
    assert_eq!(a.sources, vec![Source::Path("local.tar".into())]);
    assert!(a.keep_git_dir);
}

#[test]
fn copy_heredocs() {
    let Instruction::Copy(c) = one("COPY <<EOF /etc/motd\nhello $NAME\nEOF") else {
        panic!()
    };
    let Source::Heredoc(h) = &c.sources[0] else {
        panic!()
    };
    assert_eq!(
        (h.name.as_str(), h.content.as_str()),
        ("EOF", "hello $NAME\n")
    );
    assert_eq!(c.dest, "/etc/motd");

    let cf = parse(
        "FROM x\nARG NAME=world\nCOPY <<EOF <<\"RAW\" /etc/\nhello $NAME\nEOF\nraw $NAME\nRAW\n",
    );
    let mut ex = cf.stage_expander();
    let steps = &cf.stages[0].steps;
    ex.apply(&steps[0].expand(&ex).unwrap());
    let Instruction::Copy(c) = steps[1].expand(&ex).unwrap() else {
        panic!()
    };
    let contents: Vec<_> = c
        .sources
        .iter()
        .map(|s| match s {
            Source::Heredoc(h) => h.content.clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(contents, vec!["hello world\n", "raw $NAME\n"]);
}

#[test]
fn env_label_arg() {
    assert_eq!(
        one(r#"ENV A=1 B="two words" C=three\ words"#),
        Instruction::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "three\\ words".into()),
        ])
    );
    assert_eq!(
        expanded(r#"ENV A=1 B="two words" C=three\ words"#),
        Instruction::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "two words".into()),
            ("C".into(), "three words".into()),
        ])
    );
    // Legacy form: the rest of the line is the value.
    assert_eq!(
        expanded("ENV PATH_EXTRA /opt/bin  and more"),
        Instruction::Env(vec![("PATH_EXTRA".into(), "/opt/bin  and more".into())])
    );
    assert_eq!(
        expanded(r#"LABEL org.opencontainers.image.title="My app" version=1"#),
        Instruction::Label(vec![
            ("org.opencontainers.image.title".into(), "My app".into()),
            ("version".into(), "1".into()),
        ])
    );
    assert_eq!(
        expanded("LABEL description a long text"),
        Instruction::Label(vec![("description".into(), "a long text".into())])
    );
    assert_eq!(
        one("ARG A B=2"),
        Instruction::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            },
        ])
    );
}

#[test]
fn simple_instructions() {
    assert_eq!(
        expanded("WORKDIR /app/src"),
        Instruction::Workdir("/app/src".into())
    );
    assert_eq!(
        expanded("USER 1000:1000"),
        Instruction::User("1000:1000".into())
    );
    assert_eq!(
        expanded("STOPSIGNAL SIGINT"),
        Instruction::StopSignal("SIGINT".into())
    );
    assert_eq!(
        expanded("STOPSIGNAL 9"),
        Instruction::StopSignal("9".into())
    );
    assert_eq!(
        one("MAINTAINER Jane Doe <jane@example.com>"),
        Instruction::Maintainer("Jane Doe <jane@example.com>".into())
    );
    assert_eq!(
        expanded("EXPOSE 80 80/tcp 53/udp 8000-8010"),
        Instruction::Expose(vec![
            "80".into(),
            "80/tcp".into(),
            "53/udp".into(),
            "8000-8010".into()
        ])
    );
    assert_eq!(
        PortSpec::parse("8000-8001/udp").unwrap().config_keys(),
        vec!["8000/udp", "8001/udp"]
    );
    assert_eq!(
        one(r#"VOLUME ["/data", "/var/log"]"#),
        Instruction::Volume(vec!["/data".into(), "/var/log".into()])
    );
    assert_eq!(
        one("VOLUME /data /logs"),
        Instruction::Volume(vec!["/data".into(), "/logs".into()])
    );
    assert_eq!(
        one(r#"SHELL ["/bin/bash", "-eu", "-c"]"#),
        Instruction::Shell(vec!["/bin/bash".into(), "-eu".into(), "-c".into()])
    );
}

#[test]
fn cmd_and_entrypoint() {
    assert_eq!(
        one(r#"CMD ["/bin/sh"]"#),
        Instruction::Cmd(Command::Exec(vec!["/bin/sh".into()]))
    );
    assert_eq!(one("CMD []"), Instruction::Cmd(Command::Exec(vec![])));
    assert_eq!(
        one("CMD echo $HOME"),
        Instruction::Cmd(Command::Shell("echo $HOME".into()))
    );
    assert_eq!(
        expanded("CMD echo $HOME"),
        Instruction::Cmd(Command::Shell("echo $HOME".into()))
    );
    assert_eq!(
        one(r#"ENTRYPOINT ["/entry", "--x"]"#),
        Instruction::Entrypoint(Command::Exec(vec!["/entry".into(), "--x".into()]))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b"),
        Instruction::Entrypoint(Command::Shell("exec top -b".into()))
    );
}

#[test]
fn healthcheck() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Health::None)
    );
    let Instruction::Healthcheck(Health::Check(h)) = one(
        "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1",
    ) else {
        panic!()
    };
    assert_eq!(h.interval, Some(Duration::from_secs(30)));
    assert_eq!(h.timeout, Some(Duration::from_secs(90)));
    assert_eq!(h.start_period, Some(Duration::from_millis(500)));
    assert_eq!(h.start_interval, Some(Duration::from_secs(2)));
    assert_eq!(h.retries, Some(3));
    assert_eq!(
        h.command,
        Command::Shell("curl -f http://localhost/ || exit 1".into())
    );
    let Instruction::Healthcheck(Health::Check(h)) = one(r#"HEALTHCHECK CMD ["/check"]"#) else {
        panic!()
    };
    assert_eq!(h.command, Command::Exec(vec!["/check".into()]));
    assert_eq!(h.interval, None);
}

#[test]
fn onbuild() {
    assert_eq!(
        one("ONBUILD run make"),
        Instruction::Onbuild("RUN make".into())
    );
    assert_eq!(
        one("ONBUILD COPY --chown=1 . /app/"),
        Instruction::Onbuild("COPY --chown=1 . /app/".into())
    );
    // Recorded verbatim, never expanded now.
    assert_eq!(
        expanded("ONBUILD ENV A=$B"),
        Instruction::Onbuild("ENV A=$B".into())
    );
}

#[test]
fn keywords_are_case_insensitive_and_comments_skipped() {
    let cf = parse("# hello\nfrom busybox\n  # indented comment\n\nrun true\nCmd [\"sh\"]\n");
    let s = &cf.stages[0].steps;
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].line, 5);
    assert_eq!(s[1].line, 6);
}

#[test]
fn escape_directive() {
    let cf = parse("# escape=`\nFROM busybox\nRUN echo c:\\path `\n  more\nCOPY a` b /x/\n");
    assert_eq!(cf.escape, '`');
    let s = &cf.stages[0].steps;
    assert_eq!(
        s[0].instruction,
        Instruction::Run(Run {
            mounts: vec![],
            network: None,
            security: None,
            command: Command::Shell("echo c:\\path   more".into()),
            heredocs: vec![],
        })
    );
    let ex = cf.stage_expander();
    let Instruction::Copy(c) = s[1].expand(&ex).unwrap() else {
        panic!()
    };
    // As BuildKit: COPY's shell form splits on whitespace before any
    // escape or quote is read (a name with a space needs the JSON form),
    // and a trailing escape is dropped.
    assert_eq!(
        c.sources,
        vec![Source::Path("a".into()), Source::Path("b".into())]
    );
    // `# syntax=` is recognised and ignored; directives can be combined.
    let cf = parse("# syntax=docker/dockerfile:1.7\n# escape=`\nFROM x\n");
    assert_eq!(cf.escape, '`');
}

#[test]
fn display_is_the_normalised_text() {
    let cf = parse("FROM x AS b\nFROM y\nARG V=1.2\nCOPY --from=b --chown=0:0 src/$V /opt/app-$V/\nENV A=\"x y\" B=$V\nRUN --mount=type=cache,target=/c echo $V\nEXPOSE 80\nCMD [\"a\", \"b c\"]\n");
    let mut ex = cf.stage_expander();
    let mut texts = Vec::new();
    for step in &cf.stages[1].steps {
        let e = step.expand(&ex).unwrap();
        ex.apply(&e);
        texts.push(e.to_string());
    }
    assert_eq!(
        texts,
        vec![
            "ARG V=1.2",
            "COPY --from=b --chown=0:0 src/1.2 /opt/app-1.2/",
            "ENV A=\"x y\" B=1.2",
            "RUN --mount=type=cache,target=/c,sharing=shared,rw echo $V",
            "EXPOSE 80",
            "CMD [\"a\",\"b c\"]",
        ]
    );
    assert_eq!(ex.run_args().get("V").map(String::as_str), Some("1.2"));
    assert_eq!(ex.env().get("A").map(String::as_str), Some("x y"));
}

#[test]
fn escaped_escape_does_not_continue() {
    let cf = parse("FROM x\nRUN echo \\\\\nRUN true\n");
    assert_eq!(cf.stages[0].steps.len(), 2);
    // A lone escape on its own line continues.
    let cf = parse("FROM x\nRUN echo a \\\n\\\n b\n");
    assert_eq!(cf.stages[0].steps.len(), 1);
}

#[test]
fn onbuild_with_heredoc() {
    let cf = parse("FROM x\nONBUILD RUN <<EOF\necho built on\nEOF\nENV A=1\n");
    let s = &cf.stages[0].steps;
    assert_eq!(s.len(), 2);
    let Instruction::Onbuild(text) = &s[0].instruction else {
        panic!()
    };
    assert_eq!(text, "RUN <<EOF\necho built on\nEOF");
    let step = parse_trigger("ONBUILD", text, '\\').unwrap();
    let Instruction::Run(r) = step.instruction else {
        panic!()
    };
    assert_eq!(r.script(), RunScript::Shell("echo built on\n".into()));
}

/// BuildKit's parser test inputs on word splitting and quoting
/// (frontend/dockerfile/parser/testfiles: escapes, znc, jeztah-invalid-json-*,
/// json, ADD-COPY-with-JSON, lk4d4-the-edge-case-generator, trailing-backslash,
/// kartar-entrypoint-oddities), restated as data with the parsed form each
/// `result` file gives (`(cmd ...)` etc.), then the value after expansion
/// where BuildKit's dispatch expands it.
#[test]
fn buildkit_testfiles_split_and_quote_as_buildkit() {
    let exec = |v: &[&str]| Command::Exec(v.iter().map(|s| s.to_string()).collect());
    let shell = |s: &str| Command::Shell(s.to_string());
    let copy_words = |i: Instruction| match i {
        Instruction::Add(c) | Instruction::Copy(c) => {
            let mut w: Vec<String> = c
                .sources
                .iter()
                .map(|s| match s {
                    Source::Path(p) | Source::Url(p) => p.clone(),
                    other => panic!("{other:?}"),
                })
                .collect();
            w.push(c.dest);
            w
        }
        other => panic!("{other:?}"),
    };
    // escapes: (label "maintainer" "Erik \\\\Hollensbe <erik@hollensbe.org>\\\"" "")
    assert_eq!(
        one(r#"LABEL maintainer Erik \\Hollensbe <erik@hollensbe.org>\""#),
        Instruction::Label(vec![(
            "maintainer".into(),
            r#"Erik \\Hollensbe <erik@hollensbe.org>\""#.into()
        )])
    );
    assert_eq!(
        expanded(r#"LABEL maintainer Erik \\Hollensbe <erik@hollensbe.org>\""#),
        Instruction::Label(vec![(
            "maintainer".into(),
            r#"Erik \Hollensbe <erik@hollensbe.org>""#.into()
        )])
    );
    // escapes: a RUN keeps its backslashes; continuation lines join.
    let v = steps("FROM x\nRUN apt-get \\update && \\\n  apt-get \\\"install znc -y\nRUN foo \\\n\nbar \\\n\nbaz\n");
    let runs: Vec<Command> = v
        .into_iter()
        .map(|i| match i {
            Instruction::Run(r) => r.command,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        runs,
        vec![
            shell(r#"apt-get \update &&   apt-get \"install znc -y"#),
            shell("foo bar baz")
        ]
    );
    // escapes: (cmd "/usr\\\"/bin/znc" "-f" "-r"), JSON's own escapes.
    assert_eq!(
        one(r#"CMD [ "\/usr\\\"/bin/znc", "-f", "-r" ]"#),
        Instruction::Cmd(exec(&[r#"/usr\"/bin/znc"#, "-f", "-r"]))
    );
    // escapes: (add "\\conf\\\\\"" "/.znc"): two words, split on whitespace
    // only. Expanding the first then meets a quote that never closes, which
    // docker build refuses at dispatch ("unexpected end of statement while
    // looking for matching double-quote"); rbuild names the word.
    let e = Containerfile::parse("Containerfile", "FROM x\nADD \\conf\\\\\" /.znc\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unterminated double quote") && e.contains(r#""\\conf\\\\\"""#),
        "{e}"
    );
    // The same words without the lone quote: two, as BuildKit.
    assert_eq!(
        copy_words(one(r"ADD \conf\\ /.znc")),
        vec![r"\conf\\".to_string(), "/.znc".into()]
    );
    // znc: (add "conf" "/.znc"), (cmd "/usr/bin/znc" "-f" "-r")
    assert_eq!(
        copy_words(one("ADD conf /.znc")),
        vec!["conf".to_string(), "/.znc".into()]
    );
    assert_eq!(
        one(r#"CMD [ "/usr/bin/znc", "-f", "-r" ]"#),
        Instruction::Cmd(exec(&["/usr/bin/znc", "-f", "-r"]))
    );
    // jeztah-invalid-json-*: anything that is not a JSON array of strings
    // is the shell form, kept verbatim.
    for text in [
        r#""[\"echo\", \"Phew, I just managed to escaped those double quotes\"]""#,
        r#"'["echo", "Well, JSON in a string is JSON too?"]'"#,
        "['echo','single quotes are invalid JSON']",
        r#"["echo", "Please, close the brackets when you're done""#,
        r#"["echo", "look ma, no quote!]"#,
    ] {
        assert_eq!(
            one(&format!("CMD {text}")),
            Instruction::Cmd(shell(text)),
            "{text}"
        );
    }
    // json: (cmd), (cmd ""), (cmd "a"), (cmd "a" "b") with any blanks,
    // and JSON string escapes.
    assert_eq!(one("CMD []"), Instruction::Cmd(exec(&[])));
    assert_eq!(one(r#"CMD [""]"#), Instruction::Cmd(exec(&[""])));
    assert_eq!(one(r#"CMD ["a"]"#), Instruction::Cmd(exec(&["a"])));
    for text in [
        r#"CMD ["a","b"]"#,
        r#"CMD [ "a", "b" ]"#,
        "CMD [\t\"a\",\t\"b\"\t]",
        "CMD\t[\t\"a\",\t\"b\"\t]\t",
    ] {
        assert_eq!(one(text), Instruction::Cmd(exec(&["a", "b"])), "{text:?}");
    }
    assert_eq!(
        one(r#"CMD ["abc 123", "♥", "☃", "\" \\ \/ \b \f \n \r \t \u0000"]"#),
        Instruction::Cmd(exec(&[
            "abc 123",
            "♥",
            "☃",
            "\" \\ / \u{8} \u{c} \n \r \t \0"
        ]))
    );
    // ADD-COPY-with-JSON: the JSON form keeps a space inside a word.
    assert_eq!(
        copy_words(one("ADD\t\t[ \"test file\", \"/tmp/test file\" ]")),
        vec!["test file".to_string(), "/tmp/test file".into()]
    );
    assert_eq!(
        copy_words(one("COPY\t.\t/go/src/github.com/docker/docker")),
        vec![".".to_string(), "/go/src/github.com/docker/docker".into()]
    );
    // lk4d4-the-edge-case-generator: quotes inside JSON words stay, ENV's
    // legacy form keeps its quotes until expansion removes them.
    let run = |i: Instruction| match i {
        Instruction::Run(r) => r.command,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        run(one(r#"RUN ["echo", "'1234'"]"#)),
        exec(&["echo", "'1234'"])
    );
    assert_eq!(
        run(one(
            "RUN    sh -c 'echo root:testpass \\\n        > /tmp/passwd'"
        )),
        shell("sh -c 'echo root:testpass         > /tmp/passwd'")
    );
    assert_eq!(
        one("ENV SCUBA 1 DUBA 3"),
        Instruction::Env(vec![("SCUBA".into(), "1 DUBA 3".into())])
    );
    assert_eq!(
        one(r#"ENV SCUBA "1 DUBA 3""#),
        Instruction::Env(vec![("SCUBA".into(), r#""1 DUBA 3""#.into())])
    );
    assert_eq!(
        expanded(r#"ENV SCUBA "1 DUBA 3""#),
        Instruction::Env(vec![("SCUBA".into(), "1 DUBA 3".into())])
    );
    assert_eq!(
        one("CMD echo 'test' | wc -"),
        Instruction::Cmd(shell("echo 'test' | wc -"))
    );
    // kartar-entrypoint-oddities: (label "maintainer" "James Turnbull \"james@example.com\"" "")
    assert_eq!(
        one(r#"LABEL maintainer James Turnbull "james@example.com""#),
        Instruction::Label(vec![(
            "maintainer".into(),
            r#"James Turnbull "james@example.com""#.into()
        )])
    );
    // trailing-backslash: (env "B" "another\\\\path" ""), (env "E" "helloworld" "").
    let v = steps("FROM x\nENV B another\\\\path\nENV C trailing\\\\backslash\\\\\nENV D This should not be appended to C\nENV E hello\\\n\\\nworld\nENV F hello\\\n \\\nworld\n");
    assert_eq!(
        v,
        vec![
            Instruction::Env(vec![("B".into(), r"another\\path".into())]),
            Instruction::Env(vec![("C".into(), r"trailing\\backslash\\".into())]),
            Instruction::Env(vec![(
                "D".into(),
                "This should not be appended to C".into()
            )]),
            Instruction::Env(vec![("E".into(), "helloworld".into())]),
            Instruction::Env(vec![("F".into(), "hello world".into())]),
        ]
    );
    assert_eq!(
        expanded(r"ENV B another\\path"),
        Instruction::Env(vec![("B".into(), r"another\path".into())])
    );
}

/// BuildKit's escape* testfiles: the `# escape=` directive, and a directive
/// after a comment is only a comment.
#[test]
fn buildkit_testfiles_escape_directive() {
    // escape, escape-nonewline: (env "GOPATH" "\\go" "")
    for text in [
        "#escape = `\n\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH `\n\\go",
        "# escape = `\n# There is no white space line after the directives.\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH `\n\\go\n",
        // escape-after-comment: the backslash continues.
        "# Comment here.\n# escape = `\n\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH \\\n\\go",
    ] {
        assert_eq!(
            steps(text),
            vec![
                Instruction::Label(vec![("maintainer".into(), "foo@bar.com".into())]),
                Instruction::Env(vec![("GOPATH".into(), r"\go".into())]),
            ],
            "{text}"
        );
    }
    // escape-with-syntax: (from "image")
    let cf = parse("# syntax = docker/dockerfile\n# escape = `\n\nFROM `\n    image\n");
    assert_eq!(cf.stages.len(), 1);
    assert!(
        format!("{:?}", cf.stages[0].base).contains("image"),
        "{:?}",
        cf.stages[0].base
    );
}
