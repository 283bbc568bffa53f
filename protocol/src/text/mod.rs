//! memcached's text protocol: one command per line, storage commands followed
//! by a data block.
//!
//! Lines end in `\n`, optionally preceded by `\r` (memcached accepts both);
//! data blocks must end in exactly `\r\n`. Tokens are separated by runs of
//! spaces. The meta commands (`mg`, `ms`, `md`, `ma`, `mn`, `me`) share this
//! framing and are dispatched to [`crate::meta`] from here.

mod reply;
mod request;

pub use crate::command::{ArithOp, StoreMode};
pub use reply::{
    write_number, write_prefix, write_stat, write_value, write_version, Reply, StatValue,
};
pub use request::{KeyList, Request, Retrieval, Store};

use crate::error::{ErrorKind, ParseError};
use crate::key::is_valid_text_key;
use crate::lexer::{block_len, split_args, split_first_token, tokens, trim_spaces};
use crate::number::{parse_i32, parse_u64};
use crate::{meta, Limits};

/// The result of parsing from a connection buffer: a request and the bytes it
/// used, `None` when more bytes are needed, or an error.
pub type ParseResult<'a> = Result<Option<(Request<'a>, usize)>, ParseError>;

/// Parses the first request in `buf`. See the crate docs for the contract.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> ParseResult<'a> {
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        // One byte of slack: the last byte may be the `\r` of a line that is
        // exactly at the limit.
        return if buf.len() > limits.max_line_len + 1 && buf.len() > line_limit(buf, limits) + 1 {
            Err(ParseError::close(ErrorKind::LineTooLong))
        } else {
            Ok(None)
        };
    };
    let line_end = newline + 1;
    let line = match &buf[..newline] {
        [line @ .., b'\r'] => line,
        line => line,
    };
    // Only a long line pays for finding out whether it is a retrieval.
    if line.len() > limits.max_line_len && line.len() > line_limit(buf, limits) {
        return Err(ParseError::close(ErrorKind::LineTooLong));
    }
    let (command, rest) = split_first_token(line);
    let unknown = || Err(ParseError::skip(ErrorKind::UnknownCommand, line_end));
    let request = match command {
        // `bget`: an ancient alias memcached still accepts.
        b"get" | b"bget" => retrieval(rest, false, None, line_end)?,
        b"gets" => retrieval(rest, true, None, line_end)?,
        b"gat" | b"gats" => {
            let (exptime, keys) = split_first_token(rest);
            if exptime.is_empty() {
                return unknown();
            }
            let Some(exptime) = parse_i32(exptime) else {
                return Err(ParseError::skip(ErrorKind::InvalidExptime, line_end));
            };
            // memcached answers `gat <exptime>` without keys with END.
            let keys = KeyList::parse(keys).unwrap_or(KeyList::EMPTY);
            if keys.is_empty() && tokens(rest).nth(1).is_some() {
                return Err(ParseError::skip(ErrorKind::BadCommandLine, line_end));
            }
            Request::Get(Retrieval {
                with_cas: command == b"gats",
                touch: Some(exptime),
                keys,
            })
        }
        b"set" => return store(StoreMode::Set, rest, buf, line_end, limits),
        b"add" => return store(StoreMode::Add, rest, buf, line_end, limits),
        b"replace" => return store(StoreMode::Replace, rest, buf, line_end, limits),
        b"append" => return store(StoreMode::Append, rest, buf, line_end, limits),
        b"prepend" => return store(StoreMode::Prepend, rest, buf, line_end, limits),
        b"cas" => return store(StoreMode::Cas, rest, buf, line_end, limits),
        b"delete" => delete(rest, line_end)?,
        b"incr" => arith(ArithOp::Incr, rest, line_end)?,
        b"decr" => arith(ArithOp::Decr, rest, line_end)?,
        b"touch" => touch(rest, line_end)?,
        b"flush_all" => flush_all(rest, line_end, limits)?,
        b"version" => Request::Version,
        b"refresh_certs" => Request::RefreshCerts,
        b"verbosity" => {
            let (args, n) = split_args::<2>(rest);
            if n == 0 || n > 2 {
                return unknown();
            }
            // As memcached: a trailing `noreply` is honoured even when it
            // is the only argument (`verbosity noreply`); otherwise the
            // level must be a number (1.6.18 refuses `x`, `1x`, `-1`).
            let noreply = args[n - 1] == b"noreply";
            let level = match (n, parse_u64(args[0])) {
                (1, _) if noreply => 0,
                (_, Some(level)) => u32::try_from(level).unwrap_or(u32::MAX),
                (_, None) => {
                    return Err(
                        ParseError::skip(ErrorKind::BadCommandLine, line_end).silenced(noreply)
                    )
                }
            };
            Request::Verbosity { level, noreply }
        }
        b"quit" => Request::Quit,
        b"slabs" => slabs(rest, line_end)?,
        b"stats" => Request::Stats {
            args: trim_spaces(rest),
        },
        b"shutdown" => {
            let (args, n) = split_args::<1>(rest);
            match (n, args[0]) {
                (0, _) => Request::Shutdown { graceful: false },
                (1, b"graceful") => Request::Shutdown { graceful: true },
                (1, _) => return Err(ParseError::skip(ErrorKind::InvalidShutdownMode, line_end)),
                _ => return unknown(),
            }
        }
        // memcached: mg/ms/md/ma with no key at all is an unknown command
        // (`me` without a key is a bad line, handled by its parser).
        b"mg" | b"ms" | b"md" | b"ma" if tokens(rest).next().is_none() => return unknown(),
        b"mg" => Request::MetaGet(meta::parse_request(rest, line_end)?),
        b"md" => Request::MetaDelete(meta::parse_delete(rest, line_end)?),
        b"ma" => Request::MetaArith(meta::parse_arith(rest, line_end)?),
        b"ms" => {
            return Ok(meta::parse_set(rest, buf, line_end, limits)?
                .map(|(set, used)| (Request::MetaSet(set), used)))
        }
        b"mn" => Request::MetaNoop,
        b"me" => Request::MetaDebug(meta::parse_debug(rest, line_end)?),
        _ if is_http_request(command, line) => {
            return Err(ParseError::close(ErrorKind::HttpRequest))
        }
        _ => return unknown(),
    };
    Ok(Some((request, line_end)))
}

/// memcached hangs up on an unknown command whose last token (of the first
/// 23 it splits) starts with `HTTP/`, unless the command begins with a
/// letter its dispatcher branches on first (those answer `ERROR`).
fn is_http_request(command: &[u8], line: &[u8]) -> bool {
    let branched = match command.first() {
        Some(b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't') => true,
        Some(b'm') => command.len() == 2,
        _ => false,
    };
    !branched
        && tokens(line)
            .take(23)
            .last()
            .is_some_and(|t| t.starts_with(b"HTTP/"))
}

/// `slabs reassign <src> <dst>` and `slabs automove ...`, answered as
/// memcached 1.6 answers them (token counts and errors included).
fn slabs(rest: &[u8], line_end: usize) -> Result<Request<'static>, ParseError> {
    let (args, n) = split_args::<4>(rest);
    // Only `automove` honours a trailing `noreply` (memcached calls
    // set_noreply_maybe there alone).
    let noreply = tokens(rest).last() == Some(&b"noreply"[..]);
    let fail = |kind, noreply| Err(ParseError::skip(kind, line_end).silenced(noreply));
    match (n, args[0]) {
        (3, b"reassign") => fail(ErrorKind::SlabReassignDisabled, false),
        (2.., b"automove") if args[1] == b"ratio" => {
            // A missing ratio is an empty token, which does not parse.
            let ratio = std::str::from_utf8(args[2])
                .ok()
                .and_then(|r| r.parse::<f64>().ok());
            if ratio.is_none() {
                return fail(ErrorKind::UnknownCommand, noreply);
            }
            Ok(Request::SlabsAutomove { noreply })
        }
        // memcached reads the level as an unsigned long and keeps 32 bits.
        (2.., b"automove") => match parse_u64(args[1]).map(|level| level as u32) {
            None => fail(ErrorKind::BadCommandLine, noreply),
            Some(0..=2) => Ok(Request::SlabsAutomove { noreply }),
            Some(_) => fail(ErrorKind::UnknownCommand, noreply),
        },
        _ => fail(ErrorKind::UnknownCommand, false),
    }
}

/// Retrieval lines may be far longer than other commands (multi-key gets).
fn line_limit(buf: &[u8], limits: &Limits) -> usize {
    let start = trim_spaces(&buf[..buf.len().min(128)]);
    let is_retrieval = [&b"get "[..], b"gets ", b"gat ", b"gats "]
        .iter()
        .any(|prefix| start.starts_with(prefix));
    if is_retrieval {
        limits.max_get_line_len.max(limits.max_line_len)
    } else {
        limits.max_line_len
    }
}

fn retrieval<'a>(
    keys: &'a [u8],
    with_cas: bool,
    touch: Option<i32>,
    line_end: usize,
) -> Result<Request<'a>, ParseError> {
    if tokens(keys).next().is_none() {
        return Err(ParseError::skip(ErrorKind::UnknownCommand, line_end));
    }
    let keys = KeyList::parse(keys).ok_or(ParseError::skip(ErrorKind::BadCommandLine, line_end))?;
    Ok(Request::Get(Retrieval {
        with_cas,
        touch,
        keys,
    }))
}

/// The whole length of the request at the head of `buf` (command line and
/// data block) when its line is complete and declares a data block (the
/// storage commands and `ms`); `None` otherwise. A server uses it to size
/// its read buffer once for a large value instead of growing step by step;
/// it validates nothing else ([`parse`] does).
pub fn request_len(buf: &[u8]) -> Option<usize> {
    let newline = memchr::memchr(b'\n', buf)?;
    let line = match &buf[..newline] {
        [line @ .., b'\r'] => line,
        line => line,
    };
    let mut words = tokens(line);
    let data_token = match words.next()? {
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => 3,
        b"ms" => 1,
        _ => return None,
    };
    let declared = parse_i32(words.nth(data_token)?)?;
    (newline + 1)
        .checked_add(block_len(declared)?)?
        .checked_add(2)
}

fn store<'a>(
    mode: StoreMode,
    rest: &'a [u8],
    buf: &'a [u8],
    line_end: usize,
    limits: &Limits,
) -> ParseResult<'a> {
    let (args, n) = split_args::<6>(rest);
    let required = if mode == StoreMode::Cas { 5 } else { 4 };
    if n != required && n != required + 1 {
        return Err(ParseError::skip(ErrorKind::UnknownCommand, line_end));
    }
    let noreply = n == required + 1 && args[required] == b"noreply";
    let bad_line = || Err(ParseError::skip(ErrorKind::BadCommandLine, line_end).silenced(noreply));
    let key = args[0];
    if !is_valid_text_key(key) {
        return bad_line();
    }
    let (Some(flags), Some(exptime), Some(declared)) =
        // memcached reads flags as an unsigned long and keeps the low 32
        // bits: 4294967296 stores flags 0 (1.6.18, checked side by side).
        (parse_u64(args[1]).map(|f| f as u32), parse_i32(args[2]), parse_i32(args[3]))
    else {
        return bad_line();
    };
    let cas = if mode == StoreMode::Cas {
        match parse_u64(args[4]) {
            Some(cas) => cas,
            None => return bad_line(),
        }
    } else {
        0
    };
    // memcached refuses a length whose block (+2 for `\r\n`) would not fit
    // an int as a bad line, before it knows the item is too large.
    let Some(value_len) = block_len(declared) else {
        return bad_line();
    };
    let total = line_end + value_len + 2;
    if let Some(kind) = limits.refuse_value(value_len) {
        let refused = ParseError::skip(kind, total).silenced(noreply);
        return Err(if mode == StoreMode::Set {
            refused.unlinking(buf, key, false)
        } else {
            refused
        });
    }
    let Some(block) = buf.get(line_end..total) else {
        return Ok(None);
    };
    let (value, terminator) = block.split_at(value_len);
    if terminator != b"\r\n" {
        return Err(ParseError::skip(ErrorKind::BadDataChunk, total).silenced(noreply));
    }
    let store = Store {
        mode,
        key,
        flags,
        exptime,
        cas,
        value,
        noreply,
    };
    Ok(Some((Request::Store(store), total)))
}

fn delete(rest: &[u8], line_end: usize) -> Result<Request<'_>, ParseError> {
    let (args, n) = split_args::<3>(rest);
    let noreply = n > 1 && args[n.min(3) - 1] == b"noreply";
    let hold_is_zero = n > 1 && args[1] == b"0";
    let valid = match n {
        1 => true,
        2 => hold_is_zero || noreply,
        3 => hold_is_zero && noreply,
        _ => return Err(ParseError::skip(ErrorKind::UnknownCommand, line_end)),
    };
    if !valid {
        return Err(ParseError::skip(ErrorKind::BadDeleteFormat, line_end).silenced(noreply));
    }
    if !is_valid_text_key(args[0]) {
        return Err(ParseError::skip(ErrorKind::BadCommandLine, line_end).silenced(noreply));
    }
    Ok(Request::Delete {
        key: args[0],
        noreply,
    })
}

fn arith(op: ArithOp, rest: &[u8], line_end: usize) -> Result<Request<'_>, ParseError> {
    let (args, n) = split_args::<3>(rest);
    if n != 2 && n != 3 {
        return Err(ParseError::skip(ErrorKind::UnknownCommand, line_end));
    }
    let noreply = n == 3 && args[2] == b"noreply";
    if !is_valid_text_key(args[0]) {
        return Err(ParseError::skip(ErrorKind::BadCommandLine, line_end).silenced(noreply));
    }
    let Some(delta) = parse_u64(args[1]) else {
        return Err(ParseError::skip(ErrorKind::InvalidDelta, line_end).silenced(noreply));
    };
    Ok(Request::Arith {
        op,
        key: args[0],
        delta,
        noreply,
    })
}

fn touch(rest: &[u8], line_end: usize) -> Result<Request<'_>, ParseError> {
    let (args, n) = split_args::<3>(rest);
    if n != 2 && n != 3 {
        return Err(ParseError::skip(ErrorKind::UnknownCommand, line_end));
    }
    let noreply = n == 3 && args[2] == b"noreply";
    if !is_valid_text_key(args[0]) {
        return Err(ParseError::skip(ErrorKind::BadCommandLine, line_end).silenced(noreply));
    }
    let Some(exptime) = parse_i32(args[1]) else {
        return Err(ParseError::skip(ErrorKind::InvalidExptime, line_end).silenced(noreply));
    };
    Ok(Request::Touch {
        key: args[0],
        exptime,
        noreply,
    })
}

fn flush_all<'a>(
    rest: &'a [u8],
    line_end: usize,
    limits: &Limits,
) -> Result<Request<'a>, ParseError> {
    if !limits.flush_enabled {
        // memcached refuses before it reads the arguments; a trailing
        // `noreply` still silences the refusal.
        let noreply = tokens(rest).last() == Some(&b"noreply"[..]);
        return Err(ParseError::skip(ErrorKind::FlushDisabled, line_end).silenced(noreply));
    }
    let (args, n) = split_args::<2>(rest);
    if n > 2 {
        return Err(ParseError::skip(ErrorKind::UnknownCommand, line_end));
    }
    let noreply = n > 0 && args[n - 1] == b"noreply";
    let delay = if n == usize::from(noreply) {
        None
    } else {
        match parse_i32(args[0]) {
            Some(delay) => Some(delay),
            None => {
                return Err(ParseError::skip(ErrorKind::InvalidExptime, line_end).silenced(noreply))
            }
        }
    };
    Ok(Request::FlushAll { delay, noreply })
}

#[cfg(test)]
mod tests;
