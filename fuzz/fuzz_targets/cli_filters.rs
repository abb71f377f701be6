//! The command line's filter options (`oidb events --since … --type … --trace …`), parsed by the
//! command line's own parsers, and the query they make, against a brute-force filter.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../cli_filters.rs"]
mod cli_filters;

fuzz_target!(|data: &[u8]| cli_filters::cli_filters(data));
