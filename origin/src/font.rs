//! A 5x7 bitmap font for the clock drawn on each frame: digits, ':' and '.'.

const GLYPHS: [(char, [u8; 7]); 12] = [
    ('0', [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E]),
    ('1', [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E]),
    ('2', [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F]),
    ('3', [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E]),
    ('4', [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02]),
    ('5', [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E]),
    ('6', [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E]),
    ('7', [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
    ('8', [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E]),
    ('9', [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C]),
    (':', [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00]),
    ('.', [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C]),
];

/// Where and how big to draw: top-left corner and the size of one font pixel.
pub struct Placement {
    pub x: usize,
    pub y: usize,
    pub scale: usize,
}

/// Draws `text` into a `w`x`h` luma plane.
pub fn draw_text(plane: &mut [u8], (w, h): (usize, usize), at: Placement, text: &str, luma: u8) {
    let Placement { x, y, scale } = at;
    for (i, ch) in text.chars().enumerate() {
        let Some((_, rows)) = GLYPHS.iter().find(|(c, _)| *c == ch) else { continue };
        let gx = x + i * 6 * scale;
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..5 {
                if bits >> (4 - c) & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    let py = y + r * scale + dy;
                    let px = gx + c * scale;
                    if py < h && px + scale <= w {
                        plane[py * w + px..py * w + px + scale].fill(luma);
                    }
                }
            }
        }
    }
}
