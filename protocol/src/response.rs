//! Replies read off the wire, client side (the load generator, tests):
//! enough of the text, meta and binary reply grammar to count hits, misses
//! and errors and to hand values to a verifier. The other direction of
//! [`crate::text`] and [`crate::binary`], kept here so a client needs
//! nothing but this crate. Incomplete input returns `None`; a reply that is
//! not memcached's is a [`BadReply`].

use crate::binary::{Header, HEADER_LEN, RESPONSE_MAGIC};

/// What one reply said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A retrieval with this many values (0 = miss).
    Values(usize),
    /// STORED / HD / binary success without a value.
    Stored,
    /// NOT_STORED, EXISTS, NOT_FOUND and the like: a valid "no".
    NotStored,
    /// ERROR, CLIENT_ERROR, SERVER_ERROR, or a binary error status.
    Error,
}

/// A parsed reply and the bytes it used, `None` for more bytes, or an error.
pub type Parsed = Result<Option<(Outcome, usize)>, BadReply>;

/// A malformed reply, and what was wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadReply(pub &'static str);

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = memchr::memchr(b'\n', buf)?;
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    Some((line, end + 1))
}

/// Parses one text reply to a retrieval (`VALUE ...` lines then `END`),
/// calling `on_value(key, value)` for each value.
pub fn text_get(
    buf: &[u8],
    on_value: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<Option<(Outcome, usize)>, BadReply> {
    let mut at = 0;
    let mut values = 0;
    loop {
        let Some((l, used)) = line(&buf[at..]) else {
            return Ok(None);
        };
        if l == b"END" {
            return Ok(Some((Outcome::Values(values), at + used)));
        }
        if let Some(rest) = l.strip_prefix(b"VALUE ") {
            let mut parts = rest.split(|&b| b == b' ');
            let key = parts.next().unwrap_or_default();
            let len: usize = parts
                .nth(1)
                .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
                .ok_or(BadReply("bad VALUE line"))?;
            let data_start = at + used;
            let Some(block) = buf.get(data_start..data_start + len + 2) else {
                return Ok(None);
            };
            if &block[len..] != b"\r\n" {
                return Err(BadReply("value not followed by \\r\\n"));
            }
            on_value(key, &block[..len]);
            values += 1;
            at = data_start + len + 2;
            continue;
        }
        if is_error(l) {
            return Ok(Some((Outcome::Error, at + used)));
        }
        return Err(BadReply("unexpected line in a get reply"));
    }
}

fn is_error(l: &[u8]) -> bool {
    l == b"ERROR" || l.starts_with(b"CLIENT_ERROR") || l.starts_with(b"SERVER_ERROR")
}

/// Parses one text reply to a storage command.
pub fn text_store(buf: &[u8]) -> Result<Option<(Outcome, usize)>, BadReply> {
    let Some((l, used)) = line(buf) else {
        return Ok(None);
    };
    let outcome = match l {
        b"STORED" => Outcome::Stored,
        b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => Outcome::NotStored,
        l if is_error(l) => Outcome::Error,
        _ => return Err(BadReply("unexpected line after a set")),
    };
    Ok(Some((outcome, used)))
}

/// Parses one meta reply (`mg ... v`, `ms`): `VA`, `HD`, `EN`, `NS`,
/// `EX`, `NF`, or an error line.
pub fn meta(buf: &[u8], on_value: &mut dyn FnMut(&[u8])) -> Parsed {
    let Some((l, used)) = line(buf) else {
        return Ok(None);
    };
    let code = l.get(..2).unwrap_or(l);
    let outcome = match code {
        b"VA" => {
            let len: usize = l
                .get(3..)
                .and_then(|rest| rest.split(|&b| b == b' ').next())
                .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
                .ok_or(BadReply("bad VA line"))?;
            let Some(block) = buf.get(used..used + len + 2) else {
                return Ok(None);
            };
            if &block[len..] != b"\r\n" {
                return Err(BadReply("value not followed by \\r\\n"));
            }
            on_value(&block[..len]);
            return Ok(Some((Outcome::Values(1), used + len + 2)));
        }
        b"HD" => Outcome::Stored,
        b"EN" => Outcome::Values(0),
        b"NS" | b"EX" | b"NF" => Outcome::NotStored,
        _ if is_error(l) => Outcome::Error,
        _ => return Err(BadReply("unexpected meta reply line")),
    };
    Ok(Some((outcome, used)))
}

/// Parses one binary response; `on_value(key, value)` gets a hit's bytes.
/// Returns the response's opaque with the outcome.
pub fn binary(
    buf: &[u8],
    on_value: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<Option<(Outcome, u32, usize)>, BadReply> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let h = Header::decode(head);
    if h.magic != RESPONSE_MAGIC {
        return Err(BadReply("bad response magic"));
    }
    let total = HEADER_LEN + h.body_len as usize;
    let Some(body) = buf.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    let (extras, rest) = body.split_at(usize::from(h.extras_len).min(body.len()));
    let (key, value) = rest.split_at(usize::from(h.key_len).min(rest.len()));
    let is_get = matches!(
        h.opcode,
        0x00 | 0x09 | 0x0c | 0x0d | 0x1d | 0x1e | 0x23 | 0x24
    );
    let outcome = match h.vbucket_or_status {
        0 if is_get => {
            let _ = extras;
            on_value(key, value);
            Outcome::Values(1)
        }
        0 => Outcome::Stored,
        1 if is_get => Outcome::Values(0),
        1 | 2 | 5 => Outcome::NotStored,
        _ => Outcome::Error,
    };
    Ok(Some((outcome, h.opaque, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_replies() {
        let mut seen = Vec::new();
        let buf = b"VALUE a 0 3\r\nabc\r\nVALUE b 5 0 99\r\n\r\nEND\r\nSTORED\r\n";
        let (outcome, used) = text_get(buf, &mut |k, v| seen.push((k.to_vec(), v.to_vec())))
            .unwrap()
            .unwrap();
        assert_eq!(outcome, Outcome::Values(2));
        assert_eq!(
            seen,
            vec![(b"a".to_vec(), b"abc".to_vec()), (b"b".to_vec(), vec![])]
        );
        assert_eq!(
            text_store(&buf[used..]).unwrap(),
            Some((Outcome::Stored, 8))
        );
        for cut in 0..used {
            assert_eq!(
                text_get(&buf[..cut], &mut |_, _| {}).unwrap(),
                None,
                "cut {cut}"
            );
        }
        assert_eq!(
            text_get(b"END\r\n", &mut |_, _| {}).unwrap(),
            Some((Outcome::Values(0), 5))
        );
        assert_eq!(
            text_get(b"SERVER_ERROR x\r\n", &mut |_, _| {}).unwrap(),
            Some((Outcome::Error, 16))
        );
        assert!(text_get(b"STORED\r\n", &mut |_, _| {}).is_err());
        assert_eq!(
            text_store(b"NOT_STORED\r\n").unwrap(),
            Some((Outcome::NotStored, 12))
        );
        assert!(text_store(b"VALUE\r\n").is_err());
    }

    #[test]
    fn meta_replies() {
        let mut seen = Vec::new();
        let buf = b"VA 3 c9\r\nabc\r\nEN\r\nHD\r\nNS\r\nCLIENT_ERROR bad\r\n";
        let (o, used) = meta(buf, &mut |v| seen.push(v.to_vec())).unwrap().unwrap();
        assert_eq!(
            (o, seen.clone()),
            (Outcome::Values(1), vec![b"abc".to_vec()])
        );
        let mut at = used;
        for expected in [
            Outcome::Values(0),
            Outcome::Stored,
            Outcome::NotStored,
            Outcome::Error,
        ] {
            let (o, used) = meta(&buf[at..], &mut |_| {}).unwrap().unwrap();
            assert_eq!(o, expected);
            at += used;
        }
        assert_eq!(meta(b"VA 3\r\nab", &mut |_| {}).unwrap(), None);
        assert!(meta(b"ZZ\r\n", &mut |_| {}).is_err());
    }

    #[test]
    fn binary_replies() {
        let mut buf = Vec::new();
        crate::binary::encode_response(
            &mut buf,
            &crate::binary::Response {
                opcode: 0x0c,
                status: crate::binary::Status::NoError,
                opaque: 9,
                cas: 1,
                extras: &[0, 0, 0, 0],
                key: b"k",
                value: b"v",
            },
        );
        let mut seen = Vec::new();
        let got = binary(&buf, &mut |k, v| seen.push((k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(got, Some((Outcome::Values(1), 9, buf.len())));
        assert_eq!(seen, vec![(b"k".to_vec(), b"v".to_vec())]);
        assert_eq!(binary(&buf[..10], &mut |_, _| {}).unwrap(), None);
        let mut miss = Vec::new();
        crate::binary::encode_error(&mut miss, 0x00, crate::binary::Status::KeyNotFound, 3);
        assert_eq!(
            binary(&miss, &mut |_, _| {}).unwrap(),
            Some((Outcome::Values(0), 3, miss.len()))
        );
    }
}
