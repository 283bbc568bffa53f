use super::*;

#[test]
fn the_schedule_is_fixed_by_the_rate() {
    let start = Instant::now();
    assert_eq!(intended(start, 1000.0, 0), start);
    assert_eq!(intended(start, 1000.0, 5), start + Duration::from_millis(5));
    assert_eq!(
        intended(start, 4.0, 10),
        start + Duration::from_millis(2500)
    );
}

#[test]
fn requests_encode_as_their_protocol_says() {
    let mut out = Vec::new();
    encode(Proto::Text, true, b"k", b"", &mut out);
    encode(Proto::Text, false, b"k", b"vv", &mut out);
    assert_eq!(out, b"get k\r\nset k 0 0 2\r\nvv\r\n");
    out.clear();
    encode(Proto::Binary, false, b"k", b"vv", &mut out);
    let (req, used) = segcore_protocol::binary::parse(&out, &segcore_protocol::Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        (req.key, req.value, used),
        (&b"k"[..], &b"vv"[..], out.len())
    );
}
