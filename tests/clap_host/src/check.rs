//! Checks a run's MIDI output against the engine's trace and the rules of docs/plugin.md.

use crate::host::{Cut, OutEvent, OutKind, Run};
use crate::trace::{Kind, Traced};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<String>,
    pub generated_notes: usize,
    /// Generated events found in the trace at exactly their sample.
    pub matched: usize,
    /// Traced NOTE_ONs that were due but dropped because a new performance started.
    pub superseded: usize,
    /// Traced NOTE_ONs that were due and never came (skipped late).
    pub missing: usize,
    /// NOTE_OFFs and pedal-ups sent by cuts (stop, jump, bypass, restart, activation).
    pub cut_events: usize,
    pub max_sounding: usize,
    /// Traced NOTE_ONs in the first block after a start that came too late (real-time runs).
    pub start_latency: usize,
    /// Traced NOTE_ONs on keys the musician held (left to them).
    pub held_by_musician: usize,
    /// Releases that came at a block's first sample because the engine queued them late.
    pub late_releases: usize,
}

impl Report {
    fn error(&mut self, message: String) {
        if self.errors.len() < 40 {
            self.errors.push(message);
        }
    }
}

fn kind_of(kind: &OutKind) -> (Kind, u8) {
    match *kind {
        OutKind::On { key, .. } => (Kind::On, key),
        OutKind::Off { key } => (Kind::Off, key),
        OutKind::Pedal { .. } => (Kind::Pedal, 64),
    }
}

/// `strict`: every due NOTE_ON of the live performance must come (lockstep and offline runs); in
/// lockstep runs (simulated real time) but not offline, the notes of the first block after a start
/// are excused: that block is processed before the engine hears of the start. `input_channel`: the
/// channel of the musician's notes (passed through; on channel 0 they are told apart by sample).
pub fn check(run: &Run, strict: bool, excuse_start_blocks: bool, input_channel: u8) -> Report {
    let mut report = Report::default();
    if !run.sorted {
        report.error("output events of a block were not in time order".into());
    }
    // Traced events by (kind, key), in time order, with a used flag.
    let mut traced: HashMap<(u8, u8), Vec<(Traced, bool)>> = HashMap::new();
    for t in &run.trace {
        let k = match t.kind {
            Kind::On => 0,
            Kind::Off => 1,
            Kind::Pedal => 2,
        };
        traced.entry((k, t.key)).or_default().push((*t, false));
    }
    for list in traced.values_mut() {
        list.sort_by(|a, b| a.0.time.total_cmp(&b.0.time));
    }
    let code = |k: Kind| match k {
        Kind::On => 0u8,
        Kind::Off => 1,
        Kind::Pedal => 2,
    };

    // Cut blocks.
    let cut_blocks: HashMap<usize, Cut> = run.cuts.iter().map(|c| (c.block, c.reason)).collect();

    // Walk the output in order: state machine and trace matching.
    let mut sounding: [bool; 128] = [false; 128];
    let mut pedal_down = false;
    let is_input = |e: &OutEvent| {
        e.channel == input_channel && run.inputs.iter().any(|(sample, kind)| *sample == e.host_sample && kind_of(kind) == kind_of(&e.kind))
    };
    let generated: Vec<&OutEvent> = run.events.iter().filter(|e| e.channel == 0 && !is_input(e)).collect();
    let mut i = 0;
    let mut cut_iter = run.cuts.iter().peekable();
    let mut block_events: Vec<&OutEvent> = Vec::new();
    while i < generated.len() || cut_iter.peek().is_some() {
        // The next block with events or a cut.
        let next_block = match (generated.get(i), cut_iter.peek()) {
            (Some(e), Some(c)) => e.block.min(c.block),
            (Some(e), None) => e.block,
            (None, Some(c)) => c.block,
            (None, None) => break,
        };
        block_events.clear();
        while i < generated.len() && generated[i].block == next_block {
            block_events.push(generated[i]);
            i += 1;
        }
        let cut = cut_blocks.get(&next_block).copied();
        while cut_iter.peek().is_some_and(|c| c.block <= next_block) {
            cut_iter.next();
        }
        if let Some(reason) = cut {
            // Every note sounding before this block ends at its first sample, the pedal too.
            let mut ended = [false; 128];
            let mut lifted = false;
            for e in block_events.iter().filter(|e| e.time == 0) {
                match e.kind {
                    OutKind::Off { key } => ended[key as usize] = true,
                    OutKind::Pedal { value } if value < 64 => lifted = true,
                    _ => {}
                }
            }
            for key in 0..128 {
                if sounding[key] && !ended[key] {
                    report.error(format!("{reason:?} at block {next_block}: key {key} still sounds after its first sample"));
                }
            }
            if pedal_down && !lifted {
                report.error(format!("{reason:?} at block {next_block}: the pedal stays down"));
            }
        }
        for e in &block_events {
            let (kind, key) = kind_of(&e.kind);
            // Find the traced event at exactly this sample.
            let mut found = false;
            // In real time a release the engine queued too late comes at the buffer's first
            // sample (docs/plugin.md): in runs that do not wait for the engine, a release at a
            // block's first sample may match an earlier traced one.
            let release = matches!(e.kind, OutKind::Off { .. } | OutKind::Pedal { value: 0..=63 });
            // So may the block after a start's first block in lockstep runs (that first block
            // was processed before the engine heard of the start).
            let after_start = excuse_start_blocks && run.starts.iter().any(|&(block, _, _)| e.block == block + 1);
            if (!strict || after_start)
                && release
                && e.time == 0
                && let Some(list) = traced.get_mut(&(code(kind), key))
            {
                let t = e.clock_sample as f64 / e.rate;
                if let Some((_, used)) = list.iter_mut().rev().find(|(x, used)| !*used && x.time < t && x.time > t - 1.0) {
                    *used = true;
                    found = true;
                    report.late_releases += 1;
                }
            }
            if let Some(list) = traced.get_mut(&(code(kind), key)).filter(|_| !found) {
                let t = e.clock_sample as f64 / e.rate;
                let start = list.partition_point(|(x, _)| x.time < t - 2.0 / e.rate);
                for (x, used) in list[start..].iter_mut() {
                    if x.time > t + 2.0 / e.rate {
                        break;
                    }
                    if !*used && (x.time * e.rate).round() as i64 == e.clock_sample {
                        let value_ok = match e.kind {
                            OutKind::Pedal { value } => (value >= 64) == (x.value >= 64),
                            _ => true,
                        };
                        if value_ok {
                            *used = true;
                            found = true;
                            break;
                        }
                    }
                }
            }
            match e.kind {
                OutKind::On { key, .. } => {
                    report.generated_notes += 1;
                    if sounding[key as usize] {
                        report.error(format!("NOTE_ON of sounding key {key} at host sample {}", e.host_sample));
                    }
                    sounding[key as usize] = true;
                    if found {
                        report.matched += 1;
                    } else {
                        report.error(format!(
                            "NOTE_ON {key} at clock sample {} ({:.6} s) is not in the engine's trace at that sample",
                            e.clock_sample,
                            e.clock_sample as f64 / e.rate
                        ));
                    }
                }
                OutKind::Off { key } => {
                    if !sounding[key as usize] {
                        report.error(format!("NOTE_OFF of silent key {key} at host sample {}", e.host_sample));
                    }
                    sounding[key as usize] = false;
                    if found {
                        report.matched += 1;
                    } else if cut.is_some() && e.time == 0 {
                        report.cut_events += 1;
                    } else {
                        // A NOTE_ON at the same sample for this key (repeated note) explains it.
                        let retrigger =
                            block_events.iter().any(|o| o.time == e.time && matches!(o.kind, OutKind::On { key: k, .. } if k == key));
                        if !retrigger {
                            report.error(format!("NOTE_OFF {key} at clock sample {} is neither in the trace nor a cut", e.clock_sample));
                        }
                    }
                }
                OutKind::Pedal { value } => {
                    let down = value >= 64;
                    if found {
                        report.matched += 1;
                    } else if cut.is_some() && e.time == 0 && !down {
                        report.cut_events += 1;
                    } else {
                        report.error(format!("pedal {value} at clock sample {} is neither in the trace nor a cut", e.clock_sample));
                    }
                    pedal_down = down;
                }
            }
            report.max_sounding = report.max_sounding.max(sounding.iter().filter(|&&s| s).count());
        }
    }
    let still: Vec<usize> = (0..128).filter(|&k| sounding[k]).collect();
    if !still.is_empty() {
        report.error(format!("stuck notes at the end: {still:?}"));
    }
    if pedal_down {
        report.error("the pedal is still down at the end".into());
    }

    // Due NOTE_ONs that never came.
    let final_seconds = run.final_clock as f64 / run.sample_rates.last().map_or(48_000.0, |r| r.1);
    // A performance ends where a later one starts (the run's first activation starts the first).
    let restarts: Vec<f64> = run
        .cuts
        .iter()
        .filter(|c| c.block > 0 && matches!(c.reason, Cut::Restart | Cut::Activation | Cut::Jump))
        .map(|c| c.clock_seconds)
        .collect();
    let start_windows: Vec<(f64, f64)> = run
        .starts
        .iter()
        .filter(|_| excuse_start_blocks)
        .map(|&(_, clock, frames)| {
            let rate = run.sample_rates.iter().rev().find(|r| r.0 <= clock).map_or(48_000.0, |r| r.1);
            (clock as f64 / rate, (clock + frames as i64) as f64 / rate)
        })
        .collect();
    let newest_generation = run.trace.iter().map(|t| t.generation).max().unwrap_or(0);
    let rate_at = |seconds: f64| run.sample_rates.iter().rev().find(|r| r.0 as f64 / r.1 <= seconds).map_or(48_000.0, |r| r.1);
    // (key, from, to) in clock samples of every note the musician held.
    let mut held_inputs = Vec::new();
    for (i, &(from, kind)) in run.input_clock.iter().enumerate() {
        if let OutKind::On { key, .. } = kind {
            let to = run.input_clock[i..].iter().find(|(_, k)| *k == OutKind::Off { key }).map_or(i64::MAX, |&(c, _)| c);
            held_inputs.push((key, from, to));
        }
    }
    for ((k, _), list) in &traced {
        if *k != 0 {
            continue;
        }
        for (t, used) in list {
            if *used || t.time >= final_seconds - 0.001 {
                continue;
            }
            let superseded = t.generation < newest_generation && restarts.iter().any(|&c| t.time >= c - 0.005);
            let in_start_block = start_windows.iter().any(|&(from, to)| t.time >= from - 1e-9 && t.time < to);
            // The engine does not start a note on a key the musician holds (docs/plugin.md).
            let clock = (t.time * rate_at(t.time)).round() as i64;
            let held = held_inputs.iter().any(|&(key, from, to)| key == t.key && (from..=to).contains(&clock));
            if superseded {
                report.superseded += 1;
            } else if in_start_block {
                report.start_latency += 1;
            } else if held {
                report.held_by_musician += 1;
            } else {
                report.missing += 1;
                if strict {
                    report.error(format!("NOTE_ON {} at {:.6} s (generation {}) never came", t.key, t.time, t.generation));
                }
            }
        }
    }

    // The musician's notes pass through at their own sample.
    for (sample, kind) in &run.inputs {
        let ok = run.events.iter().any(|e| e.channel == input_channel && e.host_sample == *sample && kind_of(&e.kind) == kind_of(kind));
        if !ok {
            report.error(format!("input {kind:?} at host sample {sample} did not pass through"));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::CutAt;

    fn out(block: usize, time: u32, clock: i64, kind: OutKind) -> OutEvent {
        OutEvent { rate: 1000.0, host_sample: clock as u64, clock_sample: clock, time, block, channel: 0, kind }
    }

    fn traced(time: f64, kind: Kind, key: u8) -> Traced {
        Traced { generation: 1, time, kind, key, value: 100 }
    }

    #[test]
    fn exact_matches_pass_and_stuck_notes_fail() {
        let mut run = Run { sorted: true, final_clock: 100, sample_rates: vec![(0, 1000.0)], ..Run::default() };
        run.trace = vec![traced(0.010, Kind::On, 60), traced(0.020, Kind::Off, 60), traced(0.030, Kind::On, 62)];
        run.events = vec![
            out(1, 0, 10, OutKind::On { key: 60, velocity: 100 }),
            out(2, 0, 20, OutKind::Off { key: 60 }),
            out(3, 0, 30, OutKind::On { key: 62, velocity: 100 }),
        ];
        let report = check(&run, true, false, 1);
        assert_eq!(report.errors, vec!["stuck notes at the end: [62]".to_string()]);
        // A stop at block 4 ends it: fine.
        run.events.push(out(4, 0, 40, OutKind::Off { key: 62 }));
        run.cuts.push(CutAt { block: 4, host_sample: 40, clock_seconds: 0.04, reason: Cut::Stop });
        let report = check(&run, true, false, 1);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.cut_events, 1);
        // One sample late: an error.
        run.events[0].clock_sample = 11;
        assert!(!check(&run, true, false, 1).errors.is_empty());
    }

    #[test]
    fn a_cut_that_forgets_a_note_fails() {
        let mut run = Run { sorted: true, final_clock: 100, sample_rates: vec![(0, 1000.0)], ..Run::default() };
        run.trace = vec![traced(0.010, Kind::On, 60)];
        run.events = vec![out(1, 0, 10, OutKind::On { key: 60, velocity: 100 }), out(5, 3, 53, OutKind::Off { key: 60 })];
        run.cuts.push(CutAt { block: 5, host_sample: 50, clock_seconds: 0.05, reason: Cut::Jump });
        let report = check(&run, true, false, 1);
        assert!(report.errors.iter().any(|e| e.contains("still sounds")), "{:?}", report.errors);
    }
}
