//! Slot capacity of a worker, computed exactly in integers.
//!
//! The exam platform's registry fixes the formula
//! (`docs/compat/exam-platform-registry.md`):
//!
//! ```text
//! maxSessions       = min(floor((cpuTotal - cpuReserved) / vmCpu),
//!                         floor((memTotal - memReserved) / vmMem))
//! availableSessions = maxSessions - usedSessions   (never negative)
//! ```
//!
//! CPU is carried in millicores and memory in MB, so `floor(0.3 / 0.1)` is 3
//! here, as it is on paper (it is 2 in `f64`).
//!
//! ```
//! use vdi_cluster_core::capacity::{CapacityInput, CapacitySpec};
//!
//! // The exam platform's heartbeat body: 32 cores / 64 GiB, 4 cores and 8 GiB reserved, VM 1.5 / 2048.
//! let spec = CapacitySpec::new(CapacityInput {
//!     total_cpu_cores: 32.0,
//!     total_memory_mb: 65536,
//!     reserved_cpu_cores: 4.0,
//!     reserved_memory_mb: 8192,
//!     vm_cpu_cores: 1.5,
//!     vm_memory_mb: 2048,
//! })?;
//! assert_eq!(spec.max_sessions(), 18);
//! assert_eq!(spec.available_sessions(11), 7);
//! # Ok::<(), vdi_cluster_core::ValidationError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// Largest accepted CPU figure, in cores.
pub const MAX_CPU_CORES: u64 = 65_536;
/// Largest accepted memory figure, in MB (64 TiB).
pub const MAX_MEMORY_MB: u64 = 1 << 26;
/// Largest accepted session count in a heartbeat.
pub const MAX_SESSIONS: u32 = 1_000_000;

/// A CPU amount in thousandths of a core.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millicores(pub u64);

impl Millicores {
    /// Converts a decimal core count such as `1.5`, rejecting NaN, infinities,
    /// negatives, more than three decimals and values above
    /// [`MAX_CPU_CORES`].
    pub fn from_cores(field: &str, cores: f64) -> Result<Self, ValidationError> {
        if !cores.is_finite() {
            return Err(ValidationError::new(field, "must be a finite number"));
        }
        if cores < 0.0 {
            return Err(ValidationError::new(field, "must not be negative"));
        }
        if cores > MAX_CPU_CORES as f64 {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_CPU_CORES} cores"),
            ));
        }
        let scaled = cores * 1000.0;
        let rounded = scaled.round();
        // f64 carries about 15 significant digits; at most 8 are used here,
        // so a true three-decimal value lands within 1e-6 of an integer.
        if (scaled - rounded).abs() > 1e-6 {
            return Err(ValidationError::new(
                field,
                "must have at most 3 decimal places (a thousandth of a core)",
            ));
        }
        Ok(Self(rounded as u64))
    }

    /// Parses a decimal string such as `"1.5"` exactly (no floating point).
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (!frac.is_empty() && !digits(frac)) {
            return Err(ValidationError::new(
                field,
                format!("must be a non-negative decimal number of cores, got {text:?}"),
            ));
        }
        if frac.len() > 3 {
            return Err(ValidationError::new(
                field,
                "must have at most 3 decimal places (a thousandth of a core)",
            ));
        }
        let whole: u64 = whole
            .parse()
            .ok()
            .filter(|w| *w <= MAX_CPU_CORES)
            .ok_or_else(|| {
                ValidationError::new(field, format!("must be at most {MAX_CPU_CORES} cores"))
            })?;
        let frac_millis: u64 = format!("{frac:0<3}").parse().unwrap_or(0);
        let millis = whole * 1000 + frac_millis;
        if millis > MAX_CPU_CORES * 1000 {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_CPU_CORES} cores"),
            ));
        }
        Ok(Self(millis))
    }

    /// The amount in cores, for display.
    pub fn as_cores(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl fmt::Display for Millicores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// Raw capacity figures as a heartbeat carries them (the exam platform's field names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityInput {
    /// `totalCpuCores`.
    pub total_cpu_cores: f64,
    /// `totalMemoryMb`.
    pub total_memory_mb: u64,
    /// `reservedCpuCores`.
    pub reserved_cpu_cores: f64,
    /// `reservedMemoryMb`.
    pub reserved_memory_mb: u64,
    /// `vmCpuCores`: CPU of one session's VM.
    pub vm_cpu_cores: f64,
    /// `vmMemoryMb`: memory of one session's VM.
    pub vm_memory_mb: u64,
}

/// A validated capacity description of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacitySpec {
    /// Total CPU of the node.
    pub total_cpu: Millicores,
    /// Total memory of the node, MB.
    pub total_memory_mb: u64,
    /// CPU kept for the host.
    pub reserved_cpu: Millicores,
    /// Memory kept for the host, MB.
    pub reserved_memory_mb: u64,
    /// CPU of one session's VM (never zero).
    pub vm_cpu: Millicores,
    /// Memory of one session's VM, MB (never zero).
    pub vm_memory_mb: u64,
}

fn check_memory(field: &str, mb: u64) -> Result<u64, ValidationError> {
    if mb > MAX_MEMORY_MB {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_MEMORY_MB} MB"),
        ));
    }
    Ok(mb)
}

impl CapacitySpec {
    /// Validates raw figures; every error names the field (the exam platform's spelling).
    pub fn new(input: CapacityInput) -> Result<Self, ValidationError> {
        let spec = Self {
            total_cpu: Millicores::from_cores("totalCpuCores", input.total_cpu_cores)?,
            total_memory_mb: check_memory("totalMemoryMb", input.total_memory_mb)?,
            reserved_cpu: Millicores::from_cores("reservedCpuCores", input.reserved_cpu_cores)?,
            reserved_memory_mb: check_memory("reservedMemoryMb", input.reserved_memory_mb)?,
            vm_cpu: Millicores::from_cores("vmCpuCores", input.vm_cpu_cores)?,
            vm_memory_mb: check_memory("vmMemoryMb", input.vm_memory_mb)?,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks a spec built field by field (for example, deserialized from a
    /// store) against the same rules as [`CapacitySpec::new`].
    pub fn validate(&self) -> Result<(), ValidationError> {
        let cpu_limit = MAX_CPU_CORES * 1000;
        for (field, value) in [
            ("totalCpuCores", self.total_cpu.0),
            ("reservedCpuCores", self.reserved_cpu.0),
            ("vmCpuCores", self.vm_cpu.0),
        ] {
            if value > cpu_limit {
                return Err(ValidationError::new(
                    field,
                    format!("must be at most {MAX_CPU_CORES} cores"),
                ));
            }
        }
        for (field, value) in [
            ("totalMemoryMb", self.total_memory_mb),
            ("reservedMemoryMb", self.reserved_memory_mb),
            ("vmMemoryMb", self.vm_memory_mb),
        ] {
            check_memory(field, value)?;
        }
        if self.vm_cpu.0 == 0 {
            return Err(ValidationError::new("vmCpuCores", "must be greater than 0"));
        }
        if self.vm_memory_mb == 0 {
            return Err(ValidationError::new("vmMemoryMb", "must be greater than 0"));
        }
        Ok(())
    }

    /// Sessions this worker can hold: the exam platform's fixed formula.
    pub fn max_sessions(&self) -> u32 {
        let by_cpu = self.total_cpu.0.saturating_sub(self.reserved_cpu.0) / self.vm_cpu.0;
        let by_mem =
            self.total_memory_mb.saturating_sub(self.reserved_memory_mb) / self.vm_memory_mb;
        u32::try_from(by_cpu.min(by_mem)).unwrap_or(u32::MAX)
    }

    /// `max_sessions - used`, never negative.
    pub fn available_sessions(&self, used: u32) -> u32 {
        self.max_sessions().saturating_sub(used)
    }

    /// A warning for operators when the reservation exceeds the node (valid
    /// input that yields zero slots).
    pub fn warning(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.reserved_cpu > self.total_cpu {
            parts.push(format!(
                "reservedCpuCores ({}) exceeds totalCpuCores ({})",
                self.reserved_cpu, self.total_cpu
            ));
        }
        if self.reserved_memory_mb > self.total_memory_mb {
            parts.push(format!(
                "reservedMemoryMb ({}) exceeds totalMemoryMb ({})",
                self.reserved_memory_mb, self.total_memory_mb
            ));
        }
        (!parts.is_empty()).then(|| format!("{}: the worker has no slots", parts.join("; ")))
    }
}

/// Sessions in use on a worker: those the control plane dispatched to it
/// plus those it runs that no dispatch accounts for (`unrecorded`, from its
/// reports). A removed dispatch frees its slot at once; a session the
/// worker started without one still counts.
pub fn used_sessions(dispatched: u32, unrecorded: u32) -> u32 {
    dispatched.saturating_add(unrecorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(
        total_cpu: f64,
        total_mem: u64,
        res_cpu: f64,
        res_mem: u64,
        vm_cpu: f64,
        vm_mem: u64,
    ) -> CapacityInput {
        CapacityInput {
            total_cpu_cores: total_cpu,
            total_memory_mb: total_mem,
            reserved_cpu_cores: res_cpu,
            reserved_memory_mb: res_mem,
            vm_cpu_cores: vm_cpu,
            vm_memory_mb: vm_mem,
        }
    }

    #[test]
    fn runbook_eight_vcpu_twelve_gb_gives_four() {
        let spec = CapacitySpec::new(input(8.0, 12288, 1.0, 1024, 1.5, 2048)).unwrap();
        assert_eq!(spec.max_sessions(), 4);
    }

    #[test]
    fn exam_platform_heartbeat_gives_18_max_7_available() {
        let spec = CapacitySpec::new(input(32.0, 65536, 4.0, 8192, 1.5, 2048)).unwrap();
        assert_eq!(spec.max_sessions(), 18);
        assert_eq!(spec.available_sessions(used_sessions(0, 11)), 7);
        assert_eq!(spec.available_sessions(40), 0);
    }

    #[test]
    fn exact_where_floats_are_not() {
        let spec = CapacitySpec::new(input(0.3, 1000, 0.0, 0, 0.1, 1)).unwrap();
        assert_eq!(spec.max_sessions(), 3);
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            (input(-1.0, 1, 0.0, 0, 1.0, 1), "totalCpuCores"),
            (input(f64::NAN, 1, 0.0, 0, 1.0, 1), "totalCpuCores"),
            (input(1.0, 1, f64::INFINITY, 0, 1.0, 1), "reservedCpuCores"),
            (input(1.0, 1, 0.0, 0, 0.0, 1), "vmCpuCores"),
            (input(1.0, 1, 0.0, 0, 1.0, 0), "vmMemoryMb"),
            (input(1.0, 1, 0.0, 0, 1.0005, 1), "vmCpuCores"),
            (input(1e12, 1, 0.0, 0, 1.0, 1), "totalCpuCores"),
            (input(1.0, u64::MAX, 0.0, 0, 1.0, 1), "totalMemoryMb"),
        ];
        for (case, field) in cases {
            assert_eq!(
                CapacitySpec::new(case).unwrap_err().field,
                field,
                "{case:?}"
            );
        }
    }

    #[test]
    fn reserved_above_total_is_zero_slots_with_warning() {
        let spec = CapacitySpec::new(input(4.0, 4096, 8.0, 1024, 1.0, 512)).unwrap();
        assert_eq!(spec.max_sessions(), 0);
        assert!(spec.warning().unwrap().contains("reservedCpuCores"));
    }

    #[test]
    fn parse_decimal_strings() {
        assert_eq!(Millicores::parse("x", "1.5").unwrap(), Millicores(1500));
        assert_eq!(Millicores::parse("x", "4").unwrap(), Millicores(4000));
        assert_eq!(Millicores::parse("x", "0.125").unwrap(), Millicores(125));
        for bad in ["", "-1", "1.2345", "abc", "1e3", ".5", "99999999"] {
            assert!(Millicores::parse("x", bad).is_err(), "{bad}");
        }
        assert_eq!(Millicores(1500).to_string(), "1.5");
        assert_eq!(Millicores(32000).to_string(), "32");
    }
}
