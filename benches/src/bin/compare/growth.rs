//! growth: placeholder until filled in.
use crate::report::Section;
use crate::Ctx;
pub fn run(_ctx: &Ctx) -> Section {
    let mut s = Section::new("growth", "Growth");
    s.intro.push("skipped: not written yet".into());
    s
}
