//! Zipf-distributed picks over ranks 0..n: a few tasks take most commands, as
//! users' hot tasks do. Deterministic from its seed (a xorshift generator), so
//! runs compare.

/// Draws ranks where rank `k` (from 0) has weight `1 / (k + 1)^s`.
pub struct Zipf {
    cumulative: Vec<f64>,
    state: u64,
}

impl Zipf {
    /// Over `n` ranks (at least one) with exponent `s`.
    pub fn new(n: usize, s: f64, seed: u64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        let cumulative = cumulative.into_iter().map(|c| c / total).collect();
        Self {
            cumulative,
            state: seed | 1,
        }
    }

    /// The next rank.
    pub fn next_rank(&mut self) -> usize {
        let u = self.uniform();
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }

    /// A uniform draw in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ranks_take_most_picks_and_every_pick_is_in_range() {
        let mut zipf = Zipf::new(10_000, 1.0, 7);
        let mut counts = vec![0usize; 10_000];
        for _ in 0..100_000 {
            counts[zipf.next_rank()] += 1;
        }
        // Under s = 1 over 10,000 ranks, rank 0 has weight 1 / H(10,000),
        // about 10.2%, and the first 100 ranks about 53%.
        let first = counts[0] as f64 / 100_000.0;
        assert!((0.09..0.115).contains(&first), "{first}");
        let top: usize = counts[..100].iter().sum();
        assert!((50_000..56_000).contains(&top), "{top}");
        assert!(counts[5_000..].iter().sum::<usize>() < 10_000);
    }

    #[test]
    fn the_same_seed_draws_the_same_ranks() {
        let (mut a, mut b) = (Zipf::new(100, 1.1, 3), Zipf::new(100, 1.1, 3));
        let (a, b): (Vec<_>, Vec<_>) = (0..50).map(|_| (a.next_rank(), b.next_rank())).unzip();
        assert_eq!(a, b);
    }
}
