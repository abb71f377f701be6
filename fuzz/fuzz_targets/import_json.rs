//! OpenIntent JSON/JSONL import: refused input writes nothing; accepted input re-imports as already present and exports to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oidb::fuzzing::import_json(data));
