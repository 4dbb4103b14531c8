//! `rrun port CONTAINER [PRIVATE_PORT[/PROTO]]`, as `docker port`: the
//! published ports of a running container, `80/tcp -> 0.0.0.0:8080`, or
//! only the host addresses of one private port.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use runner::network::ports::PortMapping;
use runner::state::{self, State};

use crate::cli::PortArgs;
use crate::run::Coded;

/// The lines `rrun port` prints for `s`, all or those of `private`.
pub fn lines(s: &State, private: Option<&str>) -> Result<Vec<String>, String> {
    // Docker: a stopped container has no ports.
    let ports: &[PortMapping] = if s.is_running() { &s.host.ports } else { &[] };
    let Some(want) = private else {
        return Ok(ports.iter().map(|p| p.to_string()).collect());
    };
    let (num, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    let num: u16 = num
        .parse()
        .map_err(|_| format!("invalid port {want:?}: expected PRIVATE_PORT[/PROTO]"))?;
    if !matches!(proto, "tcp" | "udp") {
        return Err(format!("invalid protocol {proto:?}: use tcp or udp"));
    }
    let hits: Vec<String> = ports
        .iter()
        .filter(|p| p.container_port == num && p.proto.as_str() == proto)
        .map(|p| format!("{}:{}", p.host_ip_shown(), p.host_port))
        .collect();
    if hits.is_empty() {
        return Err(format!(
            "no public port '{num}/{proto}' published for {}",
            s.name
        ));
    }
    Ok(hits)
}

pub fn port(root: &Path, a: &PortArgs) -> Result<i32> {
    let (_, s) =
        state::find(&root.join("containers"), &a.container).map_err(|e| Coded(1, e.into()))?;
    match lines(&s, a.private.as_deref()) {
        Ok(v) => {
            for l in v {
                println!("{l}");
            }
            Ok(0)
        }
        Err(e) => bail!(Coded(1, anyhow!(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner::network::ports::parse;
    use runner::state::{ExecDefaults, HostSettings, ProcessId, RestartPolicy, Status};

    fn running_with(specs: &[&str]) -> State {
        State {
            id: "0123456789ab".into(),
            name: "web".into(),
            image: "busybox".into(),
            image_digest: "sha256:00".into(),
            command: vec!["true".into()],
            status: Status::Running,
            // This process: alive, so the container counts as running.
            pid: Some(ProcessId::current()),
            supervisor: None,
            created: 0,
            finished: None,
            exit_code: None,
            oom_killed: false,
            auto_remove: false,
            detached: true,
            exec: ExecDefaults::default(),
            host: HostSettings {
                ports: specs.iter().flat_map(|s| parse(s).unwrap()).collect(),
                ..HostSettings::default()
            },
            restart: RestartPolicy::No,
            restart_count: 0,
            stop_requested: false,
            options: Default::default(),
            awaited_by: None,
        }
    }

    #[test]
    fn lines_are_dockers() {
        let s = running_with(&["8080:80", "127.0.0.1:5353:53/udp", "9000:80/udp"]);
        assert_eq!(
            lines(&s, None).unwrap(),
            [
                "80/tcp -> 0.0.0.0:8080",
                "53/udp -> 127.0.0.1:5353",
                "80/udp -> 0.0.0.0:9000"
            ]
        );
        assert_eq!(lines(&s, Some("80")).unwrap(), ["0.0.0.0:8080"]);
        assert_eq!(lines(&s, Some("80/udp")).unwrap(), ["0.0.0.0:9000"]);
        let e = lines(&s, Some("53")).unwrap_err();
        assert_eq!(e, "no public port '53/tcp' published for web");
        assert!(lines(&s, Some("x/tcp")).is_err());
        assert!(lines(&s, Some("53/sctp")).is_err());
        // Not running: no ports, as docker port.
        let mut stopped = s.clone();
        stopped.status = Status::Exited;
        assert_eq!(lines(&stopped, None).unwrap(), Vec::<String>::new());
    }
}
