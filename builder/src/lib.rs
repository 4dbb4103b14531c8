pub mod cache;
pub mod cache_transfer;
pub mod check;
pub mod context;
pub mod copy;
pub mod exec;
pub mod parse;
pub mod progress;
