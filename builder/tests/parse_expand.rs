//! Variable expansion as the executor drives it: ARG/ENV scope step by
//! step, global ARGs in FROM, build args, and Docker's expansion forms.

use std::collections::BTreeMap;

use builder::parse::*;

fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Expands every step of the last stage in order, as the executor does,
/// and returns their normalised texts.
fn walk(text: &str, build_args: &[(&str, &str)], base_env: &[&str]) -> Vec<String> {
    let cf = Containerfile::parse_with_args("Containerfile", text, &args(build_args))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ex = cf.stage_expander();
    ex.set_env_pairs(base_env.iter().copied());
    let mut out = Vec::new();
    for step in &cf.stages.last().unwrap().steps {
        let e = step.expand(&ex).unwrap_or_else(|e| panic!("{e}"));
        ex.apply(&e);
        out.push(e.to_string());
    }
    out
}

#[test]
fn word_forms() {
    let mut ex = Expander::new('\\');
    ex.set_env("NAME", "app");
    ex.set_env("EMPTY", "");
    let cases = [
        ("$NAME", "app"),
        ("${NAME}", "app"),
        ("/srv/${NAME}/bin", "/srv/app/bin"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${MISSING-fallback}", "fallback"),
        ("${NAME:+set}", "set"),
        ("${EMPTY:+set}", ""),
        ("${EMPTY+set}", "set"),
        ("${MISSING+set}", ""),
        ("\\$NAME", "$NAME"),
        ("'$NAME'", "$NAME"),
        ("\"$NAME\"", "app"),
        ("\"'$NAME'\"", "'app'"),
        ("${MISSING:-${NAME}-x}", "app-x"),
        ("$$", ""),
        ("a$", "a$"),
    ];
    for (input, want) in cases {
        assert_eq!(ex.expand_word(input).unwrap(), want, "{input}");
    }
    assert!(ex.expand_word("${MISSING:?must be set}").is_err());
}

#[test]
fn arg_and_env_scope_step_by_step() {
    let texts = walk(
        "FROM x\nWORKDIR /$DIR\nARG DIR=opt\nWORKDIR /$DIR\nENV DIR=etc\nWORKDIR /$DIR\nARG DIR=ignored\nWORKDIR /$DIR\n",
        &[],
        &[],
    );
    assert_eq!(
        texts,
        vec![
            "WORKDIR /",
            "ARG DIR=opt",
            "WORKDIR /opt",
            "ENV DIR=etc",
            "WORKDIR /etc",
            "ARG DIR=ignored",
            "WORKDIR /etc", // ENV wins over ARG, whatever the order
        ]
    );
}

#[test]
fn build_args_override_defaults() {
    let texts = walk("FROM x\nARG V=1\nLABEL v=$V\n", &[("V", "2")], &[]);
    assert_eq!(texts[1], "LABEL v=2");
    // An undeclared build arg is not in scope.
    let texts = walk("FROM x\nLABEL v=${V:-unset}\n", &[("V", "2")], &[]);
    assert_eq!(texts[0], "LABEL v=unset");
}

#[test]
fn global_args_in_from_and_redeclared_in_stage() {
    let text = "ARG BASE=busybox\nARG TAG=1.36\nFROM ${BASE}:${TAG} AS b\nLABEL tag=${TAG:-none}\nARG TAG\nLABEL tag=$TAG\n";
    let cf = Containerfile::parse("Containerfile", text).unwrap();
    assert_eq!(cf.global_args.len(), 2);
    assert_eq!(cf.stages[0].base, Base::Image("busybox:1.36".into()));
    assert_eq!(
        walk(text, &[], &[]),
        vec!["LABEL tag=none", "ARG TAG", "LABEL tag=1.36"]
    );
    let cf =
        Containerfile::parse_with_args("Containerfile", text, &args(&[("TAG", "musl")])).unwrap();
    assert_eq!(cf.stages[0].base, Base::Image("busybox:musl".into()));
    assert_eq!(walk(text, &[("TAG", "musl")], &[])[2], "LABEL tag=musl");
}

#[test]
fn automatic_platform_args() {
    let cf =
        Containerfile::parse("Containerfile", "FROM --platform=$BUILDPLATFORM busybox\n").unwrap();
    let p = cf.stages[0].platform.clone().unwrap();
    assert!(p.starts_with("linux/"), "{p}");
}

#[test]
fn base_image_env_is_in_scope() {
    let texts = walk(
        "FROM x\nWORKDIR $HOME/src\nENV PATH=/opt/bin:$PATH\n",
        &[],
        &["HOME=/root", "PATH=/usr/bin:/bin"],
    );
    assert_eq!(
        texts,
        vec!["WORKDIR /root/src", "ENV PATH=/opt/bin:/usr/bin:/bin"]
    );
}

#[test]
fn one_env_line_sees_the_scope_before_it() {
    let texts = walk("FROM x\nENV A=1\nENV A=2 B=$A\n", &[], &[]);
    assert_eq!(texts[1], "ENV A=2 B=1");
}

#[test]
fn which_instructions_expand() {
    let texts = walk(
        "FROM x\nARG P=8080 U=app S=SIGTERM D=/data\nEXPOSE $P/tcp\nUSER $U\nSTOPSIGNAL $S\nVOLUME $D\nRUN echo $P\nCMD echo $P\nENTRYPOINT echo $P\nONBUILD RUN echo $P\nHEALTHCHECK CMD echo $P\n",
        &[],
        &[],
    );
    assert_eq!(
        &texts[1..],
        &[
            "EXPOSE 8080/tcp",
            "USER app",
            "STOPSIGNAL SIGTERM",
            "VOLUME [\"/data\"]",
            "RUN echo $P",
            "CMD echo $P",
            "ENTRYPOINT echo $P",
            "ONBUILD RUN echo $P",
            "HEALTHCHECK CMD echo $P",
        ]
    );
}

#[test]
fn copy_flags_and_mounts_expand() {
    let texts = walk(
        "FROM x AS build\nFROM y\nARG S=build U=1000 M=0644 C=pip\nCOPY --from=$S --chown=$U --chmod=$M --exclude=*.$C a /b\nRUN --mount=type=cache,id=$C,target=/root/.cache/$C true\n",
        &[],
        &[],
    );
    assert_eq!(
        texts[1],
        "COPY --from=build --chown=1000 --chmod=0644 --exclude=*.pip a /b"
    );
    assert_eq!(
        texts[2],
        "RUN --mount=type=cache,target=/root/.cache/pip,id=pip,sharing=shared,rw true"
    );
    let cf = Containerfile::parse(
        "Containerfile",
        "FROM x AS build\nFROM y\nARG S=build\nCOPY --from=$S a /b\n",
    )
    .unwrap();
    assert_eq!(
        cf.stages[1].deps,
        vec![0],
        "--from found through an ARG default"
    );
}

#[test]
fn expansion_errors_name_the_line() {
    let cf = Containerfile::parse(
        "Containerfile",
        "FROM x\n\nWORKDIR ${NOPE:?set NOPE}\nEXPOSE $P\n",
    )
    .unwrap();
    let ex = cf.stage_expander();
    let e = cf.stages[0].steps[0].expand(&ex).unwrap_err();
    assert_eq!(e.to_string(), "Containerfile:3: WORKDIR: NOPE: set NOPE");
    let mut ex = cf.stage_expander();
    ex.set_env("P", "http");
    let e = cf.stages[0].steps[1].expand(&ex).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Containerfile:4: EXPOSE: \"http\""),
        "{e}"
    );
}

#[test]
fn unused_build_args_are_listed() {
    let cf = Containerfile::parse_with_args(
        "Containerfile",
        "ARG G\nFROM x\nARG S\n",
        &args(&[
            ("G", "1"),
            ("S", "2"),
            ("EXTRA", "3"),
            ("TARGETARCH", "arm64"),
        ]),
    )
    .unwrap();
    assert_eq!(cf.unused_build_args(), vec!["EXTRA"]);
}

#[test]
fn onbuild_triggers_from_a_base_image() {
    let step = parse_trigger("ONBUILD of busybox", "COPY --chown=1 . /app/", '\\').unwrap();
    let Instruction::Copy(c) = &step.instruction else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("1"));
    let e = parse_trigger("ONBUILD of busybox", "RUNN x", '\\').unwrap_err();
    assert_eq!(
        e.to_string(),
        "ONBUILD of busybox:1: unknown instruction \"RUNN\" (did you mean RUN?)"
    );
    assert!(parse_trigger("o", "FROM x", '\\').is_err());
    assert!(parse_trigger("o", "  ", '\\').is_err());
}

#[test]
fn bytes_that_are_not_utf8() {
    let e = Containerfile::from_bytes(
        "Containerfile",
        b"FROM x\nRUN echo \xff\n",
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "Containerfile:2: the file is not UTF-8 text");
    let cf = Containerfile::from_bytes("Containerfile", b"FROM x\n", &BTreeMap::new()).unwrap();
    assert_eq!(cf.stages.len(), 1);
}

#[test]
fn finds_containerfile_then_dockerfile() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(find_containerfile(d.path()), None);
    std::fs::write(d.path().join("Dockerfile"), "FROM x\n").unwrap();
    assert_eq!(
        find_containerfile(d.path()),
        Some(d.path().join("Dockerfile"))
    );
    std::fs::write(d.path().join("Containerfile"), "FROM x\n").unwrap();
    assert_eq!(
        find_containerfile(d.path()),
        Some(d.path().join("Containerfile"))
    );
}

/// Cases from the behaviour of Docker's shell lexer (its published test
/// vectors), with PWD=/home and SHELL=bash set and NULL set to "".
#[test]
fn docker_lexer_vectors() {
    let mut ex = Expander::new('\\');
    ex.set_env("PWD", "/home");
    ex.set_env("SHELL", "bash");
    ex.set_env("NULL", "");
    let ok = [
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("abc\\tdef", "abctdef"),
        ("\"abc\\tdef\"", "abc\\tdef"),
        ("\"abc\\\\tdef\"", "abc\\tdef"),
        ("'abc\\tdef'", "abc\\tdef"),
        ("hello\\", "hello"),
        ("hello\\\\", "hello\\"),
        ("\"hel'lo\"", "hel'lo"),
        ("'hello\\'", "hello\\"),
        ("\"''\"", "''"),
        ("$.", "$."),
        ("he$1x", "hex"),
        ("he$.x", "he$.x"),
        ("he\\\\$PWD", "he\\/home"),
        ("\"he\\\\$PWD\"", "he\\/home"),
        ("\\${}", "${}"),
        ("he${hi}xx", "hexx"),
        ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
        ("he${PWD?}", "he/home"),
        ("he${NULL?}", "he"),
        ("he${PWD:+${SHELL}}xx", "hebashxx"),
        ("\"he'$PWD'\"", "he'/home'"),
        ("'\\$PWD'", "\\$PWD"),
        ("he${PWD:+${PWD}:}xx", "he/home:xx"),
        ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
        ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
        ("${aaa}}", "}"),
        ("${aaa:-bbb {foo}", "bbb {foo"),
        ("${999:-bbb}aaa", "bbbaaa"),
        ("$001aaa", "aaa"),
        ("${1:+bbb}", ""),
        ("$@@@", "@@"),
        ("${@:-bbb}aaa", "bbbaaa"),
        ("${#}", ""),
        ("$$", ""),
        ("${0:-bbb}", "bbb"),
    ];
    for (input, want) in ok {
        assert_eq!(ex.expand_word(input).unwrap(), want, "{input}");
    }
    let bad = [
        "he'llo",
        "he\\\\'llo",
        "\"hello",
        "\"hello\\\"",
        "'hello",
        "${}",
        "he${}xx",
        "he${.}",
        "he${XXX:YYY}",
        "he${XXX?}",
        "he${XXX:?}",
        "he${NULL:?}",
        "he${PWD",
        "he${PWD:=000}xx",
        "${{aaa}",
        "${aaa:-bbb ${foo}",
        "${:}",
        "${:-bbb}",
    ];
    for input in bad {
        assert!(ex.expand_word(input).is_err(), "{input} should fail");
    }
}
