//! LZO1X decompression (what makedumpfile's `-l` writes, lzo1x_1_compress),
//! bounds-checked on every input and output access: a corrupt page is an
//! error, never a panic or a read outside the buffers. Follows the
//! instruction set as the kernel's lzo1x_decompress_safe.c documents it.

/// Decompresses `input` into `out`; returns the number of bytes written.
pub(crate) fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, &'static str> {
    let mut ip = 0usize;
    let mut op = 0usize;
    // `state`: literals copied by the previous instruction (0..3), or 4 for a long run.
    let mut state: usize;
    let out_len = out.len();
    let byte = |ip: &mut usize| -> Result<usize, &'static str> {
        let b = *input.get(*ip).ok_or("input ends inside an instruction")?;
        *ip += 1;
        Ok(usize::from(b))
    };
    // The length extension: zero bytes add 255 each, then a non-zero byte.
    let extend = |ip: &mut usize, base: usize| -> Result<usize, &'static str> {
        let mut n = base;
        loop {
            let b = *input.get(*ip).ok_or("input ends inside a length")?;
            *ip += 1;
            if b != 0 {
                return n.checked_add(usize::from(b)).ok_or("length overflows");
            }
            n = n.checked_add(255).ok_or("length overflows")?;
            if n > out_len + 255 {
                return Err("length longer than the output");
            }
        }
    };
    fn literals(
        input: &[u8],
        ip: &mut usize,
        out: &mut [u8],
        op: &mut usize,
        n: usize,
    ) -> Result<(), &'static str> {
        let src = input
            .get(*ip..ip.checked_add(n).ok_or("literal run overflows")?)
            .ok_or("literal run past the end of the input")?;
        let dst = out
            .get_mut(*op..*op + n)
            .ok_or("literal run past the end of the output")?;
        dst.copy_from_slice(src);
        *ip += n;
        *op += n;
        Ok(())
    }
    fn copy_match(
        out: &mut [u8],
        op: &mut usize,
        dist: usize,
        len: usize,
    ) -> Result<(), &'static str> {
        if dist == 0 || dist > *op {
            return Err("match reaches before the start of the output");
        }
        if *op + len > out.len() {
            return Err("match past the end of the output");
        }
        let from = *op - dist;
        for i in 0..len {
            out[*op + i] = out[from + i];
        }
        *op += len;
        Ok(())
    }

    let first = *input.first().ok_or("empty input")?;
    if first > 17 {
        ip = 1;
        let t = usize::from(first) - 17;
        literals(input, &mut ip, out, &mut op, t)?;
        state = if t < 4 { t } else { 4 };
    } else {
        state = 0;
    }
    loop {
        let t = byte(&mut ip)?;
        let (dist, len, next);
        if t < 16 {
            if state == 0 {
                // A literal run of 4 or more bytes.
                let n = if t == 0 { extend(&mut ip, 15)? } else { t };
                literals(input, &mut ip, out, &mut op, n + 3)?;
                state = 4;
                continue;
            }
            let h = byte(&mut ip)?;
            next = t & 3;
            if state != 4 {
                // 2 bytes from at most 1 KiB back.
                dist = 1 + (t >> 2) + (h << 2);
                len = 2;
            } else {
                // 3 bytes from 2..3 KiB back.
                dist = 1 + 0x800 + (t >> 2) + (h << 2);
                len = 3;
            }
        } else if t >= 64 {
            // M2: 3..8 bytes from at most 2 KiB back.
            let h = byte(&mut ip)?;
            next = t & 3;
            dist = 1 + ((t >> 2) & 7) + (h << 3);
            len = (t >> 5) + 1;
        } else if t >= 32 {
            // M3: up to 16 KiB back.
            let l = t & 31;
            len = if l == 0 { extend(&mut ip, 31)? } else { l } + 2;
            let d = byte(&mut ip)? | (byte(&mut ip)? << 8);
            next = d & 3;
            dist = 1 + (d >> 2);
        } else {
            // M4: 16..48 KiB back, or the end of the stream.
            let l = t & 7;
            len = if l == 0 { extend(&mut ip, 7)? } else { l } + 2;
            let d = byte(&mut ip)? | (byte(&mut ip)? << 8);
            next = d & 3;
            let back = ((t & 8) << 11) + (d >> 2);
            if back == 0 {
                if len != 3 {
                    return Err("bad end-of-stream marker");
                }
                if ip != input.len() {
                    return Err("input continues after the end-of-stream marker");
                }
                return Ok(op);
            }
            dist = back + 0x4000;
        }
        copy_match(out, &mut op, dist, len)?;
        literals(input, &mut ip, out, &mut op, next)?;
        state = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8]) {
        let c = lzokay_native::compress(data).unwrap();
        let mut out = vec![0u8; data.len()];
        let n = decompress(&c, &mut out).unwrap();
        assert_eq!(n, data.len());
        assert_eq!(out, data);
    }

    #[test]
    fn roundtrips() {
        roundtrip(&[0u8; 4096]);
        roundtrip(b"hello hello hello hello, lzo world; hello hello hello hello");
        let mut x = 1u32;
        let noisy: Vec<u8> = (0..4096)
            .map(|i| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                if i % 7 < 3 {
                    (x >> 16) as u8
                } else {
                    (i / 64) as u8
                }
            })
            .collect();
        roundtrip(&noisy);
        let text: Vec<u8> = (0..70000)
            .map(|i| b"kernel page cache "[i % 18] ^ (i / 5000) as u8)
            .collect();
        roundtrip(&text);
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let c = lzokay_native::compress(&[7u8; 4096]).unwrap();
        let mut out = vec![0u8; 4096];
        for cut in 0..c.len() {
            assert!(decompress(&c[..cut], &mut out).is_err() || cut == c.len());
        }
        for i in 0..c.len() {
            for v in [0u8, 1, 17, 18, 0x20, 0x40, 0xff] {
                let mut bad = c.clone();
                bad[i] = v;
                let _ = decompress(&bad, &mut out);
            }
        }
        let mut small = vec![0u8; 100];
        assert!(decompress(&c, &mut small).is_err());
    }
}
