pub mod cache;
pub mod context;
pub mod copy;
pub mod parse;
pub mod exec;
pub mod progress;
