//! The generator's randomness: SplitMix64, fixed forever so the data never changes with crate
//! versions, and what it draws: times in the sample's history, and text with awkward fragments.

use super::*;

/// SplitMix64 finaliser; a bijection on `u64`.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A bijection on `u32` (lowbias32), used to make unique but random-looking identifiers.
pub(crate) fn scramble32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// SplitMix64: tiny, fast and fixed forever, so the sample data never changes with crate versions.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct` percent.
    pub(crate) fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An id in `1..=n`, uniform.
    pub(crate) fn id(&mut self, n: u64) -> i64 {
        1 + self.below(n) as i64
    }

    /// An id in `1..=n`, skewed towards small (older, more popular) ids.
    pub(crate) fn popular_id(&mut self, n: u64) -> i64 {
        1 + self.below(n).min(self.below(n)) as i64
    }
}

/// 2022-01-01 00:00:00 UTC.
pub(crate) const EPOCH_START_S: i64 = 1_640_995_200;
/// About 3.7 years of history.
pub(crate) const HISTORY_S: i64 = 118_000_000;
pub(crate) const DAY_S: u64 = 86_400;

impl Rng {
    /// Sub-second part, biased towards the interesting cases (none, `.5`, `.123456`, `.999999`).
    pub(crate) fn micros(&mut self) -> i64 {
        match self.below(100) {
            0..=44 => 0,
            45..=54 => 500_000,
            55..=59 => 123_456,
            60..=62 => 999_999,
            63..=64 => 1,
            65..=67 => 250_000,
            _ => self.below(1_000_000) as i64,
        }
    }

    /// Creation time of row `id` of `n`: ids grow with time, as in a real application.
    pub(crate) fn created(&mut self, id: u64, n: u64) -> i64 {
        let slot = HISTORY_S as u64 / n.max(1);
        let s = EPOCH_START_S
            + (u128::from(HISTORY_S as u64) * u128::from(id - 1) / u128::from(n.max(1))) as i64
            + self.below(slot.clamp(1, 3 * DAY_S)) as i64;
        s * 1_000_000 + self.micros()
    }

    /// A time 1 second to `max_s` seconds after `t`.
    pub(crate) fn after(&mut self, t: i64, max_s: u64) -> i64 {
        (t.div_euclid(1_000_000) + 1 + self.below(max_s) as i64) * 1_000_000 + self.micros()
    }

    pub(crate) fn tz(&mut self) -> i32 {
        self.pick(TZ_OFFSETS)
    }
}

impl Rng {
    /// Prose of roughly `min..=max` bytes; with `spice_pct` % chance it carries one awkward
    /// fragment from [`SPICES`].
    pub(crate) fn paragraph(&mut self, s: &mut String, min: usize, max: usize, spice_pct: u64) {
        s.clear();
        let target = self.between(min as u64, max as u64) as usize;
        let mut spice = self.chance(spice_pct);
        while s.len() < target {
            if !s.is_empty() {
                s.push_str(match self.below(100) {
                    0..=79 => " ",
                    80..=89 => "\n",
                    90..=96 => "\n\n",
                    _ => "\r\n",
                });
            }
            self.push_sentence(s, 3, 12);
            if spice && self.chance(40) {
                s.push(' ');
                s.push_str(self.pick(SPICES));
                spice = false;
            }
        }
    }

    /// One sentence of `min_words..=max_words` words after a capitalised starter.
    pub(crate) fn push_sentence(&mut self, s: &mut String, min_words: u64, max_words: u64) {
        s.push_str(self.pick(STARTERS));
        for _ in 0..self.between(min_words, max_words) {
            s.push(' ');
            s.push_str(self.pick(WORDS));
        }
        s.push(self.pick(&['.', '.', '.', '!', '?']));
    }

    pub(crate) fn sentence(&mut self, s: &mut String, min_words: u64, max_words: u64) {
        s.clear();
        self.push_sentence(s, min_words, max_words);
    }

    pub(crate) fn person(&mut self, s: &mut String) {
        s.clear();
        s.push_str(self.pick(FIRST_NAMES));
        s.push(' ');
        s.push_str(self.pick(LAST_NAMES));
    }

    pub(crate) fn business_name(&mut self, s: &mut String) {
        s.clear();
        match self.below(6) {
            0 => {
                s.push_str(self.pick(FIRST_NAMES));
                s.push_str("'s ");
                s.push_str(self.pick(BUSINESS_KINDS));
            }
            1 | 2 => {
                s.push_str(self.pick(ADJECTIVES));
                s.push(' ');
                s.push_str(self.pick(BUSINESS_KINDS));
            }
            3 => {
                s.push_str("The ");
                s.push_str(self.pick(ADJECTIVES));
                s.push(' ');
                s.push_str(self.pick(BUSINESS_KINDS));
            }
            4 => {
                s.push_str(self.pick(BUSINESS_KINDS));
                s.push(' ');
                s.push_str(self.pick(LAST_NAMES));
            }
            _ => {
                s.push_str(self.pick(LAST_NAMES));
                s.push_str(" & ");
                s.push_str(self.pick(LAST_NAMES));
                s.push(' ');
                s.push_str(self.pick(BUSINESS_KINDS));
            }
        }
    }

    pub(crate) fn address(&mut self, s: &mut String) {
        s.clear();
        let _ = write!(
            s,
            "{} {} {}",
            self.between(1, 9999),
            self.pick(STREETS),
            self.pick(STREET_SUFFIXES)
        );
        if self.chance(10) {
            let _ = write!(s, ", Apt {}", self.between(1, 40));
        }
        s.push_str(if self.chance(15) { "\n" } else { ", " });
        s.push_str(self.pick(CITIES));
    }

    pub(crate) fn phone(&mut self, s: &mut String) {
        s.clear();
        let _ = match self.below(5) {
            0 => write!(
                s,
                "(555) 01{:02}-{:04}",
                self.below(100),
                self.below(10_000)
            ),
            1 => write!(s, "+1 555 01{:02} {:02}", self.below(100), self.below(100)),
            2 => write!(s, "+49 30 {:08}", self.below(100_000_000)),
            3 => write!(s, "555.{:03}.{:04}", self.below(1000), self.below(10_000)),
            _ => write!(s, "555-{:04}", self.below(10_000)),
        };
    }

    pub(crate) fn url(&mut self, s: &mut String, id: u64) {
        s.clear();
        let _ = match self.below(4) {
            0 => write!(s, "https://www.{}-{}.example/", self.pick(TAG_WORDS), id),
            1 => write!(
                s,
                "https://{}.example.com/about?id={}&ref=cityforge",
                self.pick(TAG_WORDS),
                id
            ),
            2 => write!(s, "http://example.org/{}/{}", self.pick(TAG_WORDS), id),
            _ => write!(s, "https://café-{id}.example/menü"),
        };
    }

    pub(crate) fn contact_email(&mut self, s: &mut String, id: u64) {
        s.clear();
        let _ = write!(
            s,
            "{}{}@{}",
            self.pick(&["info", "hello", "contact", "owner", "büro", "o'brien"]),
            id,
            self.pick(EMAIL_DOMAINS)
        );
    }

    /// Comma-separated tag names, as typed into the submission form.
    pub(crate) fn tags_text(&mut self, s: &mut String, tags: u64) {
        s.clear();
        for i in 0..self.between(1, 4) {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&tag_name(self.popular_id(tags) as u64));
        }
    }

    /// A bcrypt-looking hash: `$2b$12$` and 53 characters of `[./A-Za-z0-9]`.
    pub(crate) fn bcrypt(&mut self, s: &mut String) {
        const ALPHABET: &[u8; 64] =
            b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        s.clear();
        s.push_str("$2b$12$");
        let mut bits = 0u64;
        let mut left = 0;
        for _ in 0..53 {
            if left == 0 {
                bits = self.next_u64();
                left = 10;
            }
            s.push(ALPHABET[(bits & 63) as usize] as char);
            bits >>= 6;
            left -= 1;
        }
    }

    pub(crate) fn opt_bool(&mut self, null_pct: u64, true_pct: u64) -> Option<bool> {
        if self.chance(null_pct) {
            None
        } else {
            Some(self.chance(true_pct))
        }
    }

    /// True with `100 - null_pct` percent probability: "this nullable value is present".
    pub(crate) fn present(&mut self, null_pct: u64) -> bool {
        !self.chance(null_pct)
    }

    pub(crate) fn review_status(&mut self) -> Option<&'static str> {
        match self.below(100) {
            0..=44 => Some("pending"),
            45..=74 => Some("approved"),
            75..=94 => Some("rejected"),
            _ => None,
        }
    }

    pub(crate) fn report_status(&mut self) -> Option<&'static str> {
        match self.below(100) {
            0..=49 => Some("pending"),
            50..=69 => Some("reviewed"),
            70..=84 => Some("resolved"),
            85..=94 => Some("dismissed"),
            _ => None,
        }
    }

    /// Small counters: mostly zero.
    pub(crate) fn report_count(&mut self) -> i64 {
        if self.chance(85) {
            0
        } else {
            self.between(1, 7) as i64
        }
    }
}
