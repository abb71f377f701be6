//! `oidb blocks FILE INTENT`: an intent's GL thinking and code blocks, each run of
//! `*_start`, content and `*_end` events put back together into its whole text.

use std::io::Write;

use oidb::observe::{Block, BlockKind};
use serde_json::{json, Value};

use crate::args::{BlockChoice, BlocksArgs};
use crate::failure::Outcome;
use crate::open;
use crate::table::{duration_ms, printable, time};

pub fn run(args: &BlocksArgs) -> Outcome {
    let store = open::for_reading(&args.file)?;
    let blocks: Vec<Block> = store
        .blocks(&args.intent)?
        .into_iter()
        .filter(|b| match args.kind {
            None => true,
            Some(BlockChoice::Thinking) => b.kind == BlockKind::Thinking,
            Some(BlockChoice::Code) => b.kind == BlockKind::Code,
        })
        .collect();
    drop(store);
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<Value> = blocks.iter().map(as_json).collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else if blocks.is_empty() {
        eprintln!(
            "(no {}blocks in intent {})",
            match args.kind {
                None => "thinking or code ",
                Some(BlockChoice::Thinking) => "thinking ",
                Some(BlockChoice::Code) => "code ",
            },
            args.intent
        );
    } else {
        write!(out, "{}", printable(&as_text(&args.intent, &blocks)))?;
    }
    out.flush()?;
    Ok(())
}

fn kind_name(kind: BlockKind) -> &'static str {
    match kind {
        BlockKind::Thinking => "thinking",
        BlockKind::Code => "code",
    }
}

fn as_text(intent: &str, blocks: &[Block]) -> String {
    let thinking = blocks
        .iter()
        .filter(|b| b.kind == BlockKind::Thinking)
        .count();
    let mut lines = vec![format!(
        "intent {intent}: {} {} ({thinking} thinking, {} code)",
        blocks.len(),
        if blocks.len() == 1 { "block" } else { "blocks" },
        blocks.len() - thinking
    )];
    for block in blocks {
        lines.push(String::new());
        let took = match block.ended_at {
            Some(end) => duration_ms((end - block.started_at).num_milliseconds()),
            None => "never ended".to_owned(),
        };
        lines.push(format!(
            "{}{}  {} UTC, {took}  (sequences {} to {})",
            kind_name(block.kind),
            block
                .id
                .as_ref()
                .map(|id| format!(" {id}"))
                .unwrap_or_default(),
            time(block.started_at),
            block.first_sequence,
            block.last_sequence
        ));
        let text = block.text.trim_end_matches('\n');
        if text.is_empty() {
            lines.push("  (empty)".to_owned());
        }
        lines.extend(text.lines().map(|line| format!("  {line}")));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn as_json(block: &Block) -> Value {
    json!({
        "kind": kind_name(block.kind),
        "id": block.id,
        "text": block.text,
        "started_at": oidb::time::format(block.started_at),
        "ended_at": block.ended_at.map(oidb::time::format),
        "first_sequence": block.first_sequence,
        "last_sequence": block.last_sequence,
    })
}
