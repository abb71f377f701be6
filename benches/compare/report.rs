//! Figures: several runs per side, summarised as median (min–max), printed as a table and written
//! as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

/// The per-run values of one side in one scenario.
#[derive(Debug, Clone, Default)]
pub struct Measure {
    pub runs: Vec<f64>,
}

impl Measure {
    pub fn push(&mut self, value: f64) {
        self.runs.push(value);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.runs.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    fn to_json(&self) -> Value {
        json!({
            "median": self.median(),
            "min": self.min(),
            "max": self.max(),
            "runs": self.runs,
        })
    }
}

/// What a scenario's oidb figure should reach.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// oidb / SQLite at least this (throughputs).
    TimesSqliteAtLeast(f64),
    /// oidb / SQLite at most this (sizes).
    TimesSqliteAtMost(f64),
    /// oidb / the floor at least this (throughputs beside what the disk itself allows).
    TimesFloorAtLeast(f64),
    /// oidb's own figure at most this, in the scenario's unit.
    AtMost(f64),
    /// Reported only.
    Report,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub key: &'static str,
    pub title: String,
    pub unit: &'static str,
    pub goal: Goal,
    pub oidb: Measure,
    pub sqlite: Option<Measure>,
    pub sqlite_normal: Option<Measure>,
    /// fjall 3, durable where the scenario is (`persist(SyncData)` after each commit).
    pub fjall: Option<Measure>,
    pub floor: Option<Measure>,
    pub note: String,
}

impl Scenario {
    pub fn new(
        key: &'static str,
        title: impl Into<String>,
        unit: &'static str,
        goal: Goal,
    ) -> Self {
        Scenario {
            key,
            title: title.into(),
            unit,
            goal,
            oidb: Measure::default(),
            sqlite: None,
            sqlite_normal: None,
            fjall: None,
            floor: None,
            note: String::new(),
        }
    }

    pub fn ratio_vs_sqlite(&self) -> Option<f64> {
        self.sqlite
            .as_ref()
            .map(|s| self.oidb.median() / s.median())
    }

    /// oidb ÷ the floor.
    pub fn ratio_vs_floor(&self) -> Option<f64> {
        self.floor.as_ref().map(|f| self.oidb.median() / f.median())
    }

    /// oidb ÷ fjall (as [`Scenario::ratio_vs_sqlite`]; the goals stay SQLite's).
    pub fn ratio_vs_fjall(&self) -> Option<f64> {
        self.fjall.as_ref().map(|f| self.oidb.median() / f.median())
    }

    pub fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::TimesSqliteAtLeast(x) => self.ratio_vs_sqlite().map(|r| r >= x),
            Goal::TimesSqliteAtMost(x) => self.ratio_vs_sqlite().map(|r| r <= x),
            Goal::TimesFloorAtLeast(x) => self.ratio_vs_floor().map(|r| r >= x),
            Goal::AtMost(x) => Some(self.oidb.median() <= x),
            Goal::Report => None,
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::TimesSqliteAtLeast(x) => format!(">= {x}x SQLite"),
            Goal::TimesSqliteAtMost(x) => format!("<= {x}x SQLite"),
            Goal::TimesFloorAtLeast(x) => match self.ratio_vs_floor() {
                Some(r) => format!(">= {x}x the floor (oidb / floor {r:.2}x)"),
                None => format!(">= {x}x the floor"),
            },
            Goal::AtMost(x) => format!("<= {} {}", number(x), self.unit),
            Goal::Report => "report".into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "scenario": self.title,
            "unit": self.unit,
            "oidb": self.oidb.to_json(),
            "sqlite": self.sqlite.as_ref().map(Measure::to_json),
            "sqlite_normal_not_durable": self.sqlite_normal.as_ref().map(Measure::to_json),
            "fjall": self.fjall.as_ref().map(Measure::to_json),
            "floor": self.floor.as_ref().map(Measure::to_json),
            "ratio_vs_sqlite": self.ratio_vs_sqlite(),
            "ratio_vs_fjall": self.ratio_vs_fjall(),
            "ratio_vs_floor": self.ratio_vs_floor(),
            "goal": self.goal_text(),
            "met": self.met(),
            "note": self.note,
        })
    }
}

/// A figure with three significant digits, thousands grouped.
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let magnitude = x.abs();
    if magnitude >= 1000.0 {
        let rounded = x.round() as i64;
        let digits = rounded.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if magnitude >= 100.0 {
        format!("{x:.0}")
    } else if magnitude >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(measure: Option<&Measure>) -> String {
    match measure {
        None => "-".into(),
        Some(m) if m.runs.len() == 1 => number(m.median()),
        Some(m) => format!(
            "{} ({}–{})",
            number(m.median()),
            number(m.min()),
            number(m.max())
        ),
    }
}

/// The results as a Markdown table.
pub fn table(scenarios: &[Scenario]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | unit | oidb | SQLite FULL | SQLite NORMAL (not durable per commit) | fjall | floor | oidb / SQLite | oidb / fjall | goal | met |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in scenarios {
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
        let met = match s.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.title,
            s.unit,
            cell(Some(&s.oidb)),
            cell(s.sqlite.as_ref()),
            cell(s.sqlite_normal.as_ref()),
            cell(s.fjall.as_ref()),
            cell(s.floor.as_ref()),
            ratio(s.ratio_vs_sqlite()),
            ratio(s.ratio_vs_fjall()),
            s.goal_text(),
            met
        );
    }
    let notes: Vec<&Scenario> = scenarios.iter().filter(|s| !s.note.is_empty()).collect();
    if !notes.is_empty() {
        out.push('\n');
        for s in notes {
            let _ = writeln!(out, "- {}: {}", s.title, s.note);
        }
    }
    out
}

pub fn write_json(path: &Path, header: Value, scenarios: &[Scenario]) {
    let mut doc = header;
    doc["scenarios"] = Value::Array(scenarios.iter().map(Scenario::to_json).collect());
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let text = serde_json::to_string_pretty(&doc).expect("figures serialize");
    std::fs::write(path, text + "\n").expect("write the JSON figures");
}
