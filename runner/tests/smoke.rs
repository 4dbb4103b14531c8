mod common;
use common::*;

#[test]
fn echo_runs() {
    let o = sh(&[], "echo hello; echo $$; hostname");
    eprintln!("{}", stderr(&o));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("hello\n1\n"), "{}", stdout(&o));
}
