//! Deterministic random numbers. `hash32` is the counter-based hash the GPU noise kernel uses
//! (shaders/rng.wgsl); `SplitMix64` drives host-side choices (initialisation, shuffling) and is
//! small enough to checkpoint as one u64.

/// Chris Wellons' lowbias32 integer hash.
pub fn hash32(v: u32) -> u32 {
    let mut x = v;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Uniform in (0, 1] from the top 24 bits.
pub fn unit(bits: u32) -> f32 {
    ((bits >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// Element `i` of the standard-normal stream `stream` under `seed`, as shaders/rng.wgsl computes it.
pub fn normal_at(seed: u64, stream: u32, i: u32) -> f32 {
    let key = hash32(seed as u32 ^ hash32((seed >> 32) as u32 ^ hash32(stream)));
    let u1 = unit(hash32(key ^ hash32(i.wrapping_mul(2))));
    let u2 = unit(hash32(key ^ hash32(i.wrapping_mul(2).wrapping_add(1))));
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Element `i` of the uniform class-label stream `stream` under `seed` (0..=9, as f32), as
/// shaders/rng.wgsl `rand_labels` computes it.
pub fn label_at(seed: u64, stream: u32, i: u32) -> f32 {
    let key = hash32(seed as u32 ^ hash32((seed >> 32) as u32 ^ hash32(stream)));
    let u = unit(hash32(key ^ hash32(i)));
    (u * CLASSES as f32).floor().min((CLASSES - 1) as f32)
}

/// Classes of the conditional models (MNIST's digits).
pub const CLASSES: usize = 10;

#[derive(Clone, Debug, PartialEq)]
/// SplitMix64 (Steele, Lea and Flood): a small, fast, well-mixed 64-bit generator; seeds
/// parameter initialisation and epoch orders, so a seed gives the same run on every platform.
pub struct SplitMix64 {
    /// The generator's state (the seed, then advanced per draw).
    pub state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n), without modulo bias worth mentioning for n << 2^64.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}
