//! The body of the `cli_filters` fuzz target, shared with `tests/fuzz_corpus.rs`: the command
//! line's own argument parsing, compiled in from `src/bin/oidb/args.rs`.

#[allow(dead_code, missing_docs)]
#[path = "../src/bin/oidb/args.rs"]
mod args;

use clap::Parser as _;
use oidb::fuzzing::{check_filter_terms, FilterTerms};

/// Reads `data` as the arguments of `oidb events store.oidb …`, one a line. When the command line
/// accepts them: each time it parsed reads back from its wire form, the query the `events`
/// command builds holds every term it parsed, and that query, run against a fixed store, returns
/// what a brute-force filter returns.
///
/// # Panics
/// When one of those checks fails.
pub fn cli_filters(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut argv = vec!["oidb", "events", "store.oidb"];
    argv.extend(text.lines().take(32));
    let Ok(cli) = args::Cli::try_parse_from(argv) else {
        return;
    };
    let args::Command::Events(events) = cli.command else {
        return;
    };
    let (selection, paging) = (&events.selection, &events.paging);
    for t in [selection.since, selection.until].into_iter().flatten() {
        if oidb::time::has_wire_form(t) {
            assert_eq!(
                args::parse_time(&oidb::time::format(t)),
                Ok(t),
                "a time does not read back"
            );
        }
    }
    if let Some(trace) = &selection.trace {
        assert_eq!(args::parse_trace(trace).as_ref(), Ok(trace));
    }

    let mut terms = FilterTerms {
        intent: selection.intent.clone(),
        since: selection.since,
        until: selection.until,
        actor: selection.actor.clone(),
        trace: selection.trace.clone(),
        min_level: selection.level,
        after: paging.after.map(|c| c.0),
        limit: paging.limit,
        newest_first: paging.reverse,
        ..FilterTerms::default()
    };
    for spec in &selection.types {
        match spec {
            args::TypeSpec::Exact(t) => terms.types.push(t.clone()),
            args::TypeSpec::Prefix(p) => terms.prefixes.push(p.clone()),
        }
    }
    // The query `oidb events` builds (src/bin/oidb/command/events.rs).
    let mut query = selection.query().order(paging.order());
    if let Some(cursor) = paging.after {
        query = query.after(cursor);
    }
    assert_eq!(
        query,
        terms.query(),
        "the command line lost or changed a filter"
    );
    check_filter_terms(&terms);
}
