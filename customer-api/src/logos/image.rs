//! Recognises PNG, JPEG and WebP images by their content (never by a declared type) and reads
//! their dimensions from the headers.

/// A recognised image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// The image in `data`, or the rule it breaks.
pub fn inspect(data: &[u8]) -> Result<Image, &'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(data)
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        jpeg(data)
    } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        webp(data)
    } else {
        Err("must be a PNG, JPEG or WebP image")
    }
}

fn be16(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        d.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn le16(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        d.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le24(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at + 3)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

const TRUNCATED: &str = "is not a complete image (its header is damaged or cut short)";

fn png(d: &[u8]) -> Result<Image, &'static str> {
    if d.get(12..16) != Some(b"IHDR") {
        return Err(TRUNCATED);
    }
    let (w, h) = be32(d, 16).zip(be32(d, 20)).ok_or(TRUNCATED)?;
    dims("image/png", w, h)
}

fn jpeg(d: &[u8]) -> Result<Image, &'static str> {
    let mut i = 2;
    loop {
        // Markers may be preceded by fill bytes.
        while d.get(i) == Some(&0xff) && d.get(i + 1) == Some(&0xff) {
            i += 1;
        }
        if d.get(i) != Some(&0xff) {
            return Err(TRUNCATED);
        }
        let marker = *d.get(i + 1).ok_or(TRUNCATED)?;
        i += 2;
        match marker {
            0xd0..=0xd9 | 0x01 => continue,
            0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => {
                let (h, w) = be16(d, i + 3).zip(be16(d, i + 5)).ok_or(TRUNCATED)?;
                return dims("image/jpeg", w, h);
            }
            _ => {
                let len = be16(d, i).ok_or(TRUNCATED)? as usize;
                if len < 2 {
                    return Err(TRUNCATED);
                }
                i += len;
            }
        }
    }
}

fn webp(d: &[u8]) -> Result<Image, &'static str> {
    let (w, h) = match d.get(12..16) {
        Some(b"VP8 ") => {
            if d.get(23..26) != Some(&[0x9d, 0x01, 0x2a]) {
                return Err(TRUNCATED);
            }
            le16(d, 26)
                .zip(le16(d, 28))
                .map(|(w, h)| (w & 0x3fff, h & 0x3fff))
        }
        Some(b"VP8L") => {
            if d.get(20) != Some(&0x2f) {
                return Err(TRUNCATED);
            }
            d.get(21..25).map(|b| {
                let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1)
            })
        }
        Some(b"VP8X") => le24(d, 24).zip(le24(d, 27)).map(|(w, h)| (w + 1, h + 1)),
        _ => None,
    }
    .ok_or(TRUNCATED)?;
    dims("image/webp", w, h)
}

fn dims(content_type: &'static str, width: u32, height: u32) -> Result<Image, &'static str> {
    if width == 0 || height == 0 {
        return Err(TRUNCATED);
    }
    Ok(Image {
        content_type,
        width,
        height,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A minimal PNG header of the given size (enough for `inspect`).
    pub fn png_of(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        v.extend(w.to_be_bytes());
        v.extend(h.to_be_bytes());
        v.extend([8, 6, 0, 0, 0]);
        v
    }

    #[test]
    fn recognises_by_content() {
        assert_eq!(
            inspect(&png_of(64, 32)),
            Ok(Image {
                content_type: "image/png",
                width: 64,
                height: 32
            })
        );
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x4a, 0x46, // APP0, length 4
            0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x30, 0x00, 0x40, // SOF0 48x64
        ];
        assert_eq!(inspect(&jpeg).unwrap().width, 64);
        assert_eq!(inspect(&jpeg).unwrap().height, 48);
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.extend([0; 8]);
        webp.extend([99, 0, 0, 49, 0, 0]);
        let i = inspect(&webp).unwrap();
        assert_eq!((i.content_type, i.width, i.height), ("image/webp", 100, 50));
        assert!(inspect(b"GIF89a....").is_err());
        assert!(inspect(&png_of(64, 32)[..18]).is_err());
        assert!(inspect(&[0xff, 0xd8, 0xff]).is_err());
    }
}
