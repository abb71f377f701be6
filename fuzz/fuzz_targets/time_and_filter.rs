//! Time, level, cursor and type parsing as a command line's filters use them, and the queries they make, against a brute-force filter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oidb::fuzzing::time_and_filter(data));
