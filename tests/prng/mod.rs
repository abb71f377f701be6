//! A small deterministic random number generator (SplitMix64): tests print the seed, so any
#![allow(dead_code)] // each test file uses a part of it
//! failing run can be replayed exactly.

/// SplitMix64: tiny, fast, and good enough to pick random moments and random bytes.
pub struct Prng(u64);

impl Prng {
    /// A generator seeded from `OIDB_SEED` if it is set, else from the clock. Prints the seed.
    pub fn from_env_or_time(what: &str) -> Prng {
        let seed = std::env::var("OIDB_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        eprintln!("{what}: seed {seed} (replay with OIDB_SEED={seed})");
        Prng(seed)
    }

    /// A generator with this seed.
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low).max(1)
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}
