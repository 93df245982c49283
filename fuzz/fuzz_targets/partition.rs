//! Partition tables (MBR with EBR chains, protective/hybrid MBR, GPT behind its guard) on an
//! in-memory disk of arbitrary bytes: never a panic or a hang, every partition inside the disk.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::partition(data));
