//! What of a config.json rbox-runtime supports, as a tree of allowed keys.
//! Anything else that is set (not null, not an empty list or map) is
//! refused with an error naming it: nothing is silently ignored. The
//! values of allowed keys are checked where they are translated (`mod.rs`).

use serde_json::Value;

/// One node of the tree of allowed keys.
enum Allow {
    /// Any value (checked by the translation).
    Leaf,
    /// A map with arbitrary keys (annotations).
    AnyMap,
    Obj(&'static [(&'static str, Allow)]),
    Arr(&'static Allow),
}

use Allow::{AnyMap, Arr, Leaf, Obj};

const MOUNT: Allow = Obj(&[
    ("destination", Leaf),
    ("type", Leaf),
    ("source", Leaf),
    ("options", Leaf),
]);

/// `linux.uidMappings`/`gidMappings` (mounts' `uidMappings`, idmapped
/// mounts, stay refused: `MOUNT` does not list them).
const ID_MAPPING: Allow = Obj(&[("containerID", Leaf), ("hostID", Leaf), ("size", Leaf)]);

const CAPS: Allow = Obj(&[
    ("bounding", Leaf),
    ("effective", Leaf),
    ("inheritable", Leaf),
    ("permitted", Leaf),
    ("ambient", Leaf),
]);

const PROCESS: Allow = Obj(&[
    ("terminal", Leaf),
    ("consoleSize", Obj(&[("height", Leaf), ("width", Leaf)])),
    (
        "user",
        Obj(&[
            ("uid", Leaf),
            ("gid", Leaf),
            ("umask", Leaf),
            ("additionalGids", Leaf),
        ]),
    ),
    ("args", Leaf),
    ("env", Leaf),
    ("cwd", Leaf),
    ("capabilities", CAPS),
    (
        "rlimits",
        Arr(&Obj(&[("type", Leaf), ("hard", Leaf), ("soft", Leaf)])),
    ),
    ("noNewPrivileges", Leaf),
    ("oomScoreAdj", Leaf),
]);

const RESOURCES: Allow = Obj(&[
    (
        "devices",
        Arr(&Obj(&[
            ("allow", Leaf),
            ("type", Leaf),
            ("major", Leaf),
            ("minor", Leaf),
            ("access", Leaf),
        ])),
    ),
    (
        "memory",
        Obj(&[("limit", Leaf), ("swap", Leaf), ("disableOOMKiller", Leaf)]),
    ),
    // Docker sends `{"weight": 0}`: unset (the translation refuses others).
    ("blockIO", Obj(&[("weight", Leaf)])),
    (
        "cpu",
        Obj(&[("shares", Leaf), ("quota", Leaf), ("period", Leaf)]),
    ),
    ("pids", Obj(&[("limit", Leaf)])),
]);

const SECCOMP: Allow = Obj(&[
    ("defaultAction", Leaf),
    ("defaultErrnoRet", Leaf),
    ("architectures", Leaf),
    ("flags", Leaf),
    // Refused with a reason by `seccomp::compile`.
    ("listenerPath", Leaf),
    ("listenerMetadata", Leaf),
    (
        "syscalls",
        Arr(&Obj(&[
            ("names", Leaf),
            ("action", Leaf),
            ("errnoRet", Leaf),
            (
                "args",
                Arr(&Obj(&[
                    ("index", Leaf),
                    ("value", Leaf),
                    ("valueTwo", Leaf),
                    ("op", Leaf),
                ])),
            ),
        ])),
    ),
]);

const LINUX: Allow = Obj(&[
    ("seccomp", SECCOMP),
    ("namespaces", Arr(&Obj(&[("type", Leaf), ("path", Leaf)]))),
    ("uidMappings", Arr(&ID_MAPPING)),
    ("gidMappings", Arr(&ID_MAPPING)),
    ("resources", RESOURCES),
    ("maskedPaths", Leaf),
    ("readonlyPaths", Leaf),
    ("rootfsPropagation", Leaf),
    ("cgroupsPath", Leaf),
    ("sysctl", Leaf),
    (
        "devices",
        Arr(&Obj(&[
            ("path", Leaf),
            ("type", Leaf),
            ("major", Leaf),
            ("minor", Leaf),
            ("fileMode", Leaf),
            ("uid", Leaf),
            ("gid", Leaf),
        ])),
    ),
]);

const HOOK: Allow = Arr(&Obj(&[
    ("path", Leaf),
    ("args", Leaf),
    ("env", Leaf),
    ("timeout", Leaf),
]));

const HOOKS: Allow = Obj(&[
    ("prestart", HOOK),
    ("createRuntime", HOOK),
    ("createContainer", HOOK),
    ("startContainer", HOOK),
    ("poststart", HOOK),
    ("poststop", HOOK),
]);

const SPEC: Allow = Obj(&[
    ("ociVersion", Leaf),
    ("root", Obj(&[("path", Leaf), ("readonly", Leaf)])),
    ("mounts", Arr(&MOUNT)),
    ("process", PROCESS),
    ("hostname", Leaf),
    ("domainname", Leaf),
    ("annotations", AnyMap),
    ("linux", LINUX),
    ("hooks", HOOKS),
]);

/// The first key set in `config` that rbox-runtime does not support, as
/// its JSON path (`linux.seccomp`, `mounts[2].uidMappings`).
pub fn first_unsupported(config: &Value) -> Option<String> {
    walk(config, &SPEC, "")
}

/// The same for a `LinuxResources` object on its own (`update --resources`),
/// as a path below it (`cpu.cpus`).
pub fn first_unsupported_resources(resources: &Value) -> Option<String> {
    walk(resources, &RESOURCES, "")
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn walk(v: &Value, allow: &Allow, path: &str) -> Option<String> {
    match (allow, v) {
        (Leaf | AnyMap, _) | (_, Value::Null) => None,
        (Obj(fields), Value::Object(map)) => {
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, a)) => {
                        if let Some(bad) = walk(child, a, &p) {
                            return Some(bad);
                        }
                    }
                    None if is_empty(child) => {}
                    None => return Some(p),
                }
            }
            None
        }
        (Arr(item), Value::Array(items)) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| walk(x, item, &format!("{path}[{i}]"))),
        // A wrong type is the typed parse's to report.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_unsupported_keys_are_named() {
        let ok = json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}], "sysctl": {}, "uidMappings": []},
            "annotations": {"a.b": "c"}});
        assert_eq!(first_unsupported(&ok), None);
        let ok = json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}}});
        assert_eq!(first_unsupported(&ok), None);
        let bad = json!({"linux": {"seccomp": {"syscalls": [{"names": ["a"], "comment": "x"}]}}});
        assert_eq!(
            first_unsupported(&bad).as_deref(),
            Some("linux.seccomp.syscalls[0].comment")
        );
        let bad = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "net", "flags": 1}]}});
        assert_eq!(
            first_unsupported(&bad).as_deref(),
            Some("linux.namespaces[1].flags")
        );
        let ok = json!({"hooks": {"prestart": [{"path": "/bin/true", "args": ["true"],
            "env": ["A=1"], "timeout": 2}], "poststop": [{"path": "/bin/true"}]}});
        assert_eq!(first_unsupported(&ok), None);
        let bad = json!({"hooks": {"onExit": [{"path": "/bin/true"}]}});
        assert_eq!(first_unsupported(&bad).as_deref(), Some("hooks.onExit"));
        let ok = json!({"linux": {"namespaces": [{"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}});
        assert_eq!(first_unsupported(&ok), None);
        let bad = json!({"mounts": [{"destination": "/x", "type": "bind", "source": "/tmp",
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}]}]});
        assert_eq!(
            first_unsupported(&bad).as_deref(),
            Some("mounts[0].uidMappings")
        );
        let bad = json!({"process": {"apparmorProfile": "x"}});
        assert_eq!(
            first_unsupported(&bad).as_deref(),
            Some("process.apparmorProfile")
        );
    }
}
