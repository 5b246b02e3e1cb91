//! Replays every input the fuzzer kept (fuzz/corpus/<target>/) and every
//! crash it ever found (fuzz/regressions/<target>/) through the fuzz
//! harnesses, on stable Rust, so a fixed bug stays fixed.

use std::fs;
use std::path::Path;

use glomers::fuzzing::{TARGETS, run_target};

#[test]
fn every_kept_fuzz_input_passes_its_harness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for target in TARGETS {
        for kind in ["corpus", "regressions"] {
            let Ok(entries) = fs::read_dir(root.join(kind).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = fs::read(&path).unwrap();
                if let Err(violation) = run_target(target, &data) {
                    panic!("{} fails: {}", path.display(), violation.0);
                }
                replayed += 1;
            }
        }
    }
    assert!(replayed > 0, "the fuzz corpus is kept in fuzz/corpus/");
}
