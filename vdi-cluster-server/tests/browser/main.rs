//! The operators' page in a real browser: the built `vdi-cluster` binary
//! as a control plane with simulated workers (the e2e harness), and a
//! headless Chromium driven over WebDriver. Each step writes a screenshot
//! under `target/browser-screenshots/`; each view passes the axe-core
//! accessibility check (no serious or critical violation). Without a
//! browser the browser tests print a skip line, unless
//! `VDI_REQUIRE_BROWSER` is set. `security` needs no browser.
//!
//! Every wait polls with a deadline; no test asserts on how long anything
//! took.

#![allow(missing_docs, unreachable_pub, dead_code)]

#[path = "../e2e/common/mod.rs"]
mod common;

mod capacity;
mod checklist;
mod exam_day;
mod freeze;
mod harness;
mod ledger;
mod lost_time;
mod network_policy;
mod pages;
mod proctor;
mod rehearsal;
mod scheduled;
mod security;
mod session_end;
mod sessions;
mod starts;
mod store;
