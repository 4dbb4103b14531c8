//! Seeds for the stable driver: the fixtures' hostile tarballs, tarballs
//! aimed at the canary outside the target, and Containerfiles.

use crate::CANARY;

/// One raw ustar header + data, with any name, link name and type: the
/// `tar` crate's builder refuses `..` and absolute names, which are the
/// point here.
pub fn raw_entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, len: usize, s: &[u8]| {
        let n = s.len().min(len);
        h[off..off + n].copy_from_slice(&s[..n]);
    };
    put(&mut h, 0, 100, name.as_bytes());
    put(&mut h, 100, 8, b"0000755\0");
    put(&mut h, 108, 8, b"0000000\0");
    put(&mut h, 116, 8, b"0000000\0");
    put(&mut h, 124, 12, format!("{:011o}\0", data.len()).as_bytes());
    put(&mut h, 136, 12, b"00000000000\0");
    h[156] = kind;
    put(&mut h, 157, 100, link.as_bytes());
    put(&mut h, 257, 8, b"ustar\x0000");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    let mut v = h.to_vec();
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

pub fn finish(mut v: Vec<u8>) -> Vec<u8> {
    v.extend_from_slice(&[0u8; 1024]);
    v
}

pub fn unpack_seeds() -> Vec<Vec<u8>> {
    let c = CANARY;
    let cd = format!("{CANARY}-dir");
    let rel = format!("../../../../../../../..{CANARY}");
    let mut seeds = vec![
        finish(raw_entry(c, b'0', "", b"abs")),
        finish(raw_entry(&rel, b'0', "", b"dotdot")),
        finish([raw_entry("l", b'2', &cd, b""), raw_entry("l/x", b'0', "", b"via link")].concat()),
        finish([raw_entry("d", b'2', "../../..", b""), raw_entry(&format!("d{cd}"), b'5', "", b"")].concat()),
        finish([raw_entry("h", b'1', "../sibling/file", b""), raw_entry("h", b'0', "", b"over")].concat()),
        finish([raw_entry("s", b'2', "../sibling/file", b""), raw_entry("s", b'0', "", b"over")].concat()),
        finish(
            [
                raw_entry("a", b'5', "", b""),
                raw_entry("a/b", b'2', "../../sibling", b""),
                raw_entry("a/b/file", b'0', "", b"x"),
            ]
            .concat(),
        ),
        finish([raw_entry(".wh..wh..opq", b'0', "", b""), raw_entry("../.wh.sibling", b'0', "", b"")].concat()),
        finish(raw_entry("dev", b'3', "", b"")),
        finish(raw_entry("p/q/r/s", b'0', "", &[7u8; 2000])),
    ];
    for case in fixtures::hostile::all_hostile_cases() {
        // The bombs are slow by design; the fuzzer needs many runs a second.
        if case.bytes.len() < 1 << 20 && !case.name.contains("bomb") {
            seeds.push(case.bytes);
        }
    }
    seeds
}

pub const CONTAINERFILES: &[&str] = &[
    "FROM busybox\nRUN echo hi\n",
    "# syntax=docker/dockerfile:1\n# escape=`\nARG B=busybox\nFROM ${B} AS b\nRUN echo `\n  hi\n",
    "FROM busybox AS build\nRUN --mount=type=cache,target=/c <<EOF\nset -e\necho $A\nEOF\nFROM build\nCOPY --from=build --chown=1:1 --chmod=0755 a b /d/\n",
    "FROM scratch\nCOPY <<-A <<\"B\" /etc/\n\tone\n\tA\ntwo\nB\nENV A=1 B=\"2 3\" C\\ D=4\nLABEL a=b\n",
    "ARG X\nFROM busybox\nWORKDIR ${X:-/w}\nUSER 1:1\nEXPOSE 80/tcp\nVOLUME [\"/v\"]\nENTRYPOINT [\"sh\", \"-c\"]\nCMD echo\nSHELL [\"/bin/sh\", \"-c\"]\nSTOPSIGNAL TERM\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN x\n",
    "FROM busybox\nADD --checksum=sha256:00 http://x/y /z\nCOPY [\"a b\", \"/c\"]\nRUN [\"echo\", \"\\u00e9\"]\n",
];

pub const TOKENS: &[&str] = &[
    "FROM ", "RUN ", "COPY ", "ADD ", "ARG ", "ENV ", "WORKDIR ", "USER ", "CMD ", "ONBUILD ",
    "HEALTHCHECK ", "SHELL ", " AS ", "--from=", "--mount=", "--chown=", "--chmod=", "<<EOF\n",
    "<<-EOF\n", "EOF\n", "\\\n", "`\n", "${", "${A:-", "${A:+", "}", "$", "\"", "'", "[", "]", ",",
    "=", "\n", "# escape=\\\n", "# escape=`\n", "# syntax=x\n", "\t", " ", "\r\n", "\0", "é", "\u{feff}",
];
