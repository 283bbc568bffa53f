//! Requests as a client sends them: the load generator, the round-trip
//! tests and the fuzz checks encode with this; the server only parses.

use super::{Command, Header, Request, REQUEST_MAGIC};

impl Request<'_> {
    /// Appends the request as a client sends it (the load generator and the
    /// round-trip tests use this).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut extras = [0u8; 20];
        let extras_len = match self.command {
            Command::Store { flags, exptime, .. } => {
                extras[..4].copy_from_slice(&flags.to_be_bytes());
                extras[4..8].copy_from_slice(&exptime.to_be_bytes());
                8
            }
            Command::Arith {
                delta,
                initial,
                exptime,
                ..
            } => {
                extras[..8].copy_from_slice(&delta.to_be_bytes());
                extras[8..16].copy_from_slice(&initial.to_be_bytes());
                extras[16..20].copy_from_slice(&exptime.to_be_bytes());
                20
            }
            Command::GetAndTouch { exptime, .. } | Command::Touch { exptime } => {
                extras[..4].copy_from_slice(&exptime.to_be_bytes());
                4
            }
            Command::Verbosity { level } => {
                extras[..4].copy_from_slice(&level.to_be_bytes());
                4
            }
            Command::Flush { delay, .. } if delay != 0 => {
                extras[..4].copy_from_slice(&delay.to_be_bytes());
                4
            }
            _ => 0,
        };
        let body_len = extras_len + self.key.len() + self.value.len();
        Header {
            magic: REQUEST_MAGIC,
            opcode: self.opcode as u8,
            key_len: self.key.len() as u16,
            extras_len: extras_len as u8,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: body_len as u32,
            opaque: self.opaque,
            cas: self.cas,
        }
        .encode(out);
        out.extend_from_slice(&extras[..extras_len]);
        out.extend_from_slice(self.key);
        out.extend_from_slice(self.value);
    }
}
