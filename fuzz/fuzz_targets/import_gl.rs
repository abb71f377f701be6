//! GL stream import: refused input writes nothing; accepted input re-imports as already present,
//! a line added later is the only new event, and the export imports to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oidb::fuzzing::import_gl(data));
