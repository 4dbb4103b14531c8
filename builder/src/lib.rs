pub mod cache;
pub mod context;
