//! rrun's command handlers that read or tidy containers: one file per
//! command. (`run`, `exec` and the stop/kill/rm/logs family still live in
//! run.rs and admin.rs.)

pub mod attach;
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
pub mod update;
pub mod volume;
pub mod wait;

/// The image container `s` was made from, in `store`; exit 1 naming both
/// when it is gone (commit, export and start all need its layers).
pub(crate) fn container_image(
    store: &engine::Store,
    s: &runner::state::State,
) -> Result<engine::Image, crate::run::Coded> {
    store.find_image(&s.image_digest).map_err(|e| {
        crate::run::Coded(
            1,
            anyhow::anyhow!(
                "the image of container {} ({}): {e}",
                s.name,
                s.image_digest
            ),
        )
    })
}
