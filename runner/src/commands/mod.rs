//! rrun's command handlers that read or tidy containers: one file per
//! command. (`run`, `exec` and the stop/kill/rm/logs family still live in
//! run.rs and admin.rs.)

pub mod commit;
pub mod cp;
pub mod diff;
pub mod export;
pub mod format;
pub mod inspect;
pub mod network;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod rename;
pub mod start;
pub mod stats;
pub mod top;
pub mod wait;
