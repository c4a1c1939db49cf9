//! Two runs side by side: each operation's p50/p95 on the baseline (containerd) and on the
//! candidate (skiffd), the ratio baseline/candidate (above 1: the candidate is faster) and whether
//! it meets the goal (the candidate taking at most 1/goal of the baseline's time); then the
//! candidate's stage timings, then memory.

use std::fmt::Write;

use crate::bench::memory::Mem;
use crate::bench::result::{MemoryResult, RunResult};

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn rss_pss(m: &Mem) -> String {
    format!("{} / {} MB", mb(m.rss_kb), mb(m.pss_kb))
}

/// PSS split into anonymous pages and file pages (text the kernel can drop and read again).
fn anon_file(m: &Mem) -> String {
    format!("{} / {} MB", mb(m.pss_anon_kb), mb(m.pss_kb.saturating_sub(m.pss_anon_kb)))
}

/// The whole report.
pub fn render(base: &RunResult, cand: &RunResult, goal: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "CRI calls one at a time, {} samples on {}, {} on {}; ms", base.samples, base.runtime, cand.samples, cand.runtime);
    let _ = writeln!(out, "ratio = {} time / {} time (above 1: {} faster); goal: ratio >= {goal} at p50", short(base), short(cand), short(cand));
    let _ = writeln!(out, "{:<18} {:^19}   {:^19}", "", short(base), short(cand));
    let _ = writeln!(out, "{:<18} {:>9} {:>9}   {:>9} {:>9}   {:>6} {:>8}  {:<6}", "operation", "p50", "p95", "p50", "p95", "ratio", "(p95)", "goal");
    for op in &base.ops {
        let Some(c) = cand.op(&op.op) else {
            let _ = writeln!(out, "{:<18} {:>9.1} {:>9.1}   {:>9} {:>9}", op.op, op.summary.p50, op.summary.p95, "-", "-");
            continue;
        };
        let (b, s) = (op.summary, c.summary);
        let ratio = |x: f64, y: f64| if y > 0.0 { format!("{:.2}", x / y) } else { "-".to_string() };
        let met = if s.p50 > 0.0 && b.p50 / s.p50 >= goal { "met" } else { "missed" };
        let note = if op.note.is_empty() { String::new() } else { format!("({})", op.note) };
        let _ = writeln!(out, "{:<18} {:>9.1} {:>9.1}   {:>9.1} {:>9.1}   {:>6} {:>8}  {:<6} {note}", op.op, b.p50, b.p95, s.p50, s.p95, ratio(b.p50, s.p50), format!("({})", ratio(b.p95, s.p95)), met);
    }
    for c in cand.ops.iter().filter(|c| base.op(&c.op).is_none()) {
        let _ = writeln!(out, "{:<18} {:>9} {:>9}   {:>9.1} {:>9.1}", c.op, "-", "-", c.summary.p50, c.summary.p95);
    }
    out.push('\n');
    out.push_str(&stages(cand));
    out.push('\n');
    out.push_str(&memory(base, cand));
    out
}

/// One run alone (`--output text`).
pub fn one(r: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: CRI calls one at a time, {} samples; ms", r.runtime, r.samples);
    let _ = writeln!(out, "{:<18} {:>9} {:>9}", "operation", "p50", "p95");
    for op in &r.ops {
        let note = if op.note.is_empty() { String::new() } else { format!("  ({})", op.note) };
        let _ = writeln!(out, "{:<18} {:>9.1} {:>9.1}{note}", op.op, op.summary.p50, op.summary.p95);
    }
    out.push('\n');
    out.push_str(&stages(r));
    if let Some(m) = &r.memory {
        let _ = writeln!(out, "\nmemory with {} running pods of {} each (RSS / PSS): daemon {} before, {} with them; {} {} summing {}; pods started in {:.2} s",
            m.pods, containers(m), rss_pss(&m.idle), rss_pss(&m.daemon), m.shims, m.shim_name, rss_pss(&m.shims_mem), m.start_ms / 1e3);
    }
    out
}

/// The runtime's name without its version, for column heads.
fn short(r: &RunResult) -> &str {
    r.runtime.split_whitespace().next().unwrap_or("?")
}

/// The candidate's medians per (phase, stage), or why there are none.
pub fn stages(r: &RunResult) -> String {
    let mut out = String::new();
    if r.stages.is_empty() {
        let _ = writeln!(out, "{}: no stage timings", r.runtime);
        if let Some(e) = &r.stage_error {
            let _ = writeln!(out, "  (its verbose status held timings that could not be read: {e})");
        }
        return out;
    }
    let _ = writeln!(out, "{} stage timings, median ms over {} verbose statuses:", r.runtime, r.stage_reports);
    let width = r.stages.iter().map(|s| s.stage.chars().count()).max().unwrap_or(0).max(10);
    for s in &r.stages {
        let _ = writeln!(out, "  {:<8} {:<width$} {:>8.2}  (n={})", s.phase, s.stage, s.p50, s.n);
    }
    if let Some(e) = &r.stage_error {
        let _ = writeln!(out, "  (some timings could not be read: {e})");
    }
    out
}

fn memory(base: &RunResult, cand: &RunResult) -> String {
    let mut out = String::new();
    let (Some(b), Some(c)) = (&base.memory, &cand.memory) else {
        let _ = writeln!(out, "memory: not measured (no --daemon-pid on both runs)");
        return out;
    };
    let _ = writeln!(out, "memory with {} running pods of {} each (RSS / PSS):", b.pods, containers(b));
    let _ = writeln!(out, "  {:<34} {:>22} {:>22}", "", short(base), short(cand));
    let row = |out: &mut String, what: &str, f: &dyn Fn(&MemoryResult) -> String| {
        let _ = writeln!(out, "  {:<34} {:>22} {:>22}", what, f(b), f(c));
    };
    row(&mut out, "daemon before the pods", &|m| rss_pss(&m.idle));
    row(&mut out, "daemon with the pods", &|m| rss_pss(&m.daemon));
    row(&mut out, "supervisors (count, name)", &|m| format!("{} {}", m.shims, m.shim_name));
    row(&mut out, "supervisors, summed", &|m| rss_pss(&m.shims_mem));
    row(&mut out, "supervisors, per pod", &|m| rss_pss(&per_pod(m)));
    row(&mut out, "daemon + supervisors", &|m| rss_pss(&(m.daemon + m.shims_mem)));
    row(&mut out, "  of the PSS: anonymous / file", &|m| anon_file(&(m.daemon + m.shims_mem)));
    row(&mut out, "pods started in (one at a time)", &|m| format!("{:.2} s", m.start_ms / 1e3));
    let total = |m: &MemoryResult| (m.daemon + m.shims_mem).pss_kb as f64;
    if total(c) > 0.0 {
        let _ = writeln!(out, "  PSS ratio {}/{}: {:.2}", short(base), short(cand), total(b) / total(c));
    }
    out
}

fn containers(m: &MemoryResult) -> String {
    match m.containers_per_pod {
        1 => "one container".to_string(),
        n => format!("{n} containers"),
    }
}

fn per_pod(m: &MemoryResult) -> Mem {
    let pods = m.pods.max(1) as u64;
    Mem { rss_kb: m.shims_mem.rss_kb / pods, pss_kb: m.shims_mem.pss_kb / pods, pss_anon_kb: m.shims_mem.pss_anon_kb / pods }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::tests::sample;

    #[test]
    fn the_table_has_both_runtimes_the_ratio_and_the_goal() {
        let base = sample("containerd 1.6.20~ds1", 1.0, false);
        let fast = sample("skiff 0.1.0", 0.25, true);
        let text = render(&base, &fast, 3.0);
        let run = text.lines().find(|l| l.starts_with("RunPodSandbox")).expect("row");
        assert!(run.contains("90.0") && run.contains("22.5") && run.contains("4.00") && run.contains("met"), "{run}");
        let list = text.lines().find(|l| l.starts_with("ListContainers")).expect("row");
        assert!(list.contains("(100 containers)"), "{list}");
        assert!(text.contains("skiff 0.1.0 stage timings, median ms over 5 verbose statuses:"), "{text}");
        assert!(text.contains("run      pin"), "{text}");
        assert!(text.contains("10 containerd-shim-runc-v2"), "{text}");
        assert!(text.contains("PSS ratio containerd/skiff: 1.00"), "{text}");
        assert!(text.lines().any(|l| l.contains("of the PSS: anonymous / file") && l.contains("53.7 / 34.2 MB")), "{text}");

        let slow = sample("skiff 0.1.0", 0.5, false);
        let text = render(&base, &slow, 3.0);
        let run = text.lines().find(|l| l.starts_with("RunPodSandbox")).expect("row");
        assert!(run.contains("2.00") && run.contains("missed"), "{run}");
        assert!(text.contains("skiff 0.1.0: no stage timings"), "{text}");
    }

    #[test]
    fn operations_one_side_lacks_are_shown_with_a_dash() {
        let base = sample("containerd 1.6", 1.0, false);
        let mut cand = sample("skiff 0.1", 0.5, false);
        cand.ops.remove(1);
        cand.memory = None;
        let text = render(&base, &cand, 3.0);
        let list = text.lines().find(|l| l.starts_with("ListContainers")).expect("row");
        assert!(list.contains(" - "), "{list}");
        assert!(text.contains("memory: not measured"), "{text}");
    }

    #[test]
    fn one_run_alone_lists_its_ops_stages_and_memory() {
        let text = one(&sample("skiff 0.1.0", 0.25, true));
        assert!(text.lines().any(|l| l.starts_with("RunPodSandbox") && l.contains("22.5") && l.contains("30.0")), "{text}");
        assert!(text.contains("run      pin") && text.contains("10 containerd-shim-runc-v2 summing"), "{text}");
    }
}
