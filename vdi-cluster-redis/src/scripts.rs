//! The Lua scripts, one per atomic step, loaded once per process.
//!
//! Each script lives in `lua/<op>.lua` with a header naming its `KEYS`,
//! `ARGV` and reply. [`redis::Script`] runs it by `EVALSHA` and, when the
//! server does not know the hash (first use, or after a restart), loads it
//! and retries. Every key a script touches is passed in `KEYS`.
//!
//! The helpers several scripts share (counting down, the recount scripts'
//! "has the set changed since the caller read it" check) are written once,
//! in `lua/prelude.lua`, and prepended to every script when it is loaded:
//! each atomic step is still one script and one round trip.

use std::sync::LazyLock;

use redis::{Pipeline, Script};

/// The helpers every script is loaded with.
const PRELUDE: &str = include_str!("../lua/prelude.lua");

/// Declares the scripts, one `lua/<name>.lua` each.
macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        /// All scripts of the backend, each with the prelude.
        #[derive(Debug)]
        pub(crate) struct Scripts {
            $(
                #[doc = concat!("`lua/", stringify!($name), ".lua`.")]
                pub(crate) $name: Script,
            )*
        }

        /// Every script's own source (without the prelude), by name.
        #[cfg(test)]
        const SOURCES: &[(&str, &str)] = &[
            $((stringify!($name), include_str!(concat!("../lua/", stringify!($name), ".lua"))),)*
        ];

        #[cfg(test)]
        impl Scripts {
            /// Every loaded script, by name.
            fn all(&self) -> Vec<(&'static str, &Script)> {
                vec![$((stringify!($name), &self.$name),)*]
            }
        }

        /// The scripts, hashed once.
        pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
            $($name: load(include_str!(concat!("../lua/", stringify!($name), ".lua"))),)*
        });

        /// `SCRIPT LOAD` of every script, in one pipeline: a primary the
        /// store moves to after a failover knows them all before its
        /// first request (its replica's script cache starts empty).
        pub(crate) fn load_all() -> Pipeline {
            let mut pipe = redis::pipe();
            $(
                pipe.cmd("SCRIPT").arg("LOAD").arg(with_prelude(include_str!(concat!(
                    "../lua/",
                    stringify!($name),
                    ".lua"
                ))));
            )*
            pipe
        }
    };
}

scripts!(
    reserve,
    adopt,
    confirm,
    undo,
    release,
    release_lost,
    mark_orphaned,
    put_worker,
    delete_worker,
    lease_acquire,
    lease_release,
    lease_checkpoint,
    recount_worker,
    recount_exam,
    redeem_join_token,
    put_join_token,
    exam_calendar,
    exam_put,
    exam_delete,
    exam_risk_swap,
    scheduled_put,
    scheduled_open,
    put_worker_credential,
    claim_worker,
    waiting_room_enqueue,
    waiting_room_touch,
    waiting_room_read,
    waiting_room_leave,
    waiting_room_claim,
    waiting_room_complete,
    waiting_room_release,
    waiting_room_abandon,
    outbox_enqueue,
    outbox_lease,
    outbox_finish,
    outbox_retry,
    outbox_purge,
    capacity_read,
    capacity_insert,
    capacity_update,
    permit_acquire,
    permit_release,
    permit_read,
    ledger_append,
    ledger_close,
    rehearsal_put,
    rehearsal_remove,
);

/// The compare-and-reserve script exactly as the store runs it (prelude
/// included), for measurements that call it bare (the load generator's
/// raw ceiling). Its `KEYS` and `ARGV` are documented in `lua/reserve.lua`.
pub fn reserve_script() -> Script {
    SCRIPTS.reserve.clone()
}

/// A script with the prelude in front of it.
fn load(source: &str) -> Script {
    Script::new(&with_prelude(source))
}

/// The text of a script as the server runs it.
fn with_prelude(source: &str) -> String {
    [PRELUDE, "\n", source].concat()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_script_has_a_header_and_distinct_hash() {
        let all = SCRIPTS.all();
        let hashes: HashSet<&str> = all.iter().map(|(_, script)| script.get_hash()).collect();
        assert_eq!(all.len(), SOURCES.len());
        assert_eq!(hashes.len(), SOURCES.len());
        for (name, source) in SOURCES {
            assert!(source.contains("KEYS[1]"), "{name}: header names KEYS");
            assert!(source.contains("Returns"), "{name}: header names the reply");
        }
    }

    #[test]
    fn loading_them_all_loads_each_script_as_the_store_runs_it() {
        let run: HashSet<&str> = SCRIPTS
            .all()
            .into_iter()
            .map(|(_, script)| script.get_hash())
            .collect();
        let load = load_all();
        let mut loaded = HashSet::new();
        for cmd in load.cmd_iter() {
            let args: Vec<&[u8]> = cmd
                .args_iter()
                .map(|arg| match arg {
                    redis::Arg::Simple(bytes) => bytes,
                    _ => panic!("SCRIPT LOAD has no cursor"),
                })
                .collect();
            let [b"SCRIPT", b"LOAD", source] = args[..] else {
                panic!("not a SCRIPT LOAD: {args:?}");
            };
            let source = std::str::from_utf8(source).expect("UTF-8 source");
            loaded.insert(Script::new(source).get_hash().to_owned());
        }
        assert_eq!(load.len(), run.len());
        assert_eq!(loaded, run.into_iter().map(str::to_owned).collect());
    }

    #[test]
    fn the_prelude_only_defines_local_functions() {
        for line in PRELUDE.lines() {
            let code = line.trim_start();
            let top_level = !line.starts_with(' ') && !code.is_empty() && !code.starts_with("--");
            if top_level {
                assert!(
                    code.starts_with("local function ") || code == "end",
                    "prelude runs code on load: {line}"
                );
            }
        }
    }

    #[test]
    fn no_script_redefines_a_prelude_helper() {
        let helpers: Vec<&str> = PRELUDE
            .lines()
            .filter_map(|l| l.strip_prefix("local function "))
            .filter_map(|l| l.split('(').next())
            .collect();
        assert!(helpers.contains(&"decrement"));
        for (name, source) in SOURCES {
            for helper in &helpers {
                assert!(
                    !source.contains(&format!("local function {helper}(")),
                    "{name}.lua redefines the prelude's {helper}"
                );
            }
        }
    }

    #[test]
    fn no_script_builds_a_key_name() {
        let all = SOURCES.iter().map(|(_, s)| *s).chain([PRELUDE]);
        for source in all {
            for line in source.lines().filter(|l| !l.trim_start().starts_with("--")) {
                // Key names are colon-separated; a string literal holding a
                // colon in code would be a key built inside Lua.
                assert!(!line.contains("':") && !line.contains(":'"), "{line}");
            }
        }
    }
}
