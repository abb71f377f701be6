//! A stored record's decoder: any bytes decode or fail cleanly; what decodes re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oidb::fuzzing::record_decoder(data));
