//! Piano-roll pictures: notes as bars coloured by velocity, a pitch grid, a time grid, and the
//! sustain pedal as a band at the bottom. Drawn into an RGB buffer and written with `png`.

use crate::codec::{MAX_PITCH, MIN_PITCH, Performance};

/// How a roll is laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollOptions {
    /// Horizontal scale (lowered automatically when the picture would be wider than `max_width`).
    pub pixels_per_second: f64,
    /// Height of one key's row.
    pub row_height: u32,
    pub max_width: u32,
}

impl Default for RollOptions {
    fn default() -> Self {
        RollOptions { pixels_per_second: 50.0, row_height: 5, max_width: 16_000 }
    }
}

/// An RGB picture, 8 bits per channel, rows top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    fn new(width: u32, height: u32, colour: [u8; 3]) -> Image {
        Image { width, height, rgb: colour.repeat((width * height) as usize) }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Fills the rectangle [x0, x1) x [y0, y1), clipped to the picture.
    fn fill(&mut self, x0: u32, x1: u32, y0: u32, y1: u32, colour: [u8; 3]) {
        let (x1, y1) = (x1.min(self.width), y1.min(self.height));
        for y in y0..y1 {
            let row = (y * self.width) as usize * 3;
            for x in x0..x1 {
                let i = row + x as usize * 3;
                self.rgb[i..i + 3].copy_from_slice(&colour);
            }
        }
    }

    /// The picture as a PNG file.
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("writing to memory cannot fail");
            writer.write_image_data(&self.rgb).expect("the buffer matches the header");
        }
        out
    }
}

const WHITE_ROW: [u8; 3] = [248, 248, 246];
const BLACK_ROW: [u8; 3] = [234, 234, 232];
const OCTAVE_LINE: [u8; 3] = [196, 196, 200];
const SECOND_LINE: [u8; 3] = [222, 222, 226];
const TEN_SECOND_LINE: [u8; 3] = [170, 170, 180];
const PEDAL_BACKGROUND: [u8; 3] = [236, 236, 236];
const PEDAL_DOWN: [u8; 3] = [70, 150, 90];
const SEPARATOR: [u8; 3] = [120, 120, 120];
/// Height of the pedal band and the gap above it.
const PEDAL_BAND: u32 = 14;
const GAP: u32 = 3;

fn is_black_key(pitch: u8) -> bool {
    matches!(pitch % 12, 1 | 3 | 6 | 8 | 10)
}

/// The colour of a note of MIDI velocity `velocity`: blue (soft) through purple and red to
/// orange (loud).
pub fn velocity_colour(velocity: u8) -> [u8; 3] {
    const STOPS: [(f64, [f64; 3]); 4] =
        [(0.0, [40.0, 80.0, 200.0]), (0.4, [140.0, 50.0, 170.0]), (0.7, [215.0, 40.0, 60.0]), (1.0, [250.0, 150.0, 0.0])];
    let v = (velocity.clamp(1, 127) as f64 - 1.0) / 126.0;
    let k = STOPS.iter().rposition(|&(at, _)| at <= v).unwrap_or(0).min(STOPS.len() - 2);
    let ((a, ca), (b, cb)) = (STOPS[k], STOPS[k + 1]);
    let f = ((v - a) / (b - a)).clamp(0.0, 1.0);
    std::array::from_fn(|i| (ca[i] + (cb[i] - ca[i]) * f).round() as u8)
}

/// Darker version of a colour (note onsets).
fn darker(c: [u8; 3]) -> [u8; 3] {
    c.map(|x| (x as u32 * 3 / 5) as u8)
}

/// Layout of a roll for a performance.
pub struct Layout {
    pub pixels_per_second: f64,
    pub width: u32,
    pub roll_height: u32,
    pub height: u32,
    pub row_height: u32,
}

pub fn layout(performance: &Performance, options: &RollOptions) -> Layout {
    let duration = performance.duration.max(performance.notes.iter().map(|n| n.end).fold(0.0, f64::max)).max(1.0);
    let mut pps = options.pixels_per_second.max(0.01);
    if duration * pps + 1.0 > options.max_width as f64 {
        pps = (options.max_width as f64 - 1.0) / duration;
    }
    let width = (duration * pps).ceil() as u32 + 1;
    let row_height = options.row_height.max(1);
    let roll_height = (MAX_PITCH - MIN_PITCH + 1) as u32 * row_height;
    Layout { pixels_per_second: pps, width, roll_height, height: roll_height + GAP + PEDAL_BAND, row_height }
}

/// Draws a performance as a piano roll.
pub fn piano_roll(performance: &Performance, options: &RollOptions) -> Image {
    let l = layout(performance, options);
    let mut img = Image::new(l.width, l.height, [255, 255, 255]);
    let row_top = |pitch: u8| (MAX_PITCH - pitch) as u32 * l.row_height;
    let x_of = |seconds: f64| ((seconds.max(0.0) * l.pixels_per_second).round() as u32).min(l.width - 1);
    // Rows, octave lines (below every C), then the time grid.
    for pitch in MIN_PITCH..=MAX_PITCH {
        let top = row_top(pitch);
        let colour = if is_black_key(pitch) { BLACK_ROW } else { WHITE_ROW };
        img.fill(0, l.width, top, top + l.row_height, colour);
        if pitch % 12 == 0 {
            img.fill(0, l.width, top + l.row_height - 1, top + l.row_height, OCTAVE_LINE);
        }
    }
    let seconds = ((l.width - 1) as f64 / l.pixels_per_second).floor() as u32;
    let step = if l.pixels_per_second >= 4.0 { 1 } else { 10 };
    for s in (step..=seconds).step_by(step as usize) {
        let x = x_of(s as f64);
        let colour = if s % 10 == 0 { TEN_SECOND_LINE } else { SECOND_LINE };
        img.fill(x, x + 1, 0, l.roll_height, colour);
    }
    // Notes: a bar from onset to release (at least one pixel), its onset column darker.
    for note in &performance.notes {
        if !(MIN_PITCH..=MAX_PITCH).contains(&note.pitch) {
            continue;
        }
        let (x0, x1) = (x_of(note.start), x_of(note.end).max(x_of(note.start) + 1));
        let top = row_top(note.pitch);
        let colour = velocity_colour(note.velocity);
        img.fill(x0, x1, top, top + l.row_height, colour);
        if x1 - x0 >= 3 {
            img.fill(x0, x0 + 1, top, top + l.row_height, darker(colour));
        }
    }
    // The pedal band.
    let band = l.roll_height + GAP;
    img.fill(0, l.width, l.roll_height, l.roll_height + 1, SEPARATOR);
    img.fill(0, l.width, band, l.height, PEDAL_BACKGROUND);
    let mut down_since = None;
    for change in &performance.pedal {
        match (change.down, down_since) {
            (true, None) => down_since = Some(change.time),
            (false, Some(start)) => {
                img.fill(x_of(start), x_of(change.time).max(x_of(start) + 1), band, l.height, PEDAL_DOWN);
                down_since = None;
            }
            _ => {}
        }
    }
    if let Some(start) = down_since {
        img.fill(x_of(start), l.width, band, l.height, PEDAL_DOWN);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Note, PedalChange};

    fn example() -> Performance {
        Performance {
            notes: vec![Note { pitch: 60, velocity: 100, start: 1.0, end: 2.0 }, Note { pitch: 21, velocity: 10, start: 0.5, end: 0.52 }],
            pedal: vec![PedalChange { time: 0.5, down: true }, PedalChange { time: 1.5, down: false }],
            duration: 3.0,
        }
    }

    #[test]
    fn notes_pedal_and_grid_land_where_they_belong() {
        let options = RollOptions::default();
        let img = piano_roll(&example(), &options);
        let l = layout(&example(), &options);
        assert_eq!((img.width, img.height), (151, 88 * 5 + GAP + PEDAL_BAND));
        // Middle of the C4 note at 1.5 s.
        let y = (MAX_PITCH - 60) as u32 * 5 + 2;
        assert_eq!(img.pixel(75, y), velocity_colour(100));
        assert_eq!(img.pixel(50, y), darker(velocity_colour(100)));
        // Before and after it: the row's background (C is a white key), grid lines aside.
        assert_eq!(img.pixel(40, y), WHITE_ROW);
        assert_eq!(img.pixel(110, y), WHITE_ROW);
        // A 20 ms note is still one pixel wide.
        assert_eq!(img.pixel(25, (MAX_PITCH - 21) as u32 * 5 + 2), velocity_colour(10));
        // The pedal band: down from 0.5 s to 1.5 s.
        let band_y = l.height - 2;
        assert_eq!(img.pixel(50, band_y), PEDAL_DOWN);
        assert_eq!(img.pixel(100, band_y), PEDAL_BACKGROUND);
        // A second line at 2 s crosses an empty row.
        assert_eq!(img.pixel(100, 2), SECOND_LINE);
    }

    #[test]
    fn velocity_colours_go_from_blue_to_orange() {
        assert_eq!(velocity_colour(1), [40, 80, 200]);
        assert_eq!(velocity_colour(127), [250, 150, 0]);
        assert_ne!(velocity_colour(64), velocity_colour(65));
    }

    #[test]
    fn png_round_trips() {
        let img = piano_roll(&example(), &RollOptions { pixels_per_second: 20.0, ..Default::default() });
        let bytes = img.to_png();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (img.width, img.height));
        assert_eq!(&buf[..info.buffer_size()], &img.rgb[..]);
    }

    #[test]
    fn long_performances_are_squeezed_to_the_maximum_width() {
        let mut p = example();
        p.duration = 3600.0;
        let img = piano_roll(&p, &RollOptions { max_width: 2000, ..Default::default() });
        assert!(img.width <= 2000);
    }
}
