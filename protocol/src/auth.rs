//! The credential formats memcached's authentication carries, parsed
//! without allocating: SASL PLAIN (binary Auth request values), the
//! `user password` data block of ASCII authentication (`-Y`), and HTTP
//! Basic credentials (the metrics endpoint of a server that requires
//! authentication).

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

/// The `user:password` of an HTTP request head's `Authorization: Basic`
/// header, decoded into `buf`; `None` when there is none or it does not
/// decode (RFC 7617).
pub fn http_basic<'b>(head: &[u8], buf: &'b mut [u8]) -> Option<Credentials<'b>> {
    let value = head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        name.eq_ignore_ascii_case(b"authorization")
            .then(|| value.trim_ascii())
    })?;
    let (scheme, encoded) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let len = crate::base64::decode(encoded.trim_ascii(), buf)?;
    let decoded = &buf[..len];
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    (!user.is_empty()).then_some(Credentials { user, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_basic_credentials_come_from_the_authorization_header() {
        let mut buf = [0u8; 256];
        // "alice:s3:cret" — the password may hold colons.
        let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization: Basic YWxpY2U6czM6Y3JldA==\r\n\r\n";
        let c = http_basic(head, &mut buf).expect("credentials");
        assert_eq!((c.user, c.password), (&b"alice"[..], &b"s3:cret"[..]));
        let mut buf = [0u8; 256];
        assert_eq!(http_basic(b"GET / HTTP/1.1\r\n\r\n", &mut buf), None);
        let mut buf = [0u8; 256];
        assert_eq!(
            http_basic(
                b"GET / HTTP/1.1\r\nAuthorization: Bearer abc=\r\n\r\n",
                &mut buf
            ),
            None
        );
        let mut buf = [0u8; 256];
        assert_eq!(
            http_basic(
                b"GET / HTTP/1.1\r\nAuthorization: Basic !!!!\r\n\r\n",
                &mut buf
            ),
            None
        );
        let mut small = [0u8; 4];
        assert_eq!(
            http_basic(head, &mut small),
            None,
            "too long for the buffer"
        );
    }

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
