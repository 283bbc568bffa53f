//! Which authentication the server requires and who may connect: the
//! mode (`-S` SASL, `-Y` ASCII) and the users from a `user:password` file,
//! loaded once at start and read by every core.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use segcore_protocol::auth::Credentials;

/// Which authentication the server requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// SASL PLAIN, binary protocol only (`-S`).
    Sasl,
    /// memcached's ASCII authentication, text protocol only (`-Y`).
    Ascii,
}

/// Users and their passwords, from a `user:password` file.
#[derive(Clone, Default)]
pub struct PasswordFile {
    users: HashMap<Box<[u8]>, Box<[u8]>>,
}

impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        write!(f, "PasswordFile({} users)", self.users.len())
    }
}

impl PasswordFile {
    /// Parses `user:password` lines (the password is everything after the
    /// first `:`; empty lines are skipped).
    pub fn parse(text: &[u8]) -> Result<PasswordFile, String> {
        let mut users = HashMap::new();
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(format!("line {}: expected user:password", n + 1));
            };
            if colon == 0 {
                return Err(format!("line {}: empty user name", n + 1));
            }
            users.insert(line[..colon].into(), line[colon + 1..].into());
        }
        if users.is_empty() {
            return Err("no user:password lines".into());
        }
        Ok(PasswordFile { users })
    }

    /// Reads and parses a password file; the error names the file.
    pub fn load(path: &Path) -> Result<PasswordFile, String> {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
        PasswordFile::parse(&text).map_err(|e| format!("the password file {}: {e}", path.display()))
    }

    /// Whether the credentials match a user, comparing the password in
    /// time that does not depend on where it differs.
    pub fn check(&self, c: Credentials<'_>) -> bool {
        let Some(password) = self.users.get(c.user) else {
            return false;
        };
        password.len() == c.password.len()
            && password
                .iter()
                .zip(c.password)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// The server's authentication: the mode, its users, and the file they
/// came from (read again on SIGHUP, as memcached rereads its auth file).
#[derive(Debug)]
pub struct AuthConfig {
    /// SASL or ASCII.
    pub mode: AuthMode,
    /// Who may connect: read at each authentication attempt (never per
    /// request), replaced whole by a reload.
    users: RwLock<PasswordFile>,
    /// Where the users came from, for a reload.
    source: Option<PathBuf>,
}

impl AuthConfig {
    /// `mode` with `users`, loaded from `source` when there is one.
    pub fn new(mode: AuthMode, users: PasswordFile, source: Option<PathBuf>) -> AuthConfig {
        AuthConfig {
            mode,
            users: RwLock::new(users),
            source,
        }
    }

    /// Whether the credentials match a user.
    pub fn check(&self, c: Credentials<'_>) -> bool {
        match self.users.read() {
            Ok(users) => users.check(c),
            Err(poisoned) => poisoned.into_inner().check(c),
        }
    }

    /// Reads the password file again; on an error the users stay as they
    /// were. Returns how many users it holds now.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(path) = &self.source else {
            return Ok(0);
        };
        let users = PasswordFile::load(path)?;
        let count = users.users.len();
        match self.users.write() {
            Ok(mut slot) => *slot = users,
            Err(poisoned) => *poisoned.into_inner() = users,
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_files_hold_users_and_name_their_faults() {
        let users = PasswordFile::parse(b"foo:bar\r\nbaaaz:quux\n\nodd:pa:ss\n").unwrap();
        let check = |u: &[u8], p: &[u8]| {
            users.check(Credentials {
                user: u,
                password: p,
            })
        };
        assert!(check(b"foo", b"bar"));
        assert!(check(b"baaaz", b"quux"));
        assert!(
            check(b"odd", b"pa:ss"),
            "the password runs to the line's end"
        );
        assert!(!check(b"foo", b"bab"));
        assert!(!check(b"foo", b"ba"));
        assert!(!check(b"nobody", b"bar"));
        assert_eq!(format!("{users:?}"), "PasswordFile(3 users)");
        assert_eq!(
            PasswordFile::parse(b"foo\n").unwrap_err(),
            "line 1: expected user:password"
        );
        assert_eq!(
            PasswordFile::parse(b":pw\n").unwrap_err(),
            "line 1: empty user name"
        );
        assert_eq!(
            PasswordFile::parse(b"\n").unwrap_err(),
            "no user:password lines"
        );
        let missing = PasswordFile::load(Path::new("/nonexistent/segcore-pwdb")).unwrap_err();
        assert!(missing.starts_with("cannot read the password file /nonexistent/segcore-pwdb"));
    }
}
