//! Where a store's bytes go: the comparison benchmark's events, 1,000 per commit, into a new
//! store, then redb's statistics of each table, per event: the pages it holds (4 KiB each) and
//! how full its leaves are.
//!
//! ```sh
//! cargo run --release --example space -- 100000 /tmp/space
//! ```
//!
//! The store is kept (`<dir>/space.oidb`) for a look with `oidb stats`.

#[path = "../benches/compare/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::path::Path;

use oidb::Store;
use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};

const BATCH: u64 = 1_000;
const PAGE: u64 = 4_096;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let dir = args.next().unwrap_or_else(|| "target/space".into());
    std::fs::create_dir_all(&dir)?;
    let path = Path::new(&dir).join("space.oidb");
    let _ = std::fs::remove_file(&path);

    let w = workload::Workload::new();
    {
        let store = Store::open(&path)?;
        for b in 0..events.div_ceil(BATCH) {
            let batch = w.new_events(b * BATCH..((b + 1) * BATCH).min(events));
            store.append_batch(batch)?;
        }
    }

    let db = redb::Database::open(&path)?;
    let txn = db.begin_read()?;
    let per_event = |bytes: u64| bytes as f64 / events as f64;
    println!("{events} events; per event: pages held (leaf + branch), stored bytes, leaf fill");
    println!(
        "{:<16} {:>10} {:>10} {:>6}",
        "table", "pages B", "stored B", "fill"
    );
    let mut total = 0;
    let mut rows = Vec::new();
    for table in txn.list_tables()? {
        let name = table.name().to_owned();
        let untyped = txn.open_untyped_table(table)?;
        let stats = untyped.stats()?;
        let held = (stats.leaf_pages() + stats.branch_pages()) * PAGE;
        total += held;
        if held == 0 {
            continue;
        }
        let fill = stats.stored_bytes() as f64 / (stats.leaf_pages().max(1) * PAGE) as f64;
        rows.push((held, name, stats.stored_bytes(), fill));
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    for (held, name, stored, fill) in rows {
        println!(
            "{name:<16} {:>10.1} {:>10.1} {:>5.0}%",
            per_event(held),
            per_event(stored),
            fill * 100.0
        );
    }
    println!("{:<16} {:>10.1}", "all tables", per_event(total));
    let file = std::fs::metadata(&path)?;
    println!("file: {:.1} B/event apparent", per_event(file.len()));
    Ok(())
}
