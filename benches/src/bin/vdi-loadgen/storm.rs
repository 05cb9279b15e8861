//! `seat --storm`: the exam start on nodes in a boot storm, without and
//! with paced starts, `--runs` times each, and the table of both.

use vdi_cluster_benches::latency::ms;
use vdi_cluster_benches::storm::{StormConfig, StormReport, storm};

use crate::args::SeatArgs;

/// Runs both, prints the table; whether pacing met its goals in the
/// median run (no start failed at the timeout, the last seat at least
/// 1.5× sooner, the median student's estimate within ±25 %).
pub(crate) async fn run(args: &SeatArgs) -> anyhow::Result<bool> {
    let config = args.storm_config();
    let runs = args.common.runs.max(1);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let plain = storm(&config, false).await?;
        eprintln!("run {run} without pacing: {}", line(&plain));
        let paced = storm(&config, true).await?;
        eprintln!("run {run} with pacing:    {}", line(&paced));
        without.push(plain);
        with.push(paced);
    }
    print_config(&config, runs);
    println!(
        "| run | pacing | seated | last seat | click→seat p50 | p95 | timed-out starts | refused requests | most starts in flight on a node | estimate error, median student | estimates within ±25 % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, (a, b)) in without.iter().zip(&with).enumerate() {
        row(&format!("{}", i + 1), "off", a);
        row(&format!("{}", i + 1), "on", b);
    }
    let (a, b) = (median_run(&without), median_run(&with));
    row("median", "off", a);
    row("median", "on", b);
    let speedup = a.last_seat.as_secs_f64() / b.last_seat.as_secs_f64().max(1e-3);
    let estimate = b.median_estimate_error().unwrap_or(0.0);
    let ok =
        b.nodes.timed_out == 0 && b.not_seated == 0 && speedup >= 1.5 && estimate.abs() <= 0.25;
    println!();
    println!(
        "median run: last seat {speedup:.2}× sooner with pacing; {} timed-out starts with pacing; median student's estimate {:+.0} %; goals {}",
        b.nodes.timed_out,
        estimate * 100.0,
        if ok { "met" } else { "NOT met" }
    );
    Ok(ok)
}

/// The run whose last seat is the median of `runs` (the later one of two
/// middles).
fn median_run(runs: &[StormReport]) -> &StormReport {
    let mut order: Vec<&StormReport> = runs.iter().collect();
    order.sort_by_key(|r| (r.not_seated, r.last_seat));
    order[order.len() / 2]
}

fn line(r: &StormReport) -> String {
    format!(
        "{} seated, {} not, last seat {}, {} timed out",
        r.seated,
        r.not_seated,
        ms(r.last_seat),
        r.nodes.timed_out
    )
}

fn row(run: &str, pacing: &str, r: &StormReport) {
    let last = if r.not_seated > 0 {
        format!("— ({} not seated)", r.not_seated)
    } else {
        ms(r.last_seat)
    };
    let estimate = r
        .median_estimate_error()
        .map_or_else(|| "—".to_owned(), |e| format!("{:+.0} %", e * 100.0));
    let within = r
        .estimates_within(0.25)
        .map_or_else(|| "—".to_owned(), |w| format!("{:.0} %", w * 100.0));
    println!(
        "| {run} | {pacing} | {} | {last} | {} | {} | {} | {} | {} | {estimate} | {within} |",
        r.seated,
        ms(r.seat_quantile(0.5)),
        ms(r.seat_quantile(0.95)),
        r.nodes.timed_out,
        r.refused,
        r.nodes.most_in_flight,
    );
}

fn print_config(c: &StormConfig, runs: usize) {
    println!(
        "{} students clicking within {} s; {} nodes × {} slots; a start takes {} × (1 + {} × starts in flight) and fails past {}; {runs} run(s) each",
        c.students,
        c.window.as_secs(),
        c.workers,
        c.slots,
        ms(c.model.base),
        c.model.k,
        ms(c.model.timeout),
    );
    println!();
}
