pub mod cache;
pub mod context;
pub mod parse;
