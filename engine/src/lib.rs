//! rbox's engine: the shared library under `rbuild` and `rrun`.
//!
//! It knows about digests, the content-addressed store, the OCI image model,
//! the layer format (write and unpack), OCI interop and the registry
//! client, and the `Runtime` seam the builder runs its steps through. It
//! never depends on the runner or the builder (docs/ARCHITECTURE.md).

pub mod digest;
pub mod errfmt;
pub mod fsutil;
pub mod image;
pub mod interrupt;
pub mod outfile;
pub mod reference;
pub mod rootless;
pub mod store;

pub use digest::Digest;
pub use image::{Descriptor, ImageConfig, Manifest};
pub use reference::ImageRef;
pub use store::{Image, Store, StoreError};
pub mod fsck;
pub mod layer;
pub mod mount;
pub mod oci;
pub mod progress;
pub mod runtime;
pub mod snapshot;
