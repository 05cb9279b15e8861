//! The prewarm planner (largest remainder).

use serde::{Deserialize, Serialize};

use crate::ids::WorkerId;

/// One worker's share of a prewarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmShare {
    /// The worker.
    pub worker: WorkerId,
    /// Machines to prewarm on it.
    pub count: u32,
}

/// Splits a prewarm of `requested` machines across workers in proportion to
/// their available slots (largest remainder). The total is
/// `min(requested, sum of available, max)`; no share exceeds its worker's
/// available slots; workers with no share are left out. Ties in the
/// remainder go to more available slots, then to the lower worker code.
pub fn plan_prewarm(available: &[(WorkerId, u32)], requested: u32, max: u32) -> Vec<PrewarmShare> {
    let sum: u64 = available.iter().map(|(_, a)| u64::from(*a)).sum();
    let total = u64::from(requested).min(sum).min(u64::from(max));
    if total == 0 {
        return Vec::new();
    }
    // quota_i = total * a_i / sum, as floor plus remainder numerator.
    let mut shares: Vec<(u64, u64, &WorkerId, u32)> = available
        .iter()
        .map(|(w, a)| {
            let num = total * u64::from(*a);
            (num / sum, num % sum, w, *a)
        })
        .collect();
    let assigned: u64 = shares.iter().map(|s| s.0).sum();
    let mut left = total - assigned;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&shares[i], &shares[j]);
        b.1.cmp(&a.1).then(b.3.cmp(&a.3)).then(a.2.cmp(b.2))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if shares[i].0 < u64::from(shares[i].3) {
            shares[i].0 += 1;
            left -= 1;
        }
    }
    shares
        .into_iter()
        .filter(|s| s.0 > 0)
        .map(|(count, _, worker, _)| PrewarmShare {
            worker: worker.clone(),
            count: u32::try_from(count).unwrap_or(u32::MAX),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str) -> WorkerId {
        WorkerId::parse("code", id).unwrap()
    }

    #[test]
    fn prewarm_largest_remainder() {
        let plan = plan_prewarm(&[(w("a"), 10), (w("b"), 5), (w("c"), 5)], 7, 80);
        let total: u32 = plan.iter().map(|s| s.count).sum();
        assert_eq!(total, 7);
        // Quotas 3.5, 1.75, 1.75: floors 3, 1, 1; the two largest remainders
        // (0.75) get the last two machines.
        let counts: Vec<u32> = plan.iter().map(|s| s.count).collect();
        assert_eq!(counts, vec![3, 2, 2]);
        assert_eq!(plan_prewarm(&[(w("a"), 3)], 100, 80)[0].count, 3);
        assert_eq!(plan_prewarm(&[(w("a"), 300)], 100, 80)[0].count, 80);
        assert!(plan_prewarm(&[(w("a"), 0)], 5, 80).is_empty());
    }
}
