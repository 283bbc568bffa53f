//! `--prefill`: every key stored once before a run.

use super::*;

/// Stores every key once (sequentially, one connection per thread).
pub fn prefill(config: &LoadConfig) -> std::io::Result<()> {
    let threads = config.threads.max(1) as u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let config = config.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut stream = connect(&config)?;
                let filler = vec![b'x'; config.value_size.max];
                let mut scratch = Vec::new();
                let mut rng = Rng::new(t);
                let mut key = Vec::new();
                let mut out = Vec::new();
                let mut input = Vec::new();
                let mut buf = vec![0u8; 1 << 16];
                let mut index = t;
                while index < config.keys {
                    out.clear();
                    let mut batch = 0;
                    while batch < 64 && index < config.keys {
                        key_name(&config.prefix, index, &mut key);
                        let len = config.value_size.next(&mut rng);
                        let value = value_for(&config, &key, len, index, &filler, &mut scratch);
                        encode(config.proto, false, &key, value, &mut out);
                        batch += 1;
                        index += threads;
                    }
                    stream.write_all(&out)?;
                    while batch > 0 {
                        match parse(config.proto, false, &input, &mut |_, _| {}) {
                            Ok(Some((_, used))) => {
                                input.drain(..used);
                                batch -= 1;
                            }
                            Ok(None) => {
                                let n = stream.read(&mut buf)?;
                                if n == 0 {
                                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                                }
                                input.extend_from_slice(&buf[..n]);
                            }
                            Err(e) => return Err(std::io::Error::other(e.0)),
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("prefill thread")?;
    }
    Ok(())
}
