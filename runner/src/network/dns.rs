//! What the embedded resolver of a user-defined network says to one DNS
//! message (see `resolver` for the process around it): an answer of its
//! own for the names of the network's containers, a refusal of what is
//! malformed, or "forward it" for everything else. Pure: no sockets, no
//! files, so every decision is unit-tested without root.
//!
//! Answered here, from `Record`s (the network's live members):
//! - A for a container's name, `--network-alias`es and hostname (every
//!   address that has the name, as Docker answers a shared alias);
//! - AAAA and any other type for such a name: NOERROR with no records
//!   (networks are IPv4 only; an NXDOMAIN would make clients give up on
//!   the A they got too);
//! - PTR for an address of the network's subnet: the container's name, or
//!   NXDOMAIN (the upstream servers know nothing of the subnet).
//!
//! Names compare case-insensitively, with or without the final dot. The
//! wire format is `simple-dns`'s; a message it cannot parse gets FORMERR
//! if its header is there, nothing otherwise, and a response (QR set) is
//! never answered, so two resolvers cannot be made to talk in a loop.

use std::net::Ipv4Addr;

use simple_dns::rdata::{RData, A, PTR};
use simple_dns::{
    Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, OPCODE, QTYPE, RCODE, TYPE,
};

use super::ipam::Subnet;

/// Seconds a client may keep an answer: short, containers come and go.
pub const TTL: u32 = 10;

/// A container on the network and the names it answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub address: Ipv4Addr,
    /// Its name first (the PTR answer), then aliases and hostname.
    pub names: Vec<String>,
}

/// What to do with a message from a container.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not one of ours: ask the upstream servers.
    Forward,
    /// Not a query (too short, or a response): say nothing.
    Drop,
}

fn header_only(query: &[u8], rcode: u8) -> Vec<u8> {
    // Id, QR, the opcode and RD as asked; RA; no sections.
    let mut h = vec![0u8; 12];
    h[..2].copy_from_slice(&query[..2]);
    h[2] = 0x80 | (query[2] & 0x79);
    h[3] = 0x80 | (rcode & 0x0f);
    h
}

fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The address a `d.c.b.a.in-addr.arpa` name stands for.
fn reverse_v4(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut o = [0u8; 4];
    let mut parts = rest.split('.');
    for i in (0..4).rev() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        o[i] = p.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(o))
}

/// The verdict on `query` for a network on `subnet` whose live members
/// are `records`.
pub fn answer(query: &[u8], subnet: Subnet, records: &[Record]) -> Verdict {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Verdict::Drop;
    }
    let Ok(packet) = Packet::parse(query) else {
        return Verdict::Reply(header_only(query, 1));
    };
    if packet.opcode() != OPCODE::StandardQuery {
        return Verdict::Reply(header_only(query, 4));
    }
    let [q] = packet.questions.as_slice() else {
        return Verdict::Reply(header_only(query, 1));
    };
    let qname = normal(&q.qname.to_string());
    let reply = |answers: Vec<ResourceRecord<'_>>, rcode: RCODE| {
        let mut r = Packet::new_reply(packet.id());
        if packet.has_flags(PacketFlag::RECURSION_DESIRED) {
            r.set_flags(PacketFlag::RECURSION_DESIRED);
        }
        r.set_flags(PacketFlag::RECURSION_AVAILABLE | PacketFlag::AUTHORITATIVE_ANSWER);
        *r.rcode_mut() = rcode;
        r.questions
            .push(Question::new(q.qname.clone(), q.qtype, q.qclass, false));
        r.answers = answers;
        match r.build_bytes_vec_compressed() {
            Ok(b) => Verdict::Reply(b),
            Err(_) => Verdict::Reply(header_only(query, 2)),
        }
    };
    if let Some(addr) = reverse_v4(&qname).filter(|a| subnet.contains(*a)) {
        let found = records
            .iter()
            .find(|r| r.address == addr)
            .and_then(|r| r.names.first());
        return match (q.qtype, found) {
            (QTYPE::TYPE(TYPE::PTR), Some(n)) => match Name::new(n) {
                Ok(target) => reply(
                    vec![ResourceRecord::new(
                        q.qname.clone(),
                        CLASS::IN,
                        TTL,
                        RData::PTR(PTR(target)),
                    )],
                    RCODE::NoError,
                ),
                Err(_) => reply(Vec::new(), RCODE::NameError),
            },
            (_, Some(_)) => reply(Vec::new(), RCODE::NoError),
            (_, None) => reply(Vec::new(), RCODE::NameError),
        };
    }
    let hits: Vec<Ipv4Addr> = records
        .iter()
        .filter(|r| r.names.iter().any(|n| normal(n) == qname))
        .map(|r| r.address)
        .collect();
    if hits.is_empty() {
        return Verdict::Forward;
    }
    let answers = match q.qtype {
        QTYPE::TYPE(TYPE::A) | QTYPE::ANY => hits
            .iter()
            .map(|a| {
                ResourceRecord::new(
                    q.qname.clone(),
                    CLASS::IN,
                    TTL,
                    RData::A(A {
                        address: u32::from(*a),
                    }),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    reply(answers, RCODE::NoError)
}

/// The id of a message (for matching a forwarded reply to its query).
pub fn id_of(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// A SERVFAIL for `query` (no upstream answered).
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    (query.len() >= 12).then(|| header_only(query, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(0x1234);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype.into(),
            CLASS::IN.into(),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    fn net() -> (Subnet, Vec<Record>) {
        let rec = |a: [u8; 4], n: &[&str]| Record {
            address: a.into(),
            names: n.iter().map(|s| s.to_string()).collect(),
        };
        (
            "10.88.0.0/24".parse().unwrap(),
            vec![
                rec([10, 88, 0, 2], &["db", "database", "dbhost"]),
                rec([10, 88, 0, 3], &["web", "shared"]),
                rec([10, 88, 0, 4], &["web2", "shared"]),
            ],
        )
    }

    fn parsed(v: &Verdict) -> Packet<'_> {
        match v {
            Verdict::Reply(b) => Packet::parse(b).unwrap(),
            other => panic!("no reply: {other:?}"),
        }
    }

    fn a_records(p: &Packet) -> Vec<Ipv4Addr> {
        p.answers
            .iter()
            .filter_map(|r| match &r.rdata {
                RData::A(a) => Some(Ipv4Addr::from(a.address)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn members_are_answered_by_name_alias_and_hostname() {
        let (s, r) = net();
        for n in ["db", "DataBase.", "dbhost"] {
            let v = answer(&query(n, TYPE::A), s, &r);
            let p = parsed(&v);
            assert_eq!(p.id(), 0x1234);
            assert_eq!(p.rcode(), RCODE::NoError);
            assert!(p.has_flags(PacketFlag::RESPONSE | PacketFlag::RECURSION_DESIRED));
            assert_eq!(a_records(&p), vec![Ipv4Addr::new(10, 88, 0, 2)], "{n}");
        }
        let v = answer(&query("shared", TYPE::A), s, &r);
        assert_eq!(a_records(&parsed(&v)).len(), 2);
        // AAAA of a member: no records, no error.
        let v = answer(&query("db", TYPE::AAAA), s, &r);
        let p = parsed(&v);
        assert_eq!((p.rcode(), p.answers.len()), (RCODE::NoError, 0));
    }

    #[test]
    fn other_names_are_forwarded_and_the_subnet_is_reversed() {
        let (s, r) = net();
        assert_eq!(
            answer(&query("example.test", TYPE::A), s, &r),
            Verdict::Forward
        );
        assert_eq!(
            answer(&query("db.example.test", TYPE::A), s, &r),
            Verdict::Forward
        );
        let v = answer(&query("2.0.88.10.in-addr.arpa", TYPE::PTR), s, &r);
        let p = parsed(&v);
        match &p.answers[0].rdata {
            RData::PTR(PTR(n)) => assert_eq!(n.to_string(), "db"),
            other => panic!("{other:?}"),
        }
        let v = answer(&query("9.0.88.10.in-addr.arpa", TYPE::PTR), s, &r);
        assert_eq!(parsed(&v).rcode(), RCODE::NameError);
        assert_eq!(
            answer(&query("1.2.0.192.in-addr.arpa", TYPE::PTR), s, &r),
            Verdict::Forward
        );
        assert_eq!(
            reverse_v4("4.3.2.1.in-addr.arpa"),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(reverse_v4("3.2.1.in-addr.arpa"), None);
        assert_eq!(reverse_v4("5.4.3.2.1.in-addr.arpa"), None);
    }

    #[test]
    fn hostile_messages_get_no_more_than_a_header() {
        let (s, r) = net();
        assert_eq!(answer(&[], s, &r), Verdict::Drop);
        assert_eq!(answer(&[1, 2, 3], s, &r), Verdict::Drop);
        // A response is never answered.
        let mut resp = query("db", TYPE::A);
        resp[2] |= 0x80;
        assert_eq!(answer(&resp, s, &r), Verdict::Drop);
        // Truncated, a pointer loop, garbage: FORMERR of 12 bytes.
        let q = query("db", TYPE::A);
        let mut looped = q[..12].to_vec();
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        for bad in [&q[..q.len() - 3], &looped[..], &[0xffu8; 512][..]] {
            let mut bad = bad.to_vec();
            bad[2] &= 0x7f;
            match answer(&bad, s, &r) {
                Verdict::Reply(b) => {
                    assert_eq!(b.len(), 12);
                    assert_ne!(b[3] & 0x0f, 0);
                }
                other => panic!("{other:?}"),
            }
        }
        // Every prefix of a good query, and every byte flipped: no panic,
        // and never a reply longer than a local answer can be.
        for n in 0..q.len() {
            let _ = answer(&q[..n], s, &r);
        }
        for i in 0..q.len() {
            for bit in 0..8 {
                let mut m = q.clone();
                m[i] ^= 1 << bit;
                if let Verdict::Reply(b) = answer(&m, s, &r) {
                    assert!(b.len() <= 512, "{}", b.len());
                }
            }
        }
        // Two questions: FORMERR.
        let mut two = Packet::new_query(7);
        for n in ["db", "web"] {
            two.questions.push(Question::new(
                Name::new_unchecked(n),
                TYPE::A.into(),
                CLASS::IN.into(),
                false,
            ));
        }
        let v = answer(&two.build_bytes_vec().unwrap(), s, &r);
        assert_eq!(parsed(&v).rcode(), RCODE::FormatError);
        assert_eq!(servfail(&q).unwrap()[3] & 0x0f, 2);
        assert_eq!(id_of(&q), Some(0x1234));
    }
}
