//! Random appends and reads against an in-memory store, checked against a plain model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oidb::fuzzing::store_model(data));
