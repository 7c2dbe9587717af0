//! The demo source's pictures, drawn on request: avatars
//! (`/avatar/N.png`) and photos (`/photo/N-WxH.png`) under
//! [`model::DEMO_MEDIA_ORIGIN`]. Each is a PNG made from its number alone
//! (soft two-colour gradients with a disc), so the demo shows pictures with
//! no network, and the same address always gives the same picture.
//!
//! PNG is written by hand around two well-kept pieces: `flate2` for the
//! zlib stream and `crc32fast` for chunk checksums. An image crate would
//! bring decoders for a dozen formats to write one.

use std::io::Write as _;

/// The largest side drawn, in pixels.
const MAX_SIDE: u32 = 1600;
/// Avatars are square.
const AVATAR_SIDE: u32 = 96;

/// The PNG for a path under the demo origin, or `None` for a path that
/// names no demo picture.
pub(crate) fn draw(path: &str) -> Option<Vec<u8>> {
    if let Some(number) = path.strip_prefix("/avatar/").and_then(|rest| rest.strip_suffix(".png")) {
        let seed: u64 = number.parse().ok()?;
        return encode_png(
            AVATAR_SIDE,
            AVATAR_SIDE,
            &picture(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), AVATAR_SIDE, AVATAR_SIDE, true),
        );
    }
    let rest = path.strip_prefix("/photo/")?.strip_suffix(".png")?;
    let (number, size) = rest.split_once('-')?;
    let (width, height) = size.split_once('x')?;
    let (seed, width, height): (u64, u32, u32) = (number.parse().ok()?, width.parse().ok()?, height.parse().ok()?);
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return None;
    }
    encode_png(width, height, &picture(seed.wrapping_mul(0xD1B5_4A32_D192_ED03), width, height, false))
}

/// A colour from a seed: saturated, not too dark.
fn colour(seed: u64) -> [f32; 3] {
    let hue = (seed % 360) as f32;
    let (saturation, value) = (0.55, 0.92);
    let chroma = value * saturation;
    let segment = hue / 60.0;
    let x = chroma * (1.0 - (segment % 2.0 - 1.0).abs());
    let (r, g, b) = match segment as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let offset = value - chroma;
    [(r + offset) * 255.0, (g + offset) * 255.0, (b + offset) * 255.0]
}

/// RGB rows of a gradient with a lighter disc (a face for avatars, a sun for photos).
fn picture(seed: u64, width: u32, height: u32, avatar: bool) -> Vec<u8> {
    let from = colour(seed);
    let to = colour(seed >> 16);
    let disc = colour(seed >> 32);
    let (centre_x, centre_y, radius) = if avatar {
        (width as f32 / 2.0, height as f32 * 0.42, width as f32 * 0.24)
    } else {
        let x = ((seed >> 8) % 60 + 20) as f32 / 100.0;
        let y = ((seed >> 20) % 40 + 20) as f32 / 100.0;
        (width as f32 * x, height as f32 * y, width.min(height) as f32 * 0.18)
    };
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for row in 0..height {
        for column in 0..width {
            let t = (row as f32 / height as f32 + column as f32 / width as f32) / 2.0;
            let mut rgb: [f32; 3] = std::array::from_fn(|channel| from[channel] * (1.0 - t) + to[channel] * t);
            let (dx, dy) = (column as f32 - centre_x, row as f32 - centre_y);
            let in_disc = dx * dx + dy * dy <= radius * radius;
            // An avatar's shoulders: the lower half of a wide ellipse.
            let in_body = avatar && {
                let (bx, by) =
                    (dx / (width as f32 * 0.38), (row as f32 - height as f32 * 1.02) / (height as f32 * 0.36));
                bx * bx + by * by <= 1.0
            };
            if in_disc || in_body {
                rgb = disc.map(|value| (value + 255.0 * 2.0) / 3.0);
            }
            pixels.extend(rgb.iter().map(|value| value.clamp(0.0, 255.0) as u8));
        }
    }
    pixels
}

/// RGB pixels (8 bits per channel, rows top to bottom) → a PNG file.
fn encode_png(width: u32, height: u32, pixels: &[u8]) -> Option<Vec<u8>> {
    let row_bytes = width as usize * 3;
    if pixels.len() != row_bytes * height as usize {
        return None;
    }
    let mut raw = Vec::with_capacity((row_bytes + 1) * height as usize);
    for row in pixels.chunks_exact(row_bytes) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(&raw).ok()?;
    let compressed = zlib.finish().ok()?;

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter set, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &compressed);
    chunk(&mut png, b"IEND", &[]);
    Some(png)
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_addresses_give_pngs_of_their_size() {
        let avatar = draw("/avatar/17.png").unwrap();
        assert!(avatar.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&avatar[16..24], &[0, 0, 0, 96, 0, 0, 0, 96]);
        let photo = draw("/photo/123-600x338.png").unwrap();
        assert_eq!(&photo[16..24], &[0, 0, 2, 88, 0, 0, 1, 82]);
        assert_eq!(draw("/photo/123-600x338.png"), Some(photo));
        assert_eq!(draw("/photo/1-99999x10.png"), None);
        assert_eq!(draw("/../etc/passwd"), None);
    }
}
