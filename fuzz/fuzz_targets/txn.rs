//! Fuzzes the `txn` node: arbitrary lines and malformed messages of its
//! own types, answers to its RPCs and mangled peer messages must never make
//! it panic or print anything but messages.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violation) = glomers::fuzzing::run_target("txn", data) {
        panic!("{}", violation.0);
    }
});
