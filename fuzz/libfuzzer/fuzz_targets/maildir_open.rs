#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roost_fuzz::maildir::maildir_open(data));
