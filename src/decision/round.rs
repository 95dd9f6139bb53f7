//! The order in which a round draws candidates: strategy weights pick the source (new orders or scanned files), the
//! large lane is served first when it has room (as TypeScript does), and within one source and lane candidates come
//! in ranking order. The Picker and `smanager plan` both walk a [`Round`], so a plan is what the Picker would do.

use rand::{Rng, SeedableRng};

use super::{decide, lane_caps, Decision, Snapshot, Verdict};
use crate::config::Settings;
use crate::db::files::Source;
use crate::db::{File, Lane};

/// Candidates of one round, each list in ranking order (best first).
#[derive(Debug, Default, Clone)]
pub struct Candidates {
    /// New orders (seen by an order event) in the small lane.
    pub events_small: Vec<File>,
    /// New orders in the large lane.
    pub events_large: Vec<File>,
    /// Scanned files in the small lane.
    pub scan_small: Vec<File>,
    /// Scanned files in the large lane.
    pub scan_large: Vec<File>,
}

impl Candidates {
    fn list(&mut self, source: Source, lane: Lane) -> &mut Vec<File> {
        match (source, lane) {
            (Source::Events, Lane::Small) => &mut self.events_small,
            (Source::Events, Lane::Large) => &mut self.events_large,
            (Source::Scan, Lane::Small) => &mut self.scan_small,
            (Source::Scan, Lane::Large) => &mut self.scan_large,
        }
    }
}

/// The strategy's weights for (new orders, scanned files). `existedFilesWeight` is accepted but, as in TypeScript,
/// draws nothing; weights summing to 0 fall back to the default preset (50/50) as TypeScript does.
pub fn source_weights(settings: &Settings) -> (u32, u32) {
    let w = settings.scheduler.strategy.weights();
    if w.new_files_weight + w.db_files_weight == 0 {
        (50, 50)
    } else {
        (w.new_files_weight, w.db_files_weight)
    }
}

/// One round's walk over the candidates: [`Round::next_candidate`] draws and judges the next file under the current snapshot;
/// [`Round::took`] accounts for a file the caller actually reserved, so later verdicts see the fuller lane.
pub struct Round<'a> {
    settings: &'a Settings,
    snap: Snapshot,
    candidates: Candidates,
    rng: rand::rngs::StdRng,
    weights: (u32, u32),
}

impl<'a> Round<'a> {
    /// A round over `candidates`; `seed` fixes the source draws (plans print it so they can be replayed).
    pub fn new(settings: &'a Settings, snap: Snapshot, mut candidates: Candidates, seed: u64) -> Self {
        // Lists are consumed from the end.
        for v in [
            &mut candidates.events_small,
            &mut candidates.events_large,
            &mut candidates.scan_small,
            &mut candidates.scan_large,
        ] {
            v.reverse();
        }
        Round {
            settings,
            snap,
            candidates,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            weights: source_weights(settings),
        }
    }

    /// The snapshot as the round has updated it.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// The lane a source draws from now: large first while it has room or is closed (its files are then skipped),
    /// else small while it has room; `None` when neither can take anything from this source.
    fn lane_for(&mut self, source: Source) -> Option<Lane> {
        let s = &self.settings.scheduler;
        let (small_cap, large_cap) = lane_caps(s);
        let large_open = large_cap == 0 || self.snap.usage.large < large_cap;
        let small_open = self.snap.usage.small < small_cap;
        if large_open && !self.candidates.list(source, Lane::Large).is_empty() {
            return Some(Lane::Large);
        }
        if small_open && !self.candidates.list(source, Lane::Small).is_empty() {
            return Some(Lane::Small);
        }
        None
    }

    /// The next candidate and its decision, or `None` when the round is over (no candidate left in a lane with room).
    pub fn next_candidate(&mut self) -> Option<(Source, File, Decision)> {
        let events = self.lane_for(Source::Events);
        let scan = self.lane_for(Source::Scan);
        let (w_new, w_db) = self.weights;
        let (source, lane) = match (events, scan) {
            (None, None) => return None,
            (Some(l), None) => (Source::Events, l),
            (None, Some(l)) => (Source::Scan, l),
            (Some(le), Some(ls)) => {
                if self.rng.gen_range(0..(w_new + w_db).max(1)) < w_new {
                    (Source::Events, le)
                } else {
                    (Source::Scan, ls)
                }
            }
        };
        let file = self.candidates.list(source, lane).pop()?;
        let decision = decide(self.settings, source, &file, &self.snap);
        Some((source, file, decision))
    }

    /// The caller reserved `size` bytes in `lane` for a file it took.
    pub fn took(&mut self, lane: Lane, size: i64) {
        match lane {
            Lane::Small => self.snap.usage.small += 1,
            Lane::Large => self.snap.usage.large += 1,
        }
        self.snap.usage.reserved_bytes = self.snap.usage.reserved_bytes.saturating_add(size.max(0));
    }

    /// Whether some lane still has room (the caller may fetch more candidates).
    pub fn has_room(&self) -> bool {
        let (small_cap, large_cap) = lane_caps(&self.settings.scheduler);
        self.snap.usage.small < small_cap || self.snap.usage.large < large_cap
    }
}

/// A dry run over a round: the files it would take in order and the others with their verdicts, without side
/// effects. Every `Pick` is assumed to succeed.
pub fn dry_run(round: &mut Round<'_>, limit: usize) -> Vec<(Source, File, Decision)> {
    let mut out = Vec::new();
    while let Some((source, file, decision)) = round.next_candidate() {
        if let Verdict::Pick { lane } = decision.verdict {
            round.took(lane, file.size_bytes);
        }
        out.push((source, file, decision));
        if out.len() >= limit {
            break;
        }
    }
    out
}
