#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    exercise::exercise(b"makedumpfile\0\0\0\0", data);
});
