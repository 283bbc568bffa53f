//! The credential formats memcached's authentication carries, parsed
//! without allocating: SASL PLAIN (binary Auth request values) and the
//! `user password` data block of ASCII authentication (`-Y`).

/// The one SASL mechanism offered, as List Mechanisms answers it.
pub const SASL_MECHANISMS: &[u8] = b"PLAIN";

/// The value of a successful SASL Auth response.
pub const SASL_AUTHENTICATED: &[u8] = b"Authenticated";

/// A user name and password, borrowed from the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// Who.
    pub user: &'a [u8],
    /// Their password.
    pub password: &'a [u8],
}

/// A SASL PLAIN message (RFC 4616): `[authzid] NUL authcid NUL passwd`.
/// The authorization identity, if any, is ignored (memcached's password
/// database checks the authentication identity). `None` for anything that
/// is not exactly three NUL-separated fields with a user name.
pub fn sasl_plain(message: &[u8]) -> Option<Credentials<'_>> {
    let mut fields = message.split(|&b| b == 0);
    let (_authzid, user, password) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || user.is_empty() {
        return None;
    }
    Some(Credentials { user, password })
}

/// ASCII authentication's data block, `user password` (one space; the
/// `\r\n` is not part of the data). `None` when it is not of that form.
pub fn ascii_credentials(data: &[u8]) -> Option<Credentials<'_>> {
    let space = data.iter().position(|&b| b == b' ')?;
    let (user, password) = (&data[..space], &data[space + 1..]);
    if user.is_empty() || password.is_empty() || password.contains(&b' ') {
        return None;
    }
    Some(Credentials { user, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain_takes_the_authentication_identity() {
        let c = sasl_plain(b"\0alice\0s3cret").unwrap();
        assert_eq!((c.user, c.password), (&b"alice"[..], &b"s3cret"[..]));
        let c = sasl_plain(b"admin\0alice\0pw").unwrap();
        assert_eq!(c.user, b"alice");
        assert_eq!(sasl_plain(b"\0\0pw"), None, "no user");
        assert_eq!(sasl_plain(b"alice\0pw"), None, "two fields");
        assert_eq!(sasl_plain(b"a\0b\0c\0d"), None, "four fields");
        assert_eq!(sasl_plain(b""), None);
    }

    #[test]
    fn ascii_credentials_are_a_user_and_a_password() {
        let c = ascii_credentials(b"foo bar").unwrap();
        assert_eq!((c.user, c.password), (&b"foo"[..], &b"bar"[..]));
        assert_eq!(ascii_credentials(b"hi"), None);
        assert_eq!(ascii_credentials(b" bar"), None);
        assert_eq!(ascii_credentials(b"foo "), None);
        assert_eq!(ascii_credentials(b"foo bar baz"), None);
    }
}
