#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roost_fuzz::mbox::mbox_reader(data));
