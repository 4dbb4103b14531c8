//! Messages to stderr and, with `--log`, to a file: text, or with
//! `--log-format json` one object a line, `{"level","msg","time"}`, the
//! shape containerd's shim and docker read back from runc.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

struct Logger {
    file: Option<Mutex<std::fs::File>>,
    json: bool,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub fn init(path: Option<&Path>, format: &str, debug: bool) {
    let file = path.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("rbox-runtime: open log {}: {e}", p.display()))
            .ok()
            .map(Mutex::new)
    });
    let _ = LOGGER.set(Logger {
        file,
        json: format == "json",
        debug,
    });
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    engine::image::rfc3339(secs)
}

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    let Some(f) = &l.file else { return };
    let line = if l.json {
        serde_json::json!({"level": level, "msg": msg, "time": now()}).to_string()
    } else {
        format!("{} {level}: {msg}", now())
    };
    if let Ok(mut f) = f.lock() {
        let _ = writeln!(f, "{line}");
    }
}

/// An error: on stderr and in the log.
pub fn error(msg: &str) {
    eprintln!("rbox-runtime: {msg}");
    write("error", msg);
}

/// A warning (a failed poststop hook): on stderr and in the log.
pub fn warn(msg: &str) {
    eprintln!("rbox-runtime: warning: {msg}");
    write("warning", msg);
}

/// With --debug: in the log (stderr when there is none).
pub fn debug(msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    if !l.debug {
        return;
    }
    if l.file.is_some() {
        write("debug", msg);
    } else {
        eprintln!("rbox-runtime: debug: {msg}");
    }
}
