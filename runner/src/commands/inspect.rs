//! `rrun inspect [--type container|image] [-f FORMAT] NAME|IMAGE…`: a JSON
//! array with Docker's field names for what rbox knows, or one line per
//! object through `--format`. A name is looked up as a container first,
//! then as an image, as `docker inspect` does.

use std::path::Path;

use anyhow::Result;
use engine::image::rfc3339;
use runner::state::{self, State, Status};
use serde_json::{json, Value};

use super::format::Template;
use crate::cli::InspectArgs;
use crate::run::Coded;

pub fn inspect(root: &Path, a: &InspectArgs) -> Result<i32> {
    let template = match &a.format {
        Some(f) => Some(Template::parse(f).map_err(|e| Coded(125, e.into()))?),
        None => None,
    };
    let containers = root.join("containers");
    let mut found = Vec::new();
    let mut code = 0;
    for key in &a.names {
        let want_container = a.kind.as_deref() != Some("image");
        let want_image = a.kind.as_deref() != Some("container");
        let container = if want_container {
            state::find(&containers, key).ok()
        } else {
            None
        };
        let value = match container {
            Some((dir, s)) => Some(container_json(root, &dir, &s)),
            None if want_image => image_json(root, key),
            None => None,
        };
        match value {
            Some(v) => found.push(v),
            None => {
                eprintln!("rrun: no such object: {key}");
                code = 1;
            }
        }
    }
    match template {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v).map_err(|e| Coded(125, e.into()))?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(found))?),
    }
    Ok(code)
}

pub(crate) fn time(secs: Option<u64>) -> String {
    secs.map(|s| rfc3339(s as i64))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

/// Docker's `Status` word for a container.
pub fn status_word(s: &State) -> &'static str {
    match (s.status, s.is_running()) {
        (_, true) if runner::lifecycle::paused(s) => "paused",
        (_, true) => "running",
        (Status::Created, false) => "created",
        _ => "exited",
    }
}

fn container_json(root: &Path, dir: &Path, s: &State) -> Value {
    let running = s.is_running();
    let image = engine::Store::open(root)
        .ok()
        .and_then(|st| st.find_image(&s.image_digest).ok());
    let entrypoint = image
        .as_ref()
        .and_then(|i| i.config.config.entrypoint.clone())
        .filter(|e| s.command.starts_with(e));
    let cmd: Vec<String> = match &entrypoint {
        Some(e) => s.command[e.len()..].to_vec(),
        None => s.command.clone(),
    };
    // The image's labels, then the container's own (--label wins).
    let mut labels: std::collections::BTreeMap<String, String> = image
        .as_ref()
        .map(|i| i.config.config.labels.clone().into_iter().collect())
        .unwrap_or_default();
    labels.extend(s.options.labels.clone());
    let mut binds: Vec<Value> = s
        .host
        .binds
        .iter()
        // NAME:DST is a volume, listed below.
        .filter(|b| b.starts_with('/'))
        .map(|b| {
            let parts: Vec<&str> = b.splitn(3, ':').collect();
            let rw = parts.get(2) != Some(&"ro");
            json!({
                "Type": "bind",
                "Source": parts.first().copied().unwrap_or(""),
                "Destination": parts.get(1).copied().unwrap_or(""),
                "Mode": parts.get(2).copied().unwrap_or(""),
                "RW": rw,
                "Propagation": "rprivate",
            })
        })
        .collect();
    binds.extend(runner::volume::recorded(dir).into_iter().map(|u| {
        json!({
            "Type": "volume",
            "Name": u.name,
            "Source": runner::volume::data_path(root, &u.name),
            "Destination": u.destination,
            "Driver": runner::volume::DRIVER,
            "Mode": if u.rw { "" } else { "ro" },
            "RW": u.rw,
            "Propagation": "",
        })
    }));
    // Docker's shape: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}.
    let port_map = |ports: &[runner::network::ports::PortMapping], any_ip: &str| {
        let mut m = serde_json::Map::new();
        for p in ports {
            let ip = p.host_ip.map(|a| a.to_string()).unwrap_or(any_ip.into());
            if let Value::Array(v) = m.entry(p.private()).or_insert_with(|| json!([])) {
                v.push(json!({"HostIp": ip, "HostPort": p.host_port.to_string()}));
            }
        }
        Value::Object(m)
    };
    let live_ports: &[runner::network::ports::PortMapping] =
        if running { &s.host.ports } else { &[] };
    json!({
        "Id": s.id,
        "Created": time(Some(s.created)),
        "Path": s.command.first().cloned().unwrap_or_default(),
        "Args": s.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": status_word(s),
            "Running": running,
            "Paused": running && runner::lifecycle::paused(s),
            "Restarting": false,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": if running { s.pid.map(|p| p.pid).unwrap_or(0) } else { 0 },
            "ExitCode": s.exit_code.unwrap_or(0),
            "Error": "",
            "StartedAt": time(Some(s.created)),
            "FinishedAt": time(s.finished),
            "RestartCount": s.restart_count,
            "Health": s.options.healthcheck.as_ref().and_then(|_| runner::health::load(dir)),
        },
        "Image": s.image_digest,
        "Name": format!("/{}", s.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "LogPath": if s.detached { dir.join("container.log").display().to_string() } else { String::new() },
        "HostConfig": {
            "Binds": s.host.binds,
            "NetworkMode": s.host.network_mode,
            "RestartPolicy": {
                "Name": s.restart.name(),
                "MaximumRetryCount": match s.restart {
                    runner::state::RestartPolicy::OnFailure { max } => max,
                    _ => 0,
                },
            },
            "AutoRemove": s.auto_remove,
            "Privileged": s.host.privileged,
            "ReadonlyRootfs": s.host.read_only,
            "Memory": s.host.memory_bytes.unwrap_or(0),
            "NanoCpus": s.host.nano_cpus.unwrap_or(0),
            "PidsLimit": s.host.pids_limit,
            "PortBindings": port_map(&s.host.ports, ""),
            "PublishAllPorts": s.host.publish_all,
            "Runtime": s.host.runtime,
            "Dns": s.host.dns,
            "DnsSearch": s.host.dns_search,
            "DnsOptions": s.host.dns_options,
            "ExtraHosts": s.host.extra_hosts,
            "Ulimits": s.options.ulimits,
            "Sysctls": s.options.sysctls,
            "ShmSize": s.options.shm_size.unwrap_or(runner::runopts::DEFAULT_SHM),
            "GroupAdd": s.options.group_add,
            "OomScoreAdj": s.options.oom_score_adj.unwrap_or(0),
            "CpusetCpus": s.options.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": s.options.cpuset_mems.clone().unwrap_or_default(),
            "Devices": s.options.devices,
            "LogConfig": {
                "Type": "rbox-plain",
                "Config": log_config(&s.options.log),
            },
        },
        "Mounts": binds,
        "Config": {
            "Hostname": s.host.hostname,
            "User": format!("{}:{}", s.exec.uid, s.exec.gid),
            "Env": s.exec.env,
            "Cmd": cmd,
            "Entrypoint": entrypoint,
            "Image": s.image,
            "WorkingDir": s.exec.cwd,
            "Labels": labels,
            "StopSignal": s.options.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
            "StopTimeout": s.options.stop_timeout,
            "Healthcheck": s.options.healthcheck,
        },
        "NetworkSettings": network_settings(root, s, running, port_map(live_ports, "0.0.0.0")),
    })
}

/// Docker's NetworkSettings: the running container's address on its
/// bridge network (default or user-defined), by network name.
fn network_settings(root: &Path, s: &State, running: bool, ports: Value) -> Value {
    let mode = s.host.network_mode.as_str();
    let (net, id) = if mode == "bridge" {
        (
            Some(runner::network::Network::default_bridge()),
            String::new(),
        )
    } else {
        match runner::network::user::load(root, mode) {
            Ok(d) => (Some(d.network(root)), d.id.clone()),
            Err(_) => (None, String::new()),
        }
    };
    let lease = net.as_ref().filter(|_| running).and_then(|n| {
        n.ipam()
            .in_use()
            .into_iter()
            .find(|(_, h)| h.container == s.id)
            .map(|(a, _)| (n, a))
    });
    let Some((n, addr)) = lease else {
        return json!({"Networks": {}, "Ports": ports, "IPAddress": "", "Gateway": ""});
    };
    let entry = json!({
        "NetworkID": id,
        "IPAddress": addr.to_string(),
        "IPPrefixLen": n.subnet.prefix,
        "Gateway": n.gateway.to_string(),
        "Aliases": s.host.network_aliases,
    });
    let mut networks = serde_json::Map::new();
    networks.insert(n.name.clone(), entry);
    // Those of rrun network connect, while on them.
    for c in &s.host.connected {
        if !runner::network::connect::is_live(c, &s.id) {
            continue;
        }
        let id = runner::network::user::load(root, &c.network)
            .map(|d| d.id)
            .unwrap_or_default();
        let net = c.net();
        networks.insert(
            c.network.clone(),
            json!({
                "NetworkID": id,
                "IPAddress": c.address.to_string(),
                "IPPrefixLen": net.subnet.prefix,
                "Gateway": c.gateway.to_string(),
                "Aliases": c.aliases,
            }),
        );
    }
    json!({
        "Networks": networks,
        "Ports": ports,
        "IPAddress": addr.to_string(),
        "IPPrefixLen": n.subnet.prefix,
        "Gateway": n.gateway.to_string(),
    })
}

fn image_json(root: &Path, key: &str) -> Option<Value> {
    let store = engine::Store::open(root).ok()?;
    let image = store.find_image(key).ok()?;
    let tags: Vec<String> = store
        .list_refs()
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, d)| *d == image.manifest_digest)
        .map(|(r, _)| r.to_string())
        .collect();
    let c = &image.config;
    let size: u64 = image.manifest.layers.iter().map(|l| l.size).sum();
    Some(json!({
        "Id": image.manifest_digest.to_string(),
        "RepoTags": tags,
        "Created": c.created.clone().unwrap_or_default(),
        "Author": c.author.clone().unwrap_or_default(),
        "Architecture": c.architecture,
        "Os": c.os,
        "Config": {
            "User": c.config.user.clone().unwrap_or_default(),
            "Env": c.config.env,
            "Cmd": c.config.cmd,
            "Entrypoint": c.config.entrypoint,
            "WorkingDir": c.config.working_dir.clone().unwrap_or_default(),
            "Labels": c.config.labels,
            "ExposedPorts": c.config.exposed_ports.keys().map(|k| (k.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "Volumes": c.config.volumes.keys().map(|k| (k.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "StopSignal": c.config.stop_signal,
        },
        "RootFS": {
            "Type": "layers",
            "Layers": c.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Size": size,
    }))
}

/// `--log-opt` as Docker's LogConfig.Config (strings, as given names).
fn log_config(l: &runner::logfile::LogConfig) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(n) = l.max_size {
        m.insert("max-size".into(), json!(n.to_string()));
    }
    if let Some(n) = l.max_file {
        m.insert("max-file".into(), json!(n.to_string()));
    }
    Value::Object(m)
}
