//! The Lua scripts, one per atomic step, loaded once per process.
//!
//! Each script lives in `lua/<op>.lua` with a header naming its `KEYS`,
//! `ARGV` and reply. [`redis::Script`] runs it by `EVALSHA` and, when the
//! server does not know the hash (first use, or after a restart), loads it
//! and retries. Every key a script touches is passed in `KEYS`.

use std::sync::LazyLock;

use redis::Script;

/// All scripts of the backend.
#[derive(Debug)]
pub(crate) struct Scripts {
    /// `lua/reserve.lua`.
    pub(crate) reserve: Script,
    /// `lua/confirm.lua`.
    pub(crate) confirm: Script,
    /// `lua/undo.lua`.
    pub(crate) undo: Script,
    /// `lua/release.lua`.
    pub(crate) release: Script,
    /// `lua/mark_orphaned.lua`.
    pub(crate) mark_orphaned: Script,
    /// `lua/put_worker.lua`.
    pub(crate) put_worker: Script,
    /// `lua/delete_worker.lua`.
    pub(crate) delete_worker: Script,
    /// `lua/lease_acquire.lua`.
    pub(crate) lease_acquire: Script,
    /// `lua/lease_release.lua`.
    pub(crate) lease_release: Script,
    /// `lua/recount_worker.lua`.
    pub(crate) recount_worker: Script,
    /// `lua/recount_exam.lua`.
    pub(crate) recount_exam: Script,
    /// `lua/redeem_join_token.lua`.
    pub(crate) redeem_join_token: Script,
    /// `lua/put_join_token.lua`.
    pub(crate) put_join_token: Script,
}

/// The scripts, hashed once.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    reserve: Script::new(include_str!("../lua/reserve.lua")),
    confirm: Script::new(include_str!("../lua/confirm.lua")),
    undo: Script::new(include_str!("../lua/undo.lua")),
    release: Script::new(include_str!("../lua/release.lua")),
    mark_orphaned: Script::new(include_str!("../lua/mark_orphaned.lua")),
    put_worker: Script::new(include_str!("../lua/put_worker.lua")),
    delete_worker: Script::new(include_str!("../lua/delete_worker.lua")),
    lease_acquire: Script::new(include_str!("../lua/lease_acquire.lua")),
    lease_release: Script::new(include_str!("../lua/lease_release.lua")),
    recount_worker: Script::new(include_str!("../lua/recount_worker.lua")),
    recount_exam: Script::new(include_str!("../lua/recount_exam.lua")),
    redeem_join_token: Script::new(include_str!("../lua/redeem_join_token.lua")),
    put_join_token: Script::new(include_str!("../lua/put_join_token.lua")),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_has_a_header_and_distinct_hash() {
        let s = &*SCRIPTS;
        let all = [
            (&s.reserve, include_str!("../lua/reserve.lua")),
            (&s.confirm, include_str!("../lua/confirm.lua")),
            (&s.undo, include_str!("../lua/undo.lua")),
            (&s.release, include_str!("../lua/release.lua")),
            (&s.mark_orphaned, include_str!("../lua/mark_orphaned.lua")),
            (&s.put_worker, include_str!("../lua/put_worker.lua")),
            (&s.delete_worker, include_str!("../lua/delete_worker.lua")),
            (&s.lease_acquire, include_str!("../lua/lease_acquire.lua")),
            (&s.lease_release, include_str!("../lua/lease_release.lua")),
            (&s.recount_worker, include_str!("../lua/recount_worker.lua")),
            (&s.recount_exam, include_str!("../lua/recount_exam.lua")),
            (
                &s.redeem_join_token,
                include_str!("../lua/redeem_join_token.lua"),
            ),
            (&s.put_join_token, include_str!("../lua/put_join_token.lua")),
        ];
        let hashes: std::collections::HashSet<&str> =
            all.iter().map(|(script, _)| script.get_hash()).collect();
        assert_eq!(hashes.len(), all.len());
        for (_, source) in all {
            assert!(source.contains("KEYS[1]"), "header names KEYS");
            assert!(source.contains("Returns"), "header names the reply");
        }
    }

    #[test]
    fn no_script_builds_a_key_name() {
        for source in [
            include_str!("../lua/reserve.lua"),
            include_str!("../lua/confirm.lua"),
            include_str!("../lua/undo.lua"),
            include_str!("../lua/release.lua"),
            include_str!("../lua/mark_orphaned.lua"),
            include_str!("../lua/put_worker.lua"),
            include_str!("../lua/delete_worker.lua"),
            include_str!("../lua/lease_acquire.lua"),
            include_str!("../lua/lease_release.lua"),
            include_str!("../lua/recount_worker.lua"),
            include_str!("../lua/recount_exam.lua"),
            include_str!("../lua/redeem_join_token.lua"),
            include_str!("../lua/put_join_token.lua"),
        ] {
            for line in source.lines().filter(|l| !l.trim_start().starts_with("--")) {
                // Key names are colon-separated; a string literal holding a
                // colon in code would be a key built inside Lua.
                assert!(!line.contains("':") && !line.contains(":'"), "{line}");
            }
        }
    }
}
