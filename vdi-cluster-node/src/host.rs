//! The host's size and load, from sysinfo: CPU count and memory for the
//! slot formula, CPU / memory / disk usage percent for SkyPanelV2's
//! thresholds.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use sysinfo::{
    CpuRefreshKind, Disks, MINIMUM_CPU_UPDATE_INTERVAL, MemoryRefreshKind, RefreshKind, System,
};

/// The host's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostFacts {
    /// Logical CPUs.
    pub cpu_cores: f64,
    /// Memory, MB (the cgroup limit when it is smaller).
    pub memory_mb: u64,
}

/// The host's load, percent (0 to 100); `None` when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostUsage {
    /// CPU usage since the previous reading.
    pub cpu_percent: Option<f64>,
    /// Memory in use.
    pub memory_percent: Option<f64>,
    /// Space used on the file system holding `/`.
    pub disk_percent: Option<f64>,
    /// Size of the file system holding `/`, GB.
    pub disk_gb: Option<u64>,
    /// Space used on it, GB.
    pub used_disk_gb: Option<u64>,
}

/// Who the host is: its name and operating system (SkyPanelV2's metadata).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostIdentity {
    /// Host name.
    pub hostname: Option<String>,
    /// Operating system and version (`Ubuntu 22.04`).
    pub os: Option<String>,
}

impl HostIdentity {
    /// This host's, as the operating system tells it.
    pub fn current() -> Self {
        Self {
            hostname: System::host_name().filter(|h| !h.is_empty()),
            os: System::long_os_version().filter(|o| !o.is_empty()),
        }
    }
}

/// Bytes to whole GB (10^9, as disks are sold and Aetherium counts).
fn gb(bytes: u64) -> u64 {
    bytes / 1_000_000_000
}

/// Reads the host's size and load.
pub struct HostProbe {
    system: System,
    disks: Disks,
    cpu_read_at: Instant,
}

impl fmt::Debug for HostProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostProbe").finish_non_exhaustive()
    }
}

impl Default for HostProbe {
    fn default() -> Self {
        Self::new()
    }
}

/// `part / whole` as a percent rounded to one decimal, within 0 to 100.
fn percent(part: f64, whole: f64) -> Option<f64> {
    if whole.is_nan() || whole <= 0.0 || !part.is_finite() {
        return None;
    }
    let p = (part / whole * 100.0).clamp(0.0, 100.0);
    Some((p * 10.0).round() / 10.0)
}

impl HostProbe {
    /// A probe; the first CPU reading is taken now.
    pub fn new() -> Self {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        Self {
            system,
            disks: Disks::new_with_refreshed_list(),
            cpu_read_at: Instant::now(),
        }
    }

    /// The host's CPU count and memory.
    pub fn facts(&self) -> HostFacts {
        let mut memory = self.system.total_memory();
        if let Some(limits) = self.system.cgroup_limits()
            && limits.total_memory > 0
        {
            memory = memory.min(limits.total_memory);
        }
        HostFacts {
            cpu_cores: self.system.cpus().len().max(1) as f64,
            memory_mb: memory / (1024 * 1024),
        }
    }

    /// Current usage (CPU since the previous reading; unknown when that
    /// was too recent to measure).
    pub fn usage(&mut self) -> HostUsage {
        let cpu = if self.cpu_read_at.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL {
            self.system.refresh_cpu_usage();
            self.cpu_read_at = Instant::now();
            Some(f64::from(self.system.global_cpu_usage()))
        } else {
            None
        };
        self.system.refresh_memory();
        self.disks.refresh(true);
        let total = self.system.total_memory() as f64;
        let used = total - self.system.available_memory() as f64;
        let root = self
            .disks
            .list()
            .iter()
            .filter(|d| Path::new("/").starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len());
        let disk = root.and_then(|d| {
            let total = d.total_space() as f64;
            percent(total - d.available_space() as f64, total)
        });
        let sizes = root.filter(|d| d.total_space() > 0).map(|d| {
            (
                d.total_space(),
                d.total_space().saturating_sub(d.available_space()),
            )
        });
        HostUsage {
            cpu_percent: cpu.and_then(|c| percent(c, 100.0)),
            memory_percent: percent(used, total),
            disk_percent: disk,
            disk_gb: sizes.map(|(total, _)| gb(total)),
            used_disk_gb: sizes.map(|(_, used)| gb(used)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_bounded() {
        assert_eq!(percent(1.0, 4.0), Some(25.0));
        assert_eq!(percent(5.0, 4.0), Some(100.0));
        assert_eq!(percent(-1.0, 4.0), Some(0.0));
        assert_eq!(percent(1.0, 0.0), None);
        assert_eq!(percent(f64::NAN, 1.0), None);
        assert_eq!(percent(1.0, 3.0), Some(33.3));
    }

    #[test]
    fn the_host_has_a_size() {
        let mut probe = HostProbe::new();
        let facts = probe.facts();
        assert!(facts.cpu_cores >= 1.0);
        assert!(facts.memory_mb > 0);
        let usage = probe.usage();
        for p in [usage.cpu_percent, usage.memory_percent, usage.disk_percent]
            .into_iter()
            .flatten()
        {
            assert!((0.0..=100.0).contains(&p));
        }
        if let (Some(total), Some(used)) = (usage.disk_gb, usage.used_disk_gb) {
            assert!(used <= total);
        }
        assert_eq!(gb(2_500_000_000), 2);
    }
}
