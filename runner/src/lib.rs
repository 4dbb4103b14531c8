
pub mod init;
pub mod security;
pub mod tty;
