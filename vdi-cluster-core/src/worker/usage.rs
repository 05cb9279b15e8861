//! CPU and memory in use, from the slot math (Aetherium's `used_cpu_cores`,
//! `used_memory_mb` and the cluster's usage percentages): sessions in use
//! times one session's VM profile, against what the node has after its
//! reservation. Never a guess from host metrics.

use serde::{Deserialize, Serialize};

use crate::capacity::{CapacitySpec, Millicores};

/// CPU and memory used by sessions and usable by them, summed over one or
/// more workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotUsage {
    /// CPU of the sessions in use.
    pub used_cpu: Millicores,
    /// Memory of the sessions in use, MB.
    pub used_memory_mb: u64,
    /// CPU the node gives sessions: total less reserved.
    pub usable_cpu: Millicores,
    /// Memory the node gives sessions, MB: total less reserved.
    pub usable_memory_mb: u64,
}

fn percent(used: u64, usable: u64) -> f64 {
    if usable == 0 {
        return 0.0;
    }
    let tenths = used.saturating_mul(1000) / usable;
    tenths as f64 / 10.0
}

impl SlotUsage {
    /// A worker of `capacity` with `used_sessions` sessions in use.
    pub fn of(capacity: &CapacitySpec, used_sessions: u32) -> Self {
        let n = u64::from(used_sessions);
        Self {
            used_cpu: Millicores(capacity.vm_cpu.0.saturating_mul(n)),
            used_memory_mb: capacity.vm_memory_mb.saturating_mul(n),
            usable_cpu: Millicores(capacity.total_cpu.0.saturating_sub(capacity.reserved_cpu.0)),
            usable_memory_mb: capacity
                .total_memory_mb
                .saturating_sub(capacity.reserved_memory_mb),
        }
    }

    /// `self` and `other` together.
    pub fn plus(self, other: Self) -> Self {
        Self {
            used_cpu: Millicores(self.used_cpu.0.saturating_add(other.used_cpu.0)),
            used_memory_mb: self.used_memory_mb.saturating_add(other.used_memory_mb),
            usable_cpu: Millicores(self.usable_cpu.0.saturating_add(other.usable_cpu.0)),
            usable_memory_mb: self.usable_memory_mb.saturating_add(other.usable_memory_mb),
        }
    }

    /// Usable CPU not in use (never negative).
    pub fn available_cpu(&self) -> Millicores {
        Millicores(self.usable_cpu.0.saturating_sub(self.used_cpu.0))
    }

    /// Usable memory not in use, MB (never negative).
    pub fn available_memory_mb(&self) -> u64 {
        self.usable_memory_mb.saturating_sub(self.used_memory_mb)
    }

    /// CPU in use, percent of the usable CPU (one decimal, rounded down).
    pub fn cpu_percent(&self) -> f64 {
        percent(self.used_cpu.0, self.usable_cpu.0)
    }

    /// Memory in use, percent of the usable memory (one decimal, rounded
    /// down).
    pub fn memory_percent(&self) -> f64 {
        percent(self.used_memory_mb, self.usable_memory_mb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::CapacityInput;

    #[test]
    fn exam_platform_node_with_11_sessions() {
        let spec = CapacitySpec::new(CapacityInput {
            total_cpu_cores: 32.0,
            total_memory_mb: 65536,
            reserved_cpu_cores: 4.0,
            reserved_memory_mb: 8192,
            vm_cpu_cores: 1.5,
            vm_memory_mb: 2048,
        })
        .unwrap();
        let u = SlotUsage::of(&spec, 11);
        assert_eq!(u.used_cpu, Millicores(16_500));
        assert_eq!(u.used_memory_mb, 22_528);
        assert_eq!(u.available_cpu(), Millicores(11_500));
        assert_eq!(u.available_memory_mb(), 34_816);
        assert_eq!(u.cpu_percent(), 58.9);
        let both = u.plus(SlotUsage::of(&spec, 0));
        assert_eq!(both.usable_cpu, Millicores(56_000));
        assert_eq!(SlotUsage::default().cpu_percent(), 0.0);
    }
}
