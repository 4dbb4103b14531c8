//! Stages, their dependencies, and what a `--target` needs.

use builder::parse::*;

fn parse(text: &str) -> Containerfile {
    Containerfile::parse("Containerfile", text).unwrap_or_else(|e| panic!("{e}"))
}

const MULTI: &str = "\
FROM busybox AS base
RUN true

FROM base AS deps
RUN echo deps

FROM busybox AS assets
RUN echo assets

FROM scratch AS tools
COPY --from=busybox:1.36 /bin/busybox /busybox

FROM deps AS build
COPY --from=assets /a /a
RUN --mount=type=bind,from=tools,source=/busybox,target=/t true

FROM busybox AS unrelated
RUN echo never needed

FROM base
COPY --from=build /out /out
";

#[test]
fn deps_of_each_stage() {
    let cf = parse(MULTI);
    let deps: Vec<Vec<usize>> = cf.stages.iter().map(|s| s.deps.clone()).collect();
    assert_eq!(
        deps,
        vec![
            vec![],
            vec![0],
            vec![],
            vec![],
            vec![1, 2, 3],
            vec![],
            vec![0, 4]
        ]
    );
    assert_eq!(cf.stages[1].base, Base::Stage(0));
    assert_eq!(cf.stages[3].base, Base::Scratch);
    assert_eq!(cf.stages[6].name, None);
    assert_eq!(cf.stages[6].display_name(), "6");
}

#[test]
fn stages_needed_in_dependency_order() {
    let cf = parse(MULTI);
    let order = cf.stages_needed(None).unwrap();
    assert!(
        !order.contains(&5),
        "unrelated stage is not built: {order:?}"
    );
    assert_eq!(order.last(), Some(&6));
    let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
    for (stage, deps) in cf.stages.iter().enumerate() {
        if order.contains(&stage) {
            for d in &deps.deps {
                assert!(pos(*d) < pos(stage), "{d} before {stage} in {order:?}");
            }
        }
    }
    assert_eq!(order.len(), 6);
    assert_eq!(cf.stages_needed(Some("assets")).unwrap(), vec![2]);
    assert_eq!(cf.stages_needed(Some("DEPS")).unwrap(), vec![0, 1]);
    let mut build = cf.stages_needed(Some("build")).unwrap();
    assert_eq!(build.pop(), Some(4));
    build.sort();
    assert_eq!(build, vec![0, 1, 2, 3]);
}

#[test]
fn unknown_target_lists_stages() {
    let cf = parse(MULTI);
    let e = cf.stages_needed(Some("nope")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Containerfile: unknown target stage \"nope\"; the stages are: base, deps, assets, tools, build, unrelated, 6"
    );
}

#[test]
fn copy_from_index_and_images() {
    let cf = parse("FROM a\nFROM b\nCOPY --from=0 /x /x\nCOPY --from=alpine:3.19 /y /y\nCOPY --from=scratch /z /z\n");
    assert_eq!(cf.stages[1].deps, vec![0]);
    let step = &cf.stages[1].steps[1];
    assert_eq!(
        cf.resolve_from(step, 1, "alpine:3.19").unwrap(),
        Base::Image("alpine:3.19".into())
    );
    assert_eq!(cf.resolve_from(step, 1, "0").unwrap(), Base::Stage(0));
    assert_eq!(cf.resolve_from(step, 1, "scratch").unwrap(), Base::Scratch);
    let e = cf.resolve_from(step, 1, "Not An Image").unwrap_err();
    assert_eq!(e.line, 4);
}

#[test]
fn copy_from_a_later_stage_by_name() {
    // BuildKit builds the graph, so a name defined later is fine.
    let cf = parse("FROM busybox\nCOPY --from=later /x /x\nFROM busybox AS later\n");
    assert_eq!(cf.stages[0].deps, vec![1]);
    assert_eq!(cf.stages_needed(None).unwrap(), vec![1]);
    assert_eq!(cf.stages_needed(Some("later")).unwrap(), vec![1]);
    let cf = parse(
        "FROM busybox AS first\nCOPY --from=later /x /x\nFROM busybox AS later\nFROM first\n",
    );
    assert_eq!(cf.stages_needed(None).unwrap(), vec![1, 0, 2]);
}

#[test]
fn cycles_are_reported() {
    let e = Containerfile::parse(
        "Containerfile",
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM a AS b\n",
    )
    .unwrap_err();
    assert!(matches!(*e.kind, ErrorKind::Cycle(_)), "{e}");
    assert!(
        e.to_string().contains("a -> b -> a") || e.to_string().contains("b -> a -> b"),
        "{e}"
    );
}

#[test]
fn from_name_of_a_later_stage_is_an_image() {
    // As in Docker, FROM only refers to stages defined before it.
    let cf = parse("FROM later\nFROM busybox AS later\n");
    assert_eq!(cf.stages[0].base, Base::Image("later".into()));
    assert!(cf.stages[0].deps.is_empty());
}

#[test]
fn independent_stages_have_no_path_between_them() {
    let cf = parse("FROM busybox AS a\nRUN a\nFROM busybox AS b\nRUN b\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n");
    assert!(cf.stages[0].deps.is_empty() && cf.stages[1].deps.is_empty());
    assert_eq!(cf.stages[2].deps, vec![0, 1]);
    assert_eq!(cf.stages_needed(None).unwrap(), vec![0, 1, 2]);
}

#[test]
fn many_stages_do_not_overflow() {
    let mut text = String::from("FROM busybox AS s0\n");
    for i in 1..5000 {
        text.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    let cf = parse(&text);
    let order = cf.stages_needed(None).unwrap();
    assert_eq!(order.len(), 5000);
    assert_eq!(order.first(), Some(&0));
}

#[test]
fn build_waves_group_independent_stages() {
    let cf = parse(MULTI);
    let mut waves = cf.build_waves(None).unwrap();
    for w in &mut waves {
        w.sort();
    }
    // base, assets, tools need nothing; deps needs base; build needs
    // deps+assets+tools; the last stage needs base and build.
    assert_eq!(waves, vec![vec![0, 2, 3], vec![1], vec![4], vec![6]]);
    assert_eq!(cf.build_waves(Some("assets")).unwrap(), vec![vec![2]]);
}
