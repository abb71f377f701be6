//! The binary JSON of payloads and proofs: any bytes decode or fail cleanly; what decodes encodes
//! back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oidb::fuzzing::binary_json_decoder(data));
