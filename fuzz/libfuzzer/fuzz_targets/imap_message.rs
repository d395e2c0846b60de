#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // mail-parser asserts (debug builds only) on some broken nestings; roost catches that
        // panic and shows the message as one part (`ParsedMessage::parse`), and the replay
        // test checks it. libFuzzer's hook would abort on it first, so only that one
        // assertion is let through; any other panic still aborts and is a crash.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let known = info.location().is_some_and(|l| {
                l.file().contains("mail-parser") && l.file().ends_with("parsers/message.rs")
            });
            if !known {
                abort(info);
            }
        }));
    },
    |data: &[u8]| roost_fuzz::imap::imap_message(data)
);
