//! What the demo shows once the run is written, every number read back through the library:
//! `Store::stats`, `Store::usage_report`, `Store::cost_summary`, `Store::budget`,
//! `Store::verify_all`, and the checkpoint the run was sealed with.

use std::path::Path;
use std::time::Duration;

use oidb::costs::{BudgetStatus, CostQuery, CostSummary, GroupBy, UsageQuery, UsageReport};
use oidb::verify::StoreVerification;
use oidb::{LogCheckpoint, Stats, Store};
use uuid::Uuid;

use super::script::Run;
use crate::failure::{Failure, Outcome};
use crate::table::{count, duration_ms, shorten};

/// The unit the demo's prices are in.
const USD: &str = "USD";

/// What the demo read back from the file it wrote.
pub struct Report {
    stats: Stats,
    by_model: UsageReport,
    all_models: UsageReport,
    costs: CostSummary,
    budget: Option<BudgetStatus>,
    verification: StoreVerification,
    checkpoint: LogCheckpoint,
    intents: Vec<(String, String, u64)>,
    trace_id: String,
    failed_request: Uuid,
    shown: u64,
}

impl Report {
    /// Reads the summary of `run` from `store`; `shown` is how many events the feed printed.
    pub fn read(
        store: &Store,
        run: &Run,
        checkpoint: LogCheckpoint,
        shown: u64,
    ) -> Result<Report, Failure> {
        let research = run.intents.first().map_or("", |(id, _)| id.as_str());
        let mut intents = Vec::new();
        for (id, title) in &run.intents {
            let label = format!("\"{}\"", shorten(title, 52));
            intents.push((id.clone(), label, store.last_sequence(id)?));
        }
        let sealed = oidb::checkpoint::STORE_CHECKPOINT_INTENT;
        intents.push((
            sealed.to_owned(),
            "(where store checkpoints are logged)".to_owned(),
            store.last_sequence(sealed)?,
        ));
        Ok(Report {
            stats: store.stats()?,
            by_model: store.usage_report(&UsageQuery::new().group_by(GroupBy::Model))?,
            all_models: store.usage_report(&UsageQuery::new())?,
            costs: store.cost_summary(&CostQuery::new())?,
            budget: store.budget(research)?,
            verification: store.verify_all(|_| {})?,
            checkpoint,
            intents,
            trace_id: run.trace_id.clone(),
            failed_request: run.failed_request,
            shown,
        })
    }

    /// The summary, then the commands to try.
    pub fn text(&self, path: &Path, took: Duration) -> String {
        let mut lines = vec![String::new()];
        lines.push(format!(
            "Wrote {} events in {} ({} printed live as they committed): {} intents, {} actors, one trace.",
            count(self.stats.events),
            duration_ms(took.as_millis() as i64),
            count(self.shown),
            self.stats.intents,
            self.stats.actors.len()
        ));
        for (id, label, events) in &self.intents {
            lines.push(format!(
                "  intent {id:<36}  {label:<54} {events:>3} {}",
                if *events == 1 { "event" } else { "events" }
            ));
        }
        lines.push(format!(
            "  trace  {}  (the whole run, across both intents)",
            self.trace_id
        ));
        self.types(&mut lines);
        self.models(&mut lines);
        self.spend(&mut lines);
        self.verified(&mut lines);
        self.next(path, &mut lines);
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    /// Events by type, in three columns.
    fn types(&self, lines: &mut Vec<String>) {
        lines.push(String::new());
        lines.push("Events by type (Store::stats)".to_owned());
        let cells: Vec<String> = self
            .stats
            .event_types
            .iter()
            .map(|(kind, n)| format!("{:<23}{n:>3}", shorten(kind.as_str(), 22)))
            .collect();
        let rows = cells.len().div_ceil(3);
        for row in 0..rows {
            let line: Vec<&str> = (0..3)
                .filter_map(|column| cells.get(column * rows + row).map(String::as_str))
                .collect();
            lines.push(format!("  {}", line.join("    ")));
        }
    }

    /// Requests and tokens by model (usage analytics), what they cost (the cost ledger).
    fn models(&self, lines: &mut Vec<String>) {
        lines.push(String::new());
        lines.push(
            "LLM requests by model (Store::usage_report), cost from the price table (Store::cost_summary)"
                .to_owned(),
        );
        lines.push(format!(
            "  {:<16} {:>8} {:>6} {:>8} {:>7} {:>9} {:>19}",
            "model", "requests", "failed", "input", "output", "p50", "cost (USD)"
        ));
        let by_model = self.costs.by_unit.get(USD).map(|u| &u.by_model);
        let unpriced = |model: &str| {
            self.costs
                .unpriced
                .iter()
                .any(|u| u.model.as_deref() == Some(model))
        };
        let groups = self
            .by_model
            .groups
            .iter()
            .map(|g| (g.key.as_str(), g))
            .chain(self.all_models.groups.iter().map(|g| ("all models", g)));
        for (name, group) in groups {
            let llm = &group.llm;
            let cost = if name == "all models" {
                self.costs
                    .by_unit
                    .get(USD)
                    .and_then(|u| u.by_type.get("tokens"))
                    .map(ToString::to_string)
            } else {
                by_model.and_then(|m| m.get(name)).map(ToString::to_string)
            };
            let cost = match (cost, unpriced(name) || name == "all models") {
                (Some(c), true) if !self.costs.unpriced.is_empty() => format!("{c} + unpriced"),
                (Some(c), _) => c,
                (None, true) if unpriced(name) => "unpriced".to_owned(),
                (None, _) => "-".to_owned(),
            };
            let tokens = |n: u64| if n == 0 { "-".to_owned() } else { count(n) };
            lines.push(format!(
                "  {:<16} {:>8} {:>6} {:>8} {:>7} {:>9} {:>19}",
                shorten(name, 16),
                llm.requests,
                llm.failed,
                tokens(llm.input_tokens),
                tokens(llm.output_tokens),
                llm.latency_ms
                    .p50
                    .map_or("-".to_owned(), |ms| duration_ms(ms as i64)),
                cost
            ));
        }
    }

    /// Other costs, the total, what has no price, and the budget.
    fn spend(&self, lines: &mut Vec<String>) {
        let Some(usd) = self.costs.by_unit.get(USD) else {
            return;
        };
        let others: Vec<String> = usd
            .by_type
            .iter()
            .filter(|(kind, _)| kind.as_str() != "tokens")
            .map(|(kind, amount)| format!("{kind} {amount}"))
            .collect();
        lines.push(format!(
            "  spent {} USD in all: LLM tokens{}",
            usd.total,
            if others.is_empty() {
                String::new()
            } else {
                format!(" + {} (Store::record_cost)", others.join(" + "))
            }
        ));
        for u in &self.costs.unpriced {
            lines.push(format!(
                "  {}/{} has no price in the table: its {} tokens are counted, its cost is unknown (not zero)",
                u.provider.as_deref().unwrap_or("?"),
                u.model.as_deref().unwrap_or("?"),
                count(u.input_tokens.saturating_add(u.output_tokens))
            ));
        }
        if let Some(budget) = &self.budget {
            let percent = if budget.max_cost.as_f64() > 0.0 {
                budget.spent.as_f64() / budget.max_cost.as_f64() * 100.0
            } else {
                0.0
            };
            lines.push(format!(
                "  the research intent's budget: {} {}, {} spent ({percent:.0}%){}",
                budget.max_cost,
                budget.unit,
                budget.spent,
                match (budget.alerted, budget.alert_threshold_percent) {
                    (true, Some(at)) =>
                        format!(": past its {at}% alert, so a budget_alert was logged"),
                    _ => String::new(),
                }
            ));
        }
    }

    /// The verification and the checkpoint.
    fn verified(&self, lines: &mut Vec<String>) {
        let v = &self.verification;
        lines.push(String::new());
        lines.push(format!(
            "Verified (Store::verify_all): {} chains, {} events; every hash recomputed, every link, \
             index row and intent head checked: {}",
            v.chains.len(),
            count(v.event_count),
            if v.valid { "intact" } else { "BROKEN" }
        ));
        lines.push(format!(
            "Checkpoint (Store::create_checkpoint): positions {} to {} sealed under Merkle root {}",
            self.checkpoint.first_sequence,
            self.checkpoint.last_sequence,
            self.checkpoint.merkle_root
        ));
    }

    fn next(&self, path: &Path, lines: &mut Vec<String>) {
        let file = shell_word(&path.display().to_string());
        let research = self.intents.first().map_or("", |(id, _, _)| id.as_str());
        let tries = [
            (
                format!("oidb verify {file}"),
                "chains, indexes and the checkpoint",
            ),
            (
                format!("oidb costs {file} --by agent"),
                "spend and tokens by agent",
            ),
            (
                format!("oidb trace {file} {}", self.trace_id),
                "the run as a tree, with durations",
            ),
            (
                format!("oidb trace {file} {} --otlp trace.json", self.trace_id),
                "the same, for OpenTelemetry",
            ),
            (
                format!("oidb blocks {file} {research}"),
                "the agent's thinking, put back together",
            ),
            (
                format!("oidb events {file} --type 'llm_*'"),
                "the LLM requests",
            ),
            (
                format!("oidb events {file} --level WARN"),
                "what went wrong",
            ),
            (
                format!("oidb show {file} {}", self.failed_request),
                "the failed request in full",
            ),
            (format!("oidb stats {file}"), "what the file holds"),
            (
                format!("oidb export {file} --out demo.jsonl"),
                "everything, as OpenIntent JSONL",
            ),
        ];
        let width = tries.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
        lines.push(String::new());
        lines.push("Try next:".to_owned());
        for (command, why) in tries {
            lines.push(format!("  {command:<width$}  {why}"));
        }
    }

    /// Exit 3 when the file did not verify.
    pub fn verdict(&self) -> Outcome {
        if self.verification.valid {
            Ok(())
        } else {
            Err(Failure::Verification(
                "the demo's file does not verify (see above); `oidb verify` names each break"
                    .to_owned(),
            ))
        }
    }
}

/// `word` as one shell word: as it is when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+=:,@".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
